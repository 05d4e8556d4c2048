"""Authentication over real HTTP: tokens, the login cookie, XSRF, Origin, Host, login/logout.

Bad inputs tried: no credential, a wrong token in the header and in the query, a malformed
Authorization header, a tampered cookie, an expired cookie, a foreign Origin with a cookie, a
foreign Host, a missing and a wrong XSRF token, a wrong password, open-redirect `next` values.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from nbserver.auth.passwords import hash_password
from tests.conftest import TOKEN, Client
from tests.ui.conftest import PAGES


async def login_with_token(client: Client) -> None:
    """What a browser does with the start-up URL: trade ?token= for the login cookie."""
    r = await client.get("", auth="query", use_cookies=True)
    assert r.status == 302
    assert r.headers["Location"] == "/"
    assert client.server.ctx is not None
    assert client.server.ctx.cookie_name in client.cookies
    assert "_xsrf" in client.cookies


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"token {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}"},
        {"Authorization": f"TOKEN   {TOKEN}"},
    ],
)
async def test_token_header_forms(client: Client, headers: dict[str, str]) -> None:
    assert (await client.get("api/status", auth=None, headers=headers)).status == 200


async def test_token_in_query(client: Client) -> None:
    assert (await client.get("api/status", auth="query")).status == 200


async def test_token_in_an_api_query_sets_no_login_cookie(client: Client) -> None:
    """A divergence from jupyter_server (docs/compatibility.md): ``?token=`` authenticates that
    API request only. No login cookie is set (a read, a write, a 404), so the next request
    without the token is anonymous; pages still trade the token for a cookie."""
    assert client.server.ctx is not None
    for method, path, json in (
        ("GET", "api/status", None),
        ("PUT", "api/contents/t.txt", {"type": "file", "format": "text", "content": "x"}),
        ("GET", "api/contents/missing.txt", None),
    ):
        r = await client.request(method, path, json=json, auth="query", use_cookies=True)
        assert r.status in (200, 201, 404), (method, path, r.status)
        assert client.server.ctx.cookie_name not in r.cookies(), (method, path)
    assert client.server.ctx.cookie_name not in client.cookies
    r = await client.get("api/status", auth=None, use_cookies=True)
    assert r.status == 403 and "no credential" in r.json["message"]


@pytest.mark.parametrize(
    ("headers", "params", "failure"),
    [
        ({"Authorization": "token wrong"}, {}, "bad token"),
        ({"Authorization": f"token {TOKEN}x"}, {}, "bad token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, {}, "no credential"),  # a proxy's, not ours
        ({"Authorization": f"tokens {TOKEN}"}, {}, "no credential"),
        ({"Authorization": "token"}, {}, "bad authorization header"),
        ({"Authorization": " Bearer  "}, {}, "bad authorization header"),
        ({"Authorization": f"token {TOKEN} extra"}, {}, "bad authorization header"),
        ({}, {"token": "wrong"}, "bad token"),
        ({}, {"token": ""}, "bad token"),
        ({}, {}, "no credential"),
    ],
)
async def test_bad_credentials_are_403_naming_the_check(
    client: Client, headers: dict[str, str], params: dict[str, str], failure: str
) -> None:
    r = await client.get("api/status", auth=None, headers=headers, params=params)
    assert r.status == 403
    assert r.json == {"message": f"Authentication required ({failure})", "reason": "auth"}


async def test_a_proxys_authorization_header_does_not_hide_the_token_or_cookie(client: Client) -> None:
    # nginx's auth_basic forwards the browser's Basic header: the user's own credential counts
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    assert (await client.get("api/status", auth="query", headers=basic)).status == 200
    assert (await client.get("", auth="query", use_cookies=True)).status == 302  # the login cookie
    assert (await client.get("api/status", auth=None, headers=basic, use_cookies=True)).status == 200
    assert (await client.get("tree", auth=None, headers=basic, use_cookies=True)).status == 200
    wrong = {"Authorization": "token wrong"}  # a token header of ours is judged, cookie or not
    assert (await client.get("api/status", auth=None, headers=wrong, use_cookies=True)).status == 403


async def test_wrong_header_token_is_not_rescued_by_the_query(client: Client) -> None:
    r = await client.get(
        "api/status", auth=None, headers={"Authorization": "token wrong"}, params={"token": TOKEN}
    )
    assert r.status == 403


async def test_page_with_token_sets_cookie_and_drops_token_from_url(client: Client) -> None:
    r = await client.get("", auth="query", params={"a": "1"}, use_cookies=True)
    assert r.status == 302
    assert r.headers["Location"] == "/?a=1"
    assert TOKEN not in r.headers["Location"]
    set_cookie = " ".join(r.headers.get_list("Set-Cookie"))
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    r = await client.get(f"{PAGES}tree", auth=None, use_cookies=True)  # the built-in UI's page
    assert r.status == 200
    assert "nbserver" in r.text


async def test_cookie_authenticates_api_reads(client: Client) -> None:
    await login_with_token(client)
    assert (await client.get("api/status", auth=None, use_cookies=True)).status == 200


async def test_cookie_unsafe_request_needs_xsrf(server, client: Client) -> None:
    await login_with_token(client)
    r = await client.post("api/shutdown", auth=None, use_cookies=True)
    assert r.status == 403 and r.json["reason"] == "xsrf"
    r = await client.post("api/shutdown", auth=None, use_cookies=True, headers={"X-XSRFToken": "2|00|11|22"})
    assert r.status == 403 and r.json["reason"] == "xsrf"
    assert not server._stopped.is_set()
    r = await client.post(
        "api/shutdown", auth=None, use_cookies=True, headers={"X-XSRFToken": client.cookies["_xsrf"]}
    )
    assert r.status == 204
    assert server._stopped.is_set()


async def test_token_unsafe_request_needs_no_xsrf(server, client: Client) -> None:
    assert (await client.post("api/shutdown")).status == 204


async def test_cookie_request_from_foreign_origin_is_refused(client: Client) -> None:
    await login_with_token(client)
    r = await client.get("api/status", auth=None, use_cookies=True, headers={"Origin": "http://evil.example"})
    assert r.status == 403 and r.json["reason"] == "origin"
    own = f"http://127.0.0.1:{client.server.port}"
    r = await client.get("api/status", auth=None, use_cookies=True, headers={"Origin": own})
    assert r.status == 200


async def test_token_request_from_any_origin_gets_cors(client: Client) -> None:
    r = await client.get("api/status", headers={"Origin": "http://app.example"})
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == "http://app.example"


async def test_allow_origin_permits_cookie_requests_and_preflight(make_server, make_client) -> None:
    client = make_client(await make_server(allow_origin=("http://app.example",)))
    await login_with_token(client)
    headers = {"Origin": "http://app.example"}
    r = await client.get("api/status", auth=None, use_cookies=True, headers=headers)
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == "http://app.example"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    r = await client.request("OPTIONS", "api/status", auth=None, headers=headers)
    assert r.status == 204
    assert "authorization" in r.headers["Access-Control-Allow-Headers"]
    assert "PATCH" in r.headers["Access-Control-Allow-Methods"]


async def test_preflight_from_unlisted_origin_gets_no_cors_grant(client: Client) -> None:
    r = await client.request("OPTIONS", "api/status", auth=None, headers={"Origin": "http://x.example"})
    assert r.status == 204
    assert "Access-Control-Allow-Origin" not in r.headers


async def test_tampered_cookie_is_refused(client: Client) -> None:
    await login_with_token(client)
    assert client.server.ctx is not None
    name = client.server.ctx.cookie_name
    value = client.cookies[name]
    client.cookies[name] = value[:-2] + ("00" if not value.endswith("00") else "11")
    r = await client.get("api/status", auth=None, use_cookies=True)
    assert r.status == 403
    assert "bad cookie" in r.json["message"]


async def test_expired_cookie_is_refused_and_says_so(make_server, make_client) -> None:
    client = make_client(await make_server(cookie_max_age_days=1.5 / 86400))  # 1.5 seconds
    await login_with_token(client)
    assert (await client.get("api/status", auth=None, use_cookies=True)).status == 200
    await asyncio.sleep(2.6)
    r = await client.get("api/status", auth=None, use_cookies=True)
    assert r.status == 403
    assert "expired cookie" in r.json["message"]


async def test_cookie_from_another_secret_is_refused(make_server, make_client, tmp_path) -> None:
    first = make_client(await make_server(cookie_secret=b"a" * 32))
    await login_with_token(first)
    second = make_client(await make_server(cookie_secret=b"b" * 32))
    assert first.server.ctx is not None and second.server.ctx is not None
    name = first.server.ctx.cookie_name
    second.cookies = {second.server.ctx.cookie_name: first.cookies[name]}
    r = await second.get("api/status", auth=None, use_cookies=True)
    assert r.status == 403 and "bad cookie" in r.json["message"]


async def test_foreign_host_is_refused_on_loopback(make_server, make_client) -> None:
    client = make_client(await make_server())
    r = await client.get("api/status", headers={"Host": "evil.example"})
    assert r.status == 403 and r.json["reason"] == "host"
    r = await client.get("api/status", headers={"Host": f"localhost:{client.server.port}"})
    assert r.status == 200
    open_client = make_client(await make_server(allow_remote_access=True))
    r = await open_client.get("api/status", headers={"Host": "evil.example"})
    assert r.status == 200


async def test_anonymous_page_visit_redirects_to_login(client: Client) -> None:
    r = await client.get("", auth=None, params={"x": "1"})
    assert r.status == 302
    assert r.headers["Location"] == "/login?next=%2F%3Fx%3D1"


async def test_no_token_server_needs_no_credential(make_server, make_client) -> None:
    client = make_client(await make_server(token=""), None)
    assert (await client.get("api/status", auth=None)).status == 200
    assert (await client.get("tree", auth=None)).status == 200


def _xsrf_field(html: str) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


@pytest.fixture
def password_server(io_loop, make_server):
    return io_loop.run_sync(lambda: make_server(token="", password_hash=hash_password("s3cret pass")))


async def login_form(client: Client, password: str, next_: str = "/") -> tuple:
    page = await client.get("login", auth=None, params={"next": next_}, use_cookies=True)
    assert page.status == 200
    assert "text/html" in page.headers["Content-Type"]
    body = f"_xsrf={_xsrf_field(page.text)}&password={password}"
    r = await client.post(
        "login",
        auth=None,
        params={"next": next_},
        body=body,
        use_cookies=True,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return page, r


async def test_password_login_and_logout(password_server, make_client) -> None:
    client = make_client(password_server, None)
    assert (await client.get("api/status", auth=None)).status == 403
    _, r = await login_form(client, "s3cret%20pass", "/api/status")
    assert r.status == 302
    assert r.headers["Location"] == "/api/status"
    assert (await client.get("api/status", auth=None, use_cookies=True)).status == 200
    r = await client.get("logout", auth=None, use_cookies=True)
    assert r.status == 200
    assert (await client.get("api/status", auth=None, use_cookies=True)).status == 403


async def test_wrong_password_is_401_with_the_form_again(password_server, make_client) -> None:
    client = make_client(password_server, None)
    _, r = await login_form(client, "nope")
    assert r.status == 401
    assert "Invalid credentials" in r.text
    assert password_server.ctx.cookie_name not in r.cookies()


async def test_login_post_without_xsrf_is_refused(password_server, make_client) -> None:
    client = make_client(password_server, None)
    r = await client.post(
        "login",
        auth=None,
        body="password=s3cret%20pass",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status == 403


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "http://evil.example/",
        "/\\evil.example",
        "https:evil.example",
        "/%0d%0aSet-Cookie:x=1",
        "javascript:alert(1)",
    ],
)
async def test_login_next_never_leaves_the_server(password_server, make_client, target) -> None:
    client = make_client(password_server, None)
    _, r = await login_form(client, "s3cret%20pass", target)
    assert r.status == 302
    location = r.headers["Location"]
    assert location.startswith("/") and not location.startswith("//"), location
    assert "evil" not in location and "\n" not in location


async def test_login_accepts_the_token_on_token_servers(client: Client) -> None:
    _, r = await login_form(client, TOKEN)
    assert r.status == 302
    assert (await client.get("api/status", auth=None, use_cookies=True)).status == 200


async def test_cookie_secret_is_private_and_survives_a_restart(make_server, make_client, tmp_path) -> None:
    """Logins survive a server restart: the secret is persisted in the runtime dir, mode 0600."""
    first = make_client(await make_server())
    await login_with_token(first)
    secret = tmp_path / "runtime" / "nbserver_cookie_secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    await first.server.stop()
    second = make_client(await make_server(port=first.server.port))  # the same server, restarted
    assert first.server.ctx is not None and second.server.ctx is not None
    second.cookies = {second.server.ctx.cookie_name: first.cookies[first.server.ctx.cookie_name]}
    assert (await second.get("api/status", auth=None, use_cookies=True)).status == 200
