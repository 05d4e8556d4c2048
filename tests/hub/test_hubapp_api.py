"""The hub's REST API, login pages and OAuth token endpoint over real HTTP, every ``/hub/api``
answer held against hub-api.yaml; server start/stop with real ``python -m nbserver --hub``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
import tornado.ioloop
from tornado.httpclient import HTTPResponse

from nbserver.hub.app import HubServer
from tests.hub.hubapp_harness import PASSWORDS, HubClient, login, serve, token_for
from tests.hub.realhub import Browser


@pytest.fixture
def hub(io_loop: tornado.ioloop.IOLoop, tmp_path: Path) -> Iterator[HubServer]:
    yield from serve(io_loop, tmp_path, login_attempts=3)


@pytest.fixture
def api(hub: HubServer) -> Iterator[HubClient]:
    client = HubClient(hub)
    yield client
    client.close()


async def test_version_and_header(api: HubClient) -> None:
    for path in ("/hub/api", "/hub/api/"):
        r = await api.request("GET", path)
        assert r.status == 200 and r.json["version"] == "6.1.1"
        assert r.headers["X-JupyterHub-Version"] == "6.1.1"


async def test_unknown_api_path_is_json_404(api: HubClient) -> None:
    r = await api.request("GET", "/hub/api/nothing/here")
    assert r.status == 404 and r.json["status"] == 404


async def test_self_model_has_scopes(hub: HubServer, api: HubClient) -> None:
    r = await api.request("GET", "/hub/api/user", token=token_for(hub, "bob"))
    assert r.status == 200 and r.json["name"] == "bob" and not r.json["admin"]
    assert "access:servers!user=bob" in r.json["scopes"] and "servers" not in r.json["scopes"]
    assert (await api.request("GET", "/hub/api/user")).status == 403
    assert (await api.request("GET", "/hub/api/user", token="not-a-token")).status == 403


async def test_non_admin_gets_403_on_others(hub: HubServer, api: HubClient) -> None:
    """bob's token on alice's and bobby's resources (and the list of users): 403 each."""
    bob = token_for(hub, "bob")
    for method, path in [
        ("GET", "/hub/api/users"),
        ("GET", "/hub/api/users/alice"),
        ("GET", "/hub/api/users/bobby"),
        ("POST", "/hub/api/users/bobby/server"),
        ("DELETE", "/hub/api/users/bobby/server"),
        ("POST", "/hub/api/users/bobby/tokens"),
        ("POST", "/hub/api/users/bobby/activity"),
        ("POST", "/hub/api/users/carol"),
        ("DELETE", "/hub/api/users/alice"),
    ]:
        r = await api.request(method, path, token=bob, json={} if method == "POST" else None)
        assert r.status == 403, (method, path, r.status, r.body)
    assert (await api.request("GET", "/hub/api/users/bob", token=bob)).status == 200


async def test_admin_manages_users(hub: HubServer, api: HubClient) -> None:
    admin = token_for(hub, "root1")
    r = await api.request("POST", "/hub/api/users/carol", token=admin, json={"admin": False})
    assert r.status == 201 and r.json["name"] == "carol"
    assert (await api.request("POST", "/hub/api/users/carol", token=admin)).status == 409
    assert (await api.request("POST", "/hub/api/users/Bad%20Name", token=admin)).status == 400
    assert (await api.request("DELETE", "/hub/api/users/root1", token=admin)).status == 400
    assert (await api.request("DELETE", "/hub/api/users/carol", token=admin)).status == 204
    assert (await api.request("GET", "/hub/api/users/carol", token=admin)).status == 404


async def test_users_list_filters_and_pagination(hub: HubServer, api: HubClient) -> None:
    admin = token_for(hub, "root1")
    plain = await api.request("GET", "/hub/api/users", token=admin)
    assert [u["name"] for u in plain.json] == ["alice", "bob", "bobby", "root1"]
    accept = {"Accept": "application/jupyterhub-pagination+json"}
    page = await api.request("GET", "/hub/api/users?limit=3", token=admin, headers=accept)
    assert [u["name"] for u in page.json["items"]] == ["alice", "bob", "bobby"]
    nxt = page.json["_pagination"]["next"]
    assert page.json["_pagination"]["total"] == 4 and nxt["offset"] == 3
    rest = await api.request("GET", nxt["url"].split(str(hub.port), 1)[1], token=admin, headers=accept)
    assert [u["name"] for u in rest.json["items"]] == ["root1"] and rest.json["_pagination"]["next"] is None
    inactive = await api.request("GET", "/hub/api/users?state=inactive", token=admin)
    assert len(inactive.json) == 4
    assert (await api.request("GET", "/hub/api/users?state=ready", token=admin)).json == []
    assert (await api.request("GET", "/hub/api/users?state=bogus", token=admin)).status == 400


async def test_tokens_inherit_and_never_exceed_owner(hub: HubServer, api: HubClient) -> None:
    bob = token_for(hub, "bob")
    made = await api.request("POST", "/hub/api/users/bob/tokens", token=bob, json={"note": "ci"})
    assert made.status == 201 and made.json["note"] == "ci"
    me = await api.request("GET", "/hub/api/user", token=made.json["token"])
    assert me.json["name"] == "bob"
    narrow = await api.request(
        "POST", "/hub/api/users/bob/tokens", token=bob, json={"scopes": ["read:users!user=bob"]}
    )
    assert (await api.request("GET", "/hub/api/users/bob", token=narrow.json["token"])).status == 200
    assert (await api.request("POST", "/hub/api/users/bob/server", token=narrow.json["token"])).status == 403
    wider = await api.request(
        "POST", "/hub/api/users/bob/tokens", token=bob, json={"scopes": ["admin:users"]}
    )
    assert wider.status == 400
    listed = await api.request("GET", "/hub/api/users/bob/tokens", token=bob)
    assert len(listed.json["api_tokens"]) == 3
    admin = token_for(hub, "root1")
    for_bob = await api.request("POST", "/hub/api/users/bob/tokens", token=admin)
    assert for_bob.status == 201 and for_bob.json["user"] == "bob"


async def test_activity_rules(hub: HubServer, api: HubClient) -> None:
    bob = token_for(hub, "bob")
    url = "/hub/api/users/bob/activity"
    ok = await api.request("POST", url, token=bob, json={"last_activity": "2026-01-01T00:00:00Z"})
    assert ok.status == 200
    model = (await api.request("GET", "/hub/api/users/bob", token=bob)).json
    assert model["last_activity"].startswith("2026-01-01T00:00:00")
    for bad in [
        {},
        {"last_activity": "yesterday"},
        {"last_activity": "2999-01-01T00:00:00Z"},
        {"servers": {"": {"last_activity": "2026-01-01T00:00:00Z"}}},  # no server running
        {"servers": {"other": {"last_activity": "2026-01-01T00:00:00Z"}}},
    ]:
        assert (await api.request("POST", url, token=bob, json=bad)).status == 400, bad


async def test_oauth_token_endpoint_errors_are_rfc6749(api: HubClient) -> None:
    form = urlencode({"grant_type": "authorization_code", "client_id": "jupyterhub-user-bob", "code": "x"})
    r = await api.request(
        "POST",
        "/hub/api/oauth2/token",
        body=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status == 401 and r.json["error"] == "invalid_client"
    bad = await api.request(
        "POST",
        "/hub/api/oauth2/token",
        body=b"grant_type=password",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert bad.status == 400 and bad.json["error"] == "unsupported_grant_type"


# -- login page --------------------------------------------------------------------------------------


async def _form(api: HubClient, next_url: str = "") -> tuple[str, str]:
    page = await api.request("GET", "/hub/login" + (f"?next={next_url}" if next_url else ""))
    assert page.status == 200
    token = re.search(rb'name="_xsrf" value="([^"]+)"', page.body)
    assert token is not None
    jar: SimpleCookie = SimpleCookie()
    for header in page.headers.get_list("Set-Cookie"):
        jar.load(header)
    return token.group(1).decode(), jar["_xsrf"].value


async def _post_login(
    api: HubClient, name: str, password: str, xsrf: tuple[str, str] | None, query: str = ""
):
    fields = {"username": name, "password": password}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if xsrf is not None:
        fields["_xsrf"] = xsrf[0]
        headers["Cookie"] = f"_xsrf={xsrf[1]}"
    return await api.request("POST", "/hub/login" + query, body=urlencode(fields).encode(), headers=headers)


async def test_login_sets_a_safe_cookie_and_lands_on_the_users_server(api: HubClient) -> None:
    r = await _post_login(api, "alice", PASSWORDS["alice"], await _form(api))
    assert r.status == 302 and r.headers["Location"] == "/user/alice/"
    cookie = next(c for c in r.headers.get_list("Set-Cookie") if c.startswith("jupyterhub-hub-login="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/hub/" in cookie
    assert "Secure" not in cookie  # plain http here; https adds it


async def test_login_keeps_only_local_next(api: HubClient) -> None:
    ok = await _post_login(api, "alice", PASSWORDS["alice"], await _form(api), "?next=%2Fuser%2Falice%2Ftree")
    assert ok.headers["Location"] == "/user/alice/tree"
    for evil in ("https%3A%2F%2Fevil.example%2F", "%2F%2Fevil.example%2F", "%2F%5Cevil.example"):
        r = await _post_login(api, "alice", PASSWORDS["alice"], await _form(api), "?next=" + evil)
        assert r.headers["Location"] == "/", evil


async def test_login_without_xsrf_is_refused(api: HubClient) -> None:
    r = await _post_login(api, "alice", PASSWORDS["alice"], None)
    assert r.status == 403 and "jupyterhub-hub-login" not in str(r.headers.get_list("Set-Cookie"))


async def test_failed_logins_are_rate_limited_and_logged(
    api: HubClient, caplog: pytest.LogCaptureFixture
) -> None:
    xsrf = await _form(api)
    for _ in range(3):
        r = await _post_login(api, "bob", "wrong", xsrf)
        assert r.status == 403
    limited = await _post_login(api, "bob", PASSWORDS["bob"], xsrf)  # even the right password
    assert limited.status == 429 and int(limited.headers["Retry-After"]) > 0
    assert "Failed login for 'bob'" in caplog.text
    assert (await _post_login(api, "nobody", "x", xsrf)).status == 429  # per address too


# -- servers --------------------------------------------------------------------------------------------


async def test_server_start_stop_status_codes(hub: HubServer, api: HubClient) -> None:
    bob = token_for(hub, "bob")
    started = await api.request("POST", "/hub/api/users/bob/server", token=bob)
    assert started.status in (201, 202)
    server = hub.hub.servers.get("bob")
    assert server is not None and await hub.hub.servers.wait_ready(server, 60)
    assert (await api.request("POST", "/hub/api/users/bob/server", token=bob)).status == 400
    model = (await api.request("GET", "/hub/api/users/bob", token=bob)).json
    assert model["server"] == "/user/bob/" and model["servers"][""]["ready"]
    admin = token_for(hub, "root1")
    ready = await api.request("GET", "/hub/api/users?state=ready", token=admin)
    assert [u["name"] for u in ready.json] == ["bob"]
    stopped = await api.request("DELETE", "/hub/api/users/bob/server", token=bob)
    assert stopped.status == 204 and hub.hub.servers.get("bob") is None
    assert (await api.request("DELETE", "/hub/api/users/bob/server", token=bob)).status == 204
    assert hub.hub.store.find_token("x") is None and hub.hub.store.servers() == []
    await asyncio.sleep(0)


# -- the admin page -------------------------------------------------------------------------------------


async def _admin_form(browser: Browser, name: str) -> str:
    page = await login(browser, name, "/hub/admin")
    match = re.search(rb'name="_xsrf" value="([^"]+)"', page.body)
    assert page.code == 200 and match and b"Add a user" in page.body, (page.code, page.body[:300])
    return match.group(1).decode()


async def _add(browser: Browser, xsrf: str | None, **form: str) -> HTTPResponse:
    fields = {"action": "add", **form, **({"_xsrf": xsrf} if xsrf else {})}
    return await browser.fetch(
        "/hub/admin",
        "POST",
        body=urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


async def test_admin_page_adds_a_user_with_a_password_shown_once(hub: HubServer, api: HubClient) -> None:
    """root1 adds carol (admin) and dave from the page; each gets a one-time password on the answer
    page (and nowhere else: the page is no-store, the URL holds no secret), which logs them in."""
    browser = Browser(api.base + "/")
    try:
        xsrf = await _admin_form(browser, "root1")
        added = await _add(browser, xsrf, username="Carol", admin="1")
        assert added.code == 201 and added.headers["Cache-Control"] == "no-store", added.body[:300]
        match = re.search(rb"<code id=password>([^<]+)</code>", added.body)
        assert match, added.body[:500]
        carol = hub.hub.store.user("carol")
        assert carol is not None and carol.admin and carol.password_hash
        assert (await _add(browser, xsrf, username="dave")).code == 201
        dave = hub.hub.store.user("dave")
        assert dave is not None and not dave.admin
        listing = await browser.fetch("/hub/admin")
        assert b"carol (admin)" in listing.body and match.group(1) not in listing.body
    finally:
        browser.close()
    newcomer = Browser(api.base + "/")
    try:
        home = await login(newcomer, "carol", "/hub/home", password=match.group(1).decode())
        assert home.code == 200 and home.effective_url.endswith("/hub/home")
    finally:
        newcomer.close()


async def test_admin_page_refuses_bad_adds(hub: HubServer, api: HubClient) -> None:
    """No _xsrf (403), a name taken (409), names that are not names ("Bad Name", "", "../x": 400),
    a non-admin posting the form (403); none of them adds anybody."""
    browser = Browser(api.base + "/")
    try:
        xsrf = await _admin_form(browser, "root1")
        assert (await _add(browser, None, username="erin")).code == 403
        assert (await _add(browser, xsrf, username="alice")).code == 409
        for bad in ("Bad Name", "", "../x"):
            assert (await _add(browser, xsrf, username=bad)).code == 400, bad
    finally:
        browser.close()
    plain = Browser(api.base + "/")
    try:
        page = await login(plain, "bob", "/hub/home")
        match = re.search(rb'name="_xsrf" value="([^"]+)"', page.body)
        assert match
        assert (await _add(plain, match.group(1).decode(), username="frank")).code == 403
    finally:
        plain.close()
    assert [u.name for u in hub.hub.store.users()] == ["alice", "bob", "bobby", "root1"]
