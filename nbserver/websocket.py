"""The authenticated websocket base: the same identity and policy as HTTP handlers.

An upgrade request is checked before the handshake, in this order: Host (when listening on
loopback), identity (token header, ``?token=``, or login cookie), then tornado's ``check_origin``,
which requires an allowed Origin for upgrades without a token (cookie, or auth off). A refused upgrade
gets a 403 JSON body and one log line that starts with "Couldn't authenticate WebSocket
connection" and names the failed check (no credential, bad token, bad/expired cookie, origin).

Keep-alive (:class:`Keepalive`, jupyter_server's rule): once open, a socket is pinged every
``ws_ping_interval`` seconds. At each ping, a socket that has answered no ping for more than
``ws_ping_timeout`` seconds is closed (1001), unless the previous ping went out two intervals ago
or more: then the server itself was stalled (a blocked loop, a suspended machine) and no answer
could have come, so that round only pings. tornado's own keep-alive, which closes a socket whose
ping is unanswered after one interval (30 s), is off for these handlers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from asyncio import Future
from typing import Any, ClassVar

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from .auth.identity import Identity, Via
from .auth.policy import host_is_local, is_loopback, origin_allowed
from .context import ServerContext
from .errors import NBServerError
from .web import Access, allowed_methods, authenticate_request

__all__ = ["AuthenticatedWebSocket", "Keepalive"]

log = logging.getLogger("nbserver.app")


class Keepalive:
    """When to ping a websocket and when to give up on it; no I/O, times in seconds.

    Args:
        interval: seconds between pings (> 0).
        timeout: seconds without a pong after which the peer counts as gone; 0 = never.
        now: the time the connection opened (it counts as the last ping and pong).
    """

    def __init__(self, interval: float, timeout: float, now: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self.last_ping = now
        self.last_pong = now

    def pong(self, now: float) -> None:
        """The peer answered a ping."""
        self.last_pong = now

    def tick(self, now: float) -> bool:
        """A ping is due. Returns True when the caller should send it (it counts as sent at
        ``now``) and False when the peer is gone: no pong for more than ``timeout``, and the
        previous ping was on time (less than two intervals ago). A late previous ping means
        this side was stalled, and its peer had no chance to answer: the check is skipped."""
        on_time = now - self.last_ping < 2 * self.interval
        if self.timeout > 0 and on_time and now - self.last_pong > self.timeout:
            return False
        self.last_ping = now
        return True


class AuthenticatedWebSocket(WebSocketHandler):
    """Base of nbserver's websocket handlers. Subclasses declare ``access`` like HTTP handlers.

    ``keepalive`` is the open socket's :class:`Keepalive` (None before open, or when
    ``ws_ping_interval`` is 0)."""

    access: ClassVar[Access]
    ctx: ServerContext
    identity: Identity | None
    keepalive: Keepalive | None

    def initialize(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.identity = None
        for name, value in ctx.headers.items():
            self.set_header(name, value)
        self.keepalive = None
        self._ping_timer: asyncio.TimerHandle | None = None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 405:
            self.set_header("Allow", allowed_methods(self))
        super().write_error(status_code, **kwargs)

    @property
    def ping_interval(self) -> float | None:
        """tornado's keep-alive: off, :meth:`_ping` does it (see the module docstring)."""
        return None

    def _refuse(self, check: str, reason: str | None, status: int = 403) -> None:
        log.warning(
            "Couldn't authenticate WebSocket connection to %s from %s: %s",
            self.request.path,
            self.request.remote_ip,
            check,
        )
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"message": f"WebSocket refused: {check}", "reason": reason}))

    async def get(self, *args: Any, **kwargs: Any) -> None:
        config = self.ctx.config
        host = self.request.host or ""
        if not config.allow_remote_access and is_loopback(config.ip) and not host_is_local(host):
            self._refuse(f"host {host!r} is not local", "host")
            return
        access = getattr(type(self), "access", None)
        try:
            result = await authenticate_request(self, self.ctx, websocket=True)
        except NBServerError as exc:  # the identity could not be decided (the Hub is down)
            self._refuse(exc.message, exc.reason, exc.status)
            return
        self.identity = result.identity
        if not isinstance(access, Access) or (self.identity is None and access is Access.USER):
            self._refuse(result.failure or "no access rule", "auth")
            return
        await self.prepare_connection(*args, **kwargs)
        if self._finished:
            return
        await super().get(*args, **kwargs)

    async def prepare_connection(self, *args: Any, **kwargs: Any) -> None:
        """Hook run after authentication and before the handshake (e.g. look up the kernel and
        answer 404). Finish the request to refuse the upgrade."""

    def write_frame(self, payload: bytes, binary: bool) -> Future[None]:
        """``write_message(payload, binary)`` for handlers that never compress: one unmasked
        frame handed straight to the stream. tornado's version wraps every frame's write in a
        new Task (to turn StreamClosedError into WebSocketClosedError); on a kernel's busiest
        path that Task costs more than the frame. The returned Future resolves when the frame
        reached the socket and fails with StreamClosedError if the connection closed first.

        Raises WebSocketClosedError when the connection is already closing.
        """
        conn = self.ws_connection
        if conn is None or conn.is_closing() or conn.stream is None:
            raise WebSocketClosedError()
        if self.get_compression_options() is not None:
            return self.write_message(payload, binary=binary)
        try:
            return conn.stream.write(_frame_header(0x2 if binary else 0x1, len(payload)) + payload)
        except StreamClosedError:
            raise WebSocketClosedError() from None

    def check_origin(self, origin: str) -> bool:
        if self.identity is not None and self.identity.via is Via.TOKEN:
            return True  # the token is the proof; cookies and open servers need a good Origin
        if origin_allowed(origin, self.request.host or "", self.ctx.config.allow_origin):
            return True
        log.warning(
            "Couldn't authenticate WebSocket connection to %s: origin %s is not allowed "
            "for cookie authentication (see --allow-origin)",
            self.request.path,
            origin,
        )
        return False

    def open(self, *args: Any, **kwargs: Any) -> None:
        """Subclasses call this first: it sets TCP_NODELAY and starts the keep-alive."""
        self.set_nodelay(True)  # also when mounted in another application's server
        config = self.ctx.config
        if config.ws_ping_interval > 0:
            loop = asyncio.get_running_loop()
            self.keepalive = Keepalive(config.ws_ping_interval, config.ws_ping_timeout, loop.time())
            self._ping_timer = loop.call_later(config.ws_ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        conn, keepalive = self.ws_connection, self.keepalive
        if conn is None or conn.is_closing() or keepalive is None:
            return
        loop = asyncio.get_running_loop()
        if not keepalive.tick(loop.time()):
            log.warning(
                "Closing the websocket %s from %s: no answer to pings for %.0f s (ws_ping_timeout %g s)",
                self.request.path,
                self.request.remote_ip,
                loop.time() - keepalive.last_pong,
                keepalive.timeout,
            )
            self.close(1001, "ping timeout")
            return
        try:
            self.ping(b"")
        except WebSocketClosedError:
            return
        self._ping_timer = loop.call_later(keepalive.interval, self._ping)

    def on_pong(self, data: bytes) -> None:
        if self.keepalive is not None:
            self.keepalive.pong(asyncio.get_running_loop().time())

    def on_ws_connection_close(self, close_code: int | None = None, close_reason: str | None = None) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        super().on_ws_connection_close(close_code, close_reason)


def _frame_header(opcode: int, size: int) -> bytes:
    """RFC 6455 header of a final, unmasked (server-to-client) frame of ``size`` bytes."""
    if size < 126:
        return bytes((0x80 | opcode, size))
    if size <= 0xFFFF:
        return struct.pack("!BBH", 0x80 | opcode, 126, size)
    return struct.pack("!BBQ", 0x80 | opcode, 127, size)
