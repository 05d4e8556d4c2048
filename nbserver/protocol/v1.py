"""The ``v1.kernel.websocket.jupyter.org`` framing. Theory of operation:

Every websocket frame is binary and carries one Jupyter message::

    uint64 LE  n                      number of offsets (= number of parts + 2)
    uint64 LE  offsets[n]             offsets[0] = 8 * (n + 1): where the channel name starts;
                                      offsets[i+1] = end of part i; offsets[n-1] = frame length
    bytes      channel                UTF-8, e.g. b"shell"
    bytes      header, parent_header, metadata, content   (UTF-8 JSON each)
    bytes      buffers...             zero or more raw buffers

Because the parts are the same bytes as the ZMQ frames of the message, a server forwards kernel
output to the browser without parsing or re-serializing it. :func:`decode` checks every offset
(monotonic, inside the frame, four message parts at least) so that a hostile frame can only be
refused, never crash or mis-slice.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .errors import ProtocolError

__all__ = ["PROTOCOL", "decode", "encode"]

PROTOCOL = "v1.kernel.websocket.jupyter.org"
_MIN_PARTS = 4  # header, parent_header, metadata, content
_U64 = struct.Struct("<Q")


def encode(channel: str, parts: Sequence[bytes]) -> bytes:
    """Frame ``parts`` (header, parent_header, metadata, content, *buffers) for ``channel``."""
    name = channel.encode("utf-8")
    count = len(parts) + 2
    offsets = [8 * (count + 1), 8 * (count + 1) + len(name)]
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    head = struct.pack(f"<{count + 1}Q", count, *offsets)
    return b"".join([head, name, *parts])


def decode(frame: bytes) -> tuple[str, list[bytes]]:
    """``(channel, [header, parent_header, metadata, content, *buffers])`` from one frame.

    Raises:
        ProtocolError: short frame, impossible offsets, fewer than four parts, or a channel
            name that is not UTF-8.
    """
    size = len(frame)
    if size < 8:
        raise ProtocolError(f"v1 frame of {size} bytes is shorter than its offset count")
    (count,) = _U64.unpack_from(frame, 0)
    if count < _MIN_PARTS + 2:
        raise ProtocolError(f"v1 frame has {count} offsets; a message needs at least {_MIN_PARTS + 2}")
    table_end = 8 * (count + 1)
    if table_end > size:
        raise ProtocolError(f"v1 frame declares {count} offsets but has only {size} bytes")
    offsets = struct.unpack_from(f"<{count}Q", frame, 8)
    if offsets[0] != table_end or offsets[-1] != size:
        raise ProtocolError("v1 frame offsets do not start after the table and end at the frame end")
    previous = table_end
    for offset in offsets:
        if offset < previous:
            raise ProtocolError("v1 frame offsets are not increasing")
        previous = offset
    try:
        channel = frame[offsets[0] : offsets[1]].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("v1 frame channel name is not UTF-8") from None
    view = memoryview(frame)
    parts = [bytes(view[offsets[i] : offsets[i + 1]]) for i in range(1, count - 1)]
    return channel, parts
