"""The benchmark's own kernel-websocket framing: a few lines of reference code, standard library only.

A benchmark of nbserver should not decode nbserver's frames with nbserver's own codec, so the
websocket client (:mod:`benchmarks.kernelclient`) and the codec checks (:mod:`benchmarks.codecs`)
use these instead.

* ``v1.kernel.websocket.jupyter.org``: ``uint64 LE n``, ``n`` offsets (the first is where the
  channel name starts, the last is the frame's length), the channel name, the message parts
  (header, parent_header, metadata, content, buffers...).
* legacy: the JSON of the whole message (``header``, ``parent_header``, ``metadata``,
  ``content``, ``channel``, ``buffers``) in a text frame; with buffers a binary frame:
  ``uint32 BE n`` (1 + number of buffers), ``n`` offsets, the JSON without its buffers, the buffers.
"""

from __future__ import annotations

import itertools
import json
import struct
from collections.abc import Sequence
from typing import Any

__all__ = ["V1_PROTOCOL", "legacy_decode", "legacy_encode", "v1_decode", "v1_encode"]

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
_PART_KEYS = ("header", "parent_header", "metadata", "content")


def v1_encode(channel: str, parts: Sequence[bytes]) -> bytes:
    """One v1 frame: ``uint64 LE n``, ``n`` offsets, channel, then the parts (n = parts + 2)."""
    name = channel.encode()
    count = len(parts) + 2
    offsets = [8 * (count + 1), 8 * (count + 1) + len(name)]
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    return b"".join([struct.pack(f"<{count + 1}Q", count, *offsets), name, *parts])


def v1_decode(frame: bytes) -> tuple[str, list[bytes]]:
    """``(channel, parts)`` of a v1 frame; ValueError if its offsets do not add up."""
    (count,) = struct.unpack_from("<Q", frame, 0)
    offsets = struct.unpack_from(f"<{count}Q", frame, 8)
    if count < 6 or offsets[-1] != len(frame):
        raise ValueError(f"malformed v1 frame ({len(frame)} bytes, {count} offsets)")
    channel = frame[offsets[0] : offsets[1]].decode()
    return channel, [frame[offsets[i] : offsets[i + 1]] for i in range(1, count - 1)]


def legacy_encode(channel: str, parts: Sequence[bytes]) -> str | bytes:
    """A legacy frame: the message's JSON as text, or a binary frame when it has buffers."""
    msg: dict[str, Any] = {key: json.loads(part) for key, part in zip(_PART_KEYS, parts, strict=False)}
    msg["channel"] = channel
    buffers = list(parts[4:])
    if not buffers:
        msg["buffers"] = []
        return json.dumps(msg)
    body = json.dumps(msg).encode()
    count = 1 + len(buffers)
    offsets = [4 * (count + 1)]
    for chunk in [body, *buffers[:-1]]:
        offsets.append(offsets[-1] + len(chunk))
    return b"".join([struct.pack(f">{count + 1}I", count, *offsets), body, *buffers])


def legacy_decode(frame: str | bytes) -> tuple[dict[str, Any], list[bytes]]:
    """``(message dict, buffers)`` of a legacy text or binary frame."""
    buffers: list[bytes] = []
    if isinstance(frame, bytes):
        (count,) = struct.unpack_from(">I", frame, 0)
        offsets = [*struct.unpack_from(f">{count}I", frame, 4), len(frame)]
        chunks = [frame[a:b] for a, b in itertools.pairwise(offsets)]
        frame, buffers = chunks[0], chunks[1:]
    msg = json.loads(frame)
    if not isinstance(msg, dict):
        raise ValueError("legacy frame is not a JSON object")
    return msg, buffers
