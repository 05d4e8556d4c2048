"""The users' servers: which run, which are starting or stopping, where they listen, when they
were last used; starting, stopping, re-adopting after a hub restart.

State of one user's server (:class:`UserServer`)::

    (none) --start--> spawn pending --ready--> running --stop--> stop pending --> (none)
                           |                      |
                           +--died / timed out----+--died (seen by the poll)--> (none)

- A start records pid, port and the server's token in the database at once (so that a hub
  killed during a spawn still finds the process), then waits for the server to answer
  ``GET <prefix>api`` (at most ``ready_timeout`` seconds; asked every 50 ms at first, then at
  most every :data:`READY_POLL_MAX` s). Progress messages are kept for the progress page.
  Becoming ready counts as activity: a start slower than the idle-cull timeout is not culled
  the moment it is ready.
- A stop sends SIGTERM, waits ``stop_timeout`` seconds, then SIGKILLs the process group; the
  record and the server's tokens (its own and the OAuth tokens issued to it) are deleted.
- :meth:`Servers.adopt`, at hub start-up: each recorded server whose process is alive and whose
  port answers as that user's server is running again; the others are forgotten.
- Activity (:meth:`Servers.touch`): the proxy's traffic and the servers' own reports move
  ``last_activity`` forward in memory at once; the database is written every few seconds.
- Every ``poll_interval`` seconds the processes are checked; a server that died is forgotten.

Managers here are async and hold no tornado types but the HTTP client that asks servers
whether they are ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import signal
import socket
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from ..errors import Conflict
from ..tasks import cancel
from .scopes import server_token_scopes
from .spawner import LaunchSpec, LocalSpawner, SpawnFailed
from .store import ServerRecord, Store, now

__all__ = ["ServerState", "Servers", "UserServer", "free_port"]

log = logging.getLogger("nbserver.hub")

#: the longest wait between two readiness checks of a starting server (a refused connection is
#: cheap; a server found ready late keeps its user waiting)
READY_POLL_MAX = 0.1


class ServerState(enum.Enum):
    SPAWNING = "spawn"
    RUNNING = "running"
    STOPPING = "stop"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the usual race: another may take it before the server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class UserServer:
    """One user's server, as the hub knows it."""

    user: str
    pid: int
    port: int
    token_id: int
    started: datetime
    state: ServerState
    last_activity: datetime | None = None
    events: list[dict[str, object]] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    failure: str | None = None

    @property
    def pending(self) -> str | None:
        """JupyterHub's ``pending``: ``"spawn"``, ``"stop"`` or None."""
        return None if self.state is ServerState.RUNNING else self.state.value

    def event(self, progress: int, message: str, **extra: object) -> None:
        self.events.append({"progress": progress, "message": message, **extra})


class Servers:
    """The registry of user servers (see the module docstring).

    Args:
        store: the hub's database.
        spawner: starts and signals processes.
        hub_api_url: the hub's API as servers reach it (``http://127.0.0.1:8000/hub/api``).
        base_url: the hub's public prefix.
    """

    def __init__(
        self,
        store: Store,
        spawner: LocalSpawner,
        *,
        hub_api_url: str,
        base_url: str,
        activity_interval: float = 10.0,
        ready_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        poll_interval: float = 5.0,
    ) -> None:
        self.store = store
        self.spawner = spawner
        self.hub_api_url = hub_api_url
        self.base_url = base_url
        self.activity_interval = activity_interval
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.poll_interval = poll_interval
        self._servers: dict[str, UserServer] = {}
        self._dirty: set[str] = set()
        self._user_activity: dict[str, datetime] = {}
        self._http = AsyncHTTPClient(force_instance=True)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # -- lookup ----------------------------------------------------------------------------------

    def get(self, user: str) -> UserServer | None:
        return self._servers.get(user)

    def running(self, user: str) -> UserServer | None:
        """``user``'s server if it is ready to serve."""
        server = self._servers.get(user)
        return server if server is not None and server.state is ServerState.RUNNING else None

    def all(self) -> list[UserServer]:
        return list(self._servers.values())

    def prefix(self, user: str) -> str:
        return f"{self.base_url}user/{user}/"

    # -- activity --------------------------------------------------------------------------------

    def touch(self, user: str, moment: datetime | None = None) -> None:
        """Record activity of ``user`` (and their server) at ``moment`` (default: now)."""
        moment = moment or now()
        if self._user_activity.get(user) is None or self._user_activity[user] < moment:
            self._user_activity[user] = moment
            self._dirty.add(user)
        server = self._servers.get(user)
        if server is not None and (server.last_activity is None or server.last_activity < moment):
            server.last_activity = moment

    def user_activity(self, user: str, stored: datetime | None) -> datetime | None:
        """The latest of ``stored`` (the database's) and what is not written yet."""
        pending = self._user_activity.get(user)
        if pending is None:
            return stored
        return pending if stored is None or pending > stored else stored

    def flush(self) -> None:
        """Write the activity seen since the last flush."""
        dirty, self._dirty = self._dirty, set()
        for user in dirty:
            moment = self._user_activity.get(user)
            if moment is None:
                continue
            self.store.set_user_activity(user, moment)
            if user in self._servers:
                self.store.set_server_activity(user, moment)

    # -- start -------------------------------------------------------------------------------------

    async def start(self, user: str) -> UserServer:
        """Start ``user``'s server, or return the one starting. The returned server may still be
        starting: wait on ``ready`` / ``stopped``.

        Raises:
            Conflict: it is running already (``"running"``) or stopping (``"stopping"``).
            SpawnFailed: the process could not be started.
        """
        current = self._servers.get(user)
        if current is not None:
            if current.state is ServerState.SPAWNING:
                return current
            if current.state is ServerState.STOPPING:
                raise Conflict(f"{user}'s server is stopping", reason="stopping")
            raise Conflict(f"{user}'s server is already running", reason="running")
        token, record = self.store.add_token(
            user, kind="server", scopes=server_token_scopes(user), note="Server token"
        )
        spec = LaunchSpec(
            user=user,
            port=free_port(),
            api_token=token,
            hub_api_url=self.hub_api_url,
            base_url=self.base_url,
            activity_interval=self.activity_interval,
        )
        try:
            pid = self.spawner.launch(spec)
        except SpawnFailed:
            self.store.delete_token(record.id)
            raise
        started = now()
        server = UserServer(
            user, pid, spec.port, record.id, started, ServerState.SPAWNING, last_activity=started
        )
        server.event(0, "Server requested")
        server.event(20, f"Spawning server (pid {pid})...")
        self._servers[user] = server
        self.store.save_server(ServerRecord(user, pid, spec.port, record.id, started, started))
        self.touch(user, started)
        log.info("Starting %s's server: pid %d, port %d", user, pid, spec.port)
        self._spawn(self._wait_ready(server))
        return server

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def responds(self, user: str, port: int, timeout: float = 5.0) -> bool:
        """Whether ``user``'s server answers on ``port`` (``GET <prefix>api``: 200 with a version)."""
        url = f"http://127.0.0.1:{port}{self.prefix(user)}api"
        try:
            response = await self._http.fetch(url, request_timeout=timeout, connect_timeout=timeout)
        except (HTTPClientError, OSError, asyncio.TimeoutError):
            return False
        return response.code == 200 and b'"version"' in (response.body or b"")

    async def _wait_ready(self, server: UserServer) -> None:
        deadline = asyncio.get_running_loop().time() + self.ready_timeout
        delay = 0.05
        while server.state is ServerState.SPAWNING:
            if not self.spawner.alive(server.pid):
                code = self.spawner.exit_code(server.pid)
                await self._fail(
                    server, f"The server exited (status {code}) before it was ready; see its log"
                )
                return
            if await self.responds(server.user, server.port, timeout=2.0):
                if _stopping(server):  # a stop came while we asked
                    return
                server.state = ServerState.RUNNING
                self.touch(server.user)  # its user is waiting for it: a slow start is not idleness
                server.event(
                    100,
                    f"Server ready at {self.prefix(server.user)}",
                    ready=True,
                    url=self.prefix(server.user),
                )
                server.ready.set()
                log.info("%s's server is ready on port %d", server.user, server.port)
                return
            if asyncio.get_running_loop().time() > deadline:
                await self._fail(server, f"The server did not answer within {self.ready_timeout:g} s")
                return
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, READY_POLL_MAX)

    async def _fail(self, server: UserServer, message: str) -> None:
        log.error(
            "%s's server failed to start: %s (log: %s)",
            server.user,
            message,
            self.spawner.log_path(server.user),
        )
        server.failure = message
        server.event(100, message, failed=True)
        await self._terminate(server)

    # -- stop ----------------------------------------------------------------------------------------

    async def stop(self, user: str) -> UserServer | None:
        """Begin stopping ``user``'s server; None when there is none. Wait on ``stopped``."""
        server = self._servers.get(user)
        if server is None:
            return None
        if server.state is not ServerState.STOPPING:
            server.state = ServerState.STOPPING
            log.info("Stopping %s's server (pid %d)", user, server.pid)
            self._spawn(self._terminate(server))
        return server

    async def _terminate(self, server: UserServer) -> None:
        server.state = ServerState.STOPPING
        self.spawner.signal(server.pid, signal.SIGTERM)
        deadline = asyncio.get_running_loop().time() + self.stop_timeout
        while self.spawner.alive(server.pid) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if self.spawner.alive(server.pid):
            log.warning("%s's server did not stop within %g s: SIGKILL", server.user, self.stop_timeout)
            self.spawner.signal(server.pid, signal.SIGKILL)
        self._forget(server)

    def _forget(self, server: UserServer) -> None:
        if self._servers.get(server.user) is server:
            del self._servers[server.user]
        self.flush()
        self.store.forget_server(server.user)
        self.store.delete_token(server.token_id)
        self.store.delete_client_tokens(f"jupyterhub-user-{server.user}")
        server.stopped.set()
        server.ready.set()  # wake whoever waits for a start that will not come

    # -- lifecycle -------------------------------------------------------------------------------------

    async def adopt(self) -> None:
        """Take back the servers a previous hub left running; forget the dead ones."""
        for record in self.store.servers():
            token = self.store.token_by_id(record.token_id)
            alive = token is not None and self.spawner.alive(record.pid)
            if alive and await self.responds(record.user, record.port):
                server = UserServer(
                    record.user,
                    record.pid,
                    record.port,
                    record.token_id,
                    record.started,
                    ServerState.RUNNING,
                    last_activity=record.last_activity,
                )
                server.event(
                    100, "Server adopted after a hub restart", ready=True, url=self.prefix(record.user)
                )
                server.ready.set()
                self._servers[record.user] = server
                log.info("Adopted %s's server (pid %d, port %d)", record.user, record.pid, record.port)
            else:
                log.info("Forgetting %s's server (pid %d): no longer running", record.user, record.pid)
                if alive:  # alive but not answering as the server: stop it
                    self.spawner.signal(record.pid, signal.SIGTERM)
                self.store.forget_server(record.user)
                self.store.delete_token(record.token_id)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(min(self.poll_interval, 2.0))
            try:
                self.flush()
                for server in list(self._servers.values()):
                    if server.state is ServerState.RUNNING and not self.spawner.alive(server.pid):
                        log.warning("%s's server (pid %d) has died", server.user, server.pid)
                        self._forget(server)
            except Exception:  # keep watching whatever happens
                log.exception("Checking the servers failed")

    async def startup(self) -> None:
        await self.adopt()
        self._loop_task = asyncio.ensure_future(self._watch())

    async def shutdown(self) -> None:
        """Stop watching; the servers keep running (a new hub re-adopts them)."""
        task, self._loop_task = self._loop_task, None
        await cancel(task)
        for pending in list(self._tasks):
            pending.cancel()
        self.flush()
        self._http.close()

    async def wait_ready(self, server: UserServer, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``server`` to be ready; whether it is."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.ready.wait(), timeout)
        return server.state is ServerState.RUNNING


def _stopping(server: UserServer) -> bool:
    return server.state is not ServerState.SPAWNING
