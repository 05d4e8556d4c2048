"""Pure tests of the auth building blocks: no server, no event loop."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbserver.auth.handlers import safe_next
from nbserver.auth.identity import Authenticator, User, Via
from nbserver.auth.passwords import hash_password, verify_password
from nbserver.auth.policy import host_is_local, origin_allowed, same_origin
from nbserver.web import scrub_uri


def make_auth(**kw) -> Authenticator:
    settings = {
        "token": "tok",
        "password_hash": None,
        "cookie_secret": b"s" * 32,
        "cookie_max_age_days": 1.0,
        "user": User("ada"),
    }
    settings.update(kw)
    return Authenticator(**settings)


def authenticate(auth: Authenticator, **kw):
    request = {"authorization": None, "query_token": None, "cookie_name": "c", "cookie": None}
    request.update(kw)
    return auth.authenticate(**request)


def test_cookie_round_trip_and_expiry(monkeypatch) -> None:
    auth = make_auth()
    cookie = auth.login_cookie("c").decode()
    result = authenticate(auth, cookie=cookie)
    assert result.identity is not None and result.identity.via is Via.COOKIE
    assert authenticate(auth, cookie=cookie, cookie_name="other").failure == "bad cookie"
    later = time.time() + 2 * 86400
    monkeypatch.setattr(time, "time", lambda: later)
    assert authenticate(auth, cookie=cookie).failure == "expired cookie"


def test_changing_the_password_invalidates_cookies() -> None:
    before = make_auth(password_hash=hash_password("one"))
    cookie = before.login_cookie("c").decode()
    after = make_auth(password_hash=hash_password("two"))
    assert authenticate(after, cookie=cookie).failure == "bad cookie"


def test_disabled_auth_is_open() -> None:
    result = authenticate(make_auth(token=""))
    assert result.identity is not None and result.identity.via is Via.OPEN


def test_empty_token_never_matches() -> None:
    auth = make_auth(token="", password_hash=hash_password("pw"))
    assert not auth.check_token("")
    assert authenticate(auth, query_token="").failure == "bad token"


@given(st.text())
def test_only_the_token_matches(candidate: str) -> None:
    auth = make_auth()
    assert auth.check_token(candidate) == (candidate == "tok")


def test_passwords_argon2_and_legacy() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("argon2:$argon2id$")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong")
    assert not verify_password(stored, "")
    # jupyter's legacy form: algo:salt:hexdigest of password+salt
    legacy = "sha1:0123456789ab:" + __import__("hashlib").sha1(b"pw0123456789ab").hexdigest()
    assert verify_password(legacy, "pw")
    assert not verify_password(legacy, "px")
    for garbage in ("", "argon2:", "argon2:nonsense", "md9:x:y", "sha1::", "plain"):
        assert not verify_password(garbage, "pw")
    with pytest.raises(ValueError):
        hash_password("")


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1:8888", True),
        ("localhost", True),
        ("LOCALHOST:1", True),
        ("[::1]:8888", True),
        ("127.5.6.7", True),
        ("evil.example", False),
        ("10.0.0.1:80", False),
        ("", False),
        ("localhost.evil.example", False),
        ("[::2]:8888", False),
    ],
)
def test_host_is_local(host: str, local: bool) -> None:
    assert host_is_local(host) is local


def test_origin_rules() -> None:
    assert same_origin("http://127.0.0.1:8888", "127.0.0.1:8888")
    assert not same_origin("http://127.0.0.1:8889", "127.0.0.1:8888")
    assert not same_origin("null", "127.0.0.1:8888")
    assert origin_allowed("https://app.example", "h:1", ("https://app.example/",))
    assert not origin_allowed("https://app.example.evil", "h:1", ("https://app.example",))
    assert origin_allowed("https://anything", "h:1", ("*",))


@given(st.text())
def test_safe_next_is_always_a_local_path(target: str) -> None:
    result = safe_next(target, "/base/")
    parts = urlsplit(result)
    assert result.startswith("/base/")
    assert not parts.scheme and not parts.netloc
    assert "\\" not in result and not any(ord(c) < 0x20 for c in result)


def test_safe_next_keeps_good_targets() -> None:
    assert safe_next("/base/tree/a.ipynb?x=1", "/base/") == "/base/tree/a.ipynb?x=1"
    assert safe_next("/elsewhere", "/base/") == "/base/"


def test_scrub_uri_hides_secrets() -> None:
    assert scrub_uri("/a?token=abc&x=1&_xsrf=q") == "/a?token=[secret]&x=1&_xsrf=[secret]"
    assert scrub_uri("/a?xtoken=abc") == "/a?xtoken=abc"
