"""Properties of the two websocket codecs: any bytes or text in gives a message or a clean
ProtocolError, never another exception (the handler turns a stray exception into an aborted
connection); what decodes is exactly what was framed.

Inputs tried (hypothesis, bounded example counts): arbitrary bytes and text (lone surrogates
included); frames built with a well-formed offset table or with arbitrary counts and offsets;
valid frames with bytes flipped, cut or added; JSON messages whose fields have every JSON type;
JSON nested from 1 level to past Python's recursion limit. Found: a legacy message nested just
under the recursion limit parsed, then raised RecursionError when re-encoded (the standard
library's encoder needs a few frames more than its parser): now a ProtocolError.
"""

from __future__ import annotations

import json
import struct
import sys
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbserver.protocol import ProtocolError, legacy, v1

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

any_text = st.text(st.characters(codec=None), max_size=300)  # surrogates included
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec=None), max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)
headers = st.fixed_dictionaries(
    {"msg_id": st.text(max_size=12), "msg_type": st.text(max_size=12)},
    optional={"session": st.text(max_size=12), "date": st.text(max_size=30), "x": json_values},
)
objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
flat_objects = st.dictionaries(st.text(max_size=8), json_scalars, max_size=4)
channels = st.one_of(st.sampled_from(["shell", "iopub", "stdin", "control"]), st.text(max_size=10))
buffer_lists = st.lists(st.binary(max_size=64), max_size=4)


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def check_legacy(frame: bytes | str) -> None:
    """decode gives a clean error, or a channel (str or None) and four JSON-object parts (the
    header with msg_id and msg_type) and the binary frame's buffers."""
    try:
        channel, parts = legacy.decode(frame)
    except ProtocolError:
        return
    assert channel is None or isinstance(channel, str)
    assert len(parts) >= 4 and all(isinstance(p, bytes) for p in parts)
    decoded = [json.loads(p) for p in parts[:4]]
    assert all(isinstance(d, dict) for d in decoded)
    assert "msg_id" in decoded[0] and "msg_type" in decoded[0]
    if isinstance(frame, str):
        assert len(parts) == 4


def check_v1(frame: bytes) -> None:
    """decode gives a clean error, or a message that frames back to exactly ``frame``: only
    canonical frames are accepted, so nothing is mis-sliced."""
    try:
        channel, parts = v1.decode(frame)
    except ProtocolError:
        return
    assert len(parts) >= 4
    assert v1.encode(channel, parts) == frame


# -- any input: a message or a ProtocolError -----------------------------------------------------


@FAST
@given(st.binary(max_size=400))
def test_any_bytes(frame: bytes) -> None:
    check_v1(frame)
    check_legacy(frame)


@FAST
@given(any_text)
def test_any_text_into_legacy(frame: str) -> None:
    check_legacy(frame)


@FAST
@given(
    st.integers(min_value=0, max_value=12),
    st.lists(st.integers(min_value=0, max_value=200), max_size=12),
    st.binary(max_size=120),
)
def test_v1_arbitrary_offset_tables(count: int, offsets: list[int], body: bytes) -> None:
    """Counts and offsets anywhere near the frame's real size: too few, backwards, past the end."""
    check_v1(struct.pack(f"<Q{len(offsets)}Q", count, *offsets) + body)


@FAST
@given(
    st.integers(min_value=0, max_value=8),
    st.lists(st.integers(min_value=0, max_value=200), max_size=8),
    st.binary(max_size=120),
)
def test_legacy_arbitrary_offset_tables(count: int, offsets: list[int], body: bytes) -> None:
    check_legacy(struct.pack(f">I{len(offsets)}I", count, *offsets) + body)


@st.composite
def mutated(draw: st.DrawFn, frame: bytes) -> bytes:
    """``frame`` with some bytes replaced, a cut, or bytes added."""
    data = bytearray(frame)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        if data:
            data[draw(st.integers(min_value=0, max_value=len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(min_value=0, max_value=len(data)))
    tail = draw(st.binary(max_size=8))
    return bytes(data[:cut] + tail) if draw(st.booleans()) else bytes(data)


@st.composite
def v1_mutants(draw: st.DrawFn) -> bytes:
    parts = [compact(draw(headers)), b"{}", b"{}", compact(draw(flat_objects)), *draw(buffer_lists)]
    return draw(mutated(v1.encode(draw(channels), parts)))


@st.composite
def legacy_mutants(draw: st.DrawFn) -> bytes | str:
    parts = [compact(draw(headers)), b"{}", b"{}", compact(draw(flat_objects)), *draw(buffer_lists)]
    payload, binary = legacy.encode(draw(channels), parts)
    frame = draw(mutated(payload))
    if binary:
        return frame
    return frame.decode("utf-8", "replace")


@SLOW
@given(v1_mutants())
def test_v1_damaged_frames(frame: bytes) -> None:
    check_v1(frame)


@SLOW
@given(legacy_mutants())
def test_legacy_damaged_frames(frame: bytes | str) -> None:
    check_legacy(frame)


@SLOW
@given(
    st.dictionaries(
        st.sampled_from(["header", "parent_header", "metadata", "content", "channel", "buffers", "x"]),
        st.one_of(json_values, headers),
    )
)
def test_legacy_messages_with_fields_of_any_type(message: dict[str, Any]) -> None:
    """Every field missing or of any JSON type (a header that is a list, content that is a
    string, a numeric channel...)."""
    check_legacy(json.dumps(message))


def test_legacy_nesting_up_to_past_the_recursion_limit() -> None:
    """Content nested 1 to limit+50 levels deep: a message, or "nested too deeply". A depth
    just under the limit parsed and then raised RecursionError while being re-encoded."""
    for depth in range(1, sys.getrecursionlimit() + 50):
        nested = "[" * depth + "]" * depth
        check_legacy('{"header": {"msg_id": "m", "msg_type": "t"}, "content": {"x": ' + nested + "}}")
        check_legacy('{"header": {"msg_id": "m", "msg_type": "t", "x": ' + nested + "}}")


# -- round trips --------------------------------------------------------------------------------


@FAST
@given(channels, st.lists(st.binary(max_size=80), min_size=4, max_size=8))
def test_v1_round_trip_any_parts(channel: str, parts: list[bytes]) -> None:
    """v1 does not look inside parts: any bytes, any channel name, travel unchanged."""
    assert v1.decode(v1.encode(channel, parts)) == (channel, parts)


@SLOW
@given(channels, headers, objects, objects, objects, buffer_lists)
def test_legacy_round_trip_any_json(
    channel: str, header: dict, parent: dict, metadata: dict, content: dict, buffers: list[bytes]
) -> None:
    """What a client frames (text without buffers, binary with) decodes to the same JSON
    values, buffers and channel: integers of any size, every finite float, lone surrogates."""
    parts = [
        json.dumps(header).encode(),
        json.dumps(parent).encode(),
        json.dumps(metadata).encode(),
        json.dumps(content).encode(),
        *buffers,
    ]
    payload, binary = legacy.encode(channel, parts)
    assert binary == bool(buffers)
    got_channel, got = legacy.decode(payload if binary else payload.decode())
    assert got_channel == channel
    assert [json.loads(p) for p in got[:4]] == [header, parent, metadata, content]
    assert got[4:] == buffers
