"""The authenticated websocket base: the same identity and policy as HTTP handlers.

An upgrade request is checked before the handshake, in this order: Host (when listening on
loopback), identity (token header, ``?token=``, or login cookie), then tornado's ``check_origin``,
which requires an allowed Origin for upgrades without a token (cookie, or auth off). A refused upgrade
gets a 403 JSON body and one log line that starts with "Couldn't authenticate WebSocket
connection" and names the failed check (no credential, bad token, bad/expired cookie, origin).
"""

from __future__ import annotations

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
from .web import Access, authenticate_request

__all__ = ["AuthenticatedWebSocket"]

log = logging.getLogger("nbserver.app")


class AuthenticatedWebSocket(WebSocketHandler):
    """Base of nbserver's websocket handlers. Subclasses declare ``access`` like HTTP handlers."""

    access: ClassVar[Access]
    ctx: ServerContext
    identity: Identity | None

    def initialize(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.identity = None

    def _refuse(self, check: str, reason: str) -> None:
        log.warning(
            "Couldn't authenticate WebSocket connection to %s from %s: %s",
            self.request.path,
            self.request.remote_ip,
            check,
        )
        self.set_status(403)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"message": f"WebSocket refused: {check}", "reason": reason}))

    async def get(self, *args: Any, **kwargs: Any) -> None:
        config = self.ctx.config
        host = self.request.host or ""
        if not config.allow_remote_access and is_loopback(config.ip) and not host_is_local(host):
            self._refuse(f"host {host!r} is not local", "host")
            return
        access = getattr(type(self), "access", None)
        result = authenticate_request(self, self.ctx)
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
        self.set_nodelay(True)  # also when mounted in another application's server


def _frame_header(opcode: int, size: int) -> bytes:
    """RFC 6455 header of a final, unmasked (server-to-client) frame of ``size`` bytes."""
    if size < 126:
        return bytes((0x80 | opcode, size))
    if size <= 0xFFFF:
        return struct.pack("!BBH", 0x80 | opcode, 126, size)
    return struct.pack("!BBQ", 0x80 | opcode, 127, size)
