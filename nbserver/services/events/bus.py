"""The event bus of one server: validated records, fanned out without ever waiting.

Theory of operation. Schemas are JSON schemas (draft 7, as jupyter_events) with an ``$id`` and
a string ``version``, registered once by id. :meth:`EventBus.emit` validates the data against
its schema and makes a record in jupyter_events' shape::

    {"__timestamp__": "2026-12-07T16:15:55.895503Z", "__schema__": <id>,
     "__schema_version__": "1", "__metadata_version__": 1, **data}

then offers it to every subscription, in subscription order, and returns: emitting is
synchronous, costs one validation and one append per subscriber, and never awaits, so a manager
emits from any coroutine without being slowed by who listens.

Each :class:`Subscription` has its own bounded queue (``limit`` records). Its consumer takes
records in emission order at its own pace; one that falls ``limit`` records behind has
**overflowed**: its queued records are dropped, it is ended (``end_reason == "overflow"``) and
gets nothing more. Nothing is ever dropped silently from a live subscription, so a consumer
that sees its subscription end knows it missed events (the events websocket then closes with
1013, "try again later"), and a consumer that never reads holds at most ``limit`` records.
Emitters and the other subscribers never notice.

The bus is used from one event loop thread (``emit`` from the thread the loop runs in).
"""

from __future__ import annotations

import asyncio
import importlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from ...errors import BadRequest, ConfigError
from .schemas import CORE_SCHEMAS

__all__ = [
    "DEFAULT_LIMIT",
    "METADATA_VERSION",
    "RESERVED_KEYS",
    "EventBus",
    "EventSchema",
    "EventSink",
    "Subscription",
    "default_bus",
]

METADATA_VERSION = 1  # jupyter_events' EVENTS_METADATA_VERSION
DEFAULT_LIMIT = 1000  # records a subscription may fall behind before it overflows
#: keys a record's metadata or the websocket frame use: data may not carry them
RESERVED_KEYS = frozenset(
    {"schema_id", "__timestamp__", "__schema__", "__schema_version__", "__metadata_version__"}
)

Record = dict[str, Any]


class EventSink(Protocol):
    """What a manager emits to (an :class:`EventBus`, or anything with the same ``emit``)."""

    def emit(
        self, schema_id: str, data: Mapping[str, Any], *, timestamp: datetime | None = None
    ) -> Record: ...


def _compile(schema: Mapping[str, Any]) -> Callable[[Any], Any]:
    """A draft 7 validator of ``schema`` (fastjsonschema, as notebooks are validated: jsonschema's
    import can take seconds, as it parses a grammar at import where rfc3987-syntax is installed).

    Raises:
        ConfigError: ``schema`` is not a valid JSON schema.
    """
    fastjsonschema = importlib.import_module("fastjsonschema")
    try:
        validate: Callable[[Any], Any] = fastjsonschema.compile(dict(schema))
    except fastjsonschema.JsonSchemaDefinitionException as exc:
        raise ConfigError(f"event schema {schema.get('$id')} is not a valid JSON schema: {exc}") from exc
    return validate


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class EventSchema:
    """A registered schema: its ``$id``, ``version`` (a string) and the schema itself. The
    validator is compiled on first use (not when a server starts)."""

    id: str
    version: str
    schema: Mapping[str, Any]
    _validator: Callable[[Any], Any] | None = field(default=None, repr=False)

    def problem(self, data: Mapping[str, Any]) -> str | None:
        """Why ``data`` does not match the schema (the first error found), or None."""
        if self._validator is None:
            self._validator = _compile(self.schema)
        try:
            self._validator(data)
        except importlib.import_module("fastjsonschema").JsonSchemaValueException as exc:
            return str(exc.message)
        return None


class Subscription:
    """One consumer's view of the bus: the records emitted since it subscribed, in order.

    Iterate it (``async for record in subscription``) or call :meth:`next`; both end when the
    subscription ends: :meth:`close` by its consumer, or overflow (see the module docstring).
    ``end_reason`` is then ``"closed"`` or ``"overflow"``. ``on_overflow`` is called (once, from
    the emitter's call: keep it short, schedule anything more) when it overflows, so that a
    consumer busy elsewhere (a write that the peer never reads) learns it at once.
    """

    def __init__(self, bus: EventBus, limit: int, on_overflow: Callable[[], None] | None = None) -> None:
        if limit < 1:
            raise ValueError("a subscription's limit is at least 1")
        self.limit = limit
        self.end_reason: str | None = None
        self._on_overflow = on_overflow
        self._bus = bus
        self._queue: deque[Record] = deque()
        self._ready = asyncio.Event()

    @property
    def queued(self) -> int:
        """Records waiting for the consumer."""
        return len(self._queue)

    def offer(self, record: Record) -> None:
        """Queue ``record`` (the bus calls this); past ``limit`` queued, the subscription overflows."""
        if self.end_reason is not None:
            return
        if len(self._queue) >= self.limit:
            self._end("overflow")
            if self._on_overflow is not None:
                self._on_overflow()
            return
        self._queue.append(record)
        self._ready.set()

    async def next(self) -> Record | None:
        """The next record, waiting for one; None once the subscription has ended."""
        while not self._queue:
            if self.end_reason is not None:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def close(self) -> None:
        """End the subscription (idempotent); queued records are dropped."""
        self._end("closed")

    def _end(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
            self._queue.clear()
            self._bus.unsubscribe(self)
        self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Record:
        record = await self.next()
        if record is None:
            raise StopAsyncIteration
        return record


class EventBus:
    """Registered schemas and live subscriptions of one server (see the module docstring).

    Args:
        schemas: registered at once (:meth:`register`).
        limit: each subscription's default queue bound, in records.
    """

    def __init__(
        self, schemas: Iterable[Mapping[str, Any]] = (), *, limit: int = DEFAULT_LIMIT, check: bool = True
    ) -> None:
        self.limit = limit
        self._schemas: dict[str, EventSchema] = {}
        self._subscriptions: list[Subscription] = []
        for schema in schemas:
            self.register(schema, check=check)

    # -- schemas ---------------------------------------------------------------------------------

    def register(self, schema: Mapping[str, Any], *, check: bool = True) -> EventSchema:
        """Register ``schema`` under its ``$id``; ``check=False`` leaves compiling it (and finding
        it invalid) to its first event (the core schemas: a test compiles them).

        Raises:
            ConfigError: no string ``$id``, no ``version`` (string or integer), an id already
                registered, or not a valid draft 7 schema of an object.
        """
        schema_id, version = schema.get("$id"), schema.get("version")
        if not isinstance(schema_id, str) or not schema_id:
            raise ConfigError("an event schema needs a string $id")
        if not isinstance(version, (str, int)) or isinstance(version, bool):
            raise ConfigError(f"event schema {schema_id} needs a version (a string)")
        if schema_id in self._schemas:
            raise ConfigError(f"event schema {schema_id} is already registered")
        if schema.get("type") != "object":
            raise ConfigError(f"event schema {schema_id} must describe an object")
        validate = _compile(schema) if check else None
        registered = self._schemas[schema_id] = EventSchema(schema_id, str(version), schema, validate)
        return registered

    def schema(self, schema_id: str) -> EventSchema:
        """The registered schema; BadRequest (``"no such schema"``) for an unknown id."""
        found = self._schemas.get(schema_id)
        if found is None:
            raise BadRequest(f"No event schema {schema_id!r} is registered", reason="no such schema")
        return found

    @property
    def schema_ids(self) -> list[str]:
        return list(self._schemas)

    # -- emitting ----------------------------------------------------------------------------------

    def emit(self, schema_id: str, data: Mapping[str, Any], *, timestamp: datetime | None = None) -> Record:
        """Validate ``data``, make its record and offer it to every subscription; returns the record.

        ``timestamp`` (timezone-aware; default now) becomes ``__timestamp__``, in UTC.

        Raises:
            BadRequest: ``"no such schema"``; ``"bad event"`` when ``data`` is not an object,
                uses a reserved key (:data:`RESERVED_KEYS`) or does not match the schema.
            ValueError: a naive ``timestamp`` (a caller's bug).
        """
        schema = self.schema(schema_id)
        if not isinstance(data, Mapping):
            raise BadRequest(f"Event data must be an object, not {type(data).__name__}", reason="bad event")
        reserved = RESERVED_KEYS.intersection(data)
        if reserved:
            raise BadRequest(
                f"Event data may not use the reserved keys {sorted(reserved)}", reason="bad event"
            )
        problem = schema.problem(data)
        if problem is not None:
            raise BadRequest(f"Invalid {schema_id} event: {problem}", reason="bad event")
        if timestamp is not None and timestamp.utcoffset() is None:
            raise ValueError("an event timestamp must be timezone-aware")
        record: Record = {
            "__timestamp__": _utc_iso(timestamp or datetime.now(timezone.utc)),
            "__schema__": schema_id,
            "__schema_version__": schema.version,
            "__metadata_version__": METADATA_VERSION,
            **data,
        }
        for subscription in tuple(self._subscriptions):  # an overflow unsubscribes during the loop
            subscription.offer(record)
        return record

    # -- subscribing -------------------------------------------------------------------------------

    def subscribe(
        self, limit: int | None = None, on_overflow: Callable[[], None] | None = None
    ) -> Subscription:
        """A new subscription receiving every record emitted from now on (queue bound ``limit``,
        default the bus's; ``on_overflow``: see :class:`Subscription`)."""
        subscription = Subscription(self, self.limit if limit is None else limit, on_overflow)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop offering records to ``subscription`` (idempotent; :meth:`Subscription.close`
        calls this)."""
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    @property
    def subscribers(self) -> int:
        """Live subscriptions."""
        return len(self._subscriptions)


def default_bus() -> EventBus:
    """A bus with jupyter_server's core schemas registered (contents and kernel actions)."""
    return EventBus(CORE_SCHEMAS, check=False)  # compiled at their first event, not at start-up
