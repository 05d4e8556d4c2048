"""The proxy in the hub process: ``<base>user/<name>/...`` to that user's server, HTTP and websockets.

Theory of operation:

- The target is decided from the raw request path, never a decoded one: the segment after
  ``user/`` must be a valid user name as sent (so ``%2F``, ``%62ob`` or an empty segment name
  nobody), and the rest may hold no ``.`` or ``..`` segment (plain or percent-encoded) and no
  encoded slash (``%2F``). Refused paths are 400; ``/user/bob`` never reaches ``bobby``.
- The proxy does not authenticate: each user server checks its own requests with the hub (its
  OAuth cookie, or a token the hub vouches for), exactly as behind JupyterHub's proxy. It strips
  the hub's own login cookie from what it forwards.
- Bodies stream both ways, flow-controlled. A request body goes upstream as it arrives:
  :meth:`ProxyHandler.data_received` awaits each chunk's write to the upstream socket, so
  tornado reads no faster than the server takes (a 100 MB upload is never held whole). The
  response is read from the server one chunk (64 KiB) at a time, and the next chunk is read only
  once the previous one is flushed to the browser's socket: a slow browser makes the server
  wait (TCP back-pressure) rather than the hub buffer the download.
- Forwarded requests keep ``Host`` and carry ``X-Forwarded-For``, ``-Proto``, ``-Host`` and ``-Port``,
  set by the hub: what a client sends in them is believed only from a trusted proxy
  (``HubSettings.trusted_proxies``), so a browser cannot claim https or another address.
- A websocket upgrade is matched by its ``Upgrade`` header (:class:`WebSocketUpgrade`) and
  tunnelled to the server by :class:`~nbserver.hub.wsproxy.WebSocketProxy`.
- Every request and every websocket message counts at once as the user's activity.
- A stopped server: ``GET``/``HEAD`` go to ``<base>hub/user/<name>/<path>`` (which starts it
  and follows its progress); other methods get 503 JSON ``{"message", "reason": "not running"}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import unquote

from tornado import httputil
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.iostream import StreamClosedError
from tornado.routing import PathMatches
from tornado.tcpclient import TCPClient
from tornado.web import RequestHandler, stream_request_body

from ..web import Access
from .identity import COOKIE_NAME
from .servers import Servers
from .store import NAME_RULE

__all__ = [
    "ProxyHandler",
    "ProxyTarget",
    "WebSocketUpgrade",
    "client_address",
    "forwarded_headers",
    "json_error",
    "parse_target",
    "public_scheme",
]

log = logging.getLogger("nbserver.hub")

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
STRIPPED_COOKIES = frozenset({COOKIE_NAME, "jupyterhub-session-id"})
#: the hub answers ``Expect: 100-continue`` itself; the body is then streamed upstream as is
_NOT_FORWARDED = frozenset({"expect"})
_ENCODED_SLASH = re.compile(r"%2f", re.IGNORECASE)


class ProxyTarget(Protocol):
    """What the proxy needs of the hub."""

    servers: Servers
    base_url: str
    max_body_size: int
    trusted_proxies: frozenset[str]


def parse_target(raw_path: str, base_url: str) -> tuple[str, str] | str:
    """``(name, rest)`` for a raw (still percent-encoded) request path under ``<base>user/``,
    or the reason it is refused (a ``str``)."""
    prefix = base_url + "user/"
    if not raw_path.startswith(prefix):
        return "not a user path"
    name, slash, rest = raw_path[len(prefix) :].partition("/")
    if not NAME_RULE.fullmatch(name):
        return f"no user name in {raw_path!r}"
    if _ENCODED_SLASH.search(rest):
        return "encoded slash in path"
    for segment in rest.split("/"):
        if unquote(segment) in (".", ".."):
            return "dot segment in path"
    return name, slash + rest


def public_scheme(request: httputil.HTTPServerRequest, trusted_proxies: frozenset[str]) -> str:
    """The scheme the browser used: the connection's, or the first ``X-Forwarded-Proto`` value
    when the request comes from a trusted proxy's address (from anyone else it is ignored)."""
    if request.remote_ip in trusted_proxies:
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if forwarded in ("http", "https"):
            return forwarded
    return request.protocol


def client_address(request: httputil.HTTPServerRequest, trusted_proxies: frozenset[str]) -> str:
    """The client's address: the connection's peer, or, when that peer is a trusted proxy, the
    last ``X-Forwarded-For`` hop (the address that proxy saw)."""
    peer = str(request.remote_ip)
    if peer in trusted_proxies:
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
        if hops:
            return hops[-1]
    return peer


def forwarded_headers(
    request: httputil.HTTPServerRequest, skip: frozenset[str], trusted_proxies: frozenset[str] = frozenset()
) -> httputil.HTTPHeaders:
    """The request's headers for upstream: hop-by-hop and ``skip`` headers dropped, the hub's
    cookies removed, ``X-Forwarded-*`` added (``-Proto`` is :func:`public_scheme`; an
    ``X-Forwarded-For`` chain is kept only from a trusted proxy)."""
    headers = httputil.HTTPHeaders()
    for name, value in request.headers.get_all():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in skip or lower.startswith("x-forwarded-"):
            continue
        if lower == "cookie":
            kept = [c for c in value.split(";") if c.strip().partition("=")[0] not in STRIPPED_COOKIES]
            if not kept:
                continue
            value = ";".join(kept).strip()
        headers.add(name, value)
    trusted = request.remote_ip in trusted_proxies
    previous = request.headers.get("X-Forwarded-For") if trusted else None
    headers["X-Forwarded-For"] = f"{previous}, {request.remote_ip}" if previous else str(request.remote_ip)
    scheme = public_scheme(request, trusted_proxies)
    headers["X-Forwarded-Proto"] = scheme
    headers["X-Forwarded-Host"] = request.host
    port = request.host.rpartition(":")[2] if ":" in request.host else ("443" if scheme == "https" else "80")
    headers["X-Forwarded-Port"] = port
    return headers


class WebSocketUpgrade(PathMatches):
    """Matches a path pattern, for websocket upgrades only."""

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return None
        return super().match(request)


def json_error(handler: RequestHandler, status: int, message: str, reason: str) -> None:
    handler.set_status(status)
    handler.set_header("Content-Type", "application/json; charset=UTF-8")
    handler.finish(json.dumps({"message": message, "reason": reason}))


class _Relay(httputil.HTTPMessageDelegate):
    """The user server's response, passed to the browser as it arrives. Each chunk is flushed to
    the browser's socket before the next is read from the server, so a slow browser slows the
    server's sending (TCP back-pressure) instead of filling the hub's memory."""

    def __init__(self, handler: ProxyHandler) -> None:
        self.handler = handler
        self.complete = False

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, httputil.ResponseStartLine)
        if start_line.code < 200:  # an interim answer: the real one follows
            return
        self.handler.copy_head(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None]:
        return self.handler.write_through(chunk)

    def finish(self) -> None:
        self.complete = True


@stream_request_body
class ProxyHandler(RequestHandler):
    """HTTP to a user's server (see the module docstring).

    The upstream exchange is one HTTP/1.1 connection per request (``Connection: close``) driven
    by tornado's :class:`~tornado.http1connection.HTTP1Connection`: request body chunks are
    written as they arrive and each write is awaited; response chunks are read only once the
    previous one is flushed to the browser.
    """

    access = Access.PUBLIC  # the user's server authenticates
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(self, hub: ProxyTarget) -> None:
        self.hub = hub
        self._upstream: HTTP1Connection | None = None
        self._refusal: Callable[[], None] | None = None

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.clear_header("Content-Type")

    def compute_etag(self) -> None:
        return None

    async def prepare(self) -> None:
        conn = self.request.connection
        if conn is not None and hasattr(conn, "set_max_body_size"):
            conn.set_max_body_size(self.hub.max_body_size)
        target = parse_target(self.request.path, self.hub.base_url)
        if isinstance(target, str):
            self._refusal = lambda: json_error(self, 400, f"Refused path: {target}", "bad path")
            return
        name, rest = target
        if not rest:  # /user/<name>: the server's root is /user/<name>/
            query = "?" + self.request.query if self.request.query else ""
            self._refusal = lambda: self.redirect(self.request.path + "/" + query)
            return
        server = self.hub.servers.running(name)
        if server is None:
            self._refusal = lambda: self._not_running(name)
            return
        self.hub.servers.touch(name)
        try:
            stream = await TCPClient().connect("127.0.0.1", server.port, timeout=10)
        except (OSError, StreamClosedError, asyncio.TimeoutError) as exc:
            message = f"The user's server did not answer: {exc or type(exc).__name__}"
            self._refusal = lambda: json_error(self, 502, message, "bad gateway")
            return
        stream.set_nodelay(True)
        self._upstream = HTTP1Connection(
            stream,
            True,
            HTTP1ConnectionParameters(no_keep_alive=True, decompress=False, max_body_size=1 << 62),
        )
        headers = forwarded_headers(self.request, _NOT_FORWARDED, self.hub.trusted_proxies)
        for name in ("Content-Length", "Transfer-Encoding"):
            if name in self.request.headers:
                headers[name] = self.request.headers[name]
        headers["Connection"] = "close"
        start = httputil.RequestStartLine(self.request.method or "GET", self.request.uri or "/", "HTTP/1.1")
        try:
            await self._upstream.write_headers(start, headers)
        except StreamClosedError:
            self._refusal = lambda: json_error(self, 502, "The user's server closed", "bad gateway")

    def _not_running(self, name: str) -> None:
        if self.request.method in ("GET", "HEAD"):
            rest = self.request.uri[len(self.hub.base_url) :] if self.request.uri else ""
            self.redirect(f"{self.hub.base_url}hub/{rest}")
        else:
            json_error(self, 503, f"{name}'s server is not running", "not running")

    async def data_received(self, chunk: bytes) -> None:
        if self._upstream is not None and self._refusal is None:
            try:
                await self._upstream.write(chunk)  # resolves once handed to the server's socket
            except StreamClosedError:
                self._refusal = lambda: json_error(self, 502, "The user's server closed", "bad gateway")

    def copy_head(self, start_line: httputil.ResponseStartLine, headers: httputil.HTTPHeaders) -> None:
        """The server's status and end-to-end headers, as this handler's response."""
        self.set_status(start_line.code, start_line.reason or "Unknown")
        for name, value in headers.get_all():
            lower = name.lower()
            if lower in HOP_BY_HOP and lower != "content-length":
                continue
            if lower in ("set-cookie", "vary", "www-authenticate"):
                self.add_header(name, value)
            else:
                self.set_header(name, value)

    async def write_through(self, chunk: bytes) -> None:
        """Write ``chunk`` to the browser and wait until it is in the browser's socket. A browser
        gone closes the upstream connection (the server stops sending)."""
        if self.request.connection is None or self._finished:
            self._close_upstream()
            return
        self.write(chunk)
        try:
            await self.flush()
        except StreamClosedError:
            self._close_upstream()

    def _close_upstream(self) -> None:
        if self._upstream is not None:
            self._upstream.close()

    async def _relay(self, *args: Any, **kwargs: Any) -> None:
        if self._refusal is not None:
            self._close_upstream()
            self._refusal()
            return
        upstream = self._upstream
        assert upstream is not None
        relay = _Relay(self)
        try:
            upstream.finish()
            await upstream.read_response(relay)
        except (StreamClosedError, OSError, httputil.HTTPInputError) as exc:
            log.warning("Proxy %s %s: %s", self.request.method, self.request.path, exc or type(exc).__name__)
        finally:
            upstream.close()
        if relay.complete:
            if not self._finished:
                self.finish()
        elif not self._headers_written:
            self.clear()
            self.clear_header("Content-Type")
            json_error(self, 502, "The user's server did not answer", "bad gateway")
        elif self.request.connection is not None:
            # the answer was cut short: cut the browser's short too, never finish it as whole
            self.request.connection.close()  # type: ignore[attr-defined]

    get = head = post = delete = patch = put = options = _relay

    def on_connection_close(self) -> None:
        self._close_upstream()
