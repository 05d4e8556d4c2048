"""Pure tests of the websocket framings and ZMQ wire messages: round trips (hypothesis),
byte-exact agreement with jupyter_server's reference framing, and hostile frames refused.

Bad frames tried: empty, truncated tables, offset counts too small or huge, offsets that go
backwards or past the end, a first offset that overlaps the table, invalid JSON, non-object
messages and parts, a header without msg_id, a non-string channel, a non-UTF-8 channel name.
"""

from __future__ import annotations

import contextlib
import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbserver.protocol import ProtocolError, legacy, v1, wire

json_objects = st.dictionaries(
    st.text(max_size=8),
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
    max_size=5,
)
buffers = st.lists(st.binary(max_size=64), max_size=4)
channels = st.sampled_from(["shell", "iopub", "stdin", "control"])


def header(extra: dict | None = None) -> dict:
    return {"msg_id": "m1", "msg_type": "execute_request", "session": "s", **(extra or {})}


def dump(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@given(channels, json_objects, json_objects, json_objects, buffers)
def test_v1_round_trip(channel, parent, metadata, content, bufs) -> None:
    parts = [dump(header()), dump(parent), dump(metadata), dump(content), *bufs]
    assert v1.decode(v1.encode(channel, parts)) == (channel, parts)


@given(channels, json_objects, json_objects, buffers)
def test_v1_matches_jupyter_server_framing(channel, metadata, content, bufs) -> None:
    jsb = pytest.importorskip("jupyter_server.services.kernels.connection.base")
    parts = [dump(header()), dump({}), dump(metadata), dump(content), *bufs]
    assert v1.encode(channel, parts) == jsb.serialize_msg_to_ws_v1(parts, channel)


@given(channels, json_objects, json_objects, json_objects, buffers)
def test_legacy_round_trip(channel, parent, metadata, content, bufs) -> None:
    parts = [dump(header()), dump(parent), dump(metadata), dump(content), *bufs]
    payload, binary = legacy.encode(channel, parts)
    assert binary == bool(bufs)
    frame = payload if binary else payload.decode()
    decoded_channel, decoded = legacy.decode(frame)
    assert decoded_channel == channel
    assert [json.loads(p) for p in decoded[:4]] == [json.loads(p) for p in parts[:4]]
    assert decoded[4:] == bufs


@given(
    st.recursive(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(st.characters(), max_size=20),
        ),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=30,
    )
)
def test_legacy_decode_keeps_every_value(value: object) -> None:
    """A client's content comes out of decode as the same JSON value, exactly: integers of any
    size, every float, any text (lone surrogates included), nested lists and objects."""
    frame = json.dumps({"header": header(), "content": {"v": value}})
    _, parts = legacy.decode(frame)
    assert json.loads(parts[3]) == {"v": value}


@pytest.mark.parametrize(
    "value",
    [2**64, -(2**70), "\ud800 lone", "caf\u00e9 \U0001f600", 1e-7, 5e-324, 1.7976931348623157e308],
)
def test_legacy_decode_values_orjson_refuses_or_writes_differently(value: object) -> None:
    frame = json.dumps({"header": header(), "content": {"v": value}})
    _, parts = legacy.decode(frame)
    assert json.loads(parts[3]) == {"v": value}


def test_legacy_decode_deep_nesting() -> None:
    """Deeper than orjson writes (254 levels): the standard library takes over."""
    value: object = "leaf"
    for _ in range(400):
        value = [value]
    _, parts = legacy.decode(json.dumps({"header": header(), "content": {"v": value}}))
    assert json.loads(parts[3]) == {"v": value}


@given(json_objects, st.lists(st.binary(min_size=1, max_size=32), min_size=1, max_size=3))
def test_legacy_binary_matches_jupyter_server(content, bufs) -> None:
    """jupyter_server's deserializer reads our binary frames, and ours reads its frames."""
    jsb = pytest.importorskip("jupyter_server.services.kernels.connection.base")
    parts = [dump(header()), dump({}), dump({}), dump(content), *bufs]
    payload, _binary = legacy.encode("iopub", parts)
    theirs = jsb.deserialize_binary_message(payload)
    assert theirs["content"] == content and theirs["buffers"] == bufs
    assert theirs["channel"] == "iopub" and theirs["msg_type"] == "execute_request"
    msg = {
        "header": header(),
        "parent_header": {},
        "metadata": {},
        "content": content,
        "channel": "shell",
        "buffers": bufs,
    }
    channel, decoded = legacy.decode(jsb.serialize_binary_message(msg))
    assert channel == "shell" and decoded[4:] == bufs and json.loads(decoded[3]) == content


def test_legacy_text_frame_is_jupyter_json() -> None:
    parts = [dump(header()), dump({"msg_id": "p"}), dump({}), dump({"code": "1"})]
    payload, binary = legacy.encode("shell", parts)
    assert not binary
    assert json.loads(payload) == {
        "header": header(),
        "msg_id": "m1",
        "msg_type": "execute_request",
        "parent_header": {"msg_id": "p"},
        "metadata": {},
        "content": {"code": "1"},
        "buffers": [],
        "channel": "shell",
    }


def test_legacy_missing_channel_and_parts_default() -> None:
    channel, parts = legacy.decode(json.dumps({"header": header()}))
    assert channel is None
    assert parts[1:] == [b"{}", b"{}", b"{}"]


V1_GOOD = v1.encode("shell", [b"{}", b"{}", b"{}", b"{}"])


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x01\x00",
        struct.pack("<Q", 5) + b"\x00" * 40,  # too few offsets for a message
        struct.pack("<Q", 2**40) + b"\x00" * 8,  # huge count
        V1_GOOD[:-1],  # last offset past the end
        struct.pack("<7Q", 6, 56, 61, 59, 61, 61, 61) + b"shell",  # offsets go backwards
        struct.pack("<7Q", 6, 48, 53, 53, 53, 53, 53) + b"shell",  # first offset inside table
        struct.pack("<7Q", 6, 56, 58, 58, 58, 58, 58) + b"\xff\xfe",  # channel not UTF-8
    ],
)
def test_v1_refuses_bad_frames(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        v1.decode(frame)


@given(st.binary(max_size=200))
def test_v1_decode_never_crashes(frame: bytes) -> None:
    try:
        channel, parts = v1.decode(frame)
    except ProtocolError:
        return
    assert len(parts) >= 4 and isinstance(channel, str)


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[]",
        '"x"',
        "{}",
        json.dumps({"header": {"msg_id": "x"}}),
        json.dumps({"header": header(), "content": []}),
        json.dumps({"header": header(), "channel": 3}),
        json.dumps({"header": "h"}),
        json.dumps({"header": header(), "content": {"x": float("nan")}}),  # NaN: not JSON
        json.dumps({"header": header(), "content": {"x": float("-inf")}}),
        '{"header": {"msg_id": "m", "msg_type": "t"}, "content": {"x": 1e400}}',  # inf once parsed
        '{"header": {"msg_id": "m", "msg_type": "t"}, "content": {"x": [-2.5e999]}}',
        '{"header": {"msg_id": "m", "msg_type": "t"}, "content": ' + "[" * 100_000,  # RecursionError
        b"\x00\x00\x00\x01\x00\x00\x00\x08\xff\xfe",  # JSON part not UTF-8
        b"",
        b"\x00\x00\x00\x00",
        b"\x00\x00\x00\x02\x00\x00\x00\x0c\x00\x00\x00\x0b{}",
        b"\x00\x00\x00\x01\x00\x00\x00\x04{}",
        b"\xff\xff\xff\xff",
    ],
)
def test_legacy_refuses_bad_frames(frame: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        legacy.decode(frame)


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_legacy_decode_never_crashes(frame: str | bytes) -> None:
    with contextlib.suppress(ProtocolError):
        legacy.decode(frame)


def test_wire_sign_verify_split() -> None:
    signer = wire.Signer(b"secret")
    parts = [dump(header()), b"{}", b"{}", b'{"a":1}', b"buf"]
    frames = signer.frames(parts, identities=[b"id"])
    identities, signature, got = wire.split(frames)
    assert identities == [b"id"] and got == parts
    assert signer.verify(signature, got)
    assert not signer.verify(signature, [*got[:3], b'{"a":2}'])
    assert wire.Signer(b"").verify(b"", parts)
    with pytest.raises(ProtocolError):
        wire.split([b"a", b"b"])
    with pytest.raises(ProtocolError):
        wire.split([wire.DELIM, b"sig", b"{}"])
    with pytest.raises(ValueError):
        wire.Signer(b"k", "md5")


def test_wire_signature_matches_jupyter_client() -> None:
    from jupyter_client.session import Session

    session = Session(key=b"k3y", signature_scheme="hmac-sha256")
    msg = session.msg("kernel_info_request")
    frames = session.serialize(msg)
    _identities, signature, parts = wire.split(frames)
    assert wire.Signer(b"k3y").verify(signature, parts)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def expected_field(part: bytes, key: str) -> str | None:
    try:
        value = json.loads(part)
    except ValueError:
        return None
    field = value.get(key) if isinstance(value, dict) else None
    return field if isinstance(field, str) else None


@given(json_values, st.sampled_from(["msg_id", "session", "", "k"]))
def test_wire_string_field_reads_what_json_reads(value: object, key: str) -> None:
    """Any JSON (integers beyond 64 bits included), as an object or not, with or without key."""
    for part in (json.dumps(value).encode(), json.dumps({key: value, "n": 2**70}).encode()):
        assert wire.string_field(part, key) == expected_field(part, key)


@pytest.mark.parametrize(
    "part",
    [
        b'{"msg_id": "a", "n": 18446744073709551616}',
        b'{"msg_id": "a", "x": NaN}',
        b'{"msg_id": "\\ud800"}',
        b'{"msg_id": "\\u00e9\\ud83d\\ude00"}',
        b'{"msg_id": 7}',
        b'["msg_id"]',
        b"",
        b"{",
        b"\xff",
        b'{"msg_id": "a"} x',
    ],
)
def test_wire_string_field_odd_parts(part: bytes) -> None:
    """Where orjson refuses (NaN, a lone surrogate) or differs, and what no parser reads."""
    assert wire.string_field(part, "msg_id") == expected_field(part, "msg_id")


def test_wire_string_field_of_json_nested_too_deep_is_none() -> None:
    """Deeper than orjson (1,024) and than Python's parser goes: not a header, not a crash."""
    assert (
        wire.string_field(b'{"msg_id": "a", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "msg_id") is None
    )
