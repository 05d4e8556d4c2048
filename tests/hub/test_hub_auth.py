"""The Hub's OAuth and tokens over real HTTP, against a fake Hub API (tests/hub/fakehub.py)
that can be made to fail; every response that api.yaml documents is validated against it.

Bad inputs tried: an OAuth callback without code or state, with the Hub's ``error``, with a
state whose cookie is missing, belongs to another login, is tampered with; a code the Hub
refuses; a login by a user who may not use the server; ``next=//evil.com`` and other
off-server targets; a wrong token, a token the Hub revoked (in a header and in the cookie); a Hub
that is down (API, websocket); a Hub that refuses activity twice; ``POST /login`` under a hub.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.web import create_signed_value
from tornado.websocket import websocket_connect

from nbserver import Server
from nbserver.auth.hub_oauth import OAuthState, pkce_challenge, state_cookie_name
from nbserver.config import HubConfig
from tests.conftest import Client, Response
from tests.hub.fakehub import CLIENT_ID, SERVER_TOKEN, FakeHub
from tests.hub.realhub import free_port
from tests.hub.tls import make_pki

PREFIX = "/user/alice/"
ALICE_SCOPES = ("access:servers!server=alice/", "read:users:name!user=alice")


@pytest.fixture
def fake_hub(io_loop: Any) -> Iterator[FakeHub]:
    hub = FakeHub()
    hub.start()
    yield hub
    io_loop.run_sync(hub.stop)


@pytest.fixture
def hub_server(
    make_server: Callable[..., Awaitable[Server]], fake_hub: FakeHub
) -> Callable[..., Awaitable[Server]]:
    """``await hub_server(**hub_overrides, config=...)``: alice's server under the fake Hub."""

    async def start(*, config: dict[str, Any] | None = None, **overrides: Any) -> Server:
        settings: dict[str, Any] = {
            "api_url": fake_hub.api_url,
            "api_token": SERVER_TOKEN,
            "client_id": CLIENT_ID,
            "user": "alice",
            "oauth_callback_url": PREFIX + "oauth_callback",
            "activity_url": fake_hub.api_url + "/users/alice/activity",
            "activity_interval": 3600,
        }
        settings.update(overrides)
        return await make_server(
            token="",
            base_url=PREFIX,
            allow_remote_access=True,
            cookie_secret=b"s" * 32,
            hub=HubConfig(**settings),
            **(config or {}),
        )

    return start


def set_cookies(response: Response) -> dict[str, Any]:
    """Set-Cookie headers by cookie name (the morsels, for their attributes)."""
    found: dict[str, Any] = {}
    for header in response.headers.get_list("Set-Cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        found.update(jar)
    return found


async def start_login(client: Client, path: str = "tree") -> tuple[dict[str, list[str]], str, str]:
    """An anonymous page load: ``(authorize query, state cookie name, its value)``."""
    response = await client.get(path, auth=None)
    assert response.status == 302, response.body
    location = response.headers["Location"]
    assert location.startswith("/hub/api/oauth2/authorize?"), location
    query = parse_qs(urlsplit(location).query)
    (name,) = [n for n in set_cookies(response) if "-oauth-state-" in n]
    return query, name, set_cookies(response)[name].value


async def log_in(client: Client, hub: FakeHub, token: str, path: str = "tree") -> Response:
    """The whole OAuth dance, the Hub's part played by ``hub``; the callback's response."""
    query, name, value = await start_login(client, path)
    code = hub.issue_code(token, query["code_challenge"][0], query["redirect_uri"][0])
    return await client.get(
        "oauth_callback",
        auth=None,
        params={"code": code, "state": query["state"][0]},
        headers={"Cookie": f"{name}={value}"},
    )


async def test_an_anonymous_page_is_sent_to_the_hubs_authorize_url(make_client: Any, hub_server: Any) -> None:
    client = make_client(await hub_server(), None)
    response = await client.get("tree", auth=None)
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["client_id"] == [CLIENT_ID] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [PREFIX + "oauth_callback"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    state = query["state"][0]
    cookie = set_cookies(response)[f"{CLIENT_ID}-oauth-state-{state[:8]}"]
    assert cookie["httponly"] and cookie["path"] == PREFIX and cookie["max-age"] == "600"
    assert not cookie["secure"] and cookie["samesite"] == "Lax"
    # the API never redirects; /api answers everyone at once
    api = await client.get("api/contents", auth=None)
    assert api.status == 403 and api.json["reason"] == "auth"
    assert (await client.get("api", auth=None)).status == 200


async def test_the_callback_logs_the_browser_in_for_the_prefix_only(
    make_client: Any, hub_server: Any, fake_hub: FakeHub
) -> None:
    client = make_client(await hub_server(), None)
    token = fake_hub.user("alice", *ALICE_SCOPES, display_name="Alice Liddell")
    done = await log_in(client, fake_hub, token, "tree?x=1")
    assert done.status == 302 and done.headers["Location"] == PREFIX + "tree?x=1"
    cookies = set_cookies(done)
    login = cookies[CLIENT_ID]
    assert login["httponly"] and login["path"] == PREFIX and not login["secure"]
    assert [n for n in cookies if "-oauth-state-" in n and cookies[n].value == ""]  # cleared
    me = await client.get("api/me", auth=None, headers={"Cookie": f"{CLIENT_ID}={login.value}"})
    assert me.status == 200
    assert me.json["identity"]["username"] == "alice"
    assert me.json["identity"]["display_name"] == "Alice Liddell"
    assert fake_hub.count("token") == 1


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"state": "s" * 22}, 400, "without a code or a state"),
        ({"code": "c"}, 400, "without a code or a state"),
        ({"error": "access_denied", "error_description": "not you"}, 400, "refused the login: not you"),
        ({"code": "c", "state": "s" * 22}, 403, "OAuth state does not match"),  # no state cookie
        ({"code": "c", "state": "bad state"}, 403, "OAuth state does not match"),
    ],
)
async def test_callbacks_that_are_refused(
    make_client: Any, hub_server: Any, params: dict[str, str], status: int, message: str
) -> None:
    client = make_client(await hub_server(), None)
    response = await client.get("oauth_callback", auth=None, params=params)
    assert response.status == status and message in response.text
    assert CLIENT_ID not in set_cookies(response)


async def test_a_state_cookie_of_another_login_or_tampered_is_refused(
    make_client: Any, hub_server: Any, fake_hub: FakeHub
) -> None:
    client = make_client(await hub_server(), None)
    token = fake_hub.user("alice", *ALICE_SCOPES)
    first, first_name, first_value = await start_login(client)
    _, _, second_value = await start_login(client)
    code = fake_hub.issue_code(token, first["code_challenge"][0], first["redirect_uri"][0])
    for value in (second_value, first_value[:-3] + "abc"):
        response = await client.get(
            "oauth_callback",
            auth=None,
            params={"code": code, "state": first["state"][0]},
            headers={"Cookie": f"{first_name}={value}"},
        )
        assert response.status == 403 and "OAuth state does not match" in response.text
    assert fake_hub.count("token") == 0  # the code was never even tried


async def test_codes_the_hub_refuses_and_users_who_may_not_enter(
    make_client: Any, hub_server: Any, fake_hub: FakeHub
) -> None:
    client = make_client(await hub_server(), None)
    query, name, value = await start_login(client)
    unknown = await client.get(
        "oauth_callback",
        auth=None,
        params={"code": "never-issued", "state": query["state"][0]},
        headers={"Cookie": f"{name}={value}"},
    )
    assert unknown.status == 403 and "refused the OAuth code" in unknown.text
    bob = fake_hub.user("bob", "access:servers!server=bob/", "access:servers!user=bob")
    refused = await log_in(client, fake_hub, bob)
    assert refused.status == 403 and CLIENT_ID not in set_cookies(refused)


async def test_a_stale_state_from_a_logged_in_browser_goes_home(
    make_client: Any, hub_server: Any, fake_hub: FakeHub
) -> None:
    client = make_client(await hub_server(), None)
    login = set_cookies(await log_in(client, fake_hub, fake_hub.user("alice", *ALICE_SCOPES)))[CLIENT_ID]
    again = await client.get(
        "oauth_callback",
        auth=None,
        params={"code": "old", "state": "s" * 22},
        headers={"Cookie": f"{CLIENT_ID}={login.value}"},
    )
    assert again.status == 302 and again.headers["Location"] == PREFIX


@pytest.mark.parametrize(
    ("target", "lands"),
    [
        ("//evil.com/", PREFIX),
        ("https://evil.com/user/alice/", PREFIX),
        ("/\\evil.com", PREFIX),
        ("/user/bob/tree", PREFIX),
        (PREFIX + "tree/sub", PREFIX + "tree/sub"),
    ],
)
async def test_login_next_stays_on_this_server(
    make_client: Any, hub_server: Any, fake_hub: FakeHub, target: str, lands: str
) -> None:
    client = make_client(await hub_server(), None)
    done = await log_in(
        client, fake_hub, fake_hub.user("alice", *ALICE_SCOPES), "login?" + urlencode({"next": target})
    )
    assert done.status == 302 and done.headers["Location"] == lands


async def test_a_state_that_leads_off_the_server_still_lands_on_it(
    make_client: Any, hub_server: Any, fake_hub: FakeHub
) -> None:
    """Defence in depth: the callback judges the state's ``next`` again, even one made with the
    server's own secret (the login began with a URL that /login would have refused)."""
    client = make_client(await hub_server(), None)
    state = OAuthState("s" * 22, "v" * 64, "//evil.com/user/alice/")
    name = state_cookie_name(CLIENT_ID, state.state)
    code = fake_hub.issue_code(
        fake_hub.user("alice", *ALICE_SCOPES), pkce_challenge(state.verifier), PREFIX + "oauth_callback"
    )
    done = await client.get(
        "oauth_callback",
        auth=None,
        params={"code": code, "state": state.state},
        headers={"Cookie": f"{name}={state.cookie_value(b's' * 32, CLIENT_ID)}"},
    )
    assert done.status == 302 and done.headers["Location"] == PREFIX


async def test_someone_the_hub_knows_but_who_may_not_enter_gets_403_not_a_login(
    make_client: Any, hub_server: Any, fake_hub: FakeHub
) -> None:
    """Sending bob to log in again would only loop: pages and the API alike say 403."""
    client = make_client(await hub_server(), None)
    bob = {"Authorization": f"token {fake_hub.user('bob', 'access:servers!user=bob')}"}
    page = await client.get("tree", auth=None, headers=bob, validate=False)
    assert page.status == 403 and "has no scope granting access" in page.text
    api = await client.get("api/contents", auth=None, headers=bob)
    assert api.status == 403 and "Not allowed" in api.json["message"]


async def test_an_empty_token_is_no_token(make_client: Any, hub_server: Any, fake_hub: FakeHub) -> None:
    """``?token=`` with nothing after it, on a browser websocket, must not become a request
    with the server's own token (which the Hub knows as alice's)."""
    server = await hub_server(cache_seconds=0)
    for query in ("&token=", "&token"):
        url = f"ws://127.0.0.1:{server.port}{PREFIX}api/kernels/00000000-0000-0000-0000-000000000000/channels?s=1{query}"
        with pytest.raises(HTTPClientError) as info:
            await websocket_connect(HTTPRequest(url, headers={"Sec-Fetch-Mode": "websocket"}))
        assert info.value.code == 403
    client = make_client(server, None)
    for header in ("token ", "bearer", "token  "):
        assert (await client.get("api/contents", auth=None, headers={"Authorization": header})).status == 403
    assert fake_hub.count("user") == 0


async def test_bad_or_revoked_tokens(make_client: Any, hub_server: Any, fake_hub: FakeHub) -> None:
    """403 JSON for the API, the Hub's login for pages; a revoked token in the cookie too."""
    client = make_client(await hub_server(cache_seconds=0), None)
    for headers in ({"Authorization": "token wrong"},):
        api = await client.get("api/contents", auth=None, headers=headers)
        assert api.status == 403 and "the Hub does not know" in api.json["message"]
        page = await client.get("tree", auth=None, headers=headers)
        assert page.status == 302 and page.headers["Location"].startswith("/hub/api/oauth2/authorize?")
    token = fake_hub.user("alice", *ALICE_SCOPES)
    cookie = {"Cookie": f"{CLIENT_ID}={set_cookies(await log_in(client, fake_hub, token))[CLIENT_ID].value}"}
    assert (await client.get("api/contents", auth=None, headers=cookie)).status == 200
    del fake_hub.tokens[token]  # logged out of the Hub, or expired
    assert (await client.get("api/contents", auth=None, headers=cookie)).status == 403
    page = await client.get("tree", auth=None, headers=cookie)
    assert page.status == 302 and page.headers["Location"].startswith("/hub/api/oauth2/authorize?")


async def test_post_login_is_refused_under_a_hub(make_client: Any, hub_server: Any) -> None:
    client = make_client(await hub_server(), None)
    response = await client.post("login", auth=None, body="password=x", validate=False)
    assert response.status == 403


async def test_the_hubs_answers_are_cached_and_shared(
    make_client: Any, hub_server: Any, fake_hub: FakeHub
) -> None:
    client = make_client(await hub_server(cache_seconds=60), None)
    token = fake_hub.user("alice", *ALICE_SCOPES)
    headers = {"Authorization": f"token {token}"}
    responses = await asyncio.gather(
        *(client.get("api/contents", auth=None, headers=headers) for _ in range(10))
    )
    assert [r.status for r in responses] == [200] * 10
    await client.get("api/status", auth=None, headers=headers)
    assert fake_hub.count("user") == 1
    uncached = make_client(await hub_server(cache_seconds=0), None)
    for _ in range(3):
        await uncached.get("api/contents", auth=None, headers=headers)
    assert fake_hub.count("user") == 4


async def test_an_unreachable_hub_is_a_503_not_a_refusal(
    make_client: Any, hub_server: Any, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, "nbserver.hub")
    server = await hub_server(api_url="http://127.0.0.1:9/hub/api")  # nothing listens on port 9
    assert "Cannot reach the Hub" in caplog.text  # start-up went on regardless
    client = make_client(server, None)
    api = await client.get("api/contents", auth=None, headers={"Authorization": "token t"}, validate=False)
    assert api.status == 503 and api.json["reason"] == "hub unavailable"
    # public routes do not need the Hub, even for a browser that sends its login cookie
    signed = create_signed_value(b"s" * 32, CLIENT_ID, "a-token").decode()
    cookie = {"Cookie": f"{CLIENT_ID}={signed}"}
    assert (await client.get("api/contents", auth=None, headers=cookie, validate=False)).status == 503
    assert (await client.get("api", auth=None, headers=cookie)).status == 200
    logout = await client.get("logout", auth=None, headers=cookie)
    assert logout.status == 302 and logout.headers["Location"] == "/hub/logout"
    request = HTTPRequest(
        f"ws://127.0.0.1:{server.port}{PREFIX}api/kernels/00000000-0000-0000-0000-000000000000/channels",
        headers={"Authorization": "token t"},
    )
    with pytest.raises(HTTPClientError) as info:
        await websocket_connect(request)
    assert info.value.code == 503


async def test_activity_is_retried_until_the_hub_takes_it(
    make_client: Any, hub_server: Any, fake_hub: FakeHub
) -> None:
    fake_hub.activity_statuses = [500, 502]
    server = await hub_server(activity_interval=0.2, server_name="")
    for _ in range(600):
        if fake_hub.activity:
            break
        await asyncio.sleep(0.05)
    assert fake_hub.count("activity") >= 3
    (body, *_) = fake_hub.activity
    assert ctx_last_activity(server) >= parse_stamp(body["last_activity"])
    assert body == {
        "servers": {"": {"last_activity": body["last_activity"]}},
        "last_activity": body["last_activity"],
    }
    token = fake_hub.user("alice", *ALICE_SCOPES)
    client = make_client(server, None)
    assert (
        await client.get("api/contents", auth=None, headers={"Authorization": f"token {token}"})
    ).status == 200
    for _ in range(600):  # the request moved the activity: it is reported
        if parse_stamp(fake_hub.activity[-1]["last_activity"]) > parse_stamp(body["last_activity"]):
            break
        await asyncio.sleep(0.05)
    assert parse_stamp(fake_hub.activity[-1]["last_activity"]) == ctx_last_activity(server)


def parse_stamp(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def ctx_last_activity(server: Server) -> datetime.datetime:
    assert server.ctx is not None
    return server.ctx.activity.last_activity


async def test_logout_clears_the_cookie_and_goes_to_the_hub(
    make_client: Any, hub_server: Any, fake_hub: FakeHub
) -> None:
    client = make_client(await hub_server(), None)
    login = set_cookies(await log_in(client, fake_hub, fake_hub.user("alice", *ALICE_SCOPES)))[CLIENT_ID]
    response = await client.get("logout", auth=None, headers={"Cookie": f"{CLIENT_ID}={login.value}"})
    assert response.status == 302 and response.headers["Location"] == "/hub/logout"
    cleared = set_cookies(response)[CLIENT_ID]
    assert cleared.value == "" and cleared["path"] == PREFIX


@pytest.mark.parametrize(
    ("hub_version", "sent"), [("6.1.1", "6.1.1"), ("5.3.0", "5.3.0"), ("7.0.0", "6.1.1")]
)
async def test_every_response_says_x_jupyterhub_version(
    make_client: Any, hub_server: Any, fake_hub: FakeHub, hub_version: str, sent: str
) -> None:
    """The Hub's own version when it is one whose contract nbserver follows, else the
    contract's; on answers, redirects, refusals and 404s alike."""
    fake_hub.version = hub_version
    client = make_client(await hub_server(), None)
    for method, path in (
        ("GET", "api"),
        ("GET", "tree"),
        ("GET", "api/contents"),
        ("GET", "nothing"),
        ("POST", "api/kernels"),
    ):
        response = await client.request(method, path, auth=None)
        assert response.headers.get("X-JupyterHub-Version") == sent, (method, path, response.status)


async def test_cookies_are_secure_over_https(make_client: Any, hub_server: Any, tmp_path: Path) -> None:
    """Over TLS (``certfile``/``keyfile``, as JUPYTERHUB_SSL_* give them), and behind a proxy
    that says ``X-Forwarded-Proto: https``."""
    pki = make_pki(tmp_path)
    server = await hub_server(config={"certfile": pki.server_cert, "keyfile": pki.server_key})
    assert server.base.startswith("https://")
    context = ssl.create_default_context(cafile=str(pki.ca))
    http = AsyncHTTPClient(force_instance=True)
    try:
        response = await http.fetch(
            HTTPRequest(
                f"https://localhost:{server.port}{PREFIX}tree", follow_redirects=False, ssl_options=context
            ),
            raise_error=False,
        )
    finally:
        http.close()
    assert response.code == 302
    (state,) = [c for c in response.headers.get_list("Set-Cookie") if "-oauth-state-" in c]
    assert "Secure" in state and "HttpOnly" in state
    proxied = make_client(await hub_server(), None)
    forwarded = await proxied.get("tree", auth=None, headers={"X-Forwarded-Proto": "https"})
    assert all(c["secure"] for c in set_cookies(forwarded).values())


async def test_the_home_page_goes_to_the_default_url_the_hub_gives(
    make_client: Any, hub_server: Any, fake_hub: FakeHub
) -> None:
    client = make_client(await hub_server(config={"default_url": "/tree/work"}), None)
    token = {"Authorization": f"token {fake_hub.user('alice', *ALICE_SCOPES)}"}
    home = await client.get("", auth=None, headers=token)
    assert home.status == 302 and home.headers["Location"] == PREFIX + "tree/work"


async def test_the_callback_is_404_without_a_hub(client: Client) -> None:
    response = await client.get("oauth_callback", params={"code": "c", "state": "s" * 22})
    assert response.status == 404


async def test_internal_ssl_both_ways(
    make_client: Any, hub_server: Any, fake_hub: FakeHub, tmp_path: Path
) -> None:
    """JupyterHub's internal SSL (JUPYTERHUB_SSL_KEYFILE/CERTFILE/CLIENT_CA): the server wants
    a client certificate from the CA, and shows its own to an https Hub that wants one too."""
    pki = make_pki(tmp_path)
    tls_hub = FakeHub()
    tls_hub.start(ssl_options=pki.server_context())
    try:
        server = await hub_server(
            api_url=f"https://localhost:{tls_hub.port}/hub/api",
            config={"certfile": pki.server_cert, "keyfile": pki.server_key, "client_ca": pki.ca},
        )
        token = tls_hub.user("alice", *ALICE_SCOPES)
        url = f"https://localhost:{server.port}{PREFIX}api/contents"
        http = AsyncHTTPClient(force_instance=True)
        try:
            with_cert = await http.fetch(
                HTTPRequest(
                    url, headers={"Authorization": f"token {token}"}, ssl_options=pki.client_context()
                ),
                raise_error=False,
            )
            assert with_cert.code == 200, with_cert.body
            anonymous = ssl.create_default_context(cafile=str(pki.ca))
            with pytest.raises((ssl.SSLError, OSError)):
                await http.fetch(HTTPRequest(url, ssl_options=anonymous, request_timeout=10))
        finally:
            http.close()
        assert tls_hub.count("user") == 1
    finally:
        await tls_hub.stop()


NO_JUPYTERHUB = (
    "import sys; sys.modules['jupyterhub'] = None; from nbserver.cli import main; sys.exit(main())"
)


def cli_env(hub: FakeHub, port: int, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "NBSERVER_"))}
    env.update(
        {
            "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}{PREFIX}",
            "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
            "JUPYTERHUB_API_URL": hub.api_url,
            "JUPYTERHUB_API_TOKEN": SERVER_TOKEN,
            "JUPYTERHUB_CLIENT_ID": CLIENT_ID,
            "JUPYTERHUB_USER": "alice",
            "JUPYTERHUB_ROOT_DIR": str(root),
            "JUPYTERHUB_ACTIVITY_URL": hub.api_url + "/users/alice/activity",
            "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
            "JUPYTER_CONFIG_DIR": str(root / "config"),
        }
    )
    return env


async def test_python_m_nbserver_under_the_hubs_environment(fake_hub: FakeHub, tmp_path: Path) -> None:
    """The command JupyterHub runs, with jupyterhub made unimportable: it serves on exactly the
    Hub's port, prints no token URL, and a taken port is an error (no other port is tried)."""
    port = free_port()
    env = cli_env(fake_hub, port, tmp_path)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        NO_JUPYTERHUB,
        env=env,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        http = AsyncHTTPClient(force_instance=True)
        try:
            for _ in range(600):  # until it listens (or exits)
                assert process.returncode is None, "the server exited"
                try:
                    response = await http.fetch(f"http://127.0.0.1:{port}{PREFIX}api")
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            assert response.code == 200 and response.headers["X-JupyterHub-Version"] == "6.1.1"
            page = await http.fetch(
                f"http://127.0.0.1:{port}{PREFIX}tree", raise_error=False, follow_redirects=False
            )
            assert page.code == 302 and page.headers["Location"].startswith("/hub/api/oauth2/authorize?")
        finally:
            http.close()
        with socket.socket() as taken:  # the same environment, its port now busy
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            busy_port = taken.getsockname()[1]
            second = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                NO_JUPYTERHUB,
                env=cli_env(fake_hub, busy_port, tmp_path),
                stderr=asyncio.subprocess.PIPE,
            )
            _, refusal = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 1, refusal
        assert f"no free port in {busy_port}..{busy_port}".encode() in refusal
    finally:
        process.terminate()
        out, err = await asyncio.wait_for(process.communicate(), 60)
    log = (out + err).decode()
    assert f"Serving http://127.0.0.1:{port}{PREFIX} for JupyterHub" in log, log
    assert "token=" not in log and "Open http" not in log
