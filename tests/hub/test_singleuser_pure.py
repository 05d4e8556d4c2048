"""Pure tests of the JupyterHub single-user pieces: no server, no Hub, no sockets.

Bad inputs tried: missing and malformed ``JUPYTERHUB_*`` variables (scopes that are not a JSON
list, an interval that is not a number, a port that is not one), a password and a token in the
config file under a hub, ``--token`` with ``--hub``; scopes of other users, other servers,
services, groups the owner is not in, malformed filters; OAuth states that are forged, expired,
for another state, or malformed; ``next`` URLs pointing off the server.
"""

from __future__ import annotations

import asyncio
import json
import string
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tornado.web import create_signed_value

from nbserver.auth.handlers import safe_next
from nbserver.auth.hub import HubAuthenticator
from nbserver.auth.hub_activity import HubActivityReporter
from nbserver.auth.hub_client import ExpiringCache
from nbserver.auth.hub_oauth import (
    STATE_MAX_AGE,
    OAuthState,
    access_granted,
    auth_cookie_name,
    cookie_path,
    group_scopes,
    pkce_challenge,
    scope_grants,
    state_cookie_name,
)
from nbserver.auth.identity import Credentials, Via
from nbserver.cli import _parser, build_config, hub_settings
from nbserver.config import HubConfig, ServerConfig
from nbserver.context import Activity
from nbserver.errors import ConfigError, Forbidden

SECRET = b"k" * 32


def hub_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What JupyterHub 6.1's Spawner.get_env gives alice's default server (and an empty
    nbserver config file, so that the user's own is not read)."""
    config_file = tmp_path / "nbserver.json"
    if not config_file.exists():
        config_file.write_text("{}")
    env = {
        "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:45959/user/alice/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
        "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
        "JUPYTERHUB_API_TOKEN": "server-token",
        "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-alice",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": "/user/alice/oauth_callback",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps(
            ["access:servers!server=alice/", "access:servers!user=alice"]
        ),
        "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": json.dumps(["read:users:name!user=alice"]),
        "JUPYTERHUB_USER": "alice",
        "JUPYTERHUB_SERVER_NAME": "",
        "JUPYTERHUB_ACTIVITY_URL": "http://127.0.0.1:8081/hub/api/users/alice/activity",
        "JUPYTERHUB_ACTIVITY_INTERVAL": "120",
        "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED": "0",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_HOST": "",
        "JUPYTERHUB_ROOT_DIR": str(tmp_path),
        "JUPYTERHUB_DEFAULT_URL": "/tree/work",
        "NBSERVER_CONFIG": str(config_file),
    }
    env.update(extra)
    return env


def config_from(argv: list[str], env: dict[str, str]) -> ServerConfig:
    return build_config(_parser().parse_args(argv), env)


# -- environment -> ServerConfig ---------------------------------------------------------------


def test_the_hub_environment_becomes_the_config(tmp_path: Path) -> None:
    config = config_from(["--hub"], hub_env(tmp_path))
    assert (config.ip, config.port, config.port_retries) == ("127.0.0.1", 45959, 0)
    assert config.base_url == "/user/alice/" and config.root_dir == tmp_path.resolve()
    assert config.default_url == "/tree/work"
    assert config.token == "" and config.password_hash is None and config.auth_enabled
    assert config.allow_remote_access and config.open_browser is False and config.username == "alice"
    hub = config.hub
    assert hub is not None
    assert (hub.api_url, hub.api_token, hub.client_id) == (
        "http://127.0.0.1:8081/hub/api",
        "server-token",
        "jupyterhub-user-alice",
    )
    assert hub.access_scopes == ("access:servers!server=alice/", "access:servers!user=alice")
    assert hub.client_allowed_scopes == ("read:users:name!user=alice",)
    assert (hub.user, hub.server_name, hub.oauth_callback_url) == ("alice", "", "/user/alice/oauth_callback")
    assert hub.activity_url.endswith("/users/alice/activity") and hub.activity_interval == 120
    assert hub.cookie_host_prefix is False and hub.hub_prefix == "/hub/"


def test_the_hub_environment_alone_turns_hub_mode_on_unless_no_hub(tmp_path: Path) -> None:
    env = hub_env(tmp_path)
    assert config_from([], env).hub is not None
    standalone = config_from(["--no-hub"], env)
    assert standalone.hub is None and standalone.token  # a local token again
    partial = {k: v for k, v in env.items() if k != "JUPYTERHUB_API_TOKEN"}
    assert config_from([], partial).hub is None


def test_flags_the_hub_appends_are_accepted_and_win(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    config = config_from(
        ["--hub", "--port=9999", "--ip=0.0.0.0", f"--notebook-dir={other}", "--debug"], hub_env(tmp_path)
    )
    assert (config.port, config.ip, config.root_dir, config.log_level) == (9999, "0.0.0.0", other, "DEBUG")
    assert config_from(["--hub", f"--root-dir={other}"], hub_env(tmp_path)).root_dir == other


@pytest.mark.parametrize(
    ("url", "ip", "port"),
    [
        ("http://10.0.0.5:8888/user/alice/", "10.0.0.5", 8888),
        ("http://:8888/user/alice/", "", 8888),  # no host: every interface
        ("http://[::1]:7000/", "::1", 7000),
        ("https://node.example/", "node.example", 443),
        ("http://node.example/", "node.example", 80),
    ],
)
def test_bind_address_from_the_service_url(tmp_path: Path, url: str, ip: str, port: int) -> None:
    settings = hub_settings(hub_env(tmp_path, JUPYTERHUB_SERVICE_URL=url))
    assert (settings["ip"], settings["port"]) == (ip, port)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("JUPYTERHUB_OAUTH_ACCESS_SCOPES", "access:servers", "JSON list"),
        ("JUPYTERHUB_OAUTH_ACCESS_SCOPES", '{"a": 1}', "JSON list"),
        ("JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES", "[1, 2]", "JSON list"),
        ("JUPYTERHUB_ACTIVITY_INTERVAL", "soon", "number of seconds"),
        ("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:notaport/", "bad port"),
        ("JUPYTERHUB_API_URL", "ftp://hub/api", "not an http"),
        ("JUPYTERHUB_CLIENT_ID", "bad;name", "cannot name a cookie"),
        ("JUPYTERHUB_ACTIVITY_INTERVAL", "-1", ">= 0"),
    ],
)
def test_malformed_variables_are_named(tmp_path: Path, name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        hub_settings(hub_env(tmp_path, **{name: value}))
    assert name in str(info.value) or message in str(info.value)


def test_missing_variables_are_all_named(tmp_path: Path) -> None:
    env = hub_env(tmp_path)
    for name in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_CLIENT_ID"):
        del env[name]
    with pytest.raises(ConfigError, match=r"\$JUPYTERHUB_API_TOKEN, \$JUPYTERHUB_CLIENT_ID unset"):
        config_from(["--hub"], env)


def test_optional_variables(tmp_path: Path) -> None:
    env = hub_env(
        tmp_path,
        JUPYTERHUB_OAUTH_ACCESS_SCOPES="",
        JUPYTERHUB_OAUTH_SCOPES='["access:servers!server=alice/"]',  # the pre-3.0 name
        JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED="1",
        JUPYTERHUB_DEFAULT_URL="lab",
        JUPYTERHUB_DEBUG="true",
        JUPYTERHUB_BASE_URL="/jh/",
        JUPYTERHUB_HOST="https://hub.example",
        JUPYTERHUB_SSL_KEYFILE="/k.pem",
        JUPYTERHUB_SSL_CERTFILE="/c.pem",
        JUPYTERHUB_SSL_CLIENT_CA="/ca.pem",
    )
    settings = hub_settings(env)
    hub = settings["hub"]
    assert hub.access_scopes == ("access:servers!server=alice/",)
    assert hub.cookie_host_prefix and hub.hub_prefix == "/jh/hub/" and hub.hub_host == "https://hub.example"
    assert settings["default_url"] == "/lab" and settings["log_level"] == "DEBUG"
    assert (settings["keyfile"], settings["certfile"], settings["client_ca"]) == (
        Path("/k.pem"),
        Path("/c.pem"),
        Path("/ca.pem"),
    )
    del env["JUPYTERHUB_OAUTH_SCOPES"]
    env["JUPYTERHUB_SERVER_NAME"] = "gpu"
    assert hub_settings(env)["hub"].access_scopes == (  # none given: the server's and the owner's
        "access:servers!server=alice/gpu",
        "access:servers!user=alice",
    )


@pytest.mark.parametrize(
    ("value", "expected"), [("", False), ("0", False), ("false", False), ("1", True), ("True", True)]
)
def test_boolean_variables_read_as_jupyterhub_reads_them(tmp_path: Path, value: str, expected: bool) -> None:
    env = hub_env(tmp_path, JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED=value)
    assert hub_settings(env)["hub"].cookie_host_prefix is expected


def test_the_config_files_secrets_are_ignored_under_a_hub(tmp_path: Path) -> None:
    """A password or token in the user's own config file must not break the Hub's login."""
    (tmp_path / "nbserver.json").write_text(
        json.dumps({"token": "t", "password_hash": "sha1:a:b", "max_body_size": 7})
    )
    config = config_from(["--hub"], hub_env(tmp_path))
    assert config.token == "" and config.password_hash is None and config.max_body_size == 7
    for flag in (["--token=x"], ["--no-token"], ["--password"]):
        with pytest.raises(ConfigError, match="do not apply under JupyterHub"):
            config_from(["--hub", *flag], hub_env(tmp_path))
    with pytest.raises(ConfigError, match="set no token or password_hash"):
        ServerConfig(root_dir=tmp_path, token="t", hub=hub_settings(hub_env(tmp_path))["hub"])


def test_disable_user_config_skips_the_default_config_file(tmp_path: Path, monkeypatch: Any) -> None:
    default = tmp_path / "nbserver_config.json"
    default.write_text(json.dumps({"max_body_size": 7}))
    monkeypatch.setattr("nbserver.cli.default_config_path", lambda: default)
    env = hub_env(tmp_path)
    del env["NBSERVER_CONFIG"]
    assert config_from(["--hub"], env).max_body_size == 7
    env["JUPYTERHUB_DISABLE_USER_CONFIG"] = "1"
    assert config_from(["--hub"], env).max_body_size != 7


# -- the scope rule --------------------------------------------------------------------------------

ALICE = ("access:servers!server=alice/", "access:servers!user=alice")
names = st.text(string.ascii_lowercase + string.digits + "-_.@", min_size=1, max_size=12)


@given(owner=names, server=st.text(string.ascii_lowercase, max_size=6), other=names, group=names)
def test_scope_rule(owner: str, server: str, other: str, group: str) -> None:
    required = (f"access:servers!server={owner}/{server}", f"access:servers!user={owner}")
    assert access_granted(["access:servers"], required)
    assert access_granted([f"access:servers!server={owner}/{server}"], required)
    assert access_granted([f"access:servers!user={owner}"], required)
    assert access_granted([f"access:servers!group={group}"], required, frozenset({group}))
    assert not access_granted([f"access:servers!group={group}"], required, frozenset())
    if other != owner:
        assert not access_granted([f"access:servers!user={other}"], required, frozenset({group}))
        assert not access_granted([f"access:servers!server={other}/{server}"], required)
    if other != server:
        assert not access_granted([f"access:servers!server={owner}/{other}"], [required[0]])


@pytest.mark.parametrize(
    "held",
    [
        "access:services",
        "access:services!service=alice",
        "access:servers!service=alice",
        "access:servers!server=alice",  # no "/": another resource than alice's default server
        "access:servers!server=alice/other",
        "access:servers!server=alicex/",
        "access:servers!user=alicex",
        "access:servers!user=",
        "access:servers!user",
        "access:servers!",
        "servers!user=alice",
        "admin:servers",
        "read:users:name!user=alice",
        "inherit",
        "",
    ],
)
def test_scopes_that_grant_nothing(held: str) -> None:
    assert not access_granted([held], ALICE, frozenset({"team"}))


def test_a_filtered_scope_never_covers_the_unfiltered_one() -> None:
    assert not scope_grants("access:servers!user=alice", "access:servers")
    assert scope_grants("access:servers", "access:servers")


def test_group_scopes_are_recognised_only_for_the_required_base() -> None:
    assert group_scopes(["access:servers!group=team"], ALICE)
    assert not group_scopes(["access:services!group=team", "access:servers!user=bob"], ALICE)


# -- cookies, OAuth state, PKCE --------------------------------------------------------------------


def test_cookie_name_and_path() -> None:
    assert auth_cookie_name("jupyterhub-user-alice", False) == "jupyterhub-user-alice"
    assert auth_cookie_name("jupyterhub-user-alice", True) == "__Host-jupyterhub-user-alice"
    assert cookie_path("/user/alice/", False) == "/user/alice/"
    assert cookie_path("/user/alice/", True) == "/"  # what __Host- cookies require


def test_pkce_challenge_is_rfc_7636s() -> None:
    """The example of RFC 7636, appendix B."""
    assert (
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_state_round_trip_and_every_way_it_fails() -> None:
    state = OAuthState.new("/user/alice/tree")
    value = state.cookie_value(SECRET, "c")
    assert OAuthState.from_cookie(SECRET, "c", state.state, value) == state
    other = OAuthState.new("/user/alice/tree")
    assert OAuthState.from_cookie(SECRET, "c", other.state, value) is None  # another login's
    assert OAuthState.from_cookie(SECRET, "c", state.state, None) is None  # no cookie
    assert OAuthState.from_cookie(b"x" * 32, "c", state.state, value) is None  # forged
    assert OAuthState.from_cookie(SECRET, "d", state.state, value) is None  # another server's
    assert OAuthState.from_cookie(SECRET, "c", state.state, value[:-2] + "00") is None  # tampered
    name = state_cookie_name("c", state.state)
    assert name is not None
    old = create_signed_value(
        SECRET,
        name,
        json.dumps({"s": state.state, "v": "v", "n": "/"}),
        clock=lambda: time.time() - STATE_MAX_AGE - 5,
    ).decode()
    assert OAuthState.from_cookie(SECRET, "c", state.state, old) is None  # expired
    same_prefix = state.state[:8] + "A" * 14  # another state whose cookie has the same name
    assert OAuthState.from_cookie(SECRET, "c", same_prefix, value) is None


@pytest.mark.parametrize(
    "state", ["", "short", "a" * 65, "has space xxxxxxxxxxxxx", "semi;colon;xxxxxxxxxx", "é" * 20]
)
def test_malformed_states_name_no_cookie(state: str) -> None:
    assert state_cookie_name("c", state) is None
    assert OAuthState.from_cookie(SECRET, "c", state, "anything") is None


def test_two_logins_at_once_use_two_state_cookies() -> None:
    first, second = OAuthState.new("/a"), OAuthState.new("/b")
    assert state_cookie_name("c", first.state) != state_cookie_name("c", second.state)


@given(st.text(max_size=40))
def test_the_states_next_url_only_ever_leads_under_the_prefix(target: str) -> None:
    """The callback sends the browser to safe_next(state.next_url): whatever a login began
    with (``/login?next=`` is the visitor's to choose), it stays on this server."""
    state = OAuthState.new(target)
    back = OAuthState.from_cookie(SECRET, "c", state.state, state.cookie_value(SECRET, "c"))
    assert back is not None
    result = safe_next(back.next_url, "/user/alice/")
    parts = urlsplit(result)
    assert not parts.scheme and not parts.netloc and result.startswith("/user/alice/")
    assert not result.startswith("//") and "\\" not in result


@pytest.mark.parametrize(
    "target",
    [
        "//evil.com/user/alice/",
        "https://evil.com/user/alice/",
        "/\\evil.com",
        "/user/bob/tree",
        "/user/alice/\r\nx",
    ],
)
def test_next_urls_off_the_server_lead_to_the_prefix(target: str) -> None:
    assert safe_next(target, "/user/alice/") == "/user/alice/"


# -- the token cache ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_entries_expire_after_max_age() -> None:
    clock = Clock()
    cache: ExpiringCache[str, int | None] = ExpiringCache(60, clock=clock)
    cache.put("t", None)  # "the Hub does not know this token" is an answer too
    clock.now += 59.9
    assert cache.get("t") == (True, None)
    clock.now += 0.1
    assert cache.get("t") == (False, None) and len(cache) == 0


def test_cache_keeps_at_most_max_entries_and_zero_age_keeps_nothing() -> None:
    cache: ExpiringCache[int, int] = ExpiringCache(60, max_entries=3, clock=Clock())
    for i in range(5):
        cache.put(i, i)
    assert len(cache) == 3 and cache.get(0) == (False, None) and cache.get(4) == (True, 4)
    never: ExpiringCache[int, int] = ExpiringCache(0)
    never.put(1, 1)
    assert never.get(1) == (False, None)


# -- the authenticator with a fake Hub client --------------------------------------------------------


class FakeClient:
    """Stands in for HubClient: answers from dicts, counts the questions."""

    def __init__(self, users: dict[str, dict[str, Any]], groups: dict[str, frozenset[str] | None]) -> None:
        self.users, self.groups = users, groups
        self.asked: list[str] = []

    async def user_for_token(self, token: str) -> dict[str, Any] | None:
        self.asked.append(token)
        return self.users.get(token)

    async def groups_of(self, user: str) -> frozenset[str] | None:
        self.asked.append("groups:" + user)
        return self.groups.get(user)


def make_hub_auth(client: FakeClient, **hub: Any) -> HubAuthenticator:
    settings: dict[str, Any] = {
        "api_url": "http://hub/hub/api",
        "api_token": "s",
        "client_id": "jupyterhub-user-alice",
        "user": "alice",
    }
    settings.update(hub)
    return HubAuthenticator(
        HubConfig(**settings),
        base_url="/user/alice/",
        cookie_secret=SECRET,
        cookie_max_age_days=1,
        client=client,  # type: ignore[arg-type]
    )


def model(name: str, *scopes: str) -> dict[str, Any]:
    return {"name": name, "kind": "user", "scopes": list(scopes)}


USERS = {
    "alice-token": model("alice", "access:servers!server=alice/", "read:users:name!user=alice"),
    "bob-token": model("bob", "access:servers!server=bob/", "access:servers!user=bob"),
    "carol-token": model("carol", "access:servers!group=team"),
    "admin-token": model("admin", "access:servers"),
}


def identify(auth: HubAuthenticator, **kw: Any) -> Any:
    return asyncio.run(auth.identify(Credentials(cookie_name=auth.cookie_name, **kw)))


def test_who_gets_in() -> None:
    auth = make_hub_auth(FakeClient(USERS, {"alice": frozenset({"team"})}))
    for token, allowed in (
        ("alice-token", True),
        ("admin-token", True),
        ("carol-token", True),
        ("bob-token", False),
    ):
        result = identify(auth, authorization=f"token {token}")
        assert (result.identity is not None) is allowed, token
        assert result.refused is (not allowed)
    assert identify(auth, authorization="token nobody").refused is False  # unknown: log in again
    result = identify(auth, authorization="Bearer alice-token")
    assert result.identity.user.username == "alice" and result.identity.via is Via.TOKEN


def test_a_group_scope_needs_the_owners_groups() -> None:
    client = FakeClient(USERS, {"alice": None})  # the server's token may not read them
    assert identify(make_hub_auth(client), authorization="token carol-token").refused
    client = FakeClient(USERS, {"alice": frozenset({"other"})})
    assert identify(make_hub_auth(client), authorization="token carol-token").refused
    assert client.asked == ["carol-token", "groups:alice"]
    client = FakeClient(USERS, {"alice": frozenset({"team"})})
    identify(make_hub_auth(client), authorization="token alice-token")
    assert client.asked == ["alice-token"]  # no group scope held: the groups are not asked for


def test_url_tokens_count_only_on_browser_websockets() -> None:
    auth = make_hub_auth(FakeClient(USERS, {}))
    assert (
        identify(auth, query_token="alice-token", websocket=True, fetch_mode="websocket").identity is not None
    )
    for kw in (
        {"websocket": True},
        {"websocket": True, "fetch_mode": "navigate"},
        {"fetch_mode": "websocket"},
        {},
    ):
        result = identify(auth, query_token="alice-token", **kw)
        assert result.identity is None and "Sec-Fetch-Mode: websocket" in (result.failure or ""), kw


def test_the_login_cookie_holds_a_hub_token_judged_like_any_other() -> None:
    auth = make_hub_auth(FakeClient(USERS, {}))
    alice = auth.login_cookie("alice-token", secure=False)
    assert (alice.name, alice.path, alice.secure) == ("jupyterhub-user-alice", "/user/alice/", False)
    result = identify(auth, cookie=alice.value)
    assert result.identity is not None and result.identity.via is Via.COOKIE
    bob = auth.login_cookie("bob-token", secure=False)
    assert identify(auth, cookie=bob.value).refused  # a genuine cookie, a user not allowed
    other = make_hub_auth(FakeClient(USERS, {}), client_id="jupyterhub-user-bob")
    assert (
        identify(auth, cookie=other.login_cookie("alice-token", secure=False).value).failure == "bad cookie"
    )
    assert identify(auth, cookie="garbage").failure == "bad cookie"
    assert identify(auth, authorization="token ", cookie=alice.value).failure == "bad authorization header"


def test_cookies_are_secure_over_https_with_an_https_hub_and_with_host_prefix() -> None:
    plain = make_hub_auth(FakeClient(USERS, {}))
    assert not plain.secure(False) and plain.secure(True)
    assert make_hub_auth(FakeClient(USERS, {}), public_url="https://hub.example/").secure(False)
    prefixed = make_hub_auth(FakeClient(USERS, {}), cookie_host_prefix=True)
    cookie = prefixed.login_cookie("alice-token", secure=False)
    assert (cookie.name, cookie.path, cookie.secure) == ("__Host-jupyterhub-user-alice", "/", True)
    start = prefixed.start_login("/user/alice/tree", secure=False)
    (state,) = start.cookies
    assert (
        state.name.startswith("__Host-jupyterhub-user-alice-oauth-state-")
        and state.path == "/"
        and state.secure
    )


def test_finish_login_refuses_a_state_that_is_not_ours() -> None:
    auth = make_hub_auth(FakeClient(USERS, {}))
    start = auth.start_login("/user/alice/tree", secure=False)
    (cookie,) = start.cookies
    state = dict(p.split("=", 1) for p in urlsplit(start.url).query.split("&"))["state"]
    other = auth.start_login("/user/alice/tree", secure=False).cookies[0].value
    for value in (None, other, cookie.value[:-1]):
        with pytest.raises(Forbidden) as info:
            asyncio.run(auth.finish_login(code="c", state=state, state_value=value))
        assert info.value.reason == "oauth state"


# -- activity ----------------------------------------------------------------------------------------


class ActivityHub:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict[str, Any]] = []

    async def post_activity(self, url: str, body: dict[str, Any]) -> int:
        self.bodies.append(body)
        return self.statuses.pop(0) if self.statuses else 200


def test_activity_is_posted_when_it_moved_in_the_hubs_format() -> None:
    activity = Activity()
    hub = ActivityHub([403])
    reporter = HubActivityReporter(activity, hub, url="u", server_name="gpu", interval=60)  # type: ignore[arg-type]
    assert asyncio.run(reporter.report()) is False and reporter.sent is None  # refused: kept for later
    assert asyncio.run(reporter.report()) is True
    stamp = hub.bodies[-1]["last_activity"]
    assert hub.bodies[-1] == {"servers": {"gpu": {"last_activity": stamp}}, "last_activity": stamp}
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")) == activity.last_activity
    assert asyncio.run(reporter.report()) is True and len(hub.bodies) == 2  # nothing new: not sent
    activity.last_activity += timedelta(seconds=1)
    asyncio.run(reporter.report())
    assert len(hub.bodies) == 3 and hub.bodies[-1]["last_activity"].endswith("Z")
    assert activity.last_activity.tzinfo is timezone.utc


def test_retries_back_off_but_never_past_the_interval() -> None:
    reporter = HubActivityReporter(
        Activity(), ActivityHub([]), url="u", server_name="", interval=10, random_fraction=lambda: 1.0
    )  # type: ignore[arg-type]
    assert [reporter.next_wait(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert reporter.next_wait(0) == pytest.approx(12)  # the interval, with its jitter
    reporter._random = lambda: 0.0
    assert reporter.next_wait(0) == pytest.approx(8)
