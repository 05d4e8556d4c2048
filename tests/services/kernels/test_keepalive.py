"""Websocket keep-alive: jupyter_server's tolerance, not tornado's.

tornado (``websocket_ping_interval=30``) closed a kernel websocket whose client had not answered
one ping within 30 s: a client whose loop is busy for half a minute, or a laptop asleep for a
minute, was cut off. jupyter_server pings every 30 s, closes after 90 s without a pong, and skips
that check when its own ping went out late (its loop blocked, the machine suspended). nbserver
now does the same (``ws_ping_interval`` / ``ws_ping_timeout``, 0 = off).

The live tests run with interval 1 s and timeout 3 s rather than 30/90: the defaults' failure
needs a client silent across a ping AND its check, at the earliest from 29 s to 60 s after
connecting, so a test that fails on tornado's defaults takes over a minute, and one at the
defaults that takes under 50 s (silent 45 s from the start) passes on tornado as well, proving
nothing. The default values themselves are checked on a live handler.

Clients tried: one that stops reading (and so answering pings) for 2 s (< timeout: stays open),
one that stays silent (closed with 1001, not before the timeout), one whose server's loop is
blocked for 5 s (> timeout: survives, the check is skipped), and silence with pings (interval 0)
or the closing (timeout 0) turned off. Bad settings tried: negative values, a timeout not longer
than the interval.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import struct
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from nbserver import ConfigError, ServerConfig
from nbserver.protocol import v1
from nbserver.websocket import AuthenticatedWebSocket, Keepalive
from tests.conftest import TOKEN, Client
from tests.services.kernels.wsclient import KernelSocket, make_parts

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


class RawSocket:
    """A websocket client on a bare asyncio stream (tornado's client answers every ping by
    itself, whatever its user does). It answers pings while it reads; :meth:`silence_after_ping`
    makes it stop reading right after it answered a ping, as a client whose loop is busy or a
    machine asleep does; :meth:`resume` reads on, answering the pings that queued up meanwhile."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: str) -> None:
        self.reader = reader
        self.writer = writer
        self.session = session
        self.pings = 0
        self.ping_times: list[float] = []  # when each ping was read (and answered)
        self.messages: asyncio.Queue[bytes] = asyncio.Queue()
        self.close_frame: tuple[int, str] | None = None
        self.closed = asyncio.Event()  # a close frame or the end of the stream was read
        self.silent_since: float | None = None
        self._awake = asyncio.Event()
        self._awake.set()
        self._silence_next = False
        self._went_silent = asyncio.Event()
        self._pump = asyncio.ensure_future(self._read_frames())

    @classmethod
    async def connect(cls, client: Client, kernel_id: str) -> RawSocket:
        url = urlsplit(client.base)
        session = uuid.uuid4().hex
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {url.path}api/kernels/{kernel_id}/channels?session_id={session} HTTP/1.1\r\n"
                f"Host: {url.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: {v1.PROTOCOL}\r\nAuthorization: token {TOKEN}\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if line)
        assert {k.lower(): v for k, v in fields.items()}["sec-websocket-accept"] == accept
        return cls(reader, writer, session)

    async def _read_frames(self) -> None:
        try:
            while True:
                await self._awake.wait()
                head = await self.reader.readexactly(2)
                opcode, size = head[0] & 0x0F, head[1] & 0x7F
                if size == 126:
                    (size,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif size == 127:
                    (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
                payload = await self.reader.readexactly(size)
                await self._awake.wait()  # a frame read as silence began waits for the end of it
                if opcode == 0x9:
                    self.pings += 1
                    self.ping_times.append(asyncio.get_running_loop().time())
                    self._send(0xA, payload)
                    if self._silence_next:
                        self._silence_next = False
                        self._awake.clear()
                        self.silent_since = asyncio.get_running_loop().time()
                        self._went_silent.set()
                elif opcode == 0x8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    self.close_frame = (code, payload[2:].decode())
                    self._send(0x8, payload[:2])
                    return
                elif opcode in (0x1, 0x2):
                    self.messages.put_nowait(payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self.closed.set()

    def _send(self, opcode: int, payload: bytes) -> None:
        """One final, masked frame (RFC 6455: a client masks every frame)."""
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            head = bytes((0x80 | opcode, 0x80 | size))
        elif size < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if not self.writer.is_closing():
            self.writer.write(head + mask + masked)

    async def silence_after_ping(self) -> None:
        """Return once the next ping was answered and the client stopped reading."""
        self._silence_next = True
        await bounded(lambda: self._went_silent.is_set() or self.closed.is_set(), "a ping")
        assert not self.closed.is_set(), f"closed before it went silent: {self.close_frame}"

    def resume(self) -> float:
        """Read on; returns the time."""
        self._awake.set()
        return asyncio.get_running_loop().time()

    def pinged_after(self, moment: float) -> bool:
        return any(t > moment for t in self.ping_times)

    async def kernel_info(self) -> dict[str, Any]:
        """A kernel_info_request on shell and its reply's content (bounded wait)."""
        msg_id, parts = make_parts("kernel_info_request", {}, self.session)
        self._send(0x2, v1.encode("shell", parts))
        async with asyncio.timeout(30):
            while True:
                channel, reply = v1.decode(await self.messages.get())
                if channel == "shell" and json.loads(reply[1]).get("msg_id") == msg_id:
                    content: dict[str, Any] = json.loads(reply[3])
                    return content

    async def close(self) -> None:
        self._pump.cancel()
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


def handler_of(client: Client, kernel_id: str, session: str) -> AuthenticatedWebSocket:
    """The server's handler of the websocket of ``session``."""
    channels = client.server.ctx.services["kernels"].kernels[kernel_id].channels
    handler = channels.clients[session]
    assert isinstance(handler, AuthenticatedWebSocket)
    return handler


async def start_kernel(client: Client) -> str:
    r = await client.post("api/kernels", json={})
    assert r.status == 201, r.text
    return str(r.json["id"])


async def bounded(predicate: Any, what: str, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


# -- the rule, pure ----------------------------------------------------------------------------


def test_rule_closes_after_the_timeout_only_when_its_pings_were_on_time() -> None:
    """Interval 1, timeout 3, pings on time: a peer that answered at 0 is closed at the first
    ping more than 3 s later (4), not before; answering pongs keep it open indefinitely."""
    rule = Keepalive(1, 3, now=0)
    assert [rule.tick(t) for t in (1, 2, 3)] == [True, True, True]
    assert rule.tick(4) is False
    answering = Keepalive(1, 3, now=0)
    for t in range(1, 100):
        assert answering.tick(t)
        answering.pong(t + 0.01)


def test_rule_skips_the_check_after_a_stalled_loop() -> None:
    """The loop stalls from 0.5 to 10 (the ping due at 1 runs at 10): that ping is sent, not
    the peer closed; the check resumes at the next on-time ping without a pong."""
    rule = Keepalive(1, 3, now=0)
    rule.pong(0.01)
    assert rule.tick(10) is True  # 10 s since the last ping: this side was stalled
    rule.pong(10.01)
    assert rule.tick(11) is True
    assert [rule.tick(t) for t in (12, 13)] == [True, True]
    assert rule.tick(14) is False  # on time, no pong since 10.01


def test_rule_timeout_zero_never_closes() -> None:
    rule = Keepalive(1, 0, now=0)
    assert all(rule.tick(t) for t in range(1, 1000))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ws_ping_interval": -1}, "ws_ping_interval"),
        ({"ws_ping_timeout": -1}, "ws_ping_timeout"),
        ({"ws_ping_interval": 30, "ws_ping_timeout": 30}, "longer than ws_ping_interval"),
        ({"ws_ping_interval": 30, "ws_ping_timeout": 10}, "longer than ws_ping_interval"),
    ],
)
def test_bad_settings_are_refused(tmp_path, changes, message) -> None:
    with pytest.raises(ConfigError, match=message):
        ServerConfig(root_dir=tmp_path, **changes)


def test_settings_defaults_and_off(tmp_path) -> None:
    config = ServerConfig(root_dir=tmp_path)
    assert (config.ws_ping_interval, config.ws_ping_timeout) == (30, 90)  # jupyter_server's
    ServerConfig(root_dir=tmp_path, ws_ping_interval=0)  # no pings: any timeout is moot
    ServerConfig(root_dir=tmp_path, ws_ping_interval=30, ws_ping_timeout=0)  # pings, never closes


# -- live ---------------------------------------------------------------------------------------


async def test_defaults_are_jupyter_servers_and_tornado_pings_are_off(client: Client) -> None:
    """A kernel websocket of a default server: pinged every 30 s, closed after 90 s without a
    pong; tornado's own pinging (30 s, closing 30 s after an unanswered ping) does not run."""
    kernel_id = await start_kernel(client)
    ws = await KernelSocket.connect(client.base.replace("http://", "ws://"), kernel_id, TOKEN)
    handler = handler_of(client, kernel_id, ws.session)
    assert handler.keepalive is not None
    assert (handler.keepalive.interval, handler.keepalive.timeout) == (30, 90)
    assert handler.ws_connection is not None and handler.ws_connection.ping_interval == 0
    ws.close()


async def test_client_silent_shorter_than_the_timeout_stays_open(make_server, make_client) -> None:
    """Interval 1 s, timeout 3 s: a client that stops reading for 2 s (two pings unanswered
    meanwhile) then answers again is not closed (tornado closed it 1 s after the first)."""
    client = make_client(await make_server(ws_ping_interval=1, ws_ping_timeout=3))
    kernel_id = await start_kernel(client)
    raw = await RawSocket.connect(client, kernel_id)
    try:
        await raw.silence_after_ping()
        await asyncio.sleep(2)
        resumed = raw.resume()
        # a ping read 1.5 s after resuming is a fresh one, sent after the check at 3 s past
        # the last pong: the server kept the connection through it
        await bounded(lambda: raw.pinged_after(resumed + 1.5) or raw.closed.is_set(), "a fresh ping")
        assert raw.close_frame is None and not raw.closed.is_set()
        assert (await raw.kernel_info())["status"] == "ok"
        assert handler_of(client, kernel_id, raw.session).ws_connection is not None
    finally:
        await raw.close()


async def test_client_silent_past_the_timeout_is_closed(make_server, make_client, caplog) -> None:
    """Interval 1 s, timeout 3 s: a client that stays silent is closed with 1001 "ping timeout",
    no sooner than 3 s after its last pong, and the server says why."""
    client = make_client(await make_server(ws_ping_interval=1, ws_ping_timeout=3))
    kernel_id = await start_kernel(client)
    raw = await RawSocket.connect(client, kernel_id)
    try:
        await raw.silence_after_ping()
        handler = handler_of(client, kernel_id, raw.session)
        await bounded(
            lambda: handler.ws_connection is None or handler.ws_connection.is_closing(),
            "the server to close the silent socket",
        )
        loop = asyncio.get_running_loop()
        assert raw.silent_since is not None and loop.time() - raw.silent_since > 3
        raw.resume()
        await asyncio.wait_for(raw.closed.wait(), 30)
        assert raw.close_frame == (1001, "ping timeout")
        assert any("no answer to pings" in r.getMessage() for r in caplog.records)
    finally:
        await raw.close()


async def test_blocked_server_loop_skips_the_check(make_server, make_client) -> None:
    """Interval 1 s, timeout 3 s: the server's loop blocks for 5 s (as in a suspended machine)
    right after a pong. The ping due during the block goes out late; no pong could have come,
    so the connection is not closed: the late ping is sent and answered."""
    client = make_client(await make_server(ws_ping_interval=1, ws_ping_timeout=3))
    kernel_id = await start_kernel(client)
    raw = await RawSocket.connect(client, kernel_id)
    try:
        handler = handler_of(client, kernel_id, raw.session)
        on_pong = handler.on_pong
        stalled: list[int] = []

        def on_pong_then_stall(data: bytes) -> None:
            on_pong(data)
            handler.on_pong = on_pong  # type: ignore[method-assign]
            stalled.append(raw.pings)
            time.sleep(5)  # blocks the loop (the server's and this client's) after a pong

        handler.on_pong = on_pong_then_stall  # type: ignore[method-assign]
        await bounded(lambda: bool(stalled), "a pong and the stall")
        await bounded(lambda: raw.pings > stalled[0] or raw.closed.is_set(), "the late ping")
        assert raw.close_frame is None and not raw.closed.is_set()
        assert (await raw.kernel_info())["status"] == "ok"
    finally:
        await raw.close()


async def test_interval_zero_sends_no_pings(make_server, make_client) -> None:
    client = make_client(await make_server(ws_ping_interval=0))
    kernel_id = await start_kernel(client)
    raw = await RawSocket.connect(client, kernel_id)
    try:
        assert handler_of(client, kernel_id, raw.session).keepalive is None
        await asyncio.sleep(2.5)
        assert (await raw.kernel_info())["status"] == "ok"
        assert raw.pings == 0 and raw.close_frame is None
    finally:
        await raw.close()


async def test_timeout_zero_pings_but_never_closes(make_server, make_client) -> None:
    """Interval 1 s, timeout 0: a client silent for 5 s is pinged all along and kept."""
    client = make_client(await make_server(ws_ping_interval=1, ws_ping_timeout=0))
    kernel_id = await start_kernel(client)
    raw = await RawSocket.connect(client, kernel_id)
    try:
        await raw.silence_after_ping()
        await asyncio.sleep(5)
        resumed = raw.resume()
        await bounded(lambda: raw.pinged_after(resumed + 1.5) or raw.closed.is_set(), "a fresh ping")
        assert raw.close_frame is None and not raw.closed.is_set()
        assert (await raw.kernel_info())["status"] == "ok"
    finally:
        await raw.close()
