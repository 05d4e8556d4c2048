"""The built-in idle culler (``--cull-idle-timeout``): stops servers nobody has used for a while.

"Used" is the server's ``last_activity``: the proxy's traffic (requests, websocket messages both
ways) and what the server reports itself (busy kernels, every ``activity_interval`` seconds).
Every ``interval`` seconds, each ready server whose last activity (or start, if none) is older
than ``timeout`` seconds is stopped, as jupyterhub-idle-culler would do through the API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from ..tasks import cancel
from .servers import Servers, ServerState
from .store import now

__all__ = ["IdleCuller"]

log = logging.getLogger("nbserver.hub")


class IdleCuller:
    """Stops idle servers; a service of the hub (``startup``/``shutdown``)."""

    def __init__(
        self, servers: Servers, *, timeout: float, interval: float, clock: Callable[[], datetime] = now
    ) -> None:
        self.servers = servers
        self.timeout = timeout
        self.interval = interval
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def idle(self) -> list[str]:
        """The users whose ready servers are idle past the timeout."""
        horizon = self._clock() - timedelta(seconds=self.timeout)
        return [
            server.user
            for server in self.servers.all()
            if server.state is ServerState.RUNNING and (server.last_activity or server.started) < horizon
        ]

    async def cull(self) -> list[str]:
        """Stop every idle server now; the users whose servers were stopped."""
        culled = self.idle()
        for user in culled:
            server = self.servers.get(user)
            moment = server.last_activity if server is not None else None
            log.info(
                "Culling %s's server: idle since %s", user, moment.isoformat() if moment else "its start"
            )
            await self.servers.stop(user)
        return culled

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.cull()
            except Exception:  # keep culling whatever happens
                log.exception("Culling idle servers failed")

    async def startup(self) -> None:
        log.info("Culling servers idle for more than %g s (checked every %g s)", self.timeout, self.interval)
        self._task = asyncio.ensure_future(self._run())

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        await cancel(task)
