"""``POST /api/events`` (a client emits an event) and ``/api/events/subscribe`` (the stream).

POST takes jupyter_server's body ``{"schema_id", "version", "data", "timestamp"?}`` and answers
204; any problem is a 400: a missing or ill-typed key (``"bad model"``), an unregistered schema
(``"no such schema"``) or version (``"bad version"``), data the schema refuses (``"bad event"``),
a timestamp that is not an ISO 8601 date-time with a UTC offset (``"bad timestamp"``;
jupyter_server's own form ``2022-05-26T13:50:00+05:00Z`` is accepted too).

The websocket sends one text frame per event, ``{"schema_id": <id>, **record}`` (jupyter_server's
frame, ``{"schema_id", **data}``, plus the record's ``__timestamp__``, ``__schema__``,
``__schema_version__`` and ``__metadata_version__``), in emission order. What the client sends
is ignored. A client that falls :data:`~.bus.DEFAULT_LIMIT` events behind (it does not read)
is closed with 1013 ("try again later"): see :mod:`.bus`. Authentication, the Origin rule for
cookie upgrades and keep-alive are those of every nbserver websocket
(:class:`~nbserver.websocket.AuthenticatedWebSocket`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import datetime, timezone
from typing import Any

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

from ...context import ServerContext
from ...errors import BadRequest
from ...routing import Route
from ...web import Access, APIHandler
from ...websocket import AuthenticatedWebSocket
from .bus import EventBus, Subscription

__all__ = [
    "OVERFLOW_CLOSE_CODE",
    "EventsHandler",
    "EventsWebSocket",
    "parse_emission",
    "parse_timestamp",
    "routes",
]

log = logging.getLogger("nbserver.app")

OVERFLOW_CLOSE_CODE = 1013  # RFC 6455 registry: "Try Again Later"
_OFFSET_THEN_Z = re.compile(r"([+-]\d\d:?\d\d(?::?\d\d(?:\.\d+)?)?)Z$")  # jupyter_server's "...+05:00Z"


def parse_timestamp(value: Any) -> datetime:
    """An event's ``timestamp`` (an ISO 8601 date-time with a UTC offset: ``Z``, ``+05:00``, or
    jupyter_server's ``+05:00Z``), in UTC. BadRequest ``"bad timestamp"`` for anything else,
    and for a moment that is not between the years 1 and 9999 in UTC."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(_OFFSET_THEN_Z.sub(r"\1", value))
            if moment.utcoffset() is not None:
                return moment.astimezone(timezone.utc)  # OverflowError past year 1 or 9999 in UTC
        except (ValueError, OverflowError):
            pass
    raise BadRequest(
        f"timestamp must be an ISO 8601 date-time with a UTC offset (2022-05-26T13:50:00+05:00), "
        f"not {value!r}",
        reason="bad timestamp",
    )


def parse_emission(body: Any, bus: EventBus) -> tuple[str, dict[str, Any], datetime | None]:
    """``(schema_id, data, timestamp)`` of a ``POST /api/events`` body, its schema and version
    checked against ``bus`` (the data is checked when emitted). BadRequest: see the module
    docstring."""
    if not isinstance(body, dict):
        raise BadRequest('The body must be {"schema_id", "version", "data"}', reason="bad model")
    missing = [key for key in ("schema_id", "version", "data") if key not in body]
    if missing:
        raise BadRequest(f"Missing {', '.join(missing)} in the body", reason="bad model")
    schema_id, version, data = body["schema_id"], body["version"], body["data"]
    if not isinstance(schema_id, str) or not isinstance(data, dict):
        raise BadRequest("schema_id must be a string and data an object", reason="bad model")
    if isinstance(version, bool) or not isinstance(version, (str, int, float)):
        raise BadRequest("version must be a string or a number", reason="bad model")
    if isinstance(version, float) and version.is_integer():
        version = int(version)  # 1.0 is the number 1 (JSON does not tell them apart)
    timestamp = parse_timestamp(body["timestamp"]) if "timestamp" in body else None
    registered = bus.schema(schema_id).version
    if str(version) != registered:
        raise BadRequest(
            f"Unregistered version {str(version)!r} of {schema_id} (registered: {registered!r})",
            reason="bad version",
        )
    return schema_id, data, timestamp


class EventsHandler(APIHandler):
    access = Access.USER

    def initialize(self, ctx: ServerContext, bus: EventBus) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.bus = bus

    def post(self) -> None:
        """Emit the body's event (204)."""
        schema_id, data, timestamp = parse_emission(self.json_body(), self.bus)
        self.bus.emit(schema_id, data, timestamp=timestamp)
        self.set_status(204)
        self.finish()


class EventsWebSocket(AuthenticatedWebSocket):
    access = Access.USER

    def initialize(self, ctx: ServerContext, bus: EventBus) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.bus = bus
        self.subscription: Subscription | None = None
        self._pump: asyncio.Task[None] | None = None

    def get_compression_options(self) -> None:
        return None

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        loop = asyncio.get_running_loop()

        def overflowed() -> None:  # called by an emitter: the close is done after it
            loop.call_soon(self._overflowed)

        self.subscription = self.bus.subscribe(on_overflow=overflowed)
        self._pump = asyncio.ensure_future(self._send_events(self.subscription))

    async def _send_events(self, subscription: Subscription) -> None:
        """Write each record once the previous one reached the socket: a client that does not
        read leaves records queued in its subscription, which overflows (bounded)."""
        try:
            async for record in subscription:
                frame = json.dumps({"schema_id": record["__schema__"], **record})
                await self.write_frame(frame.encode("utf-8"), binary=False)
        except (WebSocketClosedError, StreamClosedError):
            return

    def _overflowed(self) -> None:
        """The client fell too far behind (its pump may be stuck on a write it does not read):
        close now; tornado drops the connection if the close handshake does not complete."""
        assert self.subscription is not None
        log.warning(
            "Closing the events websocket from %s: it fell %d events behind",
            self.request.remote_ip,
            self.subscription.limit,
        )
        self.close(OVERFLOW_CLOSE_CODE, "too slow: events were dropped")

    def on_message(self, message: str | bytes) -> None:
        """Clients have nothing to say on this socket (as jupyter_server): ignored."""

    def on_close(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()


def routes(ctx: ServerContext, bus: EventBus) -> list[Route]:
    kw = {"ctx": ctx, "bus": bus}
    return [Route("/api/events", EventsHandler, kw), Route("/api/events/subscribe", EventsWebSocket, kw)]
