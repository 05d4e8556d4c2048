"""What every handler of one server shares: its configuration, its identity provider, its activity.

One :class:`ServerContext` per server (the hub runs several in one process), handed to each
handler through ``initialize``; there are no module-level singletons.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .auth.identity import IdentityProvider
from .config import ServerConfig
from .services.events.bus import EventBus, default_bus

__all__ = ["Activity", "ServerContext", "isoformat"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def isoformat(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as jupyter_server writes dates (``2026-11-21T22:19:06.123456Z``)."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class Activity:
    """Start time, last user activity, and the gauges ``/api/status`` reports.

    Services register gauges (``"kernels"``, ``"connections"``) as callables so the numbers are
    read when asked for, never copied.
    """

    started: datetime = field(default_factory=_now)
    last_activity: datetime = field(default_factory=_now)
    gauges: dict[str, Callable[[], int]] = field(default_factory=dict)

    def touch(self) -> None:
        self.last_activity = _now()

    def gauge(self, name: str) -> int:
        read = self.gauges.get(name)
        return read() if read is not None else 0


@dataclass
class ServerContext:
    """Shared state of one server. ``auth`` decides who a request is (the local
    :class:`~nbserver.auth.identity.Authenticator`, or the Hub's under ``--hub``);
    ``cookie_name`` names its login cookie; ``headers`` go on every response (a mapping the
    identity provider may update, such as ``X-JupyterHub-Version``); ``events`` is the server's
    event bus (jupyter_server's core schemas registered), which its managers emit to."""

    config: ServerConfig
    auth: IdentityProvider
    cookie_name: str
    headers: dict[str, str] = field(default_factory=dict)
    activity: Activity = field(default_factory=Activity)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("nbserver.app"))
    request_shutdown: Callable[[], None] | None = None
    #: the managers this server mounted, by service name, in registration order; each may have
    #: ``async startup()`` (run before serving) and ``async shutdown()`` (run in this order)
    services: dict[str, Any] = field(default_factory=dict)
    events: EventBus = field(default_factory=default_bus)
