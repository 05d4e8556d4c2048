"""Sessions bind an API path (a notebook, a console, a file) to a running kernel.

Semantics follow jupyter_server 2.21:

- Creating a session for a path whose session still has a live kernel returns that session
  unchanged (requested kernel, name and type are ignored).
- A row whose kernel is gone (shut down through ``/api/kernels``, culled, died) is deleted the
  next time it is read: listings skip it and lookups of it are 404.
- The kernel of a session starts in the directory of its path, with ``JPY_SESSION_NAME`` set to
  the absolute filesystem path of the notebook under the root.
- Changing the kernel of a session (``kernel.name`` starts a new one, ``kernel.id`` picks a
  running one) shuts the previous kernel down.

Concurrent creations for one path are serialised by a per-path :class:`asyncio.Lock`, so they
yield one session and one kernel. Changes and deletion of one session are serialised by a
per-session lock, so that no kernel a change starts is left running outside every session.

With a file store, rows outlive the server together with their kernels: the kernel manager
records its kernels in the same store and re-attaches them at start-up (same kernel ids), and
the rows of kernels found gone then are deleted with their records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from ...errors import BadRequest, Gone, NotFound
from ..contents import paths
from ..kernels.manager import Kernel, KernelManager
from .store import SessionRow, SessionStore

__all__ = ["SessionManager"]

log = logging.getLogger("nbserver.sessions")

T = TypeVar("T")


class SessionManager:
    """All sessions of one server.

    Args:
        store: where the rows live.
        kernels: the server's kernel manager; sessions start, look up and stop kernels there.
        contents_root: the contents root, for ``JPY_SESSION_NAME``.
    """

    def __init__(self, store: SessionStore, kernels: KernelManager, contents_root: Path) -> None:
        self.store = store
        self.kernels = kernels
        self.contents_root = contents_root
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    # -- helpers ---------------------------------------------------------------------------------

    async def _db(self, query: Callable[..., T], *args: Any) -> T:
        """Run a store method: inline for an in-memory database, on the store's thread for a file."""
        return await self.store.run(query, *args)

    @contextlib.asynccontextmanager
    async def _lock(self, kind: str, key: str) -> AsyncIterator[None]:
        """Hold the lock of ``key`` (a path, or a session id, as ``kind`` says); locks are
        dropped when nobody holds or waits for them."""
        name = (kind, key)
        lock, users = self._locks.get(name, (asyncio.Lock(), 0))
        self._locks[name] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[name]
            if users == 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock, users - 1)

    async def _alive(self, row: SessionRow | None) -> SessionRow | None:
        """``row`` if its kernel is running; otherwise the row is deleted and None returned."""
        if row is None:
            return None
        if row.kernel_id in self.kernels.kernels:
            return row
        log.info("Session %s: kernel %s is gone; dropping the session", row.session_id, row.kernel_id)
        await self._db(self.store.delete, row.session_id)
        return None

    async def _row(self, session_id: str) -> SessionRow:
        row = await self._alive(await self._db(self.store.get, session_id))
        if row is None:
            raise NotFound(f"Session not found: {session_id}", reason="no such session")
        return row

    def _model(self, row: SessionRow) -> dict[str, Any]:
        model: dict[str, Any] = {
            "id": row.session_id,
            "path": row.path,
            "name": row.name,
            "type": row.type,
            "kernel": self.kernels.get(row.kernel_id).model(),
        }
        if row.type == "notebook":
            model["notebook"] = {"path": row.path, "name": row.name}
        return model

    def kernel_env(self, path: str) -> dict[str, str]:
        """The extra environment of a session's kernel: ``JPY_SESSION_NAME``."""
        return {"JPY_SESSION_NAME": str(self.contents_root.joinpath(*path.split("/")))}

    async def _start_kernel(self, path: str, kernel_name: str | None, kernel_id: str | None) -> Kernel:
        return await self.kernels.start(
            kernel_name, path=path, kernel_id=kernel_id, env=self.kernel_env(path)
        )

    # -- API -------------------------------------------------------------------------------------

    async def create(
        self,
        path: str,
        type: str,
        name: str = "",
        kernel_name: str | None = None,
        kernel_id: str | None = None,
    ) -> dict[str, Any]:
        """The session of ``path``: the existing one if its kernel is alive, else a new one.

        ``kernel_id`` attaches to that kernel (one is started with that id if none runs);
        otherwise a kernel of ``kernel_name`` (default kernelspec when None) is started.

        Raises:
            NotFound: path outside the root (``"outside root"``), unknown kernelspec
                (``"no such kernelspec"``, with ``short_message`` ``"<name> not found"``).
            BadRequest: ``kernel_id`` is not a UUID (``"bad kernel id"``).
            NBServerError: 500 when the kernel fails to start (``"kernel failed"``).
        """
        path = paths.normalize(path)
        async with self._lock("path", path):
            for row in await self._db(self.store.find_path, path):
                if await self._alive(row) is not None:
                    return self._model(row)
            kernel = await self._start_kernel(path, kernel_name, kernel_id)
            row = SessionRow(str(uuid.uuid4()), path, name, type, kernel.id)
            await self._db(self.store.insert, row)
            log.info("Session %s for %r on kernel %s", row.session_id, path, kernel.id)
            return self._model(row)

    async def get(self, session_id: str) -> dict[str, Any]:
        """Raises NotFound (``"no such session"``), also when the session's kernel is gone."""
        return self._model(await self._row(session_id))

    async def list(self) -> list[dict[str, Any]]:
        """Every session whose kernel is alive (the others are deleted)."""
        rows = await self._db(self.store.all)
        return [self._model(row) for row in rows if await self._alive(row) is not None]

    async def update(
        self,
        session_id: str,
        *,
        path: str | None = None,
        name: str | None = None,
        type: str | None = None,
        kernel_name: str | None = None,
        kernel_id: str | None = None,
    ) -> dict[str, Any]:
        """Change fields of a session; None leaves a field as it is.

        ``kernel_id`` (which wins over ``kernel_name``) switches to that running kernel;
        ``kernel_name`` starts a new kernel for the (new) path. Either way the previous kernel is
        shut down once the session points at the new one.

        Raises:
            NotFound: no such session (``"no such session"``); path outside the root; unknown
                kernelspec (with ``short_message``, as :meth:`create`).
            BadRequest: ``kernel_id`` names no running kernel (``"no such kernel"``).
            NBServerError: 500 when a new kernel fails to start.
        """
        async with self._lock("session", session_id):
            row = await self._row(session_id)
            new_path = paths.normalize(path) if path is not None else row.path
            new_kernel = row.kernel_id
            started = None
            if kernel_id is not None:
                if kernel_id not in self.kernels.kernels:
                    raise BadRequest(f"No such kernel: {kernel_id}", reason="no such kernel")
                new_kernel = kernel_id
            elif kernel_name is not None:
                new_kernel = started = (await self._start_kernel(new_path, kernel_name, None)).id
            updated = SessionRow(
                session_id,
                new_path,
                row.name if name is None else name,
                row.type if type is None else type,
                new_kernel,
            )
            try:
                await self._db(self.store.replace, updated)
            except BaseException:
                if started is not None:  # no session will ever name it
                    await self._stop_kernel(started)
                raise
            if new_kernel != row.kernel_id:
                await self._stop_kernel(row.kernel_id)
            return self._model(await self._row(session_id))

    async def _stop_kernel(self, kernel_id: str) -> None:
        with contextlib.suppress(NotFound):  # already gone: nothing to stop
            await self.kernels.shutdown_kernel(kernel_id)

    async def delete(self, session_id: str) -> None:
        """Forget a session and shut its kernel down.

        Raises:
            NotFound: no such session (``"no such session"``).
            Gone: the session existed but its kernel was already gone (``"kernel gone"``); the
                session is deleted all the same.
        """
        async with self._lock("session", session_id):
            row = await self._db(self.store.get, session_id)
            if row is None:
                raise NotFound(f"Session not found: {session_id}", reason="no such session")
            await self._db(self.store.delete, session_id)
            try:
                await self.kernels.shutdown_kernel(row.kernel_id)
            except NotFound:
                raise Gone(
                    f"The kernel of session {session_id} was already gone", reason="kernel gone"
                ) from None

    async def shutdown(self) -> None:
        """Close the database (server shutdown). Kernels are the kernel manager's to stop (or
        keep), which it does first: the server shuts its services down in the order they were
        registered, and the kernel manager is registered before the session manager."""
        self.store.close()
