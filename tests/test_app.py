"""The application as a whole: routes match api.yaml both ways, every handler declares its access,
the public surface is pinned, and the library can be embedded in another tornado application."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
from tornado.httpclient import AsyncHTTPClient

import nbserver
from nbserver import Access, APIHandler, ConfigError, Route, ServerConfig, make_app, make_context, mount
from nbserver.app import server_routes
from tests import openapi

EXPECTED_PUBLIC_API = {
    "APIHandler",
    "Access",
    "BadRequest",
    "BaseHandler",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "Gone",
    "NBServerError",
    "NotFound",
    "PageHandler",
    "PayloadTooLarge",
    "Route",
    "Server",
    "ServerConfig",
    "ServerContext",
    "__version__",
    "make_app",
    "make_context",
    "mount",
    "run",
    "serve",
}


def test_public_api_is_pinned() -> None:
    assert set(nbserver.__all__) == EXPECTED_PUBLIC_API
    for name in nbserver.__all__:
        assert hasattr(nbserver, name), name


def _config(tmp_path) -> ServerConfig:
    return ServerConfig(root_dir=tmp_path, token="t", cookie_secret=b"k" * 32)


def test_routes_and_spec_paths_match_both_ways(tmp_path) -> None:
    routes = server_routes(make_context(_config(tmp_path)))
    documented = {r.template for r in routes if r.documented}
    assert documented == openapi.spec_paths()


def test_only_generic_fallbacks_are_undocumented(tmp_path) -> None:
    routes = server_routes(make_context(_config(tmp_path)))
    undocumented = [r.handler.__name__ for r in routes if not r.documented]
    assert undocumented == ["TrailingSlashHandler", "APINotFoundHandler", "NotFoundHandler"]


def test_every_spec_operation_has_a_handler_method(tmp_path) -> None:
    routes = {r.template: r.handler for r in server_routes(make_context(_config(tmp_path)))}
    for template, item in openapi.SPEC["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete", "head"):
                handler = routes[template]
                assert getattr(handler, method) is not getattr(tornado.web.RequestHandler, method), (
                    f"{method.upper()} {template} is in api.yaml but {handler.__name__} lacks it"
                )


def test_app_refuses_a_handler_without_access(tmp_path) -> None:
    class Undeclared(APIHandler):
        def get(self) -> None:
            self.write_json({})

    ctx = make_context(_config(tmp_path))
    with pytest.raises(ConfigError, match=r"Undeclared.*declares no `access`"):
        make_app(ctx.config, context=ctx, extra_routes=[Route("/x", Undeclared, {"ctx": ctx})])


def test_route_templates_compile_to_patterns() -> None:
    route = Route("/api/kernels/{kernel_id}/channels", APIHandler)
    assert route.pattern() == r"/api/kernels/(?P<kernel_id>[^/]+)/channels"
    wide = Route("/api/contents{path}", APIHandler, params={"path": r"(?:/.*)?"})
    assert wide.pattern() == r"/api/contents(?P<path>(?:/.*)?)"
    assert [spec.regex.pattern for spec in mount("/base/", [route])] == [
        r"/base/api/kernels/(?P<kernel_id>[^/]+)/channels$"
    ]


class Echo(APIHandler):
    """A handler of the embedding application, built on nbserver's base handler."""

    access = Access.USER

    def post(self) -> None:
        self.write_json({"got": self.json_body()})


async def test_embedding_in_another_application(io_loop, tmp_path) -> None:
    """A user's own tornado app mounts nbserver's routes under a prefix, next to its own."""
    config = ServerConfig(root_dir=tmp_path, token="secret", base_url="/jupyter/", cookie_secret=b"k" * 32)
    ctx = make_context(config)
    app = tornado.web.Application(
        [
            (r"/hello", HelloHandler),
            *mount(config.base_url, server_routes(ctx, [Route("/echo", Echo, {"ctx": ctx})])),
        ]
    )
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    http = tornado.httpserver.HTTPServer(app)
    http.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    client = AsyncHTTPClient(force_instance=True)
    try:
        base = f"http://127.0.0.1:{port}"
        assert (await client.fetch(base + "/hello")).body == b"hi"
        auth = {"Authorization": "token secret"}
        r = await client.fetch(base + "/jupyter/api/status", headers=auth)
        assert set(json.loads(r.body)) == {"started", "last_activity", "connections", "kernels"}
        r = await client.fetch(base + "/jupyter/echo", method="POST", body='{"a": [1]}', headers=auth)
        assert json.loads(r.body) == {"got": {"a": [1]}}
        for bad in (b"{", b"[1,", b"\xff\xfe", b'{"a": NaN}', b"Infinity"):
            r = await client.fetch(
                base + "/jupyter/echo", method="POST", body=bad, headers=auth, raise_error=False
            )
            assert r.code == 400, bad
            assert json.loads(r.body)["reason"] == "bad json"
        r = await client.fetch(base + "/jupyter/echo", method="POST", body="{}", raise_error=False)
        assert r.code == 403
    finally:
        client.close()
        http.stop()
        await http.close_all_connections()


class HelloHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("hi")


#: modules that take seconds to import (jsonschema parses a grammar at import where
#: rfc3987-syntax is installed; nbconvert brings it and more): never imported by a server's start
SLOW_IMPORTS = ("jsonschema", "nbconvert", "nbformat", "rfc3987_syntax")


def test_building_the_app_imports_no_slow_module(tmp_path) -> None:
    """A fresh interpreter builds the full app (nbconvert, terminals, clusters, events, the
    hosted UIs all mounted) without importing :data:`SLOW_IMPORTS`: start-up stays fast. Both
    the event bus's schema check and the nbconvert manager's imports once broke this (3.3 s)."""
    code = (
        "import sys, json\n"
        "from nbserver import ServerConfig, make_app\n"
        f"make_app(ServerConfig(root_dir={str(tmp_path)!r}, token='x'))\n"
        f"print(json.dumps([m for m in {SLOW_IMPORTS!r} if m in sys.modules]))\n"
    )
    command = [sys.executable, "-c", code]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
