"""End to end, real processes: a browser-like client logs in to the hub, its server starts on the
first visit (progress page, then OAuth through the hub), a real ipykernel runs print(6*7) through
the proxy's websocket; users never reach each other's servers; idle servers are culled (built in,
and by jupyterhub-idle-culler from PyPI)."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tornado.ioloop
from tornado.httpclient import HTTPClientError

from nbserver.hub.app import HubServer
from tests.hub.hubapp_harness import HubClient, login, serve, token_for
from tests.hub.realhub import Browser
from tests.services.kernels.wsclient import KernelSocket, stream_text


@pytest.fixture
def hub(io_loop: tornado.ioloop.IOLoop, tmp_path: Path) -> Iterator[HubServer]:
    yield from serve(io_loop, tmp_path)


@pytest.fixture
def api(hub: HubServer) -> Iterator[HubClient]:
    client = HubClient(hub)
    yield client
    client.close()


async def _start(hub: HubServer, user: str) -> None:
    server = await hub.hub.servers.start(user)
    assert await hub.hub.servers.wait_ready(server, 90), server.events


async def _kernel(api: HubClient, user: str, token: str) -> str:
    r = await api.request("POST", f"/user/{user}/api/kernels", token=token, json={"name": "python3"})
    assert r.status == 201, (r.status, r.body)
    return str(r.json["id"])


async def test_first_visit_starts_the_server_and_a_kernel_runs_through_the_proxy(
    hub: HubServer, api: HubClient
) -> None:
    browser = Browser(api.base + "/")
    try:
        page = await login(browser, "alice", "/user/alice/tree")
        assert "/hub/spawn-pending/alice" in page.effective_url and b"EventSource" in page.body
        server = hub.hub.servers.get("alice")
        assert server is not None and await hub.hub.servers.wait_ready(server, 90)
        progress = await browser.fetch("/hub/api/users/alice/server/progress", navigate=False)
        assert b'"ready": true' in progress.body
        tree = await browser.follow("/user/alice/tree")
        assert tree.code == 200 and tree.effective_url.endswith("/user/alice/tree"), browser.trail
        assert any("/hub/api/oauth2/authorize" in url for _, url in browser.trail)
    finally:
        browser.close()
    token = token_for(hub, "alice")
    kernel = await _kernel(api, "alice", token)
    ws = await KernelSocket.connect(f"ws://127.0.0.1:{hub.port}/user/alice/", kernel, token)
    try:
        outputs, reply = await ws.run("print(6*7)")
        assert stream_text(outputs) == "42\n" and reply.content["status"] == "ok"
    finally:
        ws.close()
    model = (await api.request("GET", "/hub/api/users/alice", token=token)).json
    assert model["servers"][""]["last_activity"] is not None


async def test_users_never_reach_each_others_servers(hub: HubServer, api: HubClient) -> None:
    await asyncio.gather(_start(hub, "alice"), _start(hub, "bob"))
    alice, bob = token_for(hub, "alice"), token_for(hub, "bob")
    bob_kernel = await _kernel(api, "bob", bob)
    # alice's token on bob's server, files, kernels and websockets
    for path in ("/user/bob/api/status", "/user/bob/api/contents", f"/user/bob/api/kernels/{bob_kernel}"):
        r = await api.request("GET", path, token=alice)
        assert r.status == 403, (path, r.status)
    with pytest.raises(HTTPClientError) as refused:
        await KernelSocket.connect(f"ws://127.0.0.1:{hub.port}/user/bob/", bob_kernel, alice)
    assert refused.value.code == 403
    # crafted paths
    for path in (
        "/user/alice/../bob/api/status",
        "/user/alice/%2e%2e/bob/api/status",
        "/user/alice%2Fbob/api/status",
        "/user/alice/..%2Fbob/api/status",
        "//user/bob/api/status",
    ):
        r = await api.request("GET", path, token=alice)
        assert r.status in (400, 404), (path, r.status, r.body[:200])
    # /user/bob against /user/bobby: bobby has no server; bob's token is no key to it
    r = await api.request("GET", "/user/bobby/api/status", token=bob)
    assert r.status == 302 and r.headers["Location"].startswith("/hub/user/bobby/")
    # alice's browser: logged in to the hub, her cookies do not open bob's server
    browser = Browser(api.base + "/")
    try:
        await login(browser, "alice", "/hub/home")
        r = await browser.follow("/user/bob/tree")
        assert r.code == 403 and "/hub/api/oauth2/authorize" in r.effective_url, browser.trail
        r = await browser.fetch("/user/bob/api/contents", navigate=False)
        assert r.code == 403
    finally:
        browser.close()


async def test_hub_api_answers_while_a_big_upload_streams(hub: HubServer, api: HubClient) -> None:
    """A 64 MB body through the proxy reaches the server whole (a PUT of a file), with the hub's
    memory never holding it: the proxy hands chunks upstream as they come."""
    await _start(hub, "alice")
    token = token_for(hub, "alice")
    import base64
    import json

    payload = os.urandom(48 * 1024 * 1024)
    body = json.dumps({"type": "file", "format": "base64", "content": base64.b64encode(payload).decode()})
    r = await api.request(
        "PUT",
        "/user/alice/api/contents/big.bin",
        token=token,
        body=body.encode(),
        headers={"Content-Type": "application/json"},
        validate=False,
    )
    assert r.status in (200, 201), r.body[:300]
    assert (Path(hub.settings.users_dir) / "alice" / "big.bin").read_bytes() == payload


@pytest.fixture
def culling_hub(io_loop: tornado.ioloop.IOLoop, tmp_path: Path) -> Iterator[HubServer]:
    # 8 s: a margin for a loaded CI machine
    yield from serve(io_loop, tmp_path, cull_idle_timeout=8.0, cull_interval=0.5)


async def test_built_in_culler_stops_idle_servers_and_spares_used_ones(culling_hub: HubServer) -> None:
    """bob's server is left alone and culled; alice's is used through the proxy all along
    (a request every half second) and survives."""
    hub = culling_hub
    await asyncio.gather(_start(hub, "alice"), _start(hub, "bob"))
    client = HubClient(hub)
    token = token_for(hub, "alice")
    try:
        for _ in range(600):
            if hub.hub.servers.get("bob") is None:
                break
            await client.request("GET", "/user/alice/api/status", token=token)
            await asyncio.sleep(0.5)
        assert hub.hub.servers.get("bob") is None
        assert hub.hub.servers.running("alice") is not None
    finally:
        client.close()


@pytest.mark.skipif(
    shutil.which("jupyterhub-idle-culler") is None, reason="pip install jupyterhub-idle-culler"
)
async def test_jupyterhub_idle_culler_culls_through_the_api(hub: HubServer) -> None:
    await asyncio.gather(_start(hub, "alice"), _start(hub, "bob"))
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": token_for(hub, "root1")}
    proc = await asyncio.create_subprocess_exec(
        "jupyterhub-idle-culler",
        f"--url=http://127.0.0.1:{hub.port}/hub/api",
        "--timeout=3",
        "--cull-every=1",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        for _ in range(600):
            if not hub.hub.servers.all():
                break
            await asyncio.sleep(0.1)
        assert not hub.hub.servers.all()
    finally:
        proc.terminate()
        out, _ = await proc.communicate()
    assert b"Culling server alice" in out and b"Culling server bob" in out, out.decode()[-2000:]


def test_python_executable_is_used_for_servers() -> None:
    from nbserver.hub.spawner import DEFAULT_COMMAND

    assert DEFAULT_COMMAND[0] == sys.executable


def _token_in(signed: str) -> str:
    """The token a single-user server keeps in its login cookie (tornado's signed value, v2:
    ``2|1:0|<time>|<name>|<len>:<base64 value>|<signature>``): readable without its secret."""
    field = signed.split("|")[4]
    return base64.b64decode(field.partition(":")[2]).decode()


async def test_logout_revokes_the_tokens_its_session_gave_to_servers(hub: HubServer, api: HubClient) -> None:
    """alice opens her server in two browsers (two login sessions; OAuth hands her server a token
    for each), then logs out of the hub in the first. The hub no longer vouches for the first
    session's token (GET /hub/api/user, what her server asks when its cache lapses: 403), and
    her second session's token and her API token still work."""
    await _start(hub, "alice")
    first, second = Browser(api.base + "/"), Browser(api.base + "/")
    try:
        tokens = []
        for browser in (first, second):
            tree = await login(browser, "alice", "/user/alice/tree")
            assert tree.code == 200 and tree.effective_url.endswith("/user/alice/tree"), browser.trail
            tokens.append(_token_in(browser.cookies[("jupyterhub-user-alice", "/user/alice/")]))
        for token in tokens:
            assert (await api.request("GET", "/hub/api/user", token=token)).json["name"] == "alice"
        api_token = token_for(hub, "alice")
        out = await first.fetch("/hub/logout")
        assert out.code == 200 and ("jupyterhub-hub-login", "/hub/") not in first.cookies
        assert (await api.request("GET", "/hub/api/user", token=tokens[0])).status == 403
        assert (await api.request("GET", "/hub/api/user", token=tokens[1])).status == 200
        assert (await api.request("GET", "/hub/api/user", token=api_token)).status == 200
    finally:
        first.close()
        second.close()
