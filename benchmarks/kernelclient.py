"""Kernel clients for the benchmarks: the kernel websocket of a target, and direct ZMQ (the floor).

:class:`KernelSocket` speaks to ``/api/kernels/<id>/channels`` with tornado's websocket client. It
offers the ``v1.kernel.websocket.jupyter.org`` subprotocol and falls back to the legacy JSON
framing when the server does not select it. tornado's client does not set ``TCP_NODELAY``; it is
set on the underlying socket right after the handshake, so the client adds no Nagle delay.

:func:`direct_kernel` starts a kernel in the benchmark process with jupyter_client
(``AsyncKernelManager``) and yields a :class:`DirectKernel`: the same requests over ZMQ with no
server in between, made by a client exactly as lean as the websocket one. That is the floor a
websocket bridge can be compared with.

The framing is the benchmark's own (:mod:`benchmarks.framing`, a few lines) on purpose: a
benchmark of nbserver should not decode nbserver's frames with nbserver's own codec.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from .framing import V1_PROTOCOL, legacy_decode, v1_decode, v1_encode
from .targets import RunningTarget

__all__ = [
    "V1_PROTOCOL",
    "DirectKernel",
    "FloodResult",
    "KernelSocket",
    "Message",
    "direct_kernel",
    "missing_ranges",
    "received_lines",
]

KERNEL_NAME = "python3"
IDLE_GRACE_S = 10.0


class Message:
    """One received message; the JSON parts are parsed only when asked for."""

    def __init__(self, channel: str, parts: list[bytes] | None = None, msg: dict[str, Any] | None = None):
        self.channel = channel
        self._parts = parts
        self._msg = msg

    def _part(self, index: int, key: str) -> dict[str, Any]:
        if self._msg is not None:
            value = self._msg.get(key) or {}
        else:
            assert self._parts is not None
            value = json.loads(self._parts[index])
        if not isinstance(value, dict):
            raise ValueError(f"message {key} is not an object")
        return value

    @cached_property
    def header(self) -> dict[str, Any]:
        return self._part(0, "header")

    @cached_property
    def parent_header(self) -> dict[str, Any]:
        return self._part(1, "parent_header")

    @cached_property
    def content(self) -> dict[str, Any]:
        return self._part(3, "content")

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type"))

    @property
    def parent_id(self) -> str | None:
        value = self.parent_header.get("msg_id")
        return None if value is None else str(value)


def _header(msg_type: str, session: str, msg_id: str | None = None) -> dict[str, str]:
    return {
        "msg_id": msg_id or uuid.uuid4().hex,
        "msg_type": msg_type,
        "session": session,
        "username": "benchmark",
        "date": "2026-01-01T00:00:00.000000Z",
        "version": "5.3",
    }


@dataclass
class FloodResult:
    """What one execute of a printing cell produced, counted at the client."""

    seconds: float  # send -> the execute's status: idle
    messages: int  # iopub messages parented to the execute (status and execute_input included)
    stdout: list[str] = field(default_factory=list)  # the stream texts, in order
    stderr: list[str] = field(default_factory=list)  # e.g. a server's "rate exceeded" notice
    idle_lost: bool = False  # the execute_reply came but the final status: idle never did

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds

    def add(self, msg: Message) -> bool:
        """Count one iopub message of the execute; True when it is the closing ``status: idle``."""
        self.messages += 1
        if msg.msg_type == "stream":
            out = self.stdout if msg.content.get("name") == "stdout" else self.stderr
            out.append(str(msg.content.get("text", "")))
            return False
        return msg.msg_type == "status" and msg.content.get("execution_state") == "idle"


def received_lines(texts: list[str], expected: int) -> set[int]:
    """Which of the lines ``0 .. expected-1`` occur in the concatenated ``texts``."""
    seen = set()
    for line in "".join(texts).split("\n"):
        if line.isdigit():
            value = int(line)
            if value < expected:
                seen.add(value)
    return seen


def missing_ranges(seen: set[int], expected: int, limit: int = 5) -> str:
    """The first ``limit`` runs of missing lines, e.g. ``"1200-1210, 5000"``."""
    runs: list[str] = []
    start: int | None = None
    for i in range(expected + 1):
        if i < expected and i not in seen:
            start = i if start is None else start
        elif start is not None:
            runs.append(str(start) if start == i - 1 else f"{start}-{i - 1}")
            start = None
            if len(runs) == limit:
                break
    return ", ".join(runs)


class KernelSocket:
    """One websocket to ``/api/kernels/<id>/channels`` of a running target."""

    def __init__(self, conn: WebSocketClientConnection, session: str) -> None:
        self.conn = conn
        self.session = session
        self.v1 = conn.selected_subprotocol == V1_PROTOCOL

    @property
    def protocol(self) -> str:
        return "v1" if self.v1 else "legacy"

    @classmethod
    async def open(cls, target: RunningTarget, kernel_id: str, timeout: float = 60.0) -> KernelSocket:
        session = uuid.uuid4().hex
        url = f"ws://{target.host}:{target.port}/api/kernels/{kernel_id}/channels?session_id={session}"
        request = HTTPRequest(url, headers=target.headers(), connect_timeout=timeout, request_timeout=timeout)
        conn = await websocket_connect(request, subprotocols=[V1_PROTOCOL], max_message_size=64 << 20)
        stream = conn.protocol.stream if conn.protocol is not None else None
        if stream is None:
            conn.close()
            raise RuntimeError("the websocket has no stream to set TCP_NODELAY on")
        stream.set_nodelay(True)
        return cls(conn, session)

    async def send(
        self, channel: str, msg_type: str, content: dict[str, Any], msg_id: str | None = None
    ) -> str:
        """Send one message; its ``msg_id`` (``msg_id`` if given: a caller that must know the
        id before the reply can arrive picks it itself)."""
        header = _header(msg_type, self.session, msg_id)
        if self.v1:
            parts = [json.dumps(header).encode(), b"{}", b"{}", json.dumps(content).encode()]
            await self.conn.write_message(v1_encode(channel, parts), binary=True)
        else:
            msg = {
                "header": header,
                "parent_header": {},
                "metadata": {},
                "content": content,
                "channel": channel,
                "buffers": [],
            }
            await self.conn.write_message(json.dumps(msg))
        return header["msg_id"]

    async def recv(self, timeout: float = 60.0) -> Message:
        raw = await asyncio.wait_for(self.conn.read_message(), timeout)
        if raw is None:
            raise ConnectionError("the kernel websocket closed")
        if self.v1:
            if not isinstance(raw, bytes):
                raise ValueError("a text frame on a v1 websocket")
            channel, parts = v1_decode(raw)
            return Message(channel, parts=parts)
        msg, _ = legacy_decode(raw)
        return Message(str(msg.get("channel")), msg=msg)

    async def request(self, msg_type: str, content: dict[str, Any], timeout: float = 60.0) -> Message:
        """Send on shell, return the shell reply to it (other messages are skipped)."""
        msg_id = await self.send("shell", msg_type, content)
        deadline = time.monotonic() + timeout
        while True:
            msg = await self.recv(max(0.1, deadline - time.monotonic()))
            if msg.channel == "shell" and msg.parent_id == msg_id:
                return msg

    async def rtt(self, count: int) -> list[float]:
        """Milliseconds of ``count`` sequential kernel_info round trips (send -> reply)."""
        samples = []
        for _ in range(count):
            t0 = time.perf_counter()
            await self.request("kernel_info_request", {})
            samples.append((time.perf_counter() - t0) * 1000.0)
        return samples

    async def execute(self, code: str, timeout: float = 60.0) -> str:
        """Execute ``code``; return once both its ``execute_reply`` (shell) and its ``status:
        idle`` (iopub) have arrived: the reply's ``status`` (``"ok"``, ``"error"``, ...).

        Messages of other requests (another client's on the same kernel, fanned out on iopub)
        are read and skipped. Raises TimeoutError if the reply and the idle have not both
        arrived within ``timeout`` seconds, ConnectionError if the websocket closes.
        """
        msg_id = await self.send("shell", "execute_request", _execute_content(code))
        deadline = time.monotonic() + timeout
        status: str | None = None
        idle = False
        while status is None or not idle:
            try:
                msg = await self.recv(deadline - time.monotonic())
            except TimeoutError:
                missing = "no execute_reply" if status is None else "no status: idle"
                raise TimeoutError(f"execute: {missing} within {timeout:g} s") from None
            if msg.parent_id != msg_id:
                continue
            if msg.channel == "shell":
                status = str(msg.content.get("status"))
            elif msg.channel == "iopub" and msg.msg_type == "status":
                idle = idle or msg.content.get("execution_state") == "idle"
        return status

    async def drain(self, until: asyncio.Event, poll_s: float = 0.2) -> None:
        """Read and drop messages until ``until`` is set, so that the server never has to
        buffer for this client (a client that stops reading is not what is measured).
        Returns early, without raising, if the websocket closes."""
        while not until.is_set():
            try:
                await self.recv(poll_s)
            except TimeoutError:
                continue
            except ConnectionError:
                return

    async def flood(self, code: str, timeout: float = 180.0) -> FloodResult:
        """Execute ``code``; count its iopub messages until its ``status: idle``.

        A server that falls behind can lose iopub messages at the kernel's PUB high-water mark,
        the final ``idle`` included. So once the execute_reply is in, ``idle`` gets
        ``IDLE_GRACE_S`` more; without it, the time of the last message counts and
        ``idle_lost`` is set (reported, not a failure).
        """
        t0 = time.perf_counter()
        msg_id = await self.send("shell", "execute_request", _execute_content(code))
        deadline = time.monotonic() + timeout
        result = FloodResult(0.0, 0)
        replied, last = False, t0
        while True:
            try:
                msg = await self.recv(max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                if not replied:
                    raise TimeoutError(
                        f"no execute_reply within {timeout:.0f} s ({result.messages} iopub messages)"
                    ) from None
                result.seconds, result.idle_lost = last - t0, True
                return result
            if msg.parent_id != msg_id:
                continue
            last = time.perf_counter()
            if msg.channel == "shell":
                replied = True
                deadline = min(deadline, time.monotonic() + IDLE_GRACE_S)
                continue
            if msg.channel == "iopub" and result.add(msg):
                result.seconds = last - t0
                return result

    def close(self) -> None:
        """Start the closing handshake and return (prefer :meth:`aclose` in a coroutine)."""
        self.conn.close()

    async def aclose(self, timeout: float = 5.0) -> None:
        """Close the websocket and wait, at most ``timeout`` seconds, for the server's close
        frame. Messages still queued are read and dropped on the way: tornado reads nothing more
        while one message waits unread, so a client that stopped reading would never see the
        close frame, and its socket would still be open when the event loop ends. After the
        timeout the socket is closed without the handshake."""
        protocol = self.conn.protocol
        self.conn.close()
        deadline = time.monotonic() + timeout
        with contextlib.suppress(TimeoutError):
            while await asyncio.wait_for(self.conn.read_message(), max(0.0, deadline - time.monotonic())):
                pass
        stream = protocol.stream if protocol is not None else None
        if stream is not None:
            stream.close()  # a no-op once the handshake has closed it


def _execute_content(code: str) -> dict[str, Any]:
    return {
        "code": code,
        "silent": False,
        "store_history": False,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }


# --------------------------------------------------------------------------------------------
# The floor: the same requests straight over ZMQ


class DirectKernel:
    """A kernel the benchmark started itself, and two ZMQ clients of it.

    The lean client (:meth:`rtt`, :meth:`flood`) is the floor: pyzmq sockets that do what
    :class:`KernelSocket` does per message and no more. It sends the same header, signs it as
    the protocol requires (the connection file's key), and reads a reply's parts lazily, as
    :class:`Message` does for the websocket. Any difference between the two is then the server.

    jupyter_client's own client (:meth:`jupyter_client_rtt`) is there for comparison: it
    deserializes every message in full (all four JSON parts, the HMAC check, dates parsed), which
    costs it about 0.3 ms a round trip over the lean one on the 2-core reference machine.
    """

    def __init__(self, kc: Any, info: dict[str, Any]) -> None:
        import zmq
        import zmq.asyncio

        self.kc = kc
        self.session = uuid.uuid4().hex
        key = info["key"]
        self._key = key.encode() if isinstance(key, str) else bytes(key)
        self._digest = str(info.get("signature_scheme", "hmac-sha256")).removeprefix("hmac-")
        self._ctx = zmq.asyncio.Context()
        url = f"{info['transport']}://{info['ip']}:"
        self._shell = self._ctx.socket(zmq.DEALER)
        self._shell.connect(url + str(info["shell_port"]))
        self._iopub = self._ctx.socket(zmq.SUB)
        self._iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self._iopub.connect(url + str(info["iopub_port"]))
        for sock in (self._shell, self._iopub):
            sock.setsockopt(zmq.LINGER, 0)

    def close(self) -> None:
        self._shell.close()
        self._iopub.close()
        self._ctx.term()

    async def _send(self, msg_type: str, content: dict[str, Any]) -> str:
        header = _header(msg_type, self.session)
        parts = [json.dumps(header).encode(), b"{}", b"{}", json.dumps(content).encode()]
        mac = hmac.new(self._key, digestmod=self._digest)
        for part in parts:
            mac.update(part)
        await self._shell.send_multipart([b"<IDS|MSG>", mac.hexdigest().encode(), *parts])
        return header["msg_id"]

    @staticmethod
    def _message(channel: str, frames: list[bytes]) -> Message:
        return Message(channel, parts=frames[frames.index(b"<IDS|MSG>") + 2 :])

    async def rtt(self, count: int, timeout: float = 60.0) -> list[float]:
        """Milliseconds of ``count`` sequential kernel_info round trips (send -> reply). Each
        receive has a timeout, as :meth:`KernelSocket.recv` has."""
        samples = []
        for _ in range(count):
            t0 = time.perf_counter()
            msg_id = await self._send("kernel_info_request", {})
            while True:
                frames = await asyncio.wait_for(self._shell.recv_multipart(), timeout)
                if self._message("shell", frames).parent_id == msg_id:
                    break
            samples.append((time.perf_counter() - t0) * 1000.0)
        return samples

    async def jupyter_client_rtt(self, count: int, timeout: float = 60.0) -> list[float]:
        """The same round trips with jupyter_client's ``AsyncKernelClient``."""
        samples = []
        for _ in range(count):
            t0 = time.perf_counter()
            msg_id = self.kc.kernel_info()

            def is_reply(msg: dict[str, Any], msg_id: str = msg_id) -> bool:
                return bool(msg["parent_header"].get("msg_id") == msg_id)

            await _until(self.kc.get_shell_msg, is_reply, timeout)
            samples.append((time.perf_counter() - t0) * 1000.0)
        return samples

    async def subscribed(self, timeout: float = 60.0) -> None:
        """Return once the iopub subscription is in place: a SUB socket misses what is published
        before it has joined, so ask for kernel_info until its status arrives on iopub."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg_id = await self._send("kernel_info_request", {})
            with contextlib.suppress(asyncio.TimeoutError):
                while True:
                    frames = await asyncio.wait_for(self._iopub.recv_multipart(), 0.5)
                    if self._message("iopub", frames).parent_id == msg_id:
                        return
        raise TimeoutError(f"no iopub message from the floor kernel within {timeout:.0f} s")

    async def flood(self, code: str, timeout: float = 180.0) -> FloodResult:
        """Execute ``code``; count its iopub messages until its ``status: idle``."""
        t0 = time.perf_counter()
        msg_id = await self._send("execute_request", _execute_content(code))
        deadline = time.monotonic() + timeout
        result = FloodResult(0.0, 0)
        while True:
            try:
                frames = await asyncio.wait_for(
                    self._iopub.recv_multipart(), max(0.1, deadline - time.monotonic())
                )
            except asyncio.TimeoutError:
                raise TimeoutError(
                    f"no status: idle within {timeout:.0f} s ({result.messages} messages)"
                ) from None
            msg = self._message("iopub", frames)
            if msg.parent_id == msg_id and result.add(msg):
                result.seconds = time.perf_counter() - t0
                return result


@contextlib.asynccontextmanager
async def direct_kernel(timeout: float = 60.0) -> AsyncIterator[DirectKernel]:
    """Start a kernel in this process with ``AsyncKernelManager``; yield its clients, ready.

    The kernel runs in a temporary directory with its connection file there; on exit, also
    after errors, the clients are closed and the kernel is killed at once (``now=True``: its
    shutdown is not measured, and a graceful one costs about a second).
    """
    from jupyter_client.manager import AsyncKernelManager

    with tempfile.TemporaryDirectory(prefix="nbbench-direct-") as tmp:
        km = AsyncKernelManager(kernel_name=KERNEL_NAME, connection_file=str(Path(tmp) / "kernel.json"))
        with open(Path(tmp) / "kernel.log", "wb") as log:  # keeps the kernel's warnings off our stderr
            await km.start_kernel(cwd=tmp, stdout=log, stderr=log)
        kc = km.client()
        direct: DirectKernel | None = None
        try:
            kc.start_channels(hb=False)
            await kc.wait_for_ready(timeout=timeout)
            direct = DirectKernel(kc, dict(km.get_connection_info()))
            await direct.subscribed(timeout)
            yield direct
        finally:
            if direct is not None:
                direct.close()
            kc.stop_channels()
            await km.shutdown_kernel(now=True)


async def _until(get: Callable[..., Any], match: Callable[[dict[str, Any]], bool], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        msg = await get(timeout=max(0.1, deadline - time.monotonic()))
        if match(msg):
            return msg
