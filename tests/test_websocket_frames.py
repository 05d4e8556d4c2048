"""The header of frames nbserver writes itself (``AuthenticatedWebSocket.write_frame``), read
back the way RFC 6455 section 5.2 defines it. Sizes tried: every length-field boundary (125/126,
65535/65536) and random sizes up to 2**40, text and binary."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbserver.websocket import _frame_header


def parse(header: bytes) -> tuple[bool, int, bool, int, int]:
    """``(fin, opcode, masked, payload length, header length)`` per RFC 6455."""
    fin, opcode = bool(header[0] & 0x80), header[0] & 0x0F
    masked, size = bool(header[1] & 0x80), header[1] & 0x7F
    if size == 126:
        return fin, opcode, masked, struct.unpack("!H", header[2:4])[0], 4
    if size == 127:
        return fin, opcode, masked, struct.unpack("!Q", header[2:10])[0], 10
    return fin, opcode, masked, size, 2


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_length_field_boundaries(size: int, expected: bytes) -> None:
    assert _frame_header(0x2, size) == expected


@given(st.sampled_from([0x1, 0x2]), st.integers(min_value=0, max_value=2**40))
def test_header_reads_back(opcode: int, size: int) -> None:
    header = _frame_header(opcode, size)
    fin, got_opcode, masked, got_size, length = parse(header)
    assert (fin, got_opcode, masked, got_size) == (True, opcode, False, size)
    assert length == len(header)
    # the shortest form, as RFC 6455 requires ("the minimal number of bytes MUST be used")
    assert length == (2 if size < 126 else 4 if size < 65536 else 10)
