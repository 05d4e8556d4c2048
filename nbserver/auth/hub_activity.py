"""Tell the Hub when this server was last used, so that its idle culler sees the truth.

Every ``interval`` seconds (with 20% jitter, so that a thousand servers do not post at the same
moment) the server's last activity (:class:`~nbserver.context.Activity`: authenticated requests,
kernel traffic, which websocket messages cause) is posted to ``JUPYTERHUB_ACTIVITY_URL`` as
``{"servers": {<name>: {"last_activity": <ISO 8601>}}, "last_activity": <ISO 8601>}``, unless it
has not moved since the last post that the Hub took. A Hub that cannot be reached is asked again
after 1, 2, 4... seconds (never longer than the interval); a refusal (4xx) is logged and tried
again at the next interval. Nothing here ever stops the server.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..context import Activity, isoformat
from ..tasks import cancel
from .hub_client import HubClient, HubUnavailable

__all__ = ["HubActivityReporter"]

log = logging.getLogger("nbserver.hub")


class HubActivityReporter:
    """Posts ``activity.last_activity`` to the Hub; a service of the server (``startup`` starts
    the loop, ``shutdown`` stops it).

    Args:
        activity: the server's activity record.
        client: the Hub API client (its token needs ``users:activity``, as the Hub grants).
        url: ``JUPYTERHUB_ACTIVITY_URL``.
        server_name: ``JUPYTERHUB_SERVER_NAME`` (``""``: the default server).
        interval: seconds between posts (> 0).
        jitter: the fraction of ``interval`` by which each wait may vary, either way.
    """

    def __init__(
        self,
        activity: Activity,
        client: HubClient,
        *,
        url: str,
        server_name: str,
        interval: float,
        jitter: float = 0.2,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        self.activity = activity
        self.client = client
        self.url = url
        self.server_name = server_name
        self.interval = interval
        self.jitter = jitter
        self._random = random_fraction
        self._task: asyncio.Task[None] | None = None
        #: the last activity the Hub accepted
        self.sent: datetime | None = None

    def body(self, moment: datetime) -> dict[str, Any]:
        stamp = isoformat(moment)
        return {"servers": {self.server_name: {"last_activity": stamp}}, "last_activity": stamp}

    async def report(self) -> bool:
        """Post the last activity if it moved since the Hub last took it. True when nothing
        needs sending any more (sent, or nothing new); False when the Hub refused it (4xx).

        Raises:
            HubUnavailable: the Hub could not be asked; try again soon.
        """
        moment = self.activity.last_activity
        if self.sent is not None and moment <= self.sent:
            return True
        status = await self.client.post_activity(self.url, self.body(moment))
        if status >= 400:
            log.error("The Hub refused this server's activity (%s): HTTP %d", self.url, status)
            return False
        log.debug("Told the Hub: last activity %s", isoformat(moment))
        self.sent = moment
        return True

    def next_wait(self, failures: int) -> float:
        """Seconds until the next post: the interval (with jitter), or after ``failures``
        failed attempts in a row, 1, 2, 4... seconds, never more than the interval."""
        if failures:
            return float(min(2 ** (failures - 1), self.interval))
        return self.interval * (1 + self.jitter * (2 * self._random() - 1))

    async def run(self) -> None:
        """Report until cancelled; errors are logged, never raised."""
        failures = 0
        while True:
            try:
                await self.report()
            except HubUnavailable as exc:
                failures += 1
                log.warning(
                    "Could not tell the Hub this server's activity (attempt %d): %s", failures, exc.message
                )
            except Exception:  # never let a surprise end the reports
                failures += 1
                log.exception("Could not tell the Hub this server's activity")
            else:
                if failures:
                    log.info("Told the Hub this server's activity after %d failed attempts", failures)
                failures = 0
            await asyncio.sleep(self.next_wait(failures))

    async def startup(self) -> None:
        log.info("Telling the Hub this server's activity every %g s", self.interval)
        self._task = asyncio.ensure_future(self.run())

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        await cancel(task)
