"""Codec micro-benchmarks: kernel-websocket frames encoded and decoded in one process, messages/s.

Theory of operation. Every implementation provides the same four operations, each taken from
its own server code (see the ``*_codec`` factories for the exact calls):

* ``v1 encode``  message parts -> ``v1.kernel.websocket.jupyter.org`` frame (kernel -> browser);
* ``v1 decode``  v1 frame -> channel + message parts (browser -> kernel);
* ``legacy encode``  message parts -> legacy frame: JSON text, or binary when there are buffers;
* ``legacy decode``  legacy text or binary frame -> channel + message parts.

"Message parts" are what a message is on ZMQ after its signature: the header, parent_header,
metadata and content as UTF-8 JSON, then the raw buffers. HMAC signing and checking are left
out on both sides (they are the same HMAC-SHA256 everywhere); so are the identities and the
``<IDS|MSG>`` delimiter. Each operation runs on four representative messages (:func:`messages`):
a ``status``, an ``execute_result`` with ~2 KB of text, a ``display_data`` with a 100 KB base64
PNG, and a ``comm_msg`` with two binary buffers of 1 KB and 1 MB. Before timing, every output is
checked against the benchmark's own framing (:mod:`benchmarks.framing`): an implementation whose
frames do not decode to the same message, or that decodes a frame wrongly, fails.

Timing: an operation is calibrated to run at least ``batch_s`` seconds per batch and timed in
``batches`` batches with the garbage collector off (as :mod:`timeit` does); the fastest batch
gives the figure (messages per second), being the one least disturbed by the rest of the machine.

Run ``python -m benchmarks.codecs IMPL`` (IMPL: nbserver, jupyter_server, jupyverse) in the
interpreter that has that implementation installed; it prints ``{"measurements": {...}}`` as
JSON. The ``codecs`` workload (:mod:`benchmarks.workloads_codecs`) does that for every target.
Only the standard library is imported at module level, so this runs in any target's interpreter.
"""

from __future__ import annotations

import argparse
import base64
import functools
import gc
import importlib
import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .fixtures import random_png
from .framing import legacy_decode, legacy_encode, v1_decode, v1_encode

__all__ = [
    "IMPLEMENTATIONS",
    "Codec",
    "CodecError",
    "Sample",
    "check",
    "measure",
    "messages",
]

Parts = list[bytes]
LegacyFrame = str | bytes


class CodecError(AssertionError):
    """An implementation's frame or decoded message is not what the reference framing says."""


@dataclass(frozen=True)
class Codec:
    """One implementation's four operations (see the module docstring)."""

    v1_encode: Callable[[str, Parts], bytes]
    v1_decode: Callable[[bytes], tuple[str, Sequence[bytes]]]
    legacy_encode: Callable[[str, Parts], tuple[LegacyFrame, bool]]  # (payload, binary frame)
    legacy_decode: Callable[[LegacyFrame], tuple[str | None, Sequence[bytes]]]


def nbserver_codec() -> Codec:
    """nbserver's pure codecs (``nbserver.protocol.v1`` and ``.legacy``), as its bridge calls them."""
    from nbserver.protocol import legacy, v1

    return Codec(v1.encode, v1.decode, legacy.encode, legacy.decode)


def jupyter_server_codec() -> Codec:
    """jupyter_server's ``services/kernels/connection`` code: ``serialize_msg_to_ws_v1`` /
    ``deserialize_msg_from_ws_v1`` for v1; for legacy, what ``ZMQChannelsWebsocketConnection``
    does around ``serialize_binary_message`` / ``deserialize_binary_message``: the message is
    deserialized with its ``Session`` (unsigned here) and re-serialized as JSON on the way out,
    parsed and packed again with ``Session.serialize`` on the way in."""
    # untyped third-party code: used through Any
    session_mod: Any = importlib.import_module("jupyter_client.session")
    jsonutil: Any = importlib.import_module("jupyter_client.jsonutil")
    base: Any = importlib.import_module("jupyter_server.services.kernels.connection.base")
    # jupyter_client < 7.4 has only date_default; jupyter_server falls back the same way
    json_default = getattr(jsonutil, "json_default", None) or jsonutil.date_default

    session = session_mod.Session(key=b"")  # no key: no signing, which both sides leave out

    def v1_enc(channel: str, parts: Parts) -> bytes:
        frame: bytes = base.serialize_msg_to_ws_v1(parts, channel)
        return frame

    def legacy_enc(channel: str, parts: Parts) -> tuple[LegacyFrame, bool]:
        # handle_outgoing_message: session.deserialize; _reserialize_reply: the rest
        msg = session.deserialize([b"", *parts])
        msg["channel"] = channel
        if msg["buffers"]:
            return base.serialize_binary_message(msg), True
        return json.dumps(msg, default=json_default), False

    def legacy_dec(frame: LegacyFrame) -> tuple[str | None, Sequence[bytes]]:
        # handle_incoming_message, then Session.send's serialize + buffers
        msg = base.deserialize_binary_message(frame) if isinstance(frame, bytes) else json.loads(frame)
        channel = msg.pop("channel", None)
        return channel, [*session.serialize(msg)[2:], *msg.get("buffers", [])]

    return Codec(v1_enc, base.deserialize_msg_from_ws_v1, legacy_enc, legacy_dec)


def jupyverse_codec() -> Codec:
    """jupyverse's ``fps_kernels`` code, as its ``KernelServer`` calls it: the v1 functions of
    ``kernel_server.message``; for legacy, ``kernel_driver.message.deserialize_message`` then
    ``to_binary`` or starlette's ``send_json`` serialization on the way out, ``json.loads`` or
    ``from_binary`` then ``pack`` of each part on the way in (its ``serialize_message`` minus the
    signature)."""
    driver: Any = importlib.import_module("fps_kernels.kernel_driver.message")
    server: Any = importlib.import_module("fps_kernels.kernel_server.message")
    pack = driver.pack

    def v1_enc(channel: str, parts: Parts) -> bytes:
        # its parts start with the signature, which serialize_msg_to_ws_v1 drops
        return b"".join(server.serialize_msg_to_ws_v1([b"", *parts], channel))

    def legacy_enc(channel: str, parts: Parts) -> tuple[LegacyFrame, bool]:
        msg = driver.deserialize_message([b"", *parts])
        msg["channel"] = channel
        binary = server.to_binary(msg)
        if binary is not None:
            return binary, True
        return json.dumps(msg, separators=(",", ":"), ensure_ascii=False), False  # WebSocket.send_json

    def legacy_dec(frame: LegacyFrame) -> tuple[str | None, Sequence[bytes]]:
        msg = server.from_binary(frame) if isinstance(frame, bytes) else json.loads(frame)
        channel = msg.pop("channel")
        packed = [pack(msg["header"]), pack(msg["parent_header"]), pack(msg["metadata"])]
        return channel, [*packed, pack(msg.get("content", {})), *msg.get("buffers", [])]

    return Codec(v1_enc, server.deserialize_msg_from_ws_v1, legacy_enc, legacy_dec)


IMPLEMENTATIONS: dict[str, Callable[[], Codec]] = {
    "nbserver": nbserver_codec,
    "jupyter_server": jupyter_server_codec,
    "jupyverse": jupyverse_codec,
}


# --------------------------------------------------------------------------------------------
# The messages


@dataclass(frozen=True)
class Sample:
    """A message as ZMQ carries it: ``parts`` = 4 JSON parts (as a kernel packs them) + buffers."""

    name: str
    channel: str
    parts: Parts


def _pack(obj: object) -> bytes:
    """JSON as ipykernel's Session packs it (``ensure_ascii=False``, default separators)."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")


def _header(msg_type: str, n: int) -> dict[str, str]:
    # The date has non-zero microseconds so that it survives a datetime round trip unchanged.
    return {
        "msg_id": f"6a9f0d3e-2c41b7e8a5d04f19_4242_{n}",
        "msg_type": msg_type,
        "username": "username",
        "session": "6a9f0d3e-2c41b7e8a5d04f19",
        "date": "2026-01-01T12:00:00.123456Z",
        "version": "5.4",
    }


@functools.cache
def messages() -> tuple[Sample, ...]:
    """The four representative iopub messages; deterministic."""
    rng = random.Random(10)
    parent = {
        "msg_id": "0f6c1d2e-93a8-4a4e-9d43-1b2d0c9e7f10",
        "msg_type": "execute_request",
        "username": "",
        "session": "d2b1c4a0-5e6f-4c1d-8b7a-9f0e1d2c3b4a",
        "date": "2026-01-01T11:59:59.654321Z",
        "version": "5.2",
    }
    table = "\n".join(f"{i:5d}  {i * i:10d}  {i**0.5:12.6f}" for i in range(64))  # ~2 KB
    png = random_png(rng, 158, 158)  # 75 KB: 100 KB in base64

    specs: list[tuple[str, str, dict[str, Any], dict[str, Any], list[bytes]]] = [
        ("status", "status", {}, {"execution_state": "busy"}, []),
        (
            "exec_result",
            "execute_result",
            {},
            {"data": {"text/plain": table}, "metadata": {}, "execution_count": 42},
            [],
        ),
        (
            "png100k",
            "display_data",
            {},
            {
                "data": {
                    "image/png": base64.b64encode(png).decode("ascii"),
                    "text/plain": "<Figure size 640x480 with 1 Axes>",
                },
                "metadata": {"image/png": {"width": 158, "height": 158}},
                "transient": {},
            },
            [],
        ),
        (
            "bufs1m",
            "comm_msg",
            {},
            {
                "comm_id": "8e0b3f9a-1c2d-4e5f-a6b7-c8d9e0f1a2b3",
                "data": {
                    "method": "update",
                    "state": {"small": {}, "large": {}},
                    "buffer_paths": [["small"], ["large"]],
                },
            },
            [rng.randbytes(1024), rng.randbytes(1024 * 1024)],
        ),
    ]
    return tuple(
        Sample(name, "iopub", [_pack(_header(kind, n)), _pack(parent), _pack(meta), _pack(content), *bufs])
        for n, (name, kind, meta, content, bufs) in enumerate(specs)
    )


# --------------------------------------------------------------------------------------------
# Checks


def _same_message(what: str, sample: Sample, channel: str | None, parts: Sequence[bytes | Any]) -> None:
    """Raise CodecError unless ``(channel, parts)`` is ``sample``: the same channel, JSON-equal
    JSON parts and byte-equal buffers."""
    if channel != sample.channel:
        raise CodecError(f"{what}: channel {channel!r}, expected {sample.channel!r}")
    if len(parts) != len(sample.parts):
        raise CodecError(f"{what}: {len(parts)} parts, expected {len(sample.parts)}")
    for i, (got, want) in enumerate(zip(parts, sample.parts, strict=True)):
        if i < 4:
            if json.loads(bytes(got)) != json.loads(want):
                raise CodecError(f"{what}: JSON part {i} differs: {bytes(got)[:80]!r} vs {want[:80]!r}")
        elif bytes(got) != want:
            raise CodecError(f"{what}: buffer {i - 4} differs ({len(bytes(got))} vs {len(want)} bytes)")


def _legacy_parts(msg: dict[str, Any], buffers: list[bytes]) -> list[bytes]:
    keys = ("header", "parent_header", "metadata", "content")
    return [json.dumps(msg.get(key) or {}).encode() for key in keys] + buffers


def check(codec: Codec) -> None:
    """Raise :class:`CodecError` unless ``codec`` encodes and decodes every sample message as the
    benchmark's reference framing does (checked both ways)."""
    for sample in messages():
        where = sample.name
        _same_message(
            f"v1 encode of {where}", sample, *v1_decode(codec.v1_encode(sample.channel, sample.parts))
        )
        _same_message(
            f"v1 decode of {where}", sample, *codec.v1_decode(v1_encode(sample.channel, sample.parts))
        )

        payload, binary = codec.legacy_encode(sample.channel, sample.parts)
        if binary != (len(sample.parts) > 4):
            raise CodecError(f"legacy encode of {where}: binary={binary} for {len(sample.parts) - 4} buffers")
        frame: LegacyFrame = payload if binary else _text(payload)
        msg, buffers = legacy_decode(frame)
        _same_message(f"legacy encode of {where}", sample, msg.get("channel"), _legacy_parts(msg, buffers))
        if not binary and msg.get("buffers") != []:
            raise CodecError(f"legacy encode of {where}: text frame without an empty 'buffers' list")
        decoded = codec.legacy_decode(legacy_encode(sample.channel, sample.parts))
        _same_message(f"legacy decode of {where}", sample, *decoded)


def _text(payload: LegacyFrame) -> str:
    return payload if isinstance(payload, str) else payload.decode("utf-8")


# --------------------------------------------------------------------------------------------
# Timing


def _batch(op: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        op()
    return time.perf_counter() - t0


def rate(op: Callable[[], object], batch_s: float, batches: int) -> float:
    """Calls of ``op`` per second: the fastest of ``batches`` batches of at least ``batch_s``."""
    n, elapsed = 1, _batch(op, 1)
    while elapsed < batch_s / 4:  # calibrate: double until a batch is a quarter of the target
        n *= 2
        elapsed = _batch(op, n)
    n = max(1, math.ceil(n * batch_s / max(elapsed, 1e-9)))
    enabled = gc.isenabled()
    gc.disable()
    try:
        best = min(_batch(op, n) for _ in range(batches))
    finally:
        if enabled:
            gc.enable()
    return n / best


def measure(codec: Codec, batch_s: float = 0.05, batches: int = 5) -> dict[str, float]:
    """``codec_<framing>_<message>_<encode|decode>_mps`` for every sample, in messages/s."""
    results: dict[str, float] = {}
    for sample in messages():
        ch, parts = sample.channel, sample.parts
        v1_frame = v1_encode(ch, parts)
        legacy_frame = legacy_encode(ch, parts)  # as the server receives it: str for text frames
        ops: dict[str, Callable[[], object]] = {
            "v1_{}_encode": functools.partial(codec.v1_encode, ch, parts),
            "v1_{}_decode": functools.partial(codec.v1_decode, v1_frame),
            "legacy_{}_encode": functools.partial(codec.legacy_encode, ch, parts),
            "legacy_{}_decode": functools.partial(codec.legacy_decode, legacy_frame),
        }
        for pattern, op in ops.items():
            results["codec_" + pattern.format(sample.name) + "_mps"] = rate(op, batch_s, batches)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.codecs",
        description="Check and time one implementation's kernel-websocket codecs; JSON to stdout.",
    )
    parser.add_argument("impl", choices=sorted(IMPLEMENTATIONS))
    parser.add_argument("--batch-s", type=float, default=0.05, help="seconds per timed batch")
    parser.add_argument("--batches", type=int, default=5, help="timed batches per operation")
    args = parser.parse_args(argv)
    try:
        codec = IMPLEMENTATIONS[args.impl]()
    except ImportError as exc:
        print(f"{args.impl}'s codec cannot be imported: {exc}", file=sys.stderr)
        return 3
    try:
        check(codec)
    except CodecError as exc:
        print(f"{args.impl}: {exc}", file=sys.stderr)
        return 4
    json.dump({"measurements": measure(codec, args.batch_s, args.batches)}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
