"""The hub's websocket tunnel (:mod:`nbserver.hub.wsproxy`) over real sockets: an in-process hub in
front of a stand-in user server that speaks websocket at the byte level, so that what crosses
the hub can be compared byte for byte. (A real user server and kernel behind the tunnel:
``test_hubapp_e2e.py``.)"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tornado.ioloop

from nbserver.hub.app import HubServer
from nbserver.hub.servers import ServerState, UserServer
from nbserver.hub.store import now
from tests.hub.hubapp_harness import serve

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None) -> bytes:
    """One websocket frame (payloads under 126 bytes); masked when ``mask`` is given."""
    assert len(payload) < 126
    head = bytes([(0x80 if fin else 0) | opcode, (0x80 if mask else 0) | len(payload)])
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)


@dataclass
class StandIn:
    """A user server that accepts one websocket (or refuses it with ``refuse``), records every
    byte it receives after the handshake, and sends ``greeting`` right after its 101."""

    greeting: bytes = b""
    refuse: bytes | None = None
    hang_up: bool = False  # close right after the greeting
    received: bytearray = field(default_factory=bytearray)
    request_head: bytes = b""
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.request_head = await read_head(reader)
            if self.refuse is not None:
                writer.write(self.refuse)
                await writer.drain()
                return
            key = next(
                line.split(b":", 1)[1].strip()
                for line in self.request_head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n" + self.greeting
            )
            await writer.drain()
            while not self.hang_up and (chunk := await reader.read(65536)):
                self.received += chunk
        finally:
            writer.close()
            self.closed.set()


@pytest.fixture
def hub(io_loop: tornado.ioloop.IOLoop, tmp_path: Path) -> Iterator[HubServer]:
    yield from serve(io_loop, tmp_path)


@pytest.fixture
def stand_in(io_loop: tornado.ioloop.IOLoop, hub: HubServer) -> Iterator[StandIn]:
    """``StandIn`` registered as alice's running server."""
    server = StandIn()
    listener = io_loop.run_sync(lambda: asyncio.start_server(server.handle, "127.0.0.1", 0))
    server.port = listener.sockets[0].getsockname()[1]
    servers = hub.hub.servers
    servers._servers["alice"] = UserServer(  # a server the hub did not spawn, as if adopted
        "alice", os.getpid(), server.port, 0, now(), ServerState.RUNNING
    )
    yield server
    del servers._servers["alice"]
    listener.close()
    io_loop.run_sync(listener.wait_closed)


async def open_browser(
    hub: HubServer, path: str = "/user/alice/api/kernels/k/channels"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes, bytes]:
    """A browser's raw upgrade request through the hub; (reader, writer, key, answer head)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
    key = base64.b64encode(os.urandom(16))
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{hub.port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nOrigin: http://example.org\r\n"
        "Sec-WebSocket-Protocol: v1.kernel.websocket.jupyter.org\r\n".encode()
        + b"Sec-WebSocket-Key: "
        + key
        + b"\r\nCookie: jupyterhub-hub-login=secret; other=1\r\n\r\n"
    )
    await writer.drain()
    return reader, writer, key, await read_head(reader)


async def test_frames_cross_the_hub_byte_for_byte_both_ways(hub: HubServer, stand_in: StandIn) -> None:
    """A message fragmented in two masked frames, a ping and a close with code 4001 reach the
    server exactly as the browser sent them (same frames, same mask keys), and the server's
    fragmented message reaches the browser as sent. A proxy that parses and re-frames messages
    (tornado's websocket client and handler, as before) joins the fragments and re-masks them."""
    stand_in.greeting = frame(0x1, b"hel", fin=False) + frame(0x0, b"lo")
    reader, writer, key, head = await open_browser(hub)
    try:
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert b"Sec-WebSocket-Accept: " + accept_key(key) in head, head
        greeting = await asyncio.wait_for(reader.readexactly(len(stand_in.greeting)), 30)
        assert greeting == stand_in.greeting
        sent = (
            frame(0x1, b"first half, ", fin=False, mask=b"\x01\x02\x03\x04")
            + frame(0x0, b"second half", mask=b"\x05\x06\x07\x08")
            + frame(0x9, b"ping!", mask=b"\x09\x0a\x0b\x0c")
            + frame(0x8, struct.pack("!H", 4001) + b"bye", mask=b"\x0d\x0e\x0f\x10")
        )
        writer.write(sent)
        await writer.drain()
        for _ in range(300):
            if len(stand_in.received) >= len(sent):
                break
            await asyncio.sleep(0.1)
        assert bytes(stand_in.received) == sent
    finally:
        writer.close()
    await asyncio.wait_for(stand_in.closed.wait(), 30)  # the browser gone closes the server's side


async def test_the_upgrade_goes_upstream_with_the_browsers_handshake_and_forwarded_headers(
    hub: HubServer, stand_in: StandIn
) -> None:
    """The server sees the browser's key, subprotocols and Origin, ``X-Forwarded-*`` set by the
    hub, and not the hub's login cookie."""
    _, writer, key, head = await open_browser(hub)
    writer.close()
    assert head.startswith(b"HTTP/1.1 101 "), head
    request = stand_in.request_head.decode().lower()
    assert request.startswith("get /user/alice/api/kernels/k/channels http/1.1\r\n")
    assert f"sec-websocket-key: {key.decode().lower()}" in request
    assert "sec-websocket-protocol: v1.kernel.websocket.jupyter.org" in request
    assert "origin: http://example.org" in request and "upgrade: websocket" in request
    assert "x-forwarded-for: 127.0.0.1" in request and "x-forwarded-proto: http" in request
    assert "jupyterhub-hub-login" not in request and "cookie: other=1" in request


async def test_a_refused_upgrade_reaches_the_browser_with_its_status_and_body(
    hub: HubServer, stand_in: StandIn
) -> None:
    body = b'{"message": "Forbidden", "reason": "no access"}'
    stand_in.refuse = (
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    reader, writer, _, head = await open_browser(hub)
    try:
        assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n"), head
        assert b"Content-Type: application/json" in head
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        assert await reader.readexactly(length) == body
    finally:
        writer.close()


async def test_traffic_through_the_tunnel_counts_as_activity(hub: HubServer, stand_in: StandIn) -> None:
    """One frame from the browser moves the server's ``last_activity`` (in memory, at once)."""
    _, writer, _, head = await open_browser(hub)
    try:
        assert head.startswith(b"HTTP/1.1 101 "), head
        server = hub.hub.servers.get("alice")
        assert server is not None
        before = server.last_activity = now()
        writer.write(frame(0x1, b"hi", mask=b"abcd"))
        await writer.drain()
        for _ in range(300):
            if server.last_activity != before:
                break
            await asyncio.sleep(0.05)
        assert server.last_activity is not None and server.last_activity > before
    finally:
        writer.close()


async def test_a_server_that_closes_closes_the_browsers_connection(hub: HubServer, stand_in: StandIn) -> None:
    stand_in.greeting = frame(0x8, struct.pack("!H", 1001))
    stand_in.hang_up = True
    reader, writer, _, head = await open_browser(hub)
    try:
        assert head.startswith(b"HTTP/1.1 101 "), head
        await asyncio.wait_for(stand_in.closed.wait(), 30)
        rest = await asyncio.wait_for(reader.read(), 30)  # EOF once the server closed
        assert rest == stand_in.greeting
    finally:
        writer.close()
