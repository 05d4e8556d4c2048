"""/api, /api/status, /api/me, /api/spec.yaml, /api/shutdown and the generic fallbacks, over real HTTP."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from urllib.parse import urljoin

import yaml

from nbserver import Server
from tests.conftest import Client

REPO = Path(__file__).resolve().parents[3]


async def test_version_is_public(client: Client) -> None:
    r = await client.get("api", auth=None)
    assert r.status == 200
    assert r.json["version"]


async def test_status_needs_a_credential(client: Client) -> None:
    r = await client.get("api/status", auth=None)
    assert r.status == 403
    assert r.json["reason"] == "auth"
    assert "no credential" in r.json["message"]


async def test_status_model(client: Client) -> None:
    r = await client.get("api/status")
    assert r.status == 200
    assert set(r.json) == {"started", "last_activity", "connections", "kernels"}
    assert r.json["kernels"] == 0 and r.json["connections"] == 0


async def test_status_polling_is_not_activity_but_api_use_is(client: Client) -> None:
    first = (await client.get("api/status")).json["last_activity"]
    await asyncio.sleep(0.01)
    assert (await client.get("api/status")).json["last_activity"] == first
    await client.get("api/me", params={"no_track_activity": "1"})
    assert (await client.get("api/status")).json["last_activity"] == first
    await client.get("api/me")
    assert (await client.get("api/status")).json["last_activity"] > first


async def test_me_identity_and_permissions(client: Client) -> None:
    r = await client.get("api/me")
    assert r.status == 200
    assert r.json["identity"]["username"] == "user"
    assert r.json["permissions"] == {"updatable_fields": []}
    asked = '{"contents": ["read", "write"], "kernels": ["execute"]}'
    r = await client.get("api/me", params={"permissions": asked})
    assert r.json["permissions"] == {
        "contents": ["read", "write"],
        "kernels": ["execute"],
        "updatable_fields": [],
    }


async def test_me_rejects_bad_permissions(client: Client) -> None:
    for bad in ("{", "[]", '"contents"', '{"contents": "read"}', '{"contents": [1]}', "null"):
        r = await client.get("api/me", params={"permissions": bad})
        assert r.status == 400, bad
        assert r.json["reason"] == "bad permissions"


async def test_spec_is_the_repository_api_yaml(client: Client) -> None:
    r = await client.get("api/spec.yaml")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/x-yaml")
    assert r.body == (REPO / "api.yaml").read_bytes()
    assert yaml.safe_load(r.body)["openapi"].startswith("3.1")


async def test_trailing_slash_redirects_keeping_the_query(client: Client) -> None:
    r = await client.get("api/", auth=None, params={"a": "1"})
    assert r.status == 302
    assert r.headers["Location"] == "/api?a=1"


async def _raw_get(port: int, target: str) -> tuple[int, dict[str, str]]:
    """``GET target`` with the request line exactly as given (no client normalises it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
    head = (await reader.read()).split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    writer.close()
    headers = dict(line.split(": ", 1) for line in head[1:])
    return int(head[0].split()[1]), headers


async def test_trailing_slash_redirect_never_leaves_the_server(server: Server) -> None:
    # the decoded path of /%2Fevil.com/ is //evil.com: redirecting there sent browsers away
    bad = ("//evil.com/", "/%2Fevil.com/", "/%5Cevil.com/", "/\\evil.com/", "///evil.com//", "//evil.com/x/")
    for target in bad:
        status, headers = await _raw_get(server.port, target)
        assert status == 302, target
        location = headers["Location"]
        assert urljoin(f"http://127.0.0.1:{server.port}/", location).startswith(
            f"http://127.0.0.1:{server.port}/"
        ), (target, location)
        assert location.startswith("/") and location[1:2] not in ("/", "\\"), (target, location)


async def test_trailing_slash_redirect_keeps_the_base_url(make_server) -> None:
    server = await make_server(base_url="/jp/lab")
    for target, location in (
        ("/jp/lab/api/", "/jp/lab/api"),
        ("/jp/lab/no/such%20dir/?a=1&b=%2F", "/jp/lab/no/such%20dir?a=1&b=%2F"),
        ("/jp/lab/no//where//", "/jp/lab/no//where"),
    ):
        status, headers = await _raw_get(server.port, target)
        assert (status, headers["Location"]) == (302, location), target


async def test_unknown_api_paths_are_json_404_for_every_method(client: Client) -> None:
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        r = await client.request(method, "api/no/such/thing")
        assert r.status == 404, method
        assert r.json == {"message": "No API endpoint at /api/no/such/thing", "reason": "no such endpoint"}


async def test_wrong_method_is_a_json_405(client: Client) -> None:
    r = await client.request("DELETE", "api/status", validate=False)
    assert r.status == 405
    assert r.headers["Content-Type"].startswith("application/json")
    assert set(r.json) == {"message", "reason"}


async def test_base_url_prefixes_every_route(make_server, make_client) -> None:
    server = await make_server(base_url="/jp/lab")
    client = make_client(server)
    assert (await client.get("api/status")).status == 200
    assert server.config.base_url == "/jp/lab/"
    r = await client.http.fetch(
        f"http://127.0.0.1:{server.port}/api/status",
        headers={"Authorization": f"token {client.token}"},
        raise_error=False,
    )
    assert r.code == 404


async def test_connections_have_tcp_nodelay(server: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        connections = list(server._http._connections)  # type: ignore[union-attr]
        assert len(connections) == 1
        sock = connections[0].stream.socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        writer.close()
        await writer.wait_closed()


async def test_shutdown_stops_the_server(server: Server, client: Client) -> None:
    r = await client.post("api/shutdown")
    assert r.status == 204
    await asyncio.wait_for(server.wait(), 5)


async def test_shutdown_needs_a_credential(server: Server, client: Client) -> None:
    r = await client.post("api/shutdown", auth=None)
    assert r.status == 403
    assert not server._stopped.is_set()


async def test_oversized_body_is_413_before_it_is_read(make_server, make_client) -> None:
    server = await make_server(max_body_size=1000)
    client = make_client(server)
    r = await client.post("api/shutdown", body=b"x" * 1001)
    assert r.status == 413
    assert r.json["reason"] == "too large"
    assert not server._stopped.is_set()
    r = await client.post("api/shutdown", body=b"x" * 1001, auth=None)
    assert r.status == 403  # authentication comes first: anonymous uploads are never read
