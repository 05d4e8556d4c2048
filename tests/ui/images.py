"""Small valid PNGs for the tests, made without an imaging library."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

RGB = tuple[int, int, int]


def png(width: int, height: int, pixel: Callable[[int, int], RGB]) -> bytes:
    """An 8-bit RGB PNG whose pixel (x, y) has the colour ``pixel(x, y)``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def solid_png(width: int, height: int, rgb: RGB) -> bytes:
    return png(width, height, lambda x, y: rgb)
