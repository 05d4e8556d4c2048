"""The bridge between one kernel's ZMQ sockets and any number of websocket clients.

Theory of operation
-------------------
Each kernel gets ONE connection set, opened when the kernel starts and kept until it stops:
shell, control and stdin DEALER sockets (shell and stdin share a ZMQ identity, because the kernel
sends ``input_request`` to the identity that sent the execute request) and an iopub SUB socket.
Opening them once, before any browser connects, means the SUB socket's subscription is in place
long before output matters (ZMQ's "slow joiner" problem hits per-connection designs).

Clients are identified by the ``session_id`` of their websocket URL. Messages flow:

- client -> kernel: the client's parts are signed with the kernel's key and sent on the named
  channel; the request's ``msg_id`` is remembered with the client's session.
- kernel -> client: iopub goes to every attached client; shell/control/stdin replies go only to
  the client whose request they answer (found by the parent's ``msg_id``, else its ``session``).
  Parts are forwarded as received: no JSON is parsed except the small headers needed to route.

When a client detaches (its websocket closed), messages meant for it are kept in a
:class:`ReplayBuffer` bounded in bytes and age; when a client with the same ``session_id``
attaches again, the buffer is replayed in order before live messages. Attach, replay and detach
happen synchronously on the event loop, so no message can slip between replay and live delivery.

States (:class:`ChannelsState`): ``NEW`` -> ``OPEN`` (sockets connected) -> ``CLOSED``;
``reconnect`` keeps the state ``OPEN``. Sending or attaching on a closed bridge raises
:class:`ChannelsClosed` naming the operation.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import json
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ...protocol import ProtocolError
from ...protocol.wire import Signer, new_message, split, string_field

if TYPE_CHECKING:  # zmq is imported when the first kernel starts, not at server start-up
    import zmq

__all__ = [
    "CHANNELS",
    "ChannelsClosed",
    "ChannelsState",
    "Client",
    "KernelChannels",
    "ReplayBuffer",
    "endpoint",
]

log = logging.getLogger("nbserver.kernel")

CHANNELS = ("shell", "control", "stdin", "iopub")
_ROUTES_KEPT = 65536  # msg_id -> session entries remembered for routing replies
_DRAIN_BATCH = 64  # messages read from one socket before other work gets a turn
# libzmq's ZMQ_DONTWAIT, ZMQ_SNDMORE, ZMQ_EVENTS and ZMQ_POLLIN as plain ints: pyzmq's enum
# flags cost a microsecond or two an operation, and a message is 7 frames
_NOBLOCK, _SNDMORE, _EVENTS, _POLLIN = 1, 2, 15, 1
_ZERO_COPY = 65536  # frames at least this big are sent without a copy (pyzmq's threshold)


class Client(Protocol):
    """A websocket (or test) client attached to a kernel."""

    session_id: str

    def deliver(self, channel: str, parts: list[bytes]) -> None:
        """Queue a message for the client. Must not block; may drop (and say so) when the
        client cannot keep up."""

    def kernel_stopped(self) -> None:
        """The kernel is gone (shut down or dead for good): disconnect."""


class ChannelsState(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class ChannelsClosed(RuntimeError):
    """An operation on a bridge whose kernel has stopped."""


class ReplayBuffer:
    """Messages kept for a disconnected client: at most ``max_bytes``, none older than
    ``max_age`` seconds (oldest dropped first; ``dropped`` counts them)."""

    def __init__(self, max_bytes: int, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.clock = clock
        self.since = clock()
        self.size = 0
        self.dropped = 0
        self._items: deque[tuple[float, str, list[bytes], int]] = deque()

    def append(self, channel: str, parts: list[bytes]) -> None:
        now = self.clock()
        size = sum(len(p) for p in parts)
        self._items.append((now, channel, parts, size))
        self.size += size
        self._trim(now)

    def _trim(self, now: float) -> None:
        items = self._items
        while items and (self.size > self.max_bytes or now - items[0][0] > self.max_age):
            _, _, _, size = items.popleft()
            self.size -= size
            self.dropped += 1

    def prepend(self, items: Sequence[tuple[str, list[bytes]]]) -> None:
        """Put older messages in front, keeping their order."""
        now = self.clock()
        for channel, parts in reversed(items):
            size = sum(len(p) for p in parts)
            self._items.appendleft((now, channel, parts, size))
            self.size += size
        self._trim(now)

    def expired(self) -> bool:
        """True once the client has been gone longer than ``max_age``: forget it."""
        return self.clock() - self.since > self.max_age

    def drain(self) -> list[tuple[str, list[bytes]]]:
        self._trim(self.clock())
        items = [(channel, parts) for _, channel, parts, _ in self._items]
        self._items.clear()
        self.size = 0
        return items

    def __len__(self) -> int:
        return len(self._items)


def endpoint(info: dict[str, Any], channel: str) -> str:
    """The ZMQ address of ``channel`` (``shell``, ``iopub``...) in connection info ``info``."""
    port = info[f"{channel}_port"]
    if info.get("transport", "tcp") == "ipc":
        return f"ipc://{info['ip']}-{port}"
    ip = info["ip"]
    return f"tcp://{'[' + ip + ']' if ':' in ip else ip}:{port}"


class KernelChannels:
    """One kernel's ZMQ sockets and the clients attached to them.

    Args:
        info: the kernel's connection info (``ip``, ``transport``, ``*_port``, ``key``,
            ``signature_scheme``).
        context: the ZMQ context to open sockets in (any ``zmq.Context``; the sockets are
            plain ones, read when the loop sees their FD readable).
        on_iopub: called with ``(msg_type, parent_header bytes, content bytes)`` for every iopub message
            before it is fanned out (the kernel manager tracks state and activity with it).
        replay_bytes, replay_seconds: bounds of each disconnected client's replay buffer.
    """

    def __init__(
        self,
        info: dict[str, Any],
        *,
        context: zmq.Context[Any],
        on_iopub: Callable[[str, bytes, bytes], None] | None = None,
        replay_bytes: int = 64 * 1024 * 1024,
        replay_seconds: float = 600.0,
    ) -> None:
        self.info = dict(info)
        self._context = context
        self.on_iopub = on_iopub
        self._replay_bytes = replay_bytes
        self._replay_seconds = replay_seconds
        key = info.get("key") or b""
        self._signer = Signer(
            key if isinstance(key, bytes) else str(key).encode(), info.get("signature_scheme", "hmac-sha256")
        )
        self._identity = uuid.uuid4().hex.encode()
        self._sockets: dict[str, zmq.Socket[bytes]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: set[str] = set()  # channels with a drain scheduled (call_soon)
        self.state = ChannelsState.NEW
        self.clients: dict[str, Client] = {}
        self.buffers: dict[str, ReplayBuffer] = {}
        self._routes: OrderedDict[str, str] = OrderedDict()
        self._waiters: dict[str, asyncio.Future[list[bytes]]] = {}
        self._internal_session = "nbserver-" + uuid.uuid4().hex[:8]
        #: set by every iopub message: proof that the SUB subscription reached the kernel
        self.iopub_seen = asyncio.Event()
        #: set once the stdin socket's handshake with the kernel is done: before that, the
        #: kernel's ROUTER drops an input_request addressed to us (a cell calling input()
        #: right after start-up would hang); the shell socket answering proves nothing of it
        self.stdin_linked = asyncio.Event()
        self._monitor: tuple[zmq.Socket[bytes], zmq.Socket[bytes]] | None = None

    @property
    def internal_session(self) -> str:
        """The session of the server's own requests (:meth:`request`), e.g. readiness probes."""
        return self._internal_session

    # -- life cycle ------------------------------------------------------------------------------

    def open(self) -> None:
        """Connect the four sockets and start reading; ``NEW`` -> ``OPEN``."""
        if self.state is not ChannelsState.NEW:
            raise ChannelsClosed(f"open: channels are {self.state.value}")
        self._connect()
        self.state = ChannelsState.OPEN

    def _connect(self) -> None:
        import zmq

        self._loop = loop = asyncio.get_running_loop()
        for channel in CHANNELS:
            kind = zmq.SUB if channel == "iopub" else zmq.DEALER
            # plain sockets, read by _drain when their FD signals: no future, task or poller
            # round per message (zmq.asyncio costs about as much as all the forwarding)
            sock: zmq.Socket[bytes] = zmq.Socket(self._context, kind)
            sock.linger = 0
            # No receive high-water mark: with ZMQ's default (1,000 messages), a burst of output
            # while the event loop is busy (replaying to a reconnected client, say) fills our
            # queue, and the kernel's PUB socket then DROPS messages. Unread messages wait in
            # this process instead; what is kept for clients is bounded elsewhere.
            sock.setsockopt(zmq.RCVHWM, 0)
            if channel == "iopub":
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            else:
                # nor a send one: a non-blocking send then never fails (connect() makes the
                # pipe at once), requests wait in ZMQ until the kernel reads them
                sock.setsockopt(zmq.SNDHWM, 0)
                if channel in ("shell", "stdin"):
                    sock.setsockopt(zmq.IDENTITY, self._identity)
            if channel == "stdin":
                self._watch_handshake(sock)
            sock.connect(endpoint(self.info, channel))
            self._sockets[channel] = sock
            loop.add_reader(sock.FD, self._drain, channel)
            self._schedule_drain(channel)  # the FD is edge-triggered: look once from the start

    def _watch_handshake(self, sock: zmq.Socket[bytes]) -> None:
        """Watch ``sock`` (stdin) with a ZMQ socket monitor until its handshake succeeds, then
        set :attr:`stdin_linked`."""
        import zmq

        self.stdin_linked.clear()
        address = f"inproc://nbserver-monitor-{uuid.uuid4().hex}"
        sock.monitor(address, getattr(zmq, "EVENT_HANDSHAKE_SUCCEEDED", zmq.EVENT_CONNECTED))
        monitor: zmq.Socket[bytes] = zmq.Socket(self._context, zmq.PAIR)
        monitor.linger = 0
        monitor.connect(address)
        self._monitor = (sock, monitor)
        assert self._loop is not None
        self._loop.add_reader(monitor.FD, self._check_monitor)
        self._loop.call_soon(self._check_monitor)

    def _check_monitor(self) -> None:
        if self._monitor is None:
            return
        if recv_multipart(self._monitor[1]) is not None:  # the one event it reports
            self._stop_monitor()
            self.stdin_linked.set()

    def _stop_monitor(self) -> None:
        if self._monitor is None:
            return
        sock, monitor = self._monitor
        self._monitor = None
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(monitor.FD)
        if not sock.closed:
            sock.disable_monitor()
        monitor.close(linger=0)

    def _disconnect(self) -> None:
        self._stop_monitor()
        for sock in self._sockets.values():
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock.FD)
            sock.close(linger=0)
        self._sockets.clear()
        self._draining.clear()

    def reconnect(self, info: dict[str, Any]) -> None:
        """Point the sockets at new connection info (a restarted kernel on new ports);
        clients stay attached."""
        if self.state is ChannelsState.CLOSED:
            raise ChannelsClosed("reconnect: channels are closed")
        self.info = dict(info)
        self._disconnect()
        self.iopub_seen.clear()
        self._connect()

    def close(self) -> None:
        """Stop reading, close sockets, fail pending internal requests, tell attached clients
        (:meth:`Client.kernel_stopped`), forget detached ones; ``-> CLOSED``."""
        if self.state is ChannelsState.CLOSED:
            return
        self.state = ChannelsState.CLOSED
        self._disconnect()
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(ChannelsClosed("the kernel's channels closed"))
        self._waiters.clear()
        self.buffers.clear()
        for client in list(self.clients.values()):
            client.kernel_stopped()

    # -- clients ---------------------------------------------------------------------------------

    def attach(self, client: Client) -> int:
        """Attach ``client``; replay what was kept for its session first. Returns the number of
        replayed messages. A client already attached with the same session is replaced."""
        if self.state is ChannelsState.CLOSED:
            raise ChannelsClosed("attach: the kernel has stopped")
        buffer = self.buffers.pop(client.session_id, None)
        replayed = 0
        if buffer is not None:
            if buffer.dropped:
                log.warning(
                    "Replay for session %s lost %d old messages (limits: %d bytes, %.0f s)",
                    client.session_id,
                    buffer.dropped,
                    buffer.max_bytes,
                    buffer.max_age,
                )
            for channel, parts in buffer.drain():
                client.deliver(channel, parts)
                replayed += 1
        self.clients[client.session_id] = client
        return replayed

    def detach(self, client: Client) -> None:
        """The client's websocket closed: keep its messages until it comes back."""
        if self.clients.get(client.session_id) is not client:
            return  # already replaced by a newer connection of the same session
        del self.clients[client.session_id]
        if self.state is not ChannelsState.CLOSED:
            self.buffers[client.session_id] = ReplayBuffer(self._replay_bytes, self._replay_seconds)

    def requeue(self, session_id: str, unsent: Sequence[tuple[str, list[bytes]]]) -> None:
        """Messages a detached client was handed but never received go back in front of its
        replay buffer, oldest first. (Should the client be back already, they are delivered to
        it at once, out of order; in practice a reconnect takes a full handshake, far longer
        than the writes take to settle.)"""
        buffer = self.buffers.get(session_id)
        if buffer is not None:
            buffer.prepend(unsent)
            return
        client = self.clients.get(session_id)
        if client is not None:
            for channel, parts in unsent:
                client.deliver(channel, parts)

    def keep(self, session_id: str, channel: str, parts: list[bytes]) -> None:
        """Put a message in a detached session's replay buffer (if it has one)."""
        buffer = self.buffers.get(session_id)
        if buffer is not None:
            buffer.append(channel, parts)

    @property
    def buffered_sessions(self) -> int:
        return len(self.buffers)

    # -- client -> kernel ------------------------------------------------------------------------

    def send(self, session_id: str, channel: str, parts: list[bytes]) -> None:
        """Sign and send a client's message. Raises ProtocolError for an unknown channel or a
        header without ``msg_id``; ChannelsClosed when the kernel has stopped."""
        if self.state is not ChannelsState.OPEN:
            raise ChannelsClosed(f"send: channels are {self.state.value}")
        if channel not in ("shell", "control", "stdin"):
            raise ProtocolError(f"cannot send on channel {channel!r}")
        msg_id = string_field(parts[0], "msg_id")
        if msg_id is None:
            raise ProtocolError("message header has no msg_id")
        self._remember(msg_id, session_id)
        self._send(channel, self._signer.frames(parts))

    def _send(self, channel: str, frames: list[bytes]) -> None:
        import zmq

        sock = self._sockets[channel]
        try:
            send_multipart(sock, frames)
        except zmq.Again:  # pragma: no cover - no send high-water mark, a connect()ed pipe
            raise ChannelsClosed(f"send: the kernel's {channel} socket refuses messages") from None
        # A send may consume the FD's edge for a reply that is already in: look again.
        if _readable(sock):
            self._schedule_drain(channel)

    def _remember(self, msg_id: str, session_id: str) -> None:
        routes = self._routes
        routes[msg_id] = session_id
        if len(routes) > _ROUTES_KEPT:
            routes.popitem(last=False)

    async def request(
        self, channel: str, msg_type: str, content: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """Send a request of the server's own and await its reply's content (not forwarded to
        clients). Raises TimeoutError, ChannelsClosed."""
        if self.state is not ChannelsState.OPEN:
            raise ChannelsClosed(f"request: channels are {self.state.value}")
        msg_id, parts = new_message(msg_type, content, self._internal_session)
        future: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()
        self._waiters[msg_id] = future
        try:
            self._send(channel, self._signer.frames(parts))
            reply = await asyncio.wait_for(future, timeout)
        finally:
            self._waiters.pop(msg_id, None)
        result: dict[str, Any] = json.loads(reply[3])
        return result

    # -- kernel -> clients -----------------------------------------------------------------------

    def _schedule_drain(self, channel: str) -> None:
        if channel not in self._draining and self._loop is not None:
            self._draining.add(channel)
            self._loop.call_soon(self._drain, channel)

    def _drain(self, channel: str) -> None:
        """Read and dispatch what ``channel`` has, up to :data:`_DRAIN_BATCH` messages (then
        yield to the loop and come back: other sockets and clients get their turn)."""
        import zmq

        self._draining.discard(channel)
        sock = self._sockets.get(channel)
        if sock is None:  # closed or reconnected since this was scheduled
            return
        for _ in range(_DRAIN_BATCH):
            try:
                frames = recv_multipart(sock)
            except zmq.ZMQError as exc:
                log.warning("Reading %s failed: %s", channel, exc)
                return
            if frames is None:
                return
            try:
                self._dispatch(channel, frames)
            except ProtocolError as exc:
                log.warning("Dropped a malformed %s message from the kernel: %s", channel, exc)
            except Exception:
                log.exception("Failed to forward a %s message", channel)
            if self._sockets.get(channel) is not sock:  # a client's reaction closed the bridge
                return
            if not _readable(sock):  # asking costs less than the zmq.Again of a recv
                return
        self._schedule_drain(channel)

    def _dispatch(self, channel: str, frames: list[bytes]) -> None:
        _, _, parts = split(frames)
        if channel == "iopub":
            self.iopub_seen.set()
            if self.on_iopub is not None:
                self.on_iopub(string_field(parts[0], "msg_type") or "", parts[1], parts[3])
            # the buffers as they were before delivery: a client found closing in deliver()
            # detaches and keeps this message in its new buffer itself; once is enough
            buffers = list(self.buffers.items())
            for attached in list(self.clients.values()):
                attached.deliver(channel, parts)
            for gone, buffer in buffers:
                if buffer.expired():
                    del self.buffers[gone]
                else:
                    buffer.append(channel, parts)
            return
        parent_id = string_field(parts[1], "msg_id")
        waiter = self._waiters.get(parent_id) if parent_id is not None else None
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(parts)
            return
        session = self._routes.get(parent_id) if parent_id is not None else None
        if session is None:
            session = string_field(parts[1], "session")
        if session is None:
            return
        client = self.clients.get(session)
        if client is not None:
            client.deliver(channel, parts)
        elif session in self.buffers:
            self.buffers[session].append(channel, parts)

    def broadcast_status(self, execution_state: str) -> None:
        """Tell every client the kernel is ``restarting`` or ``dead`` (an iopub status the
        server makes, as jupyter_server does; the kernel cannot send it itself)."""
        _, parts = new_message("status", {"execution_state": execution_state}, self._internal_session)
        buffers = list(self.buffers.values())  # before delivery, as in _dispatch
        for client in list(self.clients.values()):
            client.deliver("iopub", parts)
        for buffer in buffers:
            buffer.append("iopub", parts)


@functools.cache
def _backend() -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any], type[Exception]]:
    """pyzmq's Cython ``send``, ``recv`` and ``get`` (below the Python layer of ``zmq.Socket``),
    and ``zmq.Again``."""
    import zmq
    import zmq.backend

    assert (zmq.NOBLOCK, zmq.SNDMORE, zmq.EVENTS, zmq.POLLIN) == (_NOBLOCK, _SNDMORE, _EVENTS, _POLLIN)
    return zmq.backend.Socket.send, zmq.backend.Socket.recv, zmq.backend.Socket.get, zmq.Again


def _readable(sock: zmq.Socket[bytes]) -> bool:
    """Whether a message is waiting (asking also resets the socket's edge-triggered FD)."""
    return bool(_backend()[2](sock, _EVENTS) & _POLLIN)


def send_multipart(sock: zmq.Socket[bytes], frames: Sequence[bytes]) -> None:
    """``sock.send_multipart(frames, NOBLOCK)`` in a third of the time: pyzmq's version checks
    every frame's type and combines enum flags per frame; these frames are bytes. Raises
    ``zmq.Again`` as it does."""
    send = _backend()[0]
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        send(sock, frame, _NOBLOCK if i == last else _NOBLOCK | _SNDMORE, copy=len(frame) < _ZERO_COPY)


def recv_multipart(sock: zmq.Socket[bytes]) -> list[bytes] | None:
    """``sock.recv_multipart(NOBLOCK)``, or ``None`` when nothing is waiting. Each part is taken
    as a ``zmq.Frame``, whose ``more`` says whether another follows: asking the socket for
    RCVMORE instead costs an enum conversion a part in pyzmq. A wake-up of the socket's FD
    almost always has a message waiting, so this tries to take one rather than asking first;
    the ``zmq.Again`` of a wake-up with none resets the FD's edge just as asking does."""
    _, recv, _, again = _backend()
    try:
        frame = recv(sock, _NOBLOCK, copy=False)
    except again:
        return None
    frames = [frame.bytes]
    while frame.more:
        frame = recv(sock, _NOBLOCK, copy=False)
        frames.append(frame.bytes)
    return frames
