"""nbserver as JupyterHub's single-user server, against a real JupyterHub 6.1 and
configurable-http-proxy: everything goes through the proxy, as a browser's requests would.

One Hub for the module (DummyAuthenticator, SimpleLocalProcessSpawner running
``python -m nbserver --hub``), users alice, bob and carol; alice and carol are in group
``team``, whose role grants ``access:servers!group=team``. Bad inputs tried on alice's server:
bob's browser session, bob's token (header, ``?token=``, websocket), bob's token inside a cookie
signed with alice's server's own secret, the Hub's own cookies, alice's token without an access
scope, and alice's token in ``?token=`` on plain HTTP or on a websocket without
``Sec-Fetch-Mode: websocket``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.web import create_signed_value
from tornado.websocket import websocket_connect

from nbserver.protocol import v1
from tests.hub.realhub import Browser, Hub, alive, children, cmdline, start_hub
from tests.services.kernels.wsclient import KernelSocket, stream_text

if importlib.util.find_spec("jupyterhub") is None:
    pytest.skip("jupyterhub is not installed (pip install jupyterhub==6.1.1)", allow_module_level=True)
if shutil.which("configurable-http-proxy") is None:
    pytest.skip(
        "configurable-http-proxy is not installed (npm install -g configurable-http-proxy)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    running = start_hub(tmp_path_factory.mktemp("jupyterhub"))
    yield running
    leftovers = running.stop()
    assert leftovers == [], f"still running after the Hub stopped: {[cmdline(p) for p in leftovers]}"
    assert not [p for p in running.started if alive(p)]


@pytest.fixture(scope="module")
def alice(hub: Hub) -> dict[str, Any]:
    return hub.spawn("alice")


@pytest.fixture(scope="module")
def tokens(hub: Hub) -> dict[str, str]:
    """Hub API tokens: each user's own (their full permissions), and alice's without any
    access scope."""

    def new(user: str, scopes: list[str] | None = None) -> str:
        body = {"note": "test"} if scopes is None else {"note": "test", "scopes": scopes}
        return str(hub.request("POST", f"users/{user}/tokens", body)["token"])

    return {
        "alice": new("alice"),
        "bob": new("bob"),
        "carol": new("carol"),
        "alice-no-access": new("alice", ["read:users:name!user=alice"]),
    }


async def fetch(url: str, *, token: str | None = None, **kw: Any) -> HTTPResponse:
    headers = dict(kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"token {token}"
    http = AsyncHTTPClient(force_instance=True)
    try:
        request = HTTPRequest(url, headers=headers, follow_redirects=False, request_timeout=60, **kw)
        return await http.fetch(request, raise_error=False)
    finally:
        http.close()


async def open_kernel_socket(
    hub: Hub, kernel_id: str, headers: dict[str, str], query: str = ""
) -> KernelSocket:
    url = f"ws://127.0.0.1:{hub.port}/user/alice/api/kernels/{kernel_id}/channels?session_id=s1{query}"
    conn = await websocket_connect(HTTPRequest(url, headers=headers), subprotocols=[v1.PROTOCOL])
    return KernelSocket(conn, "v1", "s1")


NO_KERNEL = "00000000-0000-0000-0000-000000000000"  # auth is judged before the kernel is looked up


async def refused_upgrade(
    hub: Hub, headers: dict[str, str], query: str = "", kernel_id: str = NO_KERNEL
) -> int:
    url = f"ws://127.0.0.1:{hub.port}/user/alice/api/kernels/{kernel_id}/channels?session_id=s{query}"
    with pytest.raises(HTTPClientError) as info:
        await websocket_connect(HTTPRequest(url, headers=headers))
    return info.value.code


async def print_6x7(socket: KernelSocket) -> str:
    try:
        replies, _ = await socket.run("print(6*7)")
        return stream_text(replies)
    finally:
        socket.close()


def test_the_hub_spawns_nbserver_and_sees_it_ready(hub: Hub, alice: dict[str, Any], io_loop: Any) -> None:
    """Spawned through the Hub's API; the Hub's appended flag (--debug) is accepted; /api
    answers at once, without a redirect or a credential; no token URL is printed."""
    assert alice["ready"] and alice["url"] == "/user/alice/"
    (server,) = hub.servers()
    assert cmdline(server).split()[-3:] == ["nbserver", "--hub", "--debug"]
    response = io_loop.run_sync(lambda: fetch(hub.url + "/user/alice/api"))
    assert response.code == 200, response.body
    assert "version" in json.loads(response.body)
    assert response.headers["X-JupyterHub-Version"].startswith("6.")
    assert "?token=" not in hub.log()


async def test_a_browser_logs_in_through_oauth_and_uses_rest_and_a_kernel(
    hub: Hub, alice: dict[str, Any]
) -> None:
    browser = Browser(hub.url)
    try:
        page = await browser.hub_login("alice", "/user/alice/tree")
        assert page.code == 200 and page.effective_url == hub.url + "/user/alice/tree", browser.trail
        # left for the Hub's authorize URL with a state and PKCE, came back through oauth_callback
        authorize = next(url for _, url in browser.trail if "/hub/api/oauth2/authorize" in url)
        query = parse_qs(urlsplit(authorize).query)
        assert query["client_id"] == ["jupyterhub-user-alice"]
        assert query["redirect_uri"] == ["/user/alice/oauth_callback"]
        assert query["code_challenge_method"] == ["S256"] and query["state"]
        assert any("/user/alice/oauth_callback?code=" in url for _, url in browser.trail)
        # the server's own cookie, for its prefix only; the state cookie is gone
        assert ("jupyterhub-user-alice", "/user/alice/") in browser.cookies
        assert not [name for name, _ in browser.cookies if "-oauth-state-" in name]

        me = await browser.fetch("/user/alice/api/me", navigate=False)
        assert json.loads(me.body)["identity"]["username"] == "alice"

        xsrf = browser.cookies[("_xsrf", "/user/alice/")]  # the server's, not the Hub's
        write = {"X-XSRFToken": xsrf, "Content-Type": "application/json"}
        body = json.dumps({"type": "file", "format": "text", "content": "hello"}).encode()
        saved = await browser.fetch(
            "/user/alice/api/contents/hello.txt", "PUT", body=body, headers=write, navigate=False
        )
        assert saved.code == 201, saved.body
        unsafe = await browser.fetch("/user/alice/api/contents/other.txt", "PUT", body=body, navigate=False)
        assert unsafe.code == 403  # a cookie alone does not write: XSRF
        kernel = await browser.fetch(
            "/user/alice/api/kernels", "POST", body=b"{}", headers=write, navigate=False
        )
        assert kernel.code == 201, kernel.body
        kernel_id = json.loads(kernel.body)["id"]
        headers = {"Cookie": browser.cookie_header("/user/alice/api/"), "Origin": hub.url}
        assert await print_6x7(await open_kernel_socket(hub, kernel_id, headers)) == "42\n"
        gone = await browser.fetch(
            f"/user/alice/api/kernels/{kernel_id}", "DELETE", headers=write, navigate=False
        )
        assert gone.code == 204

        logout = await browser.fetch("/user/alice/logout")
        assert logout.code == 302 and logout.headers["Location"].endswith("/hub/logout")
        assert ("jupyterhub-user-alice", "/user/alice/") not in browser.cookies
    finally:
        browser.close()


async def test_tokens_work_for_rest_and_websockets(
    hub: Hub, alice: dict[str, Any], tokens: dict[str, str]
) -> None:
    """``Authorization: token`` everywhere; ``?token=`` only on a websocket that says
    ``Sec-Fetch-Mode: websocket`` (refused on plain HTTP and on a websocket without it)."""
    token = tokens["alice"]
    base = hub.url + "/user/alice/"
    listing = await fetch(base + "api/contents", token=token)
    assert listing.code == 200, listing.body
    in_url = await fetch(base + f"api/contents?token={token}")
    assert in_url.code == 403 and json.loads(in_url.body)["reason"] == "auth"

    kernel = await fetch(base + "api/kernels", token=token, method="POST", body=b"{}")
    kernel_id = json.loads(kernel.body)["id"]
    try:
        header = {"Authorization": f"token {token}"}
        assert await print_6x7(await open_kernel_socket(hub, kernel_id, header)) == "42\n"
        browser_ws = {"Sec-Fetch-Mode": "websocket", "Origin": hub.url}
        socket = await open_kernel_socket(hub, kernel_id, browser_ws, query=f"&token={token}")
        assert await print_6x7(socket) == "42\n"
        no_mode = {"Origin": hub.url}
        assert await refused_upgrade(hub, no_mode, query=f"&token={token}", kernel_id=kernel_id) == 403
        assert await refused_upgrade(hub, browser_ws, query="&token=", kernel_id=kernel_id) == 403
    finally:
        await fetch(base + f"api/kernels/{kernel_id}", token=token, method="DELETE")


async def test_other_users_and_tokens_without_access_are_refused(
    hub: Hub, alice: dict[str, Any], tokens: dict[str, str]
) -> None:
    base = hub.url + "/user/alice/"
    bob = tokens["bob"]
    # bob's token: 403 JSON on the API, 403 (not a login redirect) on pages, no websocket
    api = await fetch(base + "api/contents", token=bob)
    assert api.code == 403 and json.loads(api.body)["reason"] == "auth"
    page = await fetch(base + "tree", token=bob)
    assert page.code == 403
    assert await refused_upgrade(hub, {"Authorization": f"token {bob}"}) == 403
    ws_query = {"Sec-Fetch-Mode": "websocket", "Origin": hub.url}
    assert await refused_upgrade(hub, ws_query, query=f"&token={bob}") == 403
    # alice's own token without an access scope
    assert (await fetch(base + "api/contents", token=tokens["alice-no-access"])).code == 403
    # carol is in alice's group, whose role grants access:servers!group=team: her token holds
    # that group scope, not one naming alice, so the server asks the Hub for alice's groups
    carol = hub.request("GET", "user", token=tokens["carol"])["scopes"]
    assert "access:servers!group=team" in carol and not [s for s in carol if "alice" in s]
    assert (await fetch(base + "api/contents", token=tokens["carol"])).code == 200

    # bob's token inside a cookie that alice's server itself signed (same runtime directory):
    # the cookie is genuine, its owner is not allowed
    secret = (hub.directory / "runtime" / "nbserver_cookie_secret").read_bytes().strip()
    forged = create_signed_value(secret, "jupyterhub-user-alice", bob).decode()
    cookie = {"Cookie": f"jupyterhub-user-alice={forged}"}
    assert (await fetch(base + "api/contents", headers=cookie)).code == 403
    assert (await fetch(base + "tree", headers=cookie)).code == 403

    # bob's browser: logged in at the Hub, never let into alice's server
    browser = Browser(hub.url)
    try:
        end = await browser.hub_login("bob", "/user/alice/tree")
        assert end.code == 403 and "/hub/api/oauth2/authorize" in end.effective_url, browser.trail
        assert not [key for key in browser.cookies if key[0] == "jupyterhub-user-alice"]
        hub_cookies = {"Cookie": "; ".join(f"{n}={v}" for (n, _), v in browser.cookies.items())}
        api = await fetch(base + "api/contents", headers=hub_cookies)
        assert api.code == 403
        page = await fetch(base + "tree", headers=hub_cookies)
        assert page.code == 302 and "/hub/api/oauth2/authorize" in page.headers["Location"]
    finally:
        browser.close()


def server_activity(hub: Hub) -> str:
    return str(hub.request("GET", "users/alice")["servers"][""]["last_activity"])


async def test_activity_reaches_the_hub(hub: Hub, alice: dict[str, Any], tokens: dict[str, str]) -> None:
    """The Hub's own activity poll is off (last_activity_interval one hour): only the server's
    reports can move the server's last_activity."""
    before = server_activity(hub)
    await asyncio.sleep(0.01)
    assert (await fetch(hub.url + "/user/alice/api/contents", token=tokens["alice"])).code == 200
    deadline = time.monotonic() + 30
    while server_activity(hub) <= before:
        assert time.monotonic() < deadline, f"last_activity stayed {before}:\n{hub.log()[-3000:]}"
        await asyncio.sleep(0.25)


async def test_stopping_through_the_hub_leaves_no_process(
    hub: Hub, alice: dict[str, Any], tokens: dict[str, str]
) -> None:
    base = hub.url + "/user/alice/"
    kernel = await fetch(base + "api/kernels", token=tokens["alice"], method="POST", body=b"{}")
    assert kernel.code == 201
    (server,) = hub.servers()
    kernels = children(server)
    assert kernels and all("ipykernel" in cmdline(p) for p in kernels), [cmdline(p) for p in kernels]
    await asyncio.get_running_loop().run_in_executor(None, hub.stop_server, "alice")
    deadline = time.monotonic() + 20
    while [p for p in (server, *kernels) if alive(p)]:
        assert time.monotonic() < deadline, [cmdline(p) for p in (server, *kernels) if alive(p)]
        await asyncio.sleep(0.1)
    assert not hub.servers()
    assert (await fetch(base + "api")).code != 200  # the proxy no longer routes to it
