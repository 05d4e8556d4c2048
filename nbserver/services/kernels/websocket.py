"""``/api/kernels/{kernel_id}/channels``: one browser's websocket to a kernel.

The handler is a :class:`~nbserver.services.kernels.channels.Client`: it attaches to the
kernel's shared channels, turns frames into message parts (v1 or legacy framing, chosen by
subprotocol negotiation) and back, and bounds what it has queued for a slow browser.

Slow clients: every frame written is counted until tornado has flushed it. When more than
``client_buffer_bytes`` are pending, further output messages for this client are dropped
(never for others; replies, input requests, status and comm messages are always delivered).
Once it has caught up it gets ONE iopub ``stream`` message on stderr saying how many were
dropped (one notice per cell; ``dropped_messages`` in the kernel model counts them all).
There is no message-rate limit unless ``iopub_msg_rate_limit`` /
``iopub_data_rate_limit`` are set (jupyter_server's options, off by default here); ``comm_msg``
traffic is never rate-limited.

On connect the client first gets what was kept for its ``session_id`` while it was away (see
:mod:`.channels`), then its "nudge": one iopub ``status`` message with the kernel's current
``execution_state`` (``starting``, ``idle`` or ``busy``), so a page's kernel indicator is right
before it asks anything. It is a complete Jupyter message made by the server (header with
``msg_id``, ``msg_type`` "status", the server's ``session``, ``username``, ``date``, ``version``;
an empty ``parent_header``, which no client takes for the end of one of its requests; empty
``metadata``). It comes after the replay: the replay is the past, the nudge is the present, so
a client's last word on the state is the current one even when the replay lost old messages.
jupyter_server's clients see the kernel's own ``status`` messages of the ``kernel_info_request``
it sends on connecting; nbserver sends no request (its channels are shared and long proven), and
no nudge while the kernel is ``restarting`` or ``dead`` (JupyterLab reconnects on ``restarting``,
and those states are announced when they happen).

Malformed frames from the browser (bad offsets, invalid JSON, unknown channel) are dropped with
a logged reason; the connection and the kernel's other clients carry on. Frames over
``max_ws_message_size`` close the connection with code 1009 (tornado enforces it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from typing import Any

from tornado.websocket import WebSocketClosedError

from ...context import ServerContext
from ...protocol import ProtocolError, legacy, v1
from ...protocol.wire import new_message, string_field
from ...web import Access
from ...websocket import AuthenticatedWebSocket
from .channels import ChannelsClosed
from .manager import Kernel, KernelManager

__all__ = ["KernelWebSocket"]

log = logging.getLogger("nbserver.kernel")

_RATE_EXEMPT = frozenset({"status", "comm_open", "comm_msg", "comm_close", "execute_input"})
_NUDGE_STATES = frozenset({"starting", "idle", "busy"})  # states a kernel reports itself


class RateLimit:
    """jupyter_server's optional iopub limits: messages/s and stream bytes/s over a window."""

    def __init__(self, msg_rate: float, data_rate: float, window: float) -> None:
        self.msg_rate = msg_rate
        self.data_rate = data_rate
        self.window = window
        self._events: deque[tuple[float, int]] = deque()
        self._bytes = 0
        self.limited = False

    @property
    def active(self) -> bool:
        return self.msg_rate > 0 or self.data_rate > 0

    def allow(self, size: int) -> bool:
        now = time.monotonic()
        events = self._events
        events.append((now, size))
        self._bytes += size
        while events and now - events[0][0] > self.window:
            self._bytes -= events.popleft()[1]
        msg_rate, data_rate = len(events) / self.window, self._bytes / self.window
        over = (self.msg_rate > 0 and msg_rate > self.msg_rate) or (
            self.data_rate > 0 and data_rate > self.data_rate
        )
        under = (self.msg_rate <= 0 or msg_rate < 0.8 * self.msg_rate) and (
            self.data_rate <= 0 or data_rate < 0.8 * self.data_rate
        )
        if over:
            self.limited = True
        elif self.limited and under:
            self.limited = False
        return not self.limited


def _notice(text: str, parent_header: bytes = b"{}") -> list[bytes]:
    return new_message("stream", {"name": "stderr", "text": text}, "nbserver", parent_header)[1]


class KernelWebSocket(AuthenticatedWebSocket):
    access = Access.USER

    kernel: Kernel
    session_id: str

    def initialize(self, ctx: ServerContext, kernels: KernelManager) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.kernels = kernels
        self.v1 = False
        self._pending = 0
        self._inflight: deque[tuple[str, list[bytes], Any]] = deque()
        self._dropped = 0
        self._dropping = False
        self._drop_parent = b"{}"
        self._noticed_parent: bytes | None = None
        cfg = ctx.config
        self._rate = RateLimit(cfg.iopub_msg_rate_limit, cfg.iopub_data_rate_limit, cfg.rate_limit_window)
        self._rate_dropped = 0

    async def prepare_connection(self, kernel_id: str) -> None:
        kernel = self.kernels.kernels.get(kernel_id)
        if kernel is None:
            self.set_status(404)
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(
                json.dumps({"message": f"Kernel does not exist: {kernel_id}", "reason": "no such kernel"})
            )
            return
        self.kernel = kernel
        session_id = self.get_query_argument("session_id", None)
        if not session_id:
            log.warning("No session_id in websocket URL for kernel %s; replies cannot be replayed", kernel_id)
            session_id = uuid.uuid4().hex
        self.session_id = session_id

    def get_compression_options(self) -> None:
        return None

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return v1.PROTOCOL if v1.PROTOCOL in subprotocols else None

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        self.v1 = self.selected_subprotocol == v1.PROTOCOL
        channels = self.kernel.channels
        stale = channels.client(self.session_id)
        if isinstance(stale, KernelWebSocket):
            log.info("Replacing stale connection of session %s", self.session_id)
            stale.replaced()
        try:
            replayed = channels.attach(self)
        except ChannelsClosed:
            self.close(1011, "the kernel has stopped")
            return
        self.kernel.connections += 1
        self._attached = True
        if replayed:
            log.info(
                "Replayed %d messages to session %s of kernel %s", replayed, self.session_id, self.kernel.id
            )
        self._nudge()

    def _nudge(self) -> None:
        """Send the kernel's current state (see the module docstring) right after attaching, in
        the same loop turn: after the replay, before any later message of the kernel. Sent as
        the server's own message to this session, so a client attached *held* (its previous
        connection still settling, see :mod:`.clients`) gets it after its replay all the same."""
        state = self.kernel.execution_state
        if state in _NUDGE_STATES:
            channels = self.kernel.channels
            _, parts = new_message("status", {"execution_state": state}, channels.internal_session)
            channels.deliver_to(self.session_id, "iopub", parts)

    def on_message(self, message: str | bytes) -> None:
        try:
            if self.v1:
                if isinstance(message, str):
                    raise ProtocolError("the v1 protocol sends binary frames only")
                channel, parts = v1.decode(message)
            else:
                maybe_channel, parts = legacy.decode(message)
                channel = maybe_channel or "shell"
            self.kernel.channels.send(self.session_id, channel, parts)
        except ProtocolError as exc:
            log.warning("Dropped a malformed message from session %s: %s", self.session_id, exc)
        except ChannelsClosed:
            self.close(1011, "the kernel has stopped")

    def on_close(self) -> None:
        self._detach()

    def _detach(self) -> None:
        """Stop being the session's live client; from now on its messages are kept for replay.
        Runs when the close handshake starts (see :meth:`deliver`) or, at the latest, here.

        Messages handed to tornado but never written to the socket (tornado discards them when
        the connection closes) go back to the front of the replay buffer once their writes have
        settled: each write either reached the socket or failed, so nothing is lost or doubled.
        """
        if getattr(self, "_attached", False):
            self._attached = False
            self.kernel.connections -= 1
            inflight, self._inflight = list(self._inflight), deque()
            # with writes in flight, the session settles: a newer connection gets nothing
            # until _requeue_unsent has put the unsent ones back, in front (see .clients)
            self.kernel.channels.detach(self, unsettled=bool(inflight))
            if inflight:
                self._settling = asyncio.ensure_future(self._requeue_unsent(inflight))

    def replaced(self) -> None:
        """A newer connection of the same session takes over: stop being the live client now
        (what this one has in flight goes to the newer one, in order, once its writes settle)
        and close (tornado gives a peer that does not answer 5 s, then drops it)."""
        self._detach()
        self.close(1000, "replaced by a newer connection of the same session")

    async def _requeue_unsent(self, inflight: list[tuple[str, list[bytes], Any]]) -> None:
        await asyncio.gather(*(future for _, _, future in inflight), return_exceptions=True)
        unsent = [
            (channel, parts)
            for channel, parts, future in inflight
            if future.cancelled() or future.exception() is not None
        ]
        if unsent:
            log.info("Session %s: %d unsent messages kept for replay", self.session_id, len(unsent))
        self.kernel.channels.requeue(self.session_id, unsent)  # settles the session, even if none

    # -- Client ------------------------------------------------------------------------------------

    def kernel_stopped(self) -> None:
        """The kernel was shut down: close (1000), as the page would otherwise learn it only when
        it next sends something. A client reconnecting then gets 404, the sign that the kernel
        is gone."""
        self._detach()
        self.close(1000, "the kernel was shut down")

    def deliver(self, channel: str, parts: list[bytes]) -> None:
        if self.ws_connection is None or self.ws_connection.is_closing():
            # closing, but on_close has not run yet: what we would send now could not reach
            # the client, so detach at once and let the replay buffer keep this message
            self._detach()
            self.kernel.channels.keep(self.session_id, channel, parts)
            return
        if channel == "iopub" and self._rate.active and not self._rate_ok(parts):
            return
        if self._pending > self.ctx.config.client_buffer_bytes and self._droppable(channel, parts):
            self._dropped += 1
            self.kernel.dropped_messages += 1
            if not self._dropping:
                self._dropping = True
                if parts[1] != self._drop_parent:
                    log.warning("Session %s cannot keep up; dropping messages for it", self.session_id)
                self._drop_parent = parts[1]
            return
        if self._dropping and channel == "iopub":
            self._end_dropping()  # the notice goes before the status that may end the cell
        self._write(channel, parts)

    @staticmethod
    def _droppable(channel: str, parts: list[bytes]) -> bool:
        """Only output is ever dropped: replies, input requests and kernel status always get
        through, so a lagging page still learns when a cell finished."""
        return channel == "iopub" and string_field(parts[0], "msg_type") not in _RATE_EXEMPT

    def _rate_ok(self, parts: list[bytes]) -> bool:
        msg_type = string_field(parts[0], "msg_type")
        if msg_type in _RATE_EXEMPT:
            return True
        size = len(parts[3]) if msg_type == "stream" else 0
        was_limited = self._rate.limited
        allowed = self._rate.allow(size)
        if not allowed:
            self._rate_dropped += 1
            if not was_limited:
                self._write(
                    "iopub",
                    _notice(
                        "IOPub message rate exceeded: output is being dropped (nbserver options "
                        "iopub_msg_rate_limit / iopub_data_rate_limit).\n",
                        parts[1],
                    ),
                )
        elif was_limited:
            log.info(
                "iopub messages resumed for session %s after %d dropped", self.session_id, self._rate_dropped
            )
        return allowed

    def _write(self, channel: str, parts: list[bytes]) -> None:
        if self.v1:
            payload, binary = v1.encode(channel, parts), True
        else:
            payload, binary = legacy.encode(channel, parts)
        size = len(payload)
        try:
            future = self.write_frame(payload, binary)
        except WebSocketClosedError:
            self._detach()
            self.kernel.channels.keep(self.session_id, channel, parts)
            return
        self._pending += size
        self._inflight.append((channel, parts, future))
        future.add_done_callback(lambda done: self._flushed(size, done))

    def _flushed(self, size: int, done: Any) -> None:
        self._pending -= size
        inflight = self._inflight
        while inflight and inflight[0][2].done() and inflight[0][2].exception() is None:
            inflight.popleft()
        if not done.cancelled() and done.exception() is not None:
            return  # the connection closed; on_close detaches
        if self._dropping and self._pending < self.ctx.config.client_buffer_bytes // 2:
            self._end_dropping()

    def _end_dropping(self) -> None:
        """Output flows again (the next iopub message is written, or the client caught up): tell
        the client once per cell, in the cell's output. The notice must come before the cell's
        closing ``idle`` status, after which pages stop routing output to the cell."""
        self._dropping = False
        if self._drop_parent == self._noticed_parent:
            return  # one notice per cell; the kernel model keeps counting
        self._noticed_parent = self._drop_parent
        text = (
            "nbserver: output was dropped because this client could not keep up; "
            f"{self._dropped} messages so far (raise client_buffer_bytes to keep more).\n"
        )
        self._write("iopub", _notice(text, self._drop_parent))
