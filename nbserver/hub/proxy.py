"""The proxy in the hub process: ``<base>user/<name>/...`` to that user's server, HTTP and websockets.

Theory of operation:

- The target is decided from the raw request path, never a decoded one: the segment after
  ``user/`` must be a valid user name as sent (so ``%2F``, ``%62ob`` or an empty segment name
  nobody), and the rest may hold no ``.`` or ``..`` segment (plain or percent-encoded) and no
  encoded slash (``%2F``). Refused paths are 400; ``/user/bob`` never reaches ``bobby``.
- The proxy does not authenticate: each user server checks its own requests with the hub (its
  OAuth cookie, or a token the hub vouches for), exactly as behind JupyterHub's proxy. It strips
  the hub's own login cookie from what it forwards.
- Bodies stream both ways. A request body goes upstream as it arrives: :meth:`ProxyHandler.data_received`
  returns a future that resolves once the chunk is handed to the upstream connection, so
  tornado reads no faster than the server takes (a 100 MB upload is never held whole). The
  response is written to the browser chunk by chunk as it arrives.
- Forwarded requests keep ``Host`` and carry ``X-Forwarded-For``, ``-Proto``, ``-Host`` and ``-Port``.
- A websocket upgrade is matched by its ``Upgrade`` header (:class:`WebSocketUpgrade`) and
  served by :class:`WebSocketProxy`: it connects upstream first (same path, headers and
  offered subprotocols), answers the browser with the subprotocol the server chose (or with the
  server's refusal status), then relays messages both ways, each write awaited before the next
  read. Closing either side closes the other with the same code.
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
from typing import Any, Protocol, cast
from urllib.parse import unquote

from tornado import httputil
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.routing import PathMatches
from tornado.web import RequestHandler, stream_request_body
from tornado.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketHandler,
    websocket_connect,
)

from ..web import Access, log_request
from .identity import COOKIE_NAME
from .servers import Servers
from .store import NAME_RULE

__all__ = ["ProxyHandler", "ProxyTarget", "WebSocketProxy", "WebSocketUpgrade", "parse_target"]

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
WS_HANDSHAKE = frozenset(
    {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"}
)
STRIPPED_COOKIES = frozenset({COOKIE_NAME, "jupyterhub-session-id"})
_ENCODED_SLASH = re.compile(r"%2f", re.IGNORECASE)


class ProxyTarget(Protocol):
    """What the proxy needs of the hub."""

    servers: Servers
    base_url: str
    max_body_size: int
    proxy_client: AsyncHTTPClient


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


def forwarded_headers(request: httputil.HTTPServerRequest, skip: frozenset[str]) -> httputil.HTTPHeaders:
    """The request's headers for upstream: hop-by-hop and ``skip`` headers dropped, the hub's
    cookies removed, ``X-Forwarded-*`` added."""
    headers = httputil.HTTPHeaders()
    for name, value in request.headers.get_all():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in skip:
            continue
        if lower == "cookie":
            kept = [c for c in value.split(";") if c.strip().partition("=")[0] not in STRIPPED_COOKIES]
            if not kept:
                continue
            value = ";".join(kept).strip()
        headers.add(name, value)
    previous = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{previous}, {request.remote_ip}" if previous else str(request.remote_ip)
    headers["X-Forwarded-Proto"] = request.protocol
    headers["X-Forwarded-Host"] = request.host
    port = (
        request.host.rpartition(":")[2]
        if ":" in request.host
        else ("443" if request.protocol == "https" else "80")
    )
    headers["X-Forwarded-Port"] = port
    return headers


class WebSocketUpgrade(PathMatches):
    """Matches a path pattern, for websocket upgrades only."""

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return None
        return super().match(request)


def _json_error(handler: RequestHandler, status: int, message: str, reason: str) -> None:
    handler.set_status(status)
    handler.set_header("Content-Type", "application/json; charset=UTF-8")
    handler.finish(json.dumps({"message": message, "reason": reason}))


@stream_request_body
class ProxyHandler(RequestHandler):
    """HTTP to a user's server (see the module docstring)."""

    access = Access.PUBLIC  # the user's server authenticates
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(self, hub: ProxyTarget) -> None:
        self.hub = hub
        self._chunks: asyncio.Queue[bytes | None] | None = None
        self._upstream: Awaitable[Any] | None = None
        self._refusal: Callable[[], None] | None = None
        self._status_seen = False

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.clear_header("Content-Type")

    def compute_etag(self) -> None:
        return None

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, (HTTPClientError, OSError)):
            log.warning("Proxy %s %s: %s", self.request.method, self.request.path, value)
        else:
            super().log_exception(typ, value, tb)

    async def prepare(self) -> None:
        conn = self.request.connection
        if conn is not None and hasattr(conn, "set_max_body_size"):
            conn.set_max_body_size(self.hub.max_body_size)
        target = parse_target(self.request.path, self.hub.base_url)
        if isinstance(target, str):
            self._refusal = lambda: _json_error(self, 400, f"Refused path: {target}", "bad path")
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
        has_body = self.request.headers.get("Content-Length", "0") not in ("", "0") or (
            "chunked" in self.request.headers.get("Transfer-Encoding", "").lower()
        )
        self._chunks = asyncio.Queue(maxsize=1) if has_body else None
        headers = forwarded_headers(self.request, frozenset())
        if has_body and "Content-Length" in self.request.headers:
            headers["Content-Length"] = self.request.headers["Content-Length"]
        request = HTTPRequest(
            f"http://127.0.0.1:{server.port}{self.request.uri}",
            method=self.request.method or "GET",
            headers=headers,
            body_producer=cast(Any, self._produce) if has_body else None,  # its write returns a Future
            header_callback=self._on_header,
            streaming_callback=self._on_chunk,
            follow_redirects=False,
            allow_nonstandard_methods=True,
            decompress_response=False,
            request_timeout=0,  # streams may be long; the server bounds its own work
            connect_timeout=10,
        )
        self._upstream = self.hub.proxy_client.fetch(request, raise_error=False)

    def _not_running(self, name: str) -> None:
        if self.request.method in ("GET", "HEAD"):
            rest = self.request.uri[len(self.hub.base_url) :] if self.request.uri else ""
            self.redirect(f"{self.hub.base_url}hub/{rest}")
        else:
            _json_error(self, 503, f"{name}'s server is not running", "not running")

    async def _produce(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        assert self._chunks is not None
        while True:
            chunk = await self._chunks.get()
            if chunk is None:
                return
            await write(chunk)

    async def data_received(self, chunk: bytes) -> None:
        if self._chunks is not None:
            await self._chunks.put(chunk)  # waits while the previous chunk is not yet sent

    def _on_header(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if not self._status_seen:
            if not line.startswith("HTTP/"):
                return
            parts = line.split(" ", 2)
            code = int(parts[1])
            if code == 100:  # an interim answer: the real status line follows
                return
            self._status_seen = True
            self.set_status(code, parts[2] if len(parts) > 2 and parts[2] else "Unknown")
            return
        if not line:
            return
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        lower = name.lower()
        if lower in HOP_BY_HOP and lower != "content-length":
            return
        if lower in ("set-cookie", "vary", "www-authenticate"):
            self.add_header(name, value)
        else:
            self.set_header(name, value)

    def _on_chunk(self, chunk: bytes) -> None:
        if self.request.connection is None or self._finished:
            return
        self.write(chunk)
        self.flush()

    async def _relay(self, *args: Any, **kwargs: Any) -> None:
        if self._refusal is not None:
            self._refusal()
            return
        assert self._upstream is not None
        if self._chunks is not None:
            await self._chunks.put(None)
        response = await self._upstream
        if response.code == 599:  # no answer at all
            error = response.error
            if not self._headers_written:
                self.clear()
                self.clear_header("Content-Type")
                _json_error(self, 502, f"The user's server did not answer: {error}", "bad gateway")
            return
        if not self._finished:
            self.finish()

    get = head = post = delete = patch = put = options = _relay

    def on_connection_close(self) -> None:
        if self._chunks is not None:
            while not self._chunks.empty():
                self._chunks.get_nowait()
            self._chunks.put_nowait(None)


class WebSocketProxy(WebSocketHandler):
    """A websocket to a user's server (see the module docstring)."""

    access = Access.PUBLIC

    def initialize(self, hub: ProxyTarget) -> None:
        self.hub = hub
        self.upstream: WebSocketClientConnection | None = None
        self.chosen: str | None = None
        self.user = ""
        self._pump: asyncio.Task[None] | None = None

    def check_origin(self, origin: str) -> bool:
        return True  # forwarded: the user's server checks Origin against its cookie rules

    async def get(self, *args: Any, **kwargs: Any) -> None:
        target = parse_target(self.request.path, self.hub.base_url)
        if isinstance(target, str):
            _json_error(self, 400, f"Refused path: {target}", "bad path")
            return
        self.user = target[0]
        server = self.hub.servers.running(self.user)
        if server is None:
            _json_error(self, 503, f"{self.user}'s server is not running", "not running")
            return
        offered = [
            p.strip() for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
        ]
        request = HTTPRequest(
            f"ws://127.0.0.1:{server.port}{self.request.uri}",
            headers=forwarded_headers(self.request, WS_HANDSHAKE),
            connect_timeout=10,
            request_timeout=30,
        )
        try:
            self.upstream = await websocket_connect(
                request, subprotocols=offered or None, max_message_size=self.hub.max_body_size
            )
        except HTTPClientError as exc:
            self.set_status(exc.code)
            body = exc.response.body if exc.response is not None else b""
            if exc.response is not None and exc.response.headers.get("Content-Type"):
                self.set_header("Content-Type", exc.response.headers["Content-Type"])
            self.finish(body or b"")
            return
        except OSError as exc:
            _json_error(self, 502, f"The user's server did not answer: {exc}", "bad gateway")
            return
        self.chosen = self.upstream.selected_subprotocol
        self.hub.servers.touch(self.user)
        await super().get(*args, **kwargs)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return self.chosen if self.chosen in subprotocols else None

    def get_compression_options(self) -> dict[str, Any] | None:
        return None

    def open(self, *args: Any, **kwargs: Any) -> None:
        self._pump = asyncio.ensure_future(self._relay_down())

    async def _relay_down(self) -> None:
        upstream = self.upstream
        assert upstream is not None
        while True:
            message = await upstream.read_message()
            if message is None:
                code = upstream.close_code
                if code in (None, 1005, 1006):
                    self.close()
                else:
                    self.close(code, upstream.close_reason)
                return
            self.hub.servers.touch(self.user)
            try:
                await self.write_message(message, binary=isinstance(message, bytes))
            except WebSocketClosedError:
                upstream.close()
                return

    async def on_message(self, message: str | bytes) -> None:
        if self.upstream is None:
            return
        self.hub.servers.touch(self.user)
        try:
            await self.upstream.write_message(message, binary=isinstance(message, bytes))
        except WebSocketClosedError:
            self.close()

    def on_close(self) -> None:
        if self.upstream is not None:
            code = self.close_code
            if code in (None, 1005, 1006):
                self.upstream.close()
            else:
                self.upstream.close(code, self.close_reason)

    def on_finish(self) -> None:
        log_request(self)
