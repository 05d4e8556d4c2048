"""Websockets through the hub: ``<base>user/<name>/...`` upgrades, tunnelled to that user's server.

Theory of operation:

- The hub does not terminate the websocket. It forwards the browser's upgrade request to the
  user's server (same path, the browser's own ``Sec-WebSocket-Key``, ``-Version``, ``-Protocol``
  and ``-Extensions``, plus the proxy's ``X-Forwarded-*`` headers, the hub's cookies removed) and
  reads the server's answer head:

  - ``101``: the answer goes to the browser as the server wrote it (its ``Sec-WebSocket-Accept``
    is computed from the browser's key, its subprotocol and extensions are the ones the server
    chose), and from then on the two TCP connections are spliced: bytes read from one side are
    written to the other, untouched. Frames are masked by the browser as a server expects, and
    left unmasked by the server as a browser expects, so nothing needs re-framing; close frames
    and their codes, pings and pongs pass through as they are.
  - anything else (the server's 403, 404, 400...): relayed as an ordinary HTTP answer (status,
    ``Content-Type``, body), the browser's connection closed after it.

- Per chunk, the relay costs one read and one awaited write (the write resolves when the bytes
  are in the other socket's send buffer): no frame parsing, no copies beyond the socket reads,
  no queue or task between the two sides, and TCP back-pressure both ways (a side that does
  not read stops the other side's reading). ``TCP_NODELAY`` is on for both connections, so a
  small frame is never held back by Nagle's algorithm.
- Each chunk counts as the user's activity (:meth:`~nbserver.hub.servers.Servers.touch`, an
  in-memory timestamp; the database is written every few seconds, not per frame).
- When either side closes or fails, the other connection is closed too.
- Limits are the user server's: it enforces its own maximum message size and sends its own
  pings; the hub adds no timeout to an open tunnel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from tornado import httputil
from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpclient import TCPClient
from tornado.web import RequestHandler

from ..tasks import cancel
from ..web import Access, log_request
from .proxy import ProxyTarget, forwarded_headers, json_error, parse_target

__all__ = ["WebSocketProxy", "splice"]

log = logging.getLogger("nbserver.hub")

#: how much of one side is read before it is written to the other
CHUNK = 64 * 1024
#: the most the server's answer head (status line and headers) may take
MAX_HEAD = 64 * 1024
#: the most of a refusal's body relayed to the browser
MAX_REFUSAL_BODY = 1024 * 1024
HANDSHAKE_TIMEOUT = 30.0
#: the answer head ends at the first empty line
_HEAD_END = b"\r?\n\r?\n"


async def _pipe(source: IOStream, sink: IOStream, touch: Callable[[], None]) -> None:
    """Copy ``source`` to ``sink`` until either closes, then close both."""
    try:
        while True:
            chunk = await source.read_bytes(CHUNK, partial=True)
            touch()
            await sink.write(chunk)
    except (StreamClosedError, OSError):
        pass
    finally:
        source.close()
        sink.close()


async def splice(browser: IOStream, server: IOStream, touch: Callable[[], None]) -> None:
    """Relay bytes both ways between ``browser`` and ``server`` until one side closes (see the
    module docstring); ``touch()`` is called once per chunk relayed. Both streams are closed on
    return."""
    upward = asyncio.ensure_future(_pipe(browser, server, touch))
    try:
        await _pipe(server, browser, touch)
    finally:
        if not upward.done():
            await asyncio.wait((upward,), timeout=5)
        if not upward.done():
            await cancel(upward)


def _upgrade_request(handler: RequestHandler, hub: ProxyTarget) -> bytes:
    """The head of the upgrade request sent upstream (see the module docstring)."""
    request = handler.request
    headers = forwarded_headers(request, frozenset({"expect"}), hub.trusted_proxies)
    headers["Connection"] = "Upgrade"
    headers["Upgrade"] = "websocket"
    lines = [f"GET {request.uri or '/'} HTTP/1.1"]
    lines.extend(f"{name}: {value}" for name, value in headers.get_all())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class WebSocketProxy(RequestHandler):
    """A websocket to a user's server, tunnelled after the handshake (see the module docstring)."""

    access = Access.PUBLIC
    SUPPORTED_METHODS = ("GET",)

    def initialize(self, hub: ProxyTarget) -> None:
        self.hub = hub

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.clear_header("Content-Type")

    def compute_etag(self) -> None:
        return None

    async def get(self, *args: Any, **kwargs: Any) -> None:
        target = parse_target(self.request.path, self.hub.base_url)
        if isinstance(target, str):
            json_error(self, 400, f"Refused path: {target}", "bad path")
            return
        user = target[0]
        running = self.hub.servers.running(user)
        if running is None:
            json_error(self, 503, f"{user}'s server is not running", "not running")
            return
        try:
            upstream = await TCPClient().connect("127.0.0.1", running.port, timeout=10)
        except (OSError, StreamClosedError, asyncio.TimeoutError) as exc:
            message = f"The user's server did not answer: {exc or type(exc).__name__}"
            json_error(self, 502, message, "bad gateway")
            return
        upstream.set_nodelay(True)
        try:
            await self._handshake(user, upstream)
        finally:
            upstream.close()  # a no-op once the tunnel closed it; otherwise never left open

    async def _handshake(self, user: str, upstream: IOStream) -> None:
        """Send the upgrade upstream; relay the refusal, or answer 101 and splice."""
        try:
            await upstream.write(_upgrade_request(self, self.hub))
            head = await asyncio.wait_for(
                upstream.read_until_regex(_HEAD_END, max_bytes=MAX_HEAD), HANDSHAKE_TIMEOUT
            )
            text = head.decode("latin-1")
            first, _, rest = text.partition("\n")
            start = httputil.parse_response_start_line(first.rstrip("\r"))
            headers = httputil.HTTPHeaders.parse(rest)
        except (StreamClosedError, OSError, asyncio.TimeoutError, httputil.HTTPInputError) as exc:
            message = f"The user's server did not answer: {exc or type(exc).__name__}"
            json_error(self, 502, message, "bad gateway")
            return
        if start.code != 101:
            await self._refused(upstream, start, headers)
            return
        servers = self.hub.servers
        servers.touch(user)
        browser = self.detach()
        self.set_status(101)
        log_request(self)
        try:
            await browser.write(head)  # the server's answer, verbatim
        except StreamClosedError:
            return
        await splice(browser, upstream, lambda: servers.touch(user))

    async def _refused(
        self, upstream: IOStream, start: httputil.ResponseStartLine, headers: httputil.HTTPHeaders
    ) -> None:
        """Relay the server's refusal of the upgrade as a plain answer."""
        body = b""
        length = headers.get("Content-Length", "")
        try:
            if length.isdigit():  # tornado's refusals say how long they are; others lose the body
                body = await upstream.read_bytes(min(int(length), MAX_REFUSAL_BODY))
        except StreamClosedError:
            pass
        self.set_status(start.code, start.reason or "Unknown")
        if headers.get("Content-Type"):
            self.set_header("Content-Type", headers["Content-Type"])
        self.finish(body)
