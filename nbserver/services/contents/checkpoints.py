"""Checkpoints kept next to the files, in jupyter_server's layout.

The one checkpoint of ``dir/name.ext`` (id ``"checkpoint"``) is
``dir/.ipynb_checkpoints/name-checkpoint.ext``, the extension being what ``os.path.splitext``
gives (``a.tar.gz`` -> ``a.tar-checkpoint.gz``), so servers can share a directory with
jupyter_server. Copies are atomic (:mod:`.fileio`) and a checkpoint keeps the file's
modification time, as ``shutil.copy2`` does. Every path is confined to the root by realpath,
``.ipynb_checkpoints`` included.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

from ...errors import NBServerError, NotFound
from . import fileio, paths
from .manager import Checkpoints, Model
from .models import timestamp
from .temps import Journal

__all__ = ["CHECKPOINT_DIR", "CHECKPOINT_ID", "FileCheckpoints"]

CHECKPOINT_DIR = ".ipynb_checkpoints"
CHECKPOINT_ID = "checkpoint"

T = TypeVar("T")


class FileCheckpoints(Checkpoints):
    """File checkpoints under ``root_dir``.

    ``executor`` runs the blocking work (``None``: the event loop's default executor) and
    ``journal`` records where temp files go (:mod:`.temps`); the file contents manager passes
    its own. Paths are API paths; the hidden-file policy is the manager's (it only asks for
    checkpoints of files it serves).
    """

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        *,
        executor: Executor | None = None,
        journal: Journal | None = None,
    ) -> None:
        self._root = fileio.Root(root_dir)
        self._executor = executor
        self._journal = journal

    async def _run(self, path: str, fn: Callable[[str], T]) -> T:
        path = paths.normalize(path)
        return await fileio.run_in(self._executor, path, lambda: fn(path), "checkpoints store")

    def _checkpoint_path(self, path: str, *, make_dir: bool = False) -> str:
        """The realpath of ``path``'s checkpoint file (checked to be inside the root)."""
        parent, name = paths.split(path)
        if not name:
            raise NotFound("The root has no checkpoints", reason="no such checkpoint")
        base, ext = os.path.splitext(name)
        directory = paths.join(parent, CHECKPOINT_DIR)
        if make_dir:
            os.makedirs(self._root.real(directory), exist_ok=True)
        return self._root.real(paths.join(directory, f"{base}-{CHECKPOINT_ID}{ext}"))

    def _file(self, path: str) -> tuple[str, os.stat_result]:
        """The realpath and stat of the regular file ``path``."""
        real = self._root.real(path)
        st = os.stat(real)
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"No such file: {path!r}")
        return real, st

    @staticmethod
    def _model(st: os.stat_result) -> Model:
        return {"id": CHECKPOINT_ID, "last_modified": timestamp(st.st_mtime)}

    def _unknown(self, path: str, checkpoint_id: str) -> NotFound:
        return NotFound(f"Checkpoint does not exist: {path}@{checkpoint_id}", reason="no such checkpoint")

    def _existing(self, path: str, checkpoint_id: str) -> str:
        if checkpoint_id == CHECKPOINT_ID:
            with contextlib.suppress(NotFound):
                checkpoint = self._checkpoint_path(path)
                if os.path.isfile(checkpoint):
                    return checkpoint
        raise self._unknown(path, checkpoint_id)

    # -- Checkpoints -------------------------------------------------------------------------

    async def create(self, path: str) -> Model:
        """Copy ``path`` into its checkpoint (replacing it). NotFound if ``path`` is not a file."""

        def work(path: str) -> Model:
            real, st = self._file(path)
            checkpoint = self._checkpoint_path(path, make_dir=True)
            times = (st.st_atime_ns, st.st_mtime_ns)
            fileio.atomic_copy(real, checkpoint, stat.S_IMODE(st.st_mode), times, journal=self._journal)
            return self._model(os.stat(checkpoint))

        return await self._run(path, work)

    async def list(self, path: str) -> list[Model]:
        """``[]`` or the one checkpoint's model."""

        def work(path: str) -> list[Model]:
            try:
                return [self._model(os.stat(self._existing(path, CHECKPOINT_ID)))]
            except NBServerError:
                return []

        return await self._run(path, work)

    async def restore(self, path: str, checkpoint_id: str) -> None:
        """Copy the checkpoint back onto ``path`` atomically, keeping the file's mode. The
        restored file gets a new modification time (it changed).

        Raises:
            NotFound: (``"no such checkpoint"``) unknown id or no checkpoint.
        """

        def work(path: str) -> None:
            checkpoint = self._existing(path, checkpoint_id)
            real = self._root.real(path)
            try:
                mode: int | None = stat.S_IMODE(os.stat(real).st_mode)
            except FileNotFoundError:
                mode = None
            fileio.atomic_copy(checkpoint, real, mode, None, journal=self._journal)

        await self._run(path, work)

    async def delete(self, path: str, checkpoint_id: str) -> None:
        """Raises NotFound (``"no such checkpoint"``) for an unknown id or no checkpoint."""

        def work(path: str) -> None:
            os.unlink(self._existing(path, checkpoint_id))

        await self._run(path, work)

    async def rename_all(self, old_path: str, new_path: str) -> None:
        """Move ``old_path``'s checkpoint to be ``new_path``'s (none: nothing to do)."""
        new_path = paths.normalize(new_path)

        def work(old_path: str) -> None:
            try:
                old = self._existing(old_path, CHECKPOINT_ID)
            except NotFound:
                return
            fileio.move(old, self._checkpoint_path(new_path, make_dir=True))

        await self._run(old_path, work)

    async def delete_all(self, path: str) -> None:
        """Remove ``path``'s checkpoint if there is one."""

        def work(path: str) -> None:
            with contextlib.suppress(NotFound, FileNotFoundError):
                os.unlink(self._existing(path, CHECKPOINT_ID))

        await self._run(path, work)
