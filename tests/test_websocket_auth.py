"""The websocket base applies the HTTP identity rules to upgrades, and logs why it refused one.

Bad inputs tried: no credential, a wrong token, a cookie from a foreign Origin, a foreign Host,
an open (no-token) server reached from a foreign Origin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tornado.netutil
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from nbserver import Access, Route, ServerConfig, make_app, make_context
from nbserver.server import NoDelayHTTPServer
from nbserver.websocket import AuthenticatedWebSocket
from tests.conftest import TOKEN


class EchoSocket(AuthenticatedWebSocket):
    access = Access.USER

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


@pytest.fixture
def ws_server(io_loop, tmp_path) -> Iterator[Callable[..., Any]]:
    servers = []

    async def start(**overrides: Any) -> str:
        settings = {"root_dir": tmp_path, "token": TOKEN, "cookie_secret": b"k" * 32, "port": 0}
        settings.update(overrides)
        ctx = make_context(ServerConfig(**settings))
        app = make_app(ctx.config, context=ctx, extra_routes=[Route("/echo", EchoSocket, {"ctx": ctx})])
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        http = NoDelayHTTPServer(app)
        http.add_sockets(sockets)
        servers.append(http)
        return f"127.0.0.1:{sockets[0].getsockname()[1]}"

    yield start
    for http in servers:
        http.stop()
        io_loop.run_sync(http.close_all_connections)


async def connect(host: str, headers: dict[str, str] | None = None, query: str = ""):
    request = HTTPRequest(f"ws://{host}/echo{query}", headers=headers or {})
    return await websocket_connect(request)


async def test_token_header_and_query_open_the_socket(ws_server) -> None:
    host = await ws_server()
    for conn in (
        await connect(host, {"Authorization": f"token {TOKEN}"}),
        await connect(host, query=f"?token={TOKEN}"),
    ):
        await conn.write_message("ping")
        assert await conn.read_message() == "ping"
        conn.close()


async def refused(host: str, caplog, headers=None, query="") -> str:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nbserver.app"), pytest.raises(HTTPClientError) as info:
        await connect(host, headers, query)
    assert info.value.code == 403
    lines = [r.getMessage() for r in caplog.records if "Couldn't authenticate WebSocket" in r.getMessage()]
    assert len(lines) == 1, caplog.records
    return lines[0]


async def test_refusals_are_logged_with_the_failed_check(ws_server, caplog) -> None:
    host = await ws_server()
    assert "no credential" in await refused(host, caplog)
    assert "bad token" in await refused(host, caplog, {"Authorization": "token nope"})
    assert "bad token" in await refused(host, caplog, query="?token=nope")
    assert "bad cookie" in await refused(host, caplog, {"Cookie": "nbserver-auth=forged"})
    assert "not local" in await refused(
        host, caplog, {"Host": "evil.example", "Authorization": f"token {TOKEN}"}
    )


async def test_cookie_upgrade_needs_an_allowed_origin(ws_server, caplog) -> None:
    host = await ws_server()
    ctx = make_context(ServerConfig(root_dir=".", token=TOKEN, cookie_secret=b"k" * 32, port=0))
    cookie = {"Cookie": f"{ctx.cookie_name}={ctx.auth.login_cookie(ctx.cookie_name).decode()}"}
    line = await refused(host, caplog, {**cookie, "Origin": "http://evil.example"})
    assert "origin http://evil.example is not allowed" in line
    conn = await connect(host, {**cookie, "Origin": f"http://{host}"})
    conn.close()
    # a token needs no Origin check
    conn = await connect(host, {"Authorization": f"token {TOKEN}", "Origin": "http://evil.example"})
    conn.close()


async def test_open_server_still_checks_origin(ws_server, caplog) -> None:
    host = await ws_server(token="")
    conn = await connect(host)
    conn.close()
    assert "not allowed" in await refused(host, caplog, {"Origin": "http://evil.example"})
