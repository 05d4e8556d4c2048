"""Pure parts of the hub: store, scopes, login limiter, OAuth provider, proxy path rules, the
single-user environment, and the routes against hub-api.yaml."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from nbserver.errors import BadRequest, Conflict, Forbidden, NotFound
from nbserver.hub import scopes
from nbserver.hub.authenticators import LoginLimiter
from nbserver.hub.identity import HubIdentity
from nbserver.hub.oauth import OAuthError, OAuthProvider
from nbserver.hub.proxy import parse_target
from nbserver.hub.servers import Servers, ServerState, UserServer
from nbserver.hub.spawner import LaunchSpec, single_user_env
from nbserver.hub.store import ServerRecord, Store, now
from tests.hub import hubopenapi


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "hub.sqlite")
    yield s
    s.close()


# -- store --------------------------------------------------------------------------------------


def test_users_add_find_delete_and_bad_names(store: Store) -> None:
    store.add_user("alice", admin=True, password_hash="argon2:x")
    assert store.require_user("alice").admin
    with pytest.raises(Conflict):
        store.add_user("alice")
    for bad in ("", ".", "..", "Alice", "a/b", "a%2Fb", "-x", "x" * 65, "bob bob"):
        with pytest.raises(BadRequest):
            store.add_user(bad)
    store.delete_user("alice")
    with pytest.raises(NotFound):
        store.delete_user("alice")


def test_tokens_are_stored_hashed_found_and_expire(store: Store, tmp_path: Path) -> None:
    store.add_user("alice")
    token, record = store.add_token("alice", kind="api", scopes=["read:users!user=alice"])
    assert token.encode() not in (tmp_path / "hub.sqlite").read_bytes()
    assert store.find_token(token) == record
    assert store.find_token(token + "x") is None and store.find_token("") is None
    old, _ = store.add_token("alice", kind="api", scopes=[], expires_at=now() - timedelta(seconds=1))
    assert store.find_token(old) is None


def test_deleting_a_user_deletes_their_tokens_and_server_record(store: Store) -> None:
    store.add_user("alice")
    token, record = store.add_token("alice", kind="server", scopes=[])
    store.save_server(ServerRecord("alice", 123, 4567, record.id, now(), None))
    store.delete_user("alice")
    assert store.find_token(token) is None and store.servers() == []


def test_secret_persists_across_opens(tmp_path: Path) -> None:
    first = Store(tmp_path / "h.sqlite").secret("cookie_secret")
    assert Store(tmp_path / "h.sqlite").secret("cookie_secret") == first and len(first) >= 48


def test_activity_only_moves_forward(store: Store) -> None:
    store.add_user("alice")
    later, earlier = now(), now() - timedelta(hours=1)
    store.set_user_activity("alice", later)
    store.set_user_activity("alice", earlier)
    assert store.require_user("alice").last_activity == later


# -- scopes ---------------------------------------------------------------------------------------


def test_a_user_manages_only_themselves() -> None:
    held = scopes.user_scopes("bob", admin=False)
    assert scopes.allows(held, "servers", "bob")
    for other in ("bobby", "bo", "alice", None):
        assert not scopes.allows(held, "servers", other), other
    assert not scopes.allows(held, "list:users", None)


def test_admin_scopes_cover_everyone() -> None:
    held = scopes.user_scopes("root1", admin=True)
    assert scopes.allows(held, "servers", "bob") and scopes.allows(held, "list:users", None)


def test_server_filter_grants_only_that_owner() -> None:
    assert scopes.grants("access:servers!server=bob/", "access:servers", "bob")
    assert not scopes.grants("access:servers!server=bob/", "access:servers", "bobby")
    assert not scopes.grants("users:activity!server=bob/", "users:activity", "bob")


def test_a_token_never_exceeds_its_owner() -> None:
    owner = scopes.user_scopes("bob", admin=False)
    assert scopes.subset_of(["access:servers!server=bob/", "servers!user=bob"], owner)
    assert not scopes.subset_of(["servers"], owner)
    assert not scopes.subset_of(["servers!user=alice"], owner)
    assert scopes.subset_of(scopes.server_token_scopes("bob"), owner)


# -- login limiter -------------------------------------------------------------------------------


def test_limiter_counts_per_address_and_per_name_in_a_window() -> None:
    clock = [0.0]
    limiter = LoginLimiter(limit=3, window=60, clock=lambda: clock[0])
    for _ in range(3):
        assert limiter.retry_after("1.1.1.1", "bob") == 0
        limiter.failed("1.1.1.1", "bob")
    assert limiter.retry_after("1.1.1.1", "bob") == pytest.approx(60)
    assert limiter.retry_after("2.2.2.2", "bob") > 0  # another address, same name
    assert limiter.retry_after("1.1.1.1", "alice") > 0  # same address, another name
    assert limiter.retry_after("2.2.2.2", "alice") == 0
    clock[0] = 61
    assert limiter.retry_after("1.1.1.1", "bob") == 0


# -- OAuth provider --------------------------------------------------------------------------------


def _provider(store: Store) -> tuple[OAuthProvider, str]:
    store.add_user("bob")
    store.add_user("alice")
    secret, record = store.add_token("bob", kind="server", scopes=scopes.server_token_scopes("bob"))
    store.save_server(ServerRecord("bob", 1, 2, record.id, now(), None))
    return OAuthProvider(store, "/"), secret


def _authorize(provider: OAuthProvider, user: str = "bob", **extra: str) -> str:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    query = {
        "client_id": "jupyterhub-user-bob",
        "redirect_uri": "/user/bob/oauth_callback",
        "response_type": "code",
        "state": "abcdefghijklmnopq",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    url = provider.authorize(
        query, user=user, scopes=scopes.user_scopes(user, user == "root1"), session_id="s1"
    )
    assert url.startswith("/user/bob/oauth_callback?")
    got = parse_qs(urlsplit(url).query)
    assert got["state"] == ["abcdefghijklmnopq"]
    return got["code"][0]


def _form(secret: str, code: str, verifier: str = "v" * 50) -> dict[str, str]:
    return {
        "client_id": "jupyterhub-user-bob",
        "client_secret": secret,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "/user/bob/oauth_callback",
        "code_verifier": verifier,
    }


def test_oauth_code_for_token_once(store: Store) -> None:
    provider, secret = _provider(store)
    code = _authorize(provider)
    reply = provider.token(_form(secret, code))
    record = store.find_token(str(reply["access_token"]))
    assert record is not None and record.user == "bob" and record.session_id == "s1"
    assert "access:servers!server=bob/" in record.scopes
    with pytest.raises(OAuthError) as again:
        provider.token(_form(secret, code))
    assert again.value.error == "invalid_grant"


@pytest.mark.parametrize(
    "change, error",
    [
        ({"client_secret": "wrong"}, "invalid_client"),
        ({"code_verifier": "w" * 50}, "invalid_grant"),
        ({"redirect_uri": "/user/alice/oauth_callback"}, "invalid_grant"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"client_id": "jupyterhub-user-alice"}, "invalid_client"),
    ],
)
def test_oauth_token_refusals(store: Store, change: dict[str, str], error: str) -> None:
    provider, secret = _provider(store)
    form = {**_form(secret, _authorize(provider)), **change}
    with pytest.raises(OAuthError) as refused:
        provider.token(form)
    assert refused.value.error == error
    assert json.loads(json.dumps(refused.value.to_json()))["error"] == error


def test_oauth_authorize_refuses_other_users_and_foreign_redirects(store: Store) -> None:
    provider, _ = _provider(store)
    with pytest.raises(Forbidden):
        _authorize(provider, user="alice")
    with pytest.raises(BadRequest):
        _authorize(provider, redirect_uri="https://evil.example/cb")
    with pytest.raises(BadRequest):
        _authorize(provider, client_id="jupyterhub-user-nobody")


# -- proxy paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/user/alice/../bob/",
        "/user/alice/%2e%2e/bob/",
        "/user/alice/..%2Fbob/",
        "/user/alice%2Fbob/",
        "/user//bob/",
        "/user/%62ob/",
        "/user/alice/./x",
        "/user/Bob/",
    ],
)
def test_crafted_proxy_paths_are_refused(path: str) -> None:
    assert isinstance(parse_target(path, "/"), str), path


def test_proxy_targets_exact_names() -> None:
    assert parse_target("/user/bob/api/status", "/") == ("bob", "/api/status")
    assert parse_target("/user/bobby/", "/") == ("bobby", "/")
    assert parse_target("/x/user/bob/tree", "/x/") == ("bob", "/tree")


# -- environment and spec ---------------------------------------------------------------------------


def test_single_user_env_is_jupyterhubs_contract() -> None:
    env = single_user_env(LaunchSpec("bob", 4321, "tok", "http://127.0.0.1:8000/hub/api", "/"))
    assert env["JUPYTERHUB_SERVICE_URL"] == "http://127.0.0.1:4321/user/bob/"
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == "/user/bob/"
    assert env["JUPYTERHUB_CLIENT_ID"] == "jupyterhub-user-bob"
    assert env["JUPYTERHUB_OAUTH_CALLBACK_URL"] == "/user/bob/oauth_callback"
    assert env["JUPYTERHUB_ACTIVITY_URL"] == "http://127.0.0.1:8000/hub/api/users/bob/activity"
    assert json.loads(env["JUPYTERHUB_OAUTH_ACCESS_SCOPES"]) == [
        "access:servers!server=bob/",
        "access:servers!user=bob",
    ]
    assert env["JUPYTERHUB_API_TOKEN"] == "tok" and env["JUPYTERHUB_USER"] == "bob"


def test_hub_routes_and_spec_paths_match(tmp_path: Path) -> None:
    from openapi_spec_validator import validate

    from nbserver.hub.app import hub_routes
    from nbserver.hub.runtime import HubRuntime
    from tests.hub.hubapp_harness import settings

    validate(hubopenapi.SPEC)
    runtime = HubRuntime(settings(tmp_path))
    try:
        documented = {r.template for r in hub_routes(runtime) if r.documented}
    finally:
        runtime.store.close()
    assert documented == hubopenapi.spec_paths()


def test_a_token_used_again_within_30_s_is_not_written_again(tmp_path: Path) -> None:
    """A client polling the API with one token (the benchmark polls every 0.2 s): its
    ``last_activity`` is written on first use and then only once it is 30 s old (JupyterHub's
    activity_resolution), not on every request."""
    store = Store(tmp_path / "hub.sqlite")
    store.add_user("alice")
    token, record = store.add_token("alice", kind="api", scopes=scopes.user_scopes("alice", False))
    identity = HubIdentity(store, cookie_secret=b"s" * 32, hub_prefix="/hub/", cookie_max_age_days=1)
    assert identity.for_token(token).identity is not None
    first = store.find_token(token)
    assert first is not None and first.last_activity is not None
    for _ in range(3):
        identity.for_token(token)
        again = store.find_token(token)
        assert again is not None and again.last_activity == first.last_activity
    store.touch_token(record.id, now() - timedelta(seconds=31))
    identity.for_token(token)
    later = store.find_token(token)
    assert later is not None and later.last_activity is not None
    assert later.last_activity > now() - timedelta(seconds=10)
    store.close()


def test_the_database_does_not_fsync_every_commit(tmp_path: Path) -> None:
    """WAL with ``synchronous = NORMAL`` (1): a commit is not an fsync on the event loop (FULL, 2,
    the default, fsyncs every activity and token write)."""
    store = Store(tmp_path / "hub.sqlite")
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1
    store.close()


class _AliveSpawner:
    def alive(self, pid: int) -> bool:
        return True


def test_a_server_becoming_ready_counts_as_activity() -> None:
    """A start that took longer than the idle-cull timeout (here 60 s, a loaded machine): the
    server's and its user's activity move to the moment it is ready, so the culler does not stop
    it before its user, still waiting on the progress page, ever reaches it."""
    store = Store(":memory:")
    store.add_user("alice")
    servers = Servers(store, _AliveSpawner(), hub_api_url="http://127.0.0.1:1/hub/api", base_url="/")  # type: ignore[arg-type]
    started = now() - timedelta(seconds=60)
    server = UserServer("alice", 1, 1, 0, started, ServerState.SPAWNING, last_activity=started)
    servers._servers["alice"] = server

    async def responds(user: str, port: int, timeout: float = 5.0) -> bool:
        return True

    servers.responds = responds  # type: ignore[method-assign]
    asyncio.run(servers._wait_ready(server))
    assert server.state is ServerState.RUNNING
    assert server.last_activity is not None and server.last_activity > now() - timedelta(seconds=10)
    user_activity = servers.user_activity("alice", None)
    assert user_activity is not None and user_activity > now() - timedelta(seconds=10)
    store.close()
