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
  Who is attached, and what is kept for clients that are away, is :mod:`.clients`' business.

Restarts. PUB/SUB drops whatever a kernel publishes before our subscription reaches it, and a
restarted kernel is a new publisher. :meth:`KernelChannels.kernel_info` is the proof that output
reaches us: a ``kernel_info_request`` answered on shell AND an iopub message caused by that very
request. While a restart waits for that proof, :meth:`KernelChannels.hold` keeps clients'
messages back (in order; the server's own requests still go), so that a client's first cell does
not run before its output can be seen; :meth:`KernelChannels.release` sends them.

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
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...protocol import ProtocolError
from ...protocol.wire import Signer, new_message, split, string_field
from .clients import Client, ClientTable, ReplayBuffer

if TYPE_CHECKING:  # zmq is imported when the first kernel starts, not at server start-up
    import zmq

__all__ = ["CHANNELS", "ChannelsClosed", "ChannelsState", "KernelChannels", "endpoint"]

log = logging.getLogger("nbserver.kernel")

CHANNELS = ("shell", "control", "stdin", "iopub")
_ROUTES_KEPT = 65536  # msg_id -> session entries remembered for routing replies
_DRAIN_BATCH = 64  # messages read from one socket before other work gets a turn
# libzmq's ZMQ_DONTWAIT, ZMQ_SNDMORE, ZMQ_EVENTS and ZMQ_POLLIN as plain ints: pyzmq's enum
# flags cost a microsecond or two an operation, and a message is 7 frames
_NOBLOCK, _SNDMORE, _EVENTS, _POLLIN = 1, 2, 15, 1
_ZERO_COPY = 65536  # frames at least this big are sent without a copy (pyzmq's threshold)


class ChannelsState(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class ChannelsClosed(RuntimeError):
    """An operation on a bridge whose kernel has stopped."""


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

    ``clients`` and ``buffers`` are those of its :class:`~.clients.ClientTable` (``table``).
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
        self.table = ClientTable(replay_bytes, replay_seconds)
        key = info.get("key") or b""
        self._signer = Signer(
            key if isinstance(key, bytes) else str(key).encode(), info.get("signature_scheme", "hmac-sha256")
        )
        self._identity = uuid.uuid4().hex.encode()
        self._sockets: dict[str, zmq.Socket[bytes]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: set[str] = set()  # channels with a drain scheduled (call_soon)
        self.state = ChannelsState.NEW
        self._routes: OrderedDict[str, str] = OrderedDict()
        self._waiters: dict[str, asyncio.Future[list[bytes]]] = {}
        #: iopub messages awaited by the parent's msg_id (:meth:`kernel_info`)
        self._echoes: dict[str, asyncio.Future[None]] = {}
        self._held: list[tuple[str, list[bytes]]] | None = None  # see hold()
        self._internal_session = "nbserver-" + uuid.uuid4().hex[:8]
        #: set once the stdin socket's handshake with the kernel is done: before that, the
        #: kernel's ROUTER drops an input_request addressed to us (a cell calling input()
        #: right after start-up would hang); the shell socket answering proves nothing of it
        self.stdin_linked = asyncio.Event()
        self._monitor: tuple[zmq.Socket[bytes], zmq.Socket[bytes]] | None = None

    @property
    def internal_session(self) -> str:
        """The session of the server's own requests (:meth:`request`), e.g. readiness probes."""
        return self._internal_session

    @property
    def clients(self) -> dict[str, Client]:
        return self.table.clients

    @property
    def buffers(self) -> dict[str, ReplayBuffer]:
        return self.table.buffers

    # -- life cycle ------------------------------------------------------------------------------

    def open(self) -> None:
        """Connect the four sockets and start reading; ``NEW`` -> ``OPEN`` (``CLOSED`` if
        that fails: the error is raised)."""
        if self.state is not ChannelsState.NEW:
            raise ChannelsClosed(f"open: channels are {self.state.value}")
        try:
            self._connect()
        except BaseException:  # e.g. "too many open files": no socket is left behind
            self._disconnect()
            self.state = ChannelsState.CLOSED
            raise
        self.state = ChannelsState.OPEN

    def _connect(self) -> None:
        import zmq

        self._loop = loop = asyncio.get_running_loop()
        for channel in CHANNELS:
            kind = zmq.SUB if channel == "iopub" else zmq.DEALER
            # plain sockets, read by _drain when their FD signals: no future, task or poller
            # round per message (zmq.asyncio costs about as much as all the forwarding)
            sock: zmq.Socket[bytes] = zmq.Socket(self._context, kind)
            self._sockets[channel] = sock  # from here on, _disconnect() closes it
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
        self._connect()

    def close(self) -> None:
        """Stop reading, close sockets, fail pending internal requests, tell attached clients
        (:meth:`Client.kernel_stopped`), forget detached ones; ``-> CLOSED``."""
        if self.state is ChannelsState.CLOSED:
            return
        self.state = ChannelsState.CLOSED
        self._disconnect()
        futures: list[asyncio.Future[Any]] = [*self._waiters.values(), *self._echoes.values()]
        for future in futures:
            if not future.done():
                future.set_exception(ChannelsClosed("the kernel's channels closed"))
        self._waiters.clear()
        self._echoes.clear()
        self._held = None
        self.table.stopped()

    # -- clients ---------------------------------------------------------------------------------

    def client(self, session_id: str) -> Client | None:
        """The client attached with ``session_id`` (live, or held while its predecessor's
        messages settle), if any."""
        return self.table.get(session_id)

    def attach(self, client: Client) -> int:
        """Attach ``client`` (:meth:`.ClientTable.attach`). Raises ChannelsClosed once the kernel
        has stopped."""
        if self.state is ChannelsState.CLOSED:
            raise ChannelsClosed("attach: the kernel has stopped")
        return self.table.attach(client)

    def detach(self, client: Client, *, unsettled: bool = False) -> None:
        """The client's websocket closed: keep its messages until it comes back
        (:meth:`.ClientTable.detach`; nothing is kept once the kernel has stopped)."""
        self.table.detach(client, unsettled=unsettled, keep=self.state is not ChannelsState.CLOSED)

    def requeue(self, session_id: str, unsent: Sequence[tuple[str, list[bytes]]]) -> None:
        """Messages a detached client never received, back in front (:meth:`.ClientTable.requeue`)."""
        self.table.requeue(session_id, unsent)

    def keep(self, session_id: str, channel: str, parts: list[bytes]) -> None:
        """Put a message in a detached session's replay buffer (if it has one)."""
        self.table.keep(session_id, channel, parts)

    def deliver_to(self, session_id: str, channel: str, parts: list[bytes]) -> None:
        """A message of the server's own for one session, in order with the kernel's: to its
        client now, or kept while that client is away or held."""
        self.table.deliver_to(session_id, channel, parts)

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
        frames = self._signer.frames(parts)
        if self._held is not None:
            self._held.append((channel, frames))
            return
        self._send(channel, frames)

    @property
    def holding(self) -> bool:
        return self._held is not None

    def hold(self) -> None:
        """From now on clients' messages wait, in order, instead of going to the kernel, until
        :meth:`release` (the server's own requests still go). Holding twice is holding once."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """Send the held messages, oldest first, and stop holding."""
        held, self._held = self._held, None
        if held and self.state is ChannelsState.OPEN:
            for channel, frames in held:
                self._send(channel, frames)

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
        msg_id, parts = new_message(msg_type, content, self._internal_session)
        reply = await self._request(channel, msg_id, parts, timeout)
        result: dict[str, Any] = json.loads(reply[3])
        return result

    async def kernel_info(self, timeout: float) -> bool:
        """Ask ``kernel_info_request`` on shell, as the server. True once its reply AND an iopub
        message caused by it (its ``busy`` or ``idle`` status) have arrived within ``timeout``:
        the kernel process answering now publishes to our subscription, so whatever it
        publishes from now on reaches us. False when only the reply came (the subscription is
        not in place yet: ask again). Raises TimeoutError (no reply), ChannelsClosed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        msg_id, parts = new_message("kernel_info_request", {}, self._internal_session)
        echo: asyncio.Future[None] = loop.create_future()
        self._echoes[msg_id] = echo
        try:
            await self._request("shell", msg_id, parts, timeout)
            if not echo.done():
                await asyncio.wait_for(echo, max(0.0, deadline - loop.time()))
            return True
        except asyncio.TimeoutError:
            if echo.cancelled():  # the reply came, its iopub did not
                return False
            raise
        finally:
            self._echoes.pop(msg_id, None)
            if echo.done() and not echo.cancelled():
                echo.exception()  # retrieved: close() may have failed it while we waited

    async def _request(self, channel: str, msg_id: str, parts: list[bytes], timeout: float) -> list[bytes]:
        if self.state is not ChannelsState.OPEN:
            raise ChannelsClosed(f"request: channels are {self.state.value}")
        future: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()
        self._waiters[msg_id] = future
        try:
            self._send(channel, self._signer.frames(parts))
            return await asyncio.wait_for(future, timeout)
        finally:
            self._waiters.pop(msg_id, None)

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
            if self._echoes:
                echo = self._echoes.get(string_field(parts[1], "msg_id") or "")
                if echo is not None and not echo.done():
                    echo.set_result(None)
            if self.on_iopub is not None:
                self.on_iopub(string_field(parts[0], "msg_type") or "", parts[1], parts[3])
            self.table.fan_out(channel, parts)
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
        if session is not None:
            self.table.deliver_to(session, channel, parts)

    def broadcast_status(self, execution_state: str) -> None:
        """Tell every client the kernel is ``restarting`` or ``dead`` (an iopub status the
        server makes, as jupyter_server does; the kernel cannot send it itself)."""
        _, parts = new_message("status", {"execution_state": execution_state}, self._internal_session)
        self.table.fan_out("iopub", parts)


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
