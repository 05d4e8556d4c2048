"""Deterministic test data shared by workloads (standard library only)."""

from __future__ import annotations

import random
import struct
import zlib

__all__ = ["random_png"]


def random_png(rng: random.Random, width: int = 32, height: int = 32) -> bytes:
    """A valid RGB PNG of random pixels. Incompressible: about ``3 * width * height`` bytes
    (3.1 KB for 32 x 32; 75 KB, 100 KB once base64-encoded, for 158 x 158)."""
    raw = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
