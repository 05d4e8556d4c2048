"""Who is asking: one identity resolution for HTTP requests and websocket upgrades alike.

A request proves who it is in one of three ways, tried in this order:

1. ``Authorization: token <T>`` or ``Authorization: bearer <T>`` (case-insensitive scheme);
2. ``?token=<T>`` in the URL;
3. the signed login cookie, set after a token or password login.

A request that presents a credential which fails is refused even if another credential would
pass: a wrong token is reported as a wrong token, not silently replaced by a stale cookie. When
neither a token nor a password is configured, authentication is off and every request is the
configured user (``Via.OPEN``).

The :class:`Authenticator` holds no tornado types: the web layer hands it the raw header, query
value and cookie text and receives an :class:`AuthResult`. Failures carry a short reason
(``"no credential"``, ``"bad token"``, ``"bad cookie"``, ``"expired cookie"``) for the log.

The web layer sees any identity source through :class:`IdentityProvider`: it hands over a
request's :class:`Credentials` and gets an :class:`AuthResult`, and asks where an anonymous
browser should go to log in (:class:`LoginStart`). :class:`Authenticator` is the local provider;
:class:`~nbserver.auth.hub.HubAuthenticator` (JupyterHub's OAuth and tokens) is the other.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

from tornado.web import create_signed_value, decode_signed_value

from .passwords import verify_password

__all__ = [
    "AuthResult",
    "Authenticator",
    "CookieSpec",
    "Credentials",
    "Identity",
    "IdentityProvider",
    "LoginStart",
    "User",
    "Via",
    "bearer_token",
]

_AUTH_HEADER = re.compile(r"\s*(token|bearer)\s+(\S+)\s*", re.IGNORECASE)
# Other schemes (Basic, Negotiate...) belong to a proxy in front, which often forwards them:
# they are not ours to judge, and the request's token or cookie still counts (as in jupyter_server).
_OUR_SCHEME = re.compile(r"\s*(token|bearer)(\s|$)", re.IGNORECASE)
_COOKIE_FORMAT = 1


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: token|bearer <T>`` header; ``""`` for a header of that
    scheme that is malformed; None for no header, or one of another scheme (a proxy's Basic),
    which is not ours to judge."""
    if not authorization or not _OUR_SCHEME.match(authorization):
        return None
    match = _AUTH_HEADER.fullmatch(authorization)
    return match.group(2) if match else ""


@dataclass(frozen=True)
class User:
    """The identity model of ``/api/me`` (the fields jupyter_server reports)."""

    username: str
    name: str = ""
    display_name: str = ""
    initials: str | None = None
    avatar_url: str | None = None
    color: str | None = None

    def to_model(self) -> dict[str, str | None]:
        name = self.name or self.username
        display_name = self.display_name or name
        initials = self.initials or "".join(w[0] for w in display_name.split()[:2]).upper() or None
        return {
            "username": self.username,
            "name": name,
            "display_name": display_name,
            "initials": initials,
            "avatar_url": self.avatar_url,
            "color": self.color,
        }


class Via(enum.Enum):
    """How a request was authenticated; decides whether XSRF and Origin checks apply."""

    TOKEN = "token"
    COOKIE = "cookie"
    OPEN = "open"  # authentication is disabled


@dataclass(frozen=True)
class Identity:
    user: User
    via: Via


@dataclass(frozen=True)
class AuthResult:
    """``identity``, or None and the ``failure`` (for the log). ``refused`` marks a request
    whose credential names someone who may not use this server: the answer is 403, never a
    login redirect (logging in again would name the same person)."""

    identity: Identity | None
    failure: str | None = None
    refused: bool = False


@dataclass(frozen=True)
class Credentials:
    """What one request presents, read by the web layer: the ``Authorization`` header, the
    ``?token=`` value, the name and value of the server's login cookie, the
    ``Sec-Fetch-Mode`` header, and whether it is a websocket upgrade."""

    authorization: str | None = None
    query_token: str | None = None
    cookie_name: str = ""
    cookie: str | None = None
    fetch_mode: str | None = None
    websocket: bool = False


@dataclass(frozen=True)
class CookieSpec:
    """A cookie to set on a response (``HttpOnly`` always)."""

    name: str
    value: str
    path: str
    max_age: int | None = None
    secure: bool = False


@dataclass(frozen=True)
class LoginStart:
    """Where an anonymous browser is sent to log in, and the cookies to set on the way."""

    url: str
    cookies: tuple[CookieSpec, ...] = ()


class IdentityProvider(Protocol):
    """Decides who a request is; one per server (``ServerContext.auth``)."""

    @property
    def enabled(self) -> bool:
        """False when every request is let in (authentication off)."""
        ...

    async def identify(self, credentials: Credentials) -> AuthResult:
        """The identity of one request. Raises NBServerError when it cannot be decided (the
        identity service is down: 503), never for a bad credential."""
        ...

    def start_login(self, next_url: str, *, secure: bool) -> LoginStart:
        """Where to send a browser that asked for the local URL ``next_url`` without a valid
        credential; ``secure`` says whether the browser speaks https to us."""
        ...


class Authenticator:
    """Checks tokens, passwords and login cookies for one user.

    Args:
        token: the shared token; ``""`` disables token login.
        password_hash: enables password login when set.
        cookie_secret: key of the signed login cookie. With a password, the effective key also
            depends on the password hash, so changing the password logs everybody out.
        cookie_max_age_days: a cookie older than this is refused as ``"expired cookie"``.
        user: the user every successful login becomes.
    """

    def __init__(
        self,
        *,
        token: str,
        password_hash: str | None,
        cookie_secret: bytes,
        cookie_max_age_days: float,
        user: User,
        login_url: str = "/login",
    ) -> None:
        self._token = token.encode()
        self._password_hash = password_hash
        if password_hash:
            cookie_secret = hmac.new(cookie_secret, password_hash.encode(), hashlib.sha256).digest()
        self._cookie_secret = cookie_secret
        self._max_age = cookie_max_age_days * 86400
        self.user = user
        self._login_url = login_url

    @property
    def enabled(self) -> bool:
        return bool(self._token) or self._password_hash is not None

    @property
    def has_password(self) -> bool:
        return self._password_hash is not None

    def check_token(self, token: str) -> bool:
        """Constant-time comparison with the configured token; False when tokens are off."""
        return bool(self._token) and hmac.compare_digest(token.encode(), self._token)

    async def check_login(self, secret: str) -> bool:
        """Check what a person typed on the login page: the password, or the token."""
        if self.check_token(secret):
            return True
        if self._password_hash is None:
            return False
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(
            None, verify_password, self._password_hash, secret
        )

    async def identify(self, credentials: Credentials) -> AuthResult:
        """:meth:`authenticate` for :class:`IdentityProvider` (``Sec-Fetch-Mode`` plays no part)."""
        return self.authenticate(
            authorization=credentials.authorization,
            query_token=credentials.query_token,
            cookie_name=credentials.cookie_name,
            cookie=credentials.cookie,
        )

    def start_login(self, next_url: str, *, secure: bool) -> LoginStart:
        """The login form, coming back to ``next_url``."""
        return LoginStart(self._login_url + "?" + urlencode({"next": next_url}))

    def authenticate(
        self,
        *,
        authorization: str | None,
        query_token: str | None,
        cookie_name: str,
        cookie: str | None,
    ) -> AuthResult:
        """Resolve the identity of one request from its raw credentials."""
        if not self.enabled:
            return AuthResult(Identity(self.user, Via.OPEN))
        token = bearer_token(authorization)
        if token == "":
            return AuthResult(None, "bad authorization header")
        if token is None and query_token is not None:
            token = query_token
        if token is not None:
            if self.check_token(token):
                return AuthResult(Identity(self.user, Via.TOKEN))
            return AuthResult(None, "bad token")
        if cookie is None:
            return AuthResult(None, "no credential")
        return self._check_cookie(cookie_name, cookie)

    def login_cookie(self, cookie_name: str) -> bytes:
        """A signed cookie value naming the user, stamped with the time of login."""
        payload = json.dumps({"v": _COOKIE_FORMAT, "u": self.user.username, "t": int(time.time())})
        return create_signed_value(self._cookie_secret, cookie_name, payload)

    def _check_cookie(self, cookie_name: str, cookie: str) -> AuthResult:
        # tornado checks the signature; the age is ours, so that "expired" can be told apart.
        raw = decode_signed_value(self._cookie_secret, cookie_name, cookie, max_age_days=36500)
        if raw is None:
            return AuthResult(None, "bad cookie")
        try:
            payload = json.loads(raw)
            issued, username = float(payload["t"]), payload["u"]
        except (ValueError, KeyError, TypeError):
            return AuthResult(None, "bad cookie")
        if username != self.user.username:
            return AuthResult(None, "bad cookie")
        if time.time() - issued > self._max_age:
            return AuthResult(None, "expired cookie")
        return AuthResult(Identity(self.user, Via.COOKIE))
