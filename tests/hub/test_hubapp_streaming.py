"""Big bodies through the hub's proxy, with the hub in its own process so that its memory can be
read from ``/proc/<pid>/status``: a 100 MB download to a client that reads slowly, and a 100 MB
upload, each leave the hub's resident memory far below the body's size (the proxy streams with
flow control both ways instead of buffering)."""

from __future__ import annotations

import base64
import http.client
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub.hubproc import RunningHub, rss_kib, running_hub

MB = 1024 * 1024
SIZE = 100 * MB
#: how much the hub may grow while a 100 MB body passes (a buffered body would take ~100 MB)
GROWTH_LIMIT_KIB = 24 * 1024


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[RunningHub]:
    with running_hub(tmp_path, {"alice": "alice-pw-1"}) as running:
        running.start_server("alice")
        yield running


def test_slow_client_downloading_100_mb_does_not_fill_the_hub(hub: RunningHub, tmp_path: Path) -> None:
    """The server sends at loopback speed, the client reads 64 KiB every 2 ms (~30 MB/s at
    most): without flow control the hub would buffer what the client has not read yet."""
    home = tmp_path / "users" / "alice"
    block = os.urandom(MB)
    with (home / "big.bin").open("wb") as f:
        for _ in range(SIZE // MB):
            f.write(block)
    before = rss_kib(hub.proc.pid)
    conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=60)
    try:
        conn.connect()
        assert conn.sock is not None
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        conn.request(
            "GET", "/user/alice/files/big.bin", headers={"Authorization": f"token {hub.tokens['alice']}"}
        )
        response = conn.getresponse()
        assert response.status == 200, (response.status, response.read()[:300], hub.log.read_text()[-2000:])
        received, peak, first = 0, before, b""
        while True:
            chunk = response.read(64 * 1024)
            if not chunk:
                break
            if not first:
                first = chunk[:64]
            received += len(chunk)
            if received % (4 * MB) < 64 * 1024:
                peak = max(peak, rss_kib(hub.proc.pid))
            time.sleep(0.002)
    finally:
        conn.close()
    assert received == SIZE and first == block[:64]
    growth = peak - before
    assert growth < GROWTH_LIMIT_KIB, f"the hub grew by {growth} KiB while a {SIZE} B file passed"


def test_100_mb_upload_does_not_fill_the_hub(hub: RunningHub, tmp_path: Path) -> None:
    """A 100 MB JSON body (a base64 file) sent in 256 KiB writes; the hub's memory is sampled
    between writes."""
    raw_block = os.urandom(3 * 256 * 1024)
    block = base64.b64encode(raw_block)  # 1 MiB of base64
    blocks = SIZE // len(block)
    head, tail = b'{"type": "file", "format": "base64", "content": "', b'"}'
    length = len(head) + blocks * len(block) + len(tail)
    before = rss_kib(hub.proc.pid)
    peak = before
    conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=120)
    try:
        conn.putrequest("PUT", "/user/alice/api/contents/up.bin")
        conn.putheader("Authorization", f"token {hub.tokens['alice']}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        conn.send(head)
        for i in range(blocks):
            for quarter in range(4):
                conn.send(block[quarter * len(block) // 4 : (quarter + 1) * len(block) // 4])
            if i % 4 == 0:
                peak = max(peak, rss_kib(hub.proc.pid))
        conn.send(tail)
        response = conn.getresponse()
        answer = response.read()
        assert response.status in (200, 201), (response.status, answer[:300], hub.log.read_text()[-2000:])
    finally:
        conn.close()
    saved = tmp_path / "users" / "alice" / "up.bin"
    assert saved.stat().st_size == blocks * len(raw_block)
    with saved.open("rb") as f:
        assert f.read(len(raw_block)) == raw_block
    growth = peak - before
    assert growth < GROWTH_LIMIT_KIB, f"the hub grew by {growth} KiB while a {length} B body passed"
