"""Terminals: shells in ptys (terminado), named, shared by their websockets, culled when idle.

Theory of operation. terminado's :class:`~terminado.management.NamedTermManager` owns the ptys:
it spawns the shell, reads its output on the event loop and hands each chunk to the
terminal's connected clients, keeping the last chunks (1000 of them) in ``read_buffer``. This
module wraps it in the shape of the other managers: async methods, models as dicts, errors as
:class:`~nbserver.errors.NBServerError`; no tornado type crosses its interface.

A terminal lives until it is deleted, its shell exits, it is culled, or the manager shuts
down; a websocket only watches it. A client that connects gets the kept output first (so a
browser that reconnects sees the recent screen), then the live output. ``last_activity``
moves on input and on output that some client sees; the server's activity moves with it.

Culling (``cull_idle_timeout`` > 0, checked every ``cull_interval`` seconds, the kernels'
settings): a terminal idle for longer than the timeout is terminated, unless a client is
connected and ``cull_connected`` is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from terminado.management import MaxTerminalsReached, NamedTermManager, PtyWithClients, TermManagerBase

from ...context import Activity, isoformat
from ...errors import BadRequest, Conflict, Forbidden, NBServerError, NotFound

__all__ = ["TerminalClient", "TerminalManager", "default_shell", "pty_available"]

log = logging.getLogger("nbserver.terminal")

NAME = re.compile(r"\w+", re.ASCII)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def pty_available() -> bool:
    """Whether this platform can run terminals (a POSIX pty, or pywinpty on Windows)."""
    if os.name == "nt":
        try:
            import winpty  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            return False
        return True
    try:
        import ptyprocess  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return False
    return True


def default_shell() -> list[str]:
    """jupyter_server's choice: ``$SHELL`` (else ``sh``), as a login shell (``-l``) when the
    server does not run in a terminal itself, so that ``/etc/profile`` and the like are read."""
    if os.name == "nt":
        return ["powershell.exe"]
    shell = [os.environ.get("SHELL") or shutil.which("sh") or "/bin/sh"]
    if not sys.stdout.isatty():
        shell.append("-l")
    return shell


class TerminalClient(Protocol):
    """What a terminal's watcher (the websocket) provides; terminado calls these."""

    #: ``(rows, cols)`` this client shows; the pty is sized to the smallest client
    size: tuple[int | None, int | None]

    def on_pty_read(self, text: str) -> None:
        """Output of the terminal."""

    def on_pty_died(self) -> None:
        """The terminal's shell has exited (or was terminated): no more output will come."""


class _Ptys(NamedTermManager):
    """terminado's manager, told about reads (activity) and safe about a reused name: the EOF of
    a terminated terminal must not remove a newer terminal of the same name."""

    def __init__(self, owner: TerminalManager, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owner = owner

    def pre_pty_read_hook(self, ptywclients: PtyWithClients) -> None:
        if ptywclients.clients:
            self.owner.touch(ptywclients)

    def on_eof(self, ptywclients: PtyWithClients) -> None:
        TermManagerBase.on_eof(self, ptywclients)  # stop reading, close the fd (reaps the shell)
        name = ptywclients.term_name
        if name is not None and self.terminals.get(name) is ptywclients:
            del self.terminals[name]
            log.info("Terminal %s exited", name)
        self.owner.last_activity.pop(id(ptywclients), None)

    def remove(self, name: str) -> None:
        self.terminals.pop(name, None)


class TerminalManager:
    """The server's terminals, by name.

    Args:
        root_dir: the server's root: shells start there, and a requested ``cwd`` must be inside.
        activity: the server's activity tracker, or None.
        shell_command: argv of the shell (default :func:`default_shell`).
        extra_env: environment added to the shell's (``None`` values remove a variable).
        cull_idle_timeout, cull_interval, cull_connected: culling (see the module docstring);
            a timeout of 0 turns it off.
        max_terminals: refuse (409) to create more than this many; 0 = no limit.
    """

    def __init__(
        self,
        root_dir: Path,
        *,
        activity: Activity | None = None,
        shell_command: Sequence[str] = (),
        extra_env: dict[str, str | None] | None = None,
        cull_idle_timeout: float = 0.0,
        cull_interval: float = 300.0,
        cull_connected: bool = False,
        max_terminals: int = 0,
    ) -> None:
        self.root_dir = Path(os.path.realpath(root_dir))
        self.activity = activity
        self.cull_idle_timeout = cull_idle_timeout
        self.cull_interval = cull_interval
        self.cull_connected = cull_connected
        self.ptys = _Ptys(
            self,
            shell_command=list(shell_command) or default_shell(),
            extra_env=extra_env,
            max_terminals=max_terminals or None,
        )
        self.last_activity: dict[int, datetime] = {}
        self._culler: asyncio.Task[None] | None = None

    # -- the REST operations -------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self.ptys.terminals)

    def model(self, name: str) -> dict[str, Any]:
        """``{"name", "last_activity"}``, as jupyter_server_terminals. Raises NotFound."""
        term = self._get(name)
        return {"name": name, "last_activity": isoformat(self.last_activity.get(id(term), _now()))}

    def models(self) -> list[dict[str, Any]]:
        return [self.model(name) for name in self.names()]

    async def create(self, name: str | None = None, cwd: str | None = None) -> dict[str, Any]:
        """Start a shell in a new terminal and return its model.

        Args:
            name: the terminal's name (``\\w+``); default: the lowest free number.
            cwd: where the shell starts: a directory inside the root, given relative to it
                (``"sub/dir"``) or as an absolute path inside it; default the root.

        Raises:
            BadRequest: a bad name, or a ``cwd`` that is not an existing directory.
            Forbidden: a ``cwd`` outside the root (``..``, an absolute path elsewhere, a
                symlink leading out).
            Conflict: the name is taken, or ``max_terminals`` are running.
        """
        if name is not None and not NAME.fullmatch(name):
            raise BadRequest(f"Invalid terminal name {name!r}: letters, digits and _ only", reason="bad name")
        if name is not None and name in self.ptys.terminals:
            raise Conflict(f"Terminal {name!r} already exists", reason="terminal exists")
        directory = await asyncio.to_thread(self._resolve_cwd, cwd)
        kwargs: dict[str, Any] = {"cwd": str(directory)}
        if name is not None:
            kwargs["name"] = name
        try:
            name, term = self.ptys.new_named_terminal(**kwargs)
        except MaxTerminalsReached as exc:
            raise Conflict(str(exc), reason="too many terminals") from exc
        except OSError as exc:
            raise NBServerError(f"Cannot start a terminal: {exc}", reason="terminal failed") from exc
        self.touch(term)
        self._start_culler()
        log.info("Terminal %s started in %s", name, directory)
        return self.model(name)

    async def terminate(self, name: str) -> None:
        """End terminal ``name``: its shell's process group gets SIGHUP, SIGCONT, SIGINT, SIGTERM
        and finally SIGKILL; its clients are told (``on_pty_died``). Raises NotFound."""
        term = self._get(name)
        self.ptys.remove(name)
        self.last_activity.pop(id(term), None)
        await term.terminate(force=True)
        log.info("Terminal %s terminated", name)

    # -- the websocket's operations ------------------------------------------------------------

    def attach(self, name: str, client: TerminalClient) -> str:
        """Make ``client`` a watcher of terminal ``name``; returns the output kept so far (to
        show first). Raises NotFound."""
        term = self._get(name)
        term.clients.append(client)
        term.resize_to_smallest()
        self.touch(term)
        return "".join(term.read_buffer)

    def detach(self, name: str, client: TerminalClient) -> None:
        """``client`` stops watching (its websocket closed); the terminal goes on."""
        term = self.ptys.terminals.get(name)
        if term is not None and client in term.clients:
            term.clients.remove(client)
            term.resize_to_smallest()

    def resize(self, name: str) -> None:
        """A client's ``size`` changed: size the pty to the smallest client."""
        term = self.ptys.terminals.get(name)
        if term is not None:
            term.resize_to_smallest()

    async def write(self, name: str, text: str) -> None:
        """Send ``text`` to the terminal's input, in order (one writer thread: a full pty
        buffer blocks that thread, never the event loop). Raises NotFound."""
        term = self._get(name)
        self.touch(term)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.ptys.blocking_io_executor, term.ptyproc.write, text)

    # -- activity and culling ------------------------------------------------------------------

    def touch(self, term: PtyWithClients) -> None:
        self.last_activity[id(term)] = _now()
        if self.activity is not None:
            self.activity.touch()

    def _start_culler(self) -> None:
        if self.cull_idle_timeout > 0 and self._culler is None:
            self._culler = asyncio.ensure_future(self._cull_loop())

    async def _cull_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cull_interval)
            try:
                await self.cull_once()
            except Exception:  # the culler must survive one bad round
                log.exception("Culling terminals failed")

    async def cull_once(self) -> list[str]:
        """Terminate the terminals idle longer than ``cull_idle_timeout``; returns their names."""
        now = _now()
        culled = []
        for name, term in list(self.ptys.terminals.items()):
            idle = (now - self.last_activity.get(id(term), now)).total_seconds()
            if idle <= self.cull_idle_timeout or (term.clients and not self.cull_connected):
                continue
            log.warning("Culling terminal %s: idle for %.0f s", name, idle)
            culled.append(name)
            with contextlib.suppress(NotFound):  # deleted meanwhile
                await self.terminate(name)
        return culled

    async def shutdown(self) -> None:
        """Terminate every terminal and stop the culler (the server is stopping)."""
        if self._culler is not None:
            self._culler.cancel()
            self._culler = None
        names = self.names()
        if names:
            log.info("Terminating %d terminal(s)", len(names))
        await asyncio.gather(*(self.terminate(n) for n in names), return_exceptions=True)
        await self.ptys.shutdown()

    # -- helpers ---------------------------------------------------------------------------------

    def _get(self, name: str) -> PtyWithClients:
        term = self.ptys.terminals.get(name)
        if term is None:
            raise NotFound(f"Terminal not found: {name}", reason="no such terminal")
        return term

    def _resolve_cwd(self, cwd: str | None) -> Path:
        if not cwd:
            return self.root_dir
        if "\0" in cwd:
            raise BadRequest("cwd contains a NUL byte", reason="bad cwd")
        requested = Path(cwd)
        candidate = requested if requested.is_absolute() else self.root_dir / requested
        real = Path(os.path.realpath(candidate))
        if real != self.root_dir and self.root_dir not in real.parents:
            raise Forbidden(f"cwd {cwd!r} is outside the server's root", reason="cwd outside root")
        if not real.is_dir():
            raise BadRequest(f"cwd {cwd!r} is not a directory", reason="bad cwd")
        return real
