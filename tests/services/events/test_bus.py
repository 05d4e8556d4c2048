"""The event bus without a server: validation, record shape, order, and the bounded queues.

Bad inputs tried: an unregistered schema id, data the schema refuses (an unknown action, a
missing key, a wrong type, a failed kernel action without its kernel id), data that is not an
object, reserved keys in the data, a naive timestamp; schemas without ``$id`` or ``version``,
registered twice, not describing an object, or not valid JSON schemas; timestamps without an
offset, out of range in UTC, not strings.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbserver.errors import BadRequest, ConfigError, NBServerError
from nbserver.services.events.bus import RESERVED_KEYS, EventBus, Subscription, default_bus
from nbserver.services.events.handlers import parse_timestamp
from nbserver.services.events.schemas import CORE_SCHEMAS, kernel_action
from tests.services.events.schema_check import CONTENTS, KERNEL_ACTIONS, check_data, upstream_schema

ACTIONS = ["get", "create", "save", "upload", "rename", "copy", "delete"]
contents_events = st.fixed_dictionaries(
    {"action": st.sampled_from(ACTIONS), "path": st.text(max_size=20)},
    optional={"source_path": st.text(max_size=20)},
)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def take_now(subscription: Subscription) -> dict[str, Any] | None:
    """``subscription.next()`` when it need not wait (a record is queued, or it has ended),
    without an event loop."""
    step = subscription.next()
    try:
        step.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    step.close()
    raise AssertionError("next() would wait")


def drain(subscription: Subscription) -> list[dict[str, Any]]:
    """Every record queued now (the subscription is then closed)."""
    records = []
    while subscription.queued:
        record = take_now(subscription)
        assert record is not None
        records.append(record)
    subscription.close()
    return records


def test_core_schemas_are_jupyter_servers() -> None:
    """Same ids, versions, required keys, properties and value sets as jupyter_server 2.21's files."""
    for ours in CORE_SCHEMAS:
        theirs = upstream_schema(ours["$id"])
        assert ours["version"] == theirs["version"]
        assert ours["required"] == theirs["required"]
        assert ours.keys() - {"description"} == theirs.keys() - {"description"}
        for name, prop in theirs["properties"].items():
            assert {k: v for k, v in ours["properties"][name].items() if k != "description"} == {
                k: v for k, v in prop.items() if k != "description"
            }
        assert ours.get("if") == theirs.get("if") and ours.get("then") == theirs.get("then")


def test_core_schemas_compile_and_are_not_compiled_at_start_up() -> None:
    """The default bus leaves compiling its schemas to their first event (a server's start-up
    does not pay for it); each of them compiles, and a bad one would have been a ConfigError."""
    bus = default_bus()
    for schema in CORE_SCHEMAS:
        assert bus.schema(schema["$id"])._validator is None
        EventBus([schema])  # compiles (check=True): raises ConfigError if it were invalid


@settings(deadline=None)  # pure, but a loaded 2-core machine is slow: no timing limit
@given(events=st.lists(contents_events, max_size=30), readers=st.integers(1, 4))
def test_every_subscriber_gets_every_record_in_emission_order(
    events: list[dict[str, Any]], readers: int
) -> None:
    bus = default_bus()
    subscriptions = [bus.subscribe(limit=len(events) + 1) for _ in range(readers)]
    records = [bus.emit(CONTENTS, event) for event in events]
    for subscription in subscriptions:
        assert drain(subscription) == records
    for event, record in zip(events, records, strict=True):
        assert {k: v for k, v in record.items() if not k.startswith("__")} == event
        assert record["__schema__"] == CONTENTS and record["__schema_version__"] == "1"
        assert record["__metadata_version__"] == 1
    assert bus.subscribers == 0


@settings(deadline=None)  # pure, but a loaded 2-core machine is slow: no timing limit
@given(limit=st.integers(1, 20), extra=st.integers(1, 10))
def test_a_subscriber_that_falls_limit_behind_overflows_alone(limit: int, extra: int) -> None:
    """The slow one ends (``"overflow"``, its callback once, its queue dropped); the emitter is
    not stopped and a reading subscriber gets everything."""
    bus = default_bus()
    calls: list[str] = []
    slow = bus.subscribe(limit=limit, on_overflow=lambda: calls.append("overflow"))
    fast = bus.subscribe(limit=1)
    got = []
    for i in range(limit + extra):
        bus.emit(CONTENTS, {"action": "save", "path": str(i)})
        got += drain_one(fast)
        assert slow.end_reason == (None if i < limit else "overflow")
    assert calls == ["overflow"] and slow.queued == 0 and bus.subscribers == 1
    assert take_now(slow) is None
    assert [r["path"] for r in got] == [str(i) for i in range(limit + extra)]


def drain_one(subscription: Subscription) -> list[dict[str, Any]]:
    return [record] if subscription.queued and (record := take_now(subscription)) else []


def test_a_waiting_consumer_wakes_on_emit_and_on_close() -> None:
    async def scenario() -> None:
        bus = default_bus()
        subscription = bus.subscribe()
        waiting = asyncio.ensure_future(subscription.next())
        await asyncio.sleep(0)
        bus.emit(CONTENTS, {"action": "delete", "path": "a"})
        assert (await asyncio.wait_for(waiting, 10))["path"] == "a"
        waiting = asyncio.ensure_future(subscription.next())
        await asyncio.sleep(0)
        subscription.close()
        subscription.close()  # idempotent
        assert await asyncio.wait_for(waiting, 10) is None
        assert subscription.end_reason == "closed" and bus.subscribers == 0
        bus.emit(CONTENTS, {"action": "delete", "path": "b"})  # nobody listens: fine
        assert [r async for r in subscription] == []

    run(scenario())


@pytest.mark.parametrize(
    ("schema_id", "data", "reason"),
    [
        ("https://example.org/nope/v1", {"action": "save", "path": "a"}, "no such schema"),
        (CONTENTS, {"action": "bad", "path": "a"}, "bad event"),
        (CONTENTS, {"action": "save"}, "bad event"),
        (CONTENTS, {"action": "save", "path": 3}, "bad event"),
        (CONTENTS, ["save", "a"], "bad event"),
        (CONTENTS, {"action": "save", "path": "a", "schema_id": "x"}, "bad event"),
        (CONTENTS, {"action": "save", "path": "a", "__timestamp__": "x"}, "bad event"),
        (KERNEL_ACTIONS, {"action": "restart", "status": "success", "msg": "no kernel id"}, "bad event"),
        (KERNEL_ACTIONS, {"action": "start", "status": "success", "msg": "no kernel id"}, "bad event"),
    ],
)
def test_bad_events_are_refused_and_reach_nobody(schema_id: str, data: Any, reason: str) -> None:
    bus = default_bus()
    subscription = bus.subscribe()
    with pytest.raises(BadRequest) as caught:
        bus.emit(schema_id, data)
    assert caught.value.reason == reason
    assert subscription.queued == 0


def test_reserved_keys_are_the_frame_and_metadata_keys() -> None:
    assert {
        "schema_id",
        "__timestamp__",
        "__schema__",
        "__schema_version__",
        "__metadata_version__",
    } == RESERVED_KEYS


def test_a_failed_start_needs_no_kernel_id() -> None:
    bus = default_bus()
    record = bus.emit(KERNEL_ACTIONS, {"action": "start", "status": "error", "msg": "no such kernelspec"})
    assert "kernel_id" not in record


@settings(deadline=None)  # pure, but a loaded 2-core machine is slow: no timing limit
@given(
    moment=st.datetimes(timezones=st.timezones(), min_value=datetime(2, 1, 1), max_value=datetime(9998, 1, 1))
)
def test_timestamps_become_utc_with_a_z(moment: datetime) -> None:
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=timezone.utc)
    record = default_bus().emit(CONTENTS, {"action": "get", "path": ""}, timestamp=moment)
    stamp = record["__timestamp__"]
    assert stamp.endswith("Z") and datetime.fromisoformat(stamp) == moment


def test_a_naive_timestamp_is_a_callers_bug() -> None:
    with pytest.raises(ValueError):
        default_bus().emit(CONTENTS, {"action": "get", "path": ""}, timestamp=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "schema",
    [
        {"version": "1", "type": "object"},  # no $id
        {"$id": "x", "type": "object"},  # no version
        {"$id": "x", "version": True, "type": "object"},
        {"$id": "x", "version": "1", "type": "array"},  # not an object
        {"$id": "x", "version": "1", "type": "object", "properties": {"a": {"type": 5}}},  # invalid
        CORE_SCHEMAS[0],  # already registered
    ],
)
def test_bad_schemas_are_refused_at_registration(schema: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        default_bus().register(schema)


def test_an_extra_schema_with_an_integer_version() -> None:
    bus = EventBus()
    bus.register({"$id": "https://example.org/mine/v2", "version": 2, "type": "object"})
    assert bus.emit("https://example.org/mine/v2", {"free": "form"})["__schema_version__"] == "2"
    assert bus.schema_ids == ["https://example.org/mine/v2"]


@settings(deadline=None)  # pure, but a loaded 2-core machine is slow: no timing limit
@given(
    action=st.sampled_from(["start", "interrupt", "restart", "shutdown"]),
    kernel_id=st.none() | st.uuids().map(str),
    name=st.none() | st.text(min_size=1, max_size=10),
    error=st.none()
    | st.builds(NBServerError, st.text(max_size=10), status=st.sampled_from([400, 404, 409, 500]))
    | st.builds(RuntimeError, st.text(max_size=10)),
)
def test_kernel_action_data_is_valid_for_jupyter_servers_schema(
    action: str, kernel_id: str | None, name: str | None, error: Exception | None
) -> None:
    """Whenever the schema's rule holds (a kernel id, unless a failed start), the data is
    valid for jupyter_server's schema and says success or error, with a status code."""
    if kernel_id is None and not (action == "start" and error is not None):
        return
    data = kernel_action(action, kernel_id, name, error)
    check_data(KERNEL_ACTIONS, data)
    default_bus().emit(KERNEL_ACTIONS, data)
    assert data["status"] == ("success" if error is None else "error")
    assert ("status_code" in data) == (error is not None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-05-26T13:50:00+05:00Z", datetime(2022, 5, 26, 8, 50, tzinfo=timezone.utc)),  # jupyter_server's
        ("2022-05-26T13:50:00+05:00", datetime(2022, 5, 26, 8, 50, tzinfo=timezone.utc)),
        ("2022-05-26T13:50:00Z", datetime(2022, 5, 26, 13, 50, tzinfo=timezone.utc)),
        ("2022-05-26T13:50:00.5-01:00", datetime(2022, 5, 26, 14, 50, 0, 500000, tzinfo=timezone.utc)),
    ],
)
def test_timestamps_parsed(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "value",
    [
        "2022-05-26",
        "2022-05-26T13:50:00",
        "yesterday",
        "",
        1653573000,
        None,
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_bad_timestamps_are_400(value: Any) -> None:
    """No offset (naive), not a date, not a string, out of range once in UTC (was an OverflowError)."""
    with pytest.raises(BadRequest) as caught:
        parse_timestamp(value)
    assert caught.value.reason == "bad timestamp"


@settings(deadline=None)  # pure, but a loaded 2-core machine is slow: no timing limit
@given(st.datetimes(timezones=st.timezones(), min_value=datetime(2, 1, 1), max_value=datetime(9998, 1, 1)))
def test_any_aware_iso_timestamp_parses(moment: datetime) -> None:
    if moment.utcoffset() is None:
        return
    assert parse_timestamp(moment.isoformat()) == moment
    assert parse_timestamp(moment.isoformat() + ("" if moment.isoformat().endswith("Z") else "Z")) == moment
    assert parse_timestamp(moment.isoformat()).tzinfo == timezone.utc
    assert parse_timestamp(moment.isoformat()) - moment == timedelta(0)
