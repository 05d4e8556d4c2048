"""Shared fixtures: a real nbserver on a real socket, and an HTTP client that holds every response
it receives against api.yaml (through the one helper in ``tests/openapi.py``)."""

from __future__ import annotations

import asyncio
import json as jsonlib
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import tornado.ioloop
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from nbserver import Server, ServerConfig
from tests import openapi

TOKEN = "test-token-0123456789abcdef"

# Notebook trust (nbformat's signature store) lives in Jupyter's data directory: the tests get
# their own, never the user's. Kernelspecs installed with Python are found all the same.
os.environ["JUPYTER_DATA_DIR"] = tempfile.mkdtemp(prefix="nbserver-tests-data-")


@pytest.fixture
def io_loop() -> Iterator[tornado.ioloop.IOLoop]:
    """pytest-tornasync's loop, created without tornado's deprecated make_current()."""
    loop = tornado.ioloop.IOLoop(make_current=False)
    asyncio.set_event_loop(loop.asyncio_loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close(all_fds=True)


@dataclass
class Response:
    status: int
    headers: Any  # tornado.httputil.HTTPHeaders
    body: bytes

    @property
    def json(self) -> Any:
        return jsonlib.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()

    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        for header in self.headers.get_list("Set-Cookie"):
            jar.load(header)
        return {name: morsel.value for name, morsel in jar.items()}


class Client:
    """Real HTTP to a running server. Every response is validated against api.yaml.

    ``auth`` chooses the credential: ``"header"`` (default, ``Authorization: token``),
    ``"query"`` (``?token=``), or ``None``. ``cookies`` are sent as given and the jar is
    updated from ``Set-Cookie``, like a browser would.
    """

    def __init__(self, server: Server, token: str | None) -> None:
        self.server = server
        self.token = token
        self.http = AsyncHTTPClient(force_instance=True, max_clients=100)
        self.cookies: dict[str, str] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}{self.server.config.base_url}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: bytes | str | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        auth: str | None = "header",
        use_cookies: bool = False,
        validate: bool = True,
    ) -> Response:
        """``path`` is relative to base_url, e.g. ``"api/status"``."""
        headers = dict(headers or {})
        params = dict(params or {})
        if auth == "header" and self.token:
            headers.setdefault("Authorization", f"token {self.token}")
        elif auth == "query" and self.token:
            params["token"] = self.token
        if use_cookies and self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if json is not None:
            body = jsonlib.dumps(json)
            headers.setdefault("Content-Type", "application/json")
        url = self.base + path.lstrip("/") + ("?" + urlencode(params) if params else "")
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        request = HTTPRequest(
            url,
            method=method,
            headers=headers,
            body=body,
            follow_redirects=False,
            allow_nonstandard_methods=True,
            request_timeout=60,
        )
        raw = await self.http.fetch(request, raise_error=False)
        if raw.code == 599:
            raise raw.error or ConnectionError("request failed")
        response = Response(raw.code, raw.headers, raw.body or b"")
        if use_cookies:
            self.cookies.update(response.cookies())
        if validate:
            validate_response(self.server, method, urlsplit(url).path, response)
        return response

    async def get(self, path: str, **kw: Any) -> Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Response:
        return await self.request("POST", path, **kw)

    def close(self) -> None:
        self.http.close()


def validate_response(server: Server, method: str, url_path: str, response: Response) -> None:
    """Hold a response against api.yaml; an undocumented path must be a generic fallback
    (a trailing-slash redirect or a JSON 404) and is held against those rules instead."""
    base = server.config.base_url
    assert url_path.startswith(base), url_path
    path = "/" + url_path[len(base) :]
    content_type = response.headers.get("Content-Type")
    if method == "OPTIONS":  # a CORS preflight, answered the same on every route
        assert response.status == 204 and not response.body, response
        return
    try:
        openapi.find_operation(method, path)
    except AssertionError:
        if response.status == 302 and path.endswith("/"):
            return
        assert response.status == 404, f"{method} {path}: {response.status} is not in api.yaml"
        if path == "/api" or path.startswith("/api/"):
            openapi.validate_schema("Error", jsonlib.loads(response.body))
        return
    openapi.validate_response(method, path, response.status, content_type, response.body)


@pytest.fixture
def root_dir(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def make_server(
    io_loop: tornado.ioloop.IOLoop, tmp_path: Path, root_dir: Path
) -> Iterator[Callable[..., Awaitable[Server]]]:
    """Start real servers on free ports: ``await make_server(**overrides)``. Overrides that are
    not ``ServerConfig`` fields (``contents=...``) are passed to ``Server``, hence ``make_app``."""
    servers: list[Server] = []

    async def factory(**overrides: Any) -> Server:
        settings: dict[str, Any] = {
            "port": 0,
            "root_dir": root_dir,
            "token": TOKEN,
            "runtime_dir": tmp_path / "runtime",
            "open_browser": False,
        }
        fields = ServerConfig.field_names()
        services = {k: overrides.pop(k) for k in list(overrides) if k not in fields}
        settings.update(overrides)
        server = Server(ServerConfig(**settings), write_runtime_info=False, **services)
        await server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        io_loop.run_sync(server.stop)


@pytest.fixture
def server(io_loop: tornado.ioloop.IOLoop, make_server: Callable[..., Awaitable[Server]]) -> Server:
    return io_loop.run_sync(make_server)


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    c = Client(server, TOKEN)
    yield c
    c.close()


@pytest.fixture
def make_client() -> Iterator[Callable[[Server, str | None], Client]]:
    clients: list[Client] = []

    def factory(server: Server, token: str | None = TOKEN) -> Client:
        clients.append(Client(server, token))
        return clients[-1]

    yield factory
    for c in clients:
        c.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """The one headless Chromium of every browser test (tests/ui, tests/lab). Playwright's sync
    API allows one instance per thread, so this fixture is defined once, here, for the whole
    session: a second definition elsewhere would start a second instance and fail."""
    from playwright.sync_api import expect, sync_playwright

    from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS

    expect.set_options(timeout=20_000)  # a loaded 2-core CI machine is slow to start kernels
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
