"""Who is asking the hub: an API token (``Authorization: token|bearer <T>``) or the hub's login
cookie. The :class:`~nbserver.auth.identity.IdentityProvider` of the hub's own pages and API.

- A token is looked up in the store (by hash); it counts while its owner exists and it has not
  expired. The request holds the token's scopes (never more than its owner's now: an admin
  demoted since loses the admin scopes of their old tokens).
- The login cookie (``jupyterhub-hub-login``, path ``<base>hub/``, ``HttpOnly``, ``SameSite=Lax``,
  ``Secure`` over https) holds the user's name, the login's session id and its time, signed with
  the cookie secret kept in the hub's database (so a restarted hub keeps people logged in). A
  cookie-authenticated request holds its user's scopes; the web layer checks Origin and XSRF.
- ``?token=`` is ignored: a token in a URL ends up in logs and history.
- A token's ``last_activity`` is written when it is used, at most once per
  :data:`TOKEN_ACTIVITY_RESOLUTION` seconds (JupyterHub's ``activity_resolution``): a client
  polling the API does not cost a database write per request.

A browser without a valid cookie is sent to ``<base>hub/login?next=<url>``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from tornado.web import create_signed_value, decode_signed_value

from ..auth.identity import AuthResult, Credentials, Identity, LoginStart, User, Via, bearer_token
from .scopes import covered, user_scopes
from .store import Store, TokenRecord, now

__all__ = ["COOKIE_NAME", "TOKEN_ACTIVITY_RESOLUTION", "HubIdentity", "Principal"]

COOKIE_NAME = "jupyterhub-hub-login"
#: a token's ``last_activity`` moves in steps of at least this many seconds
TOKEN_ACTIVITY_RESOLUTION = 30.0


@dataclass(frozen=True)
class Principal(Identity):
    """An identity of the hub: the user, whether they are an admin, what this request may do
    (``scopes``), and the token or login session it came with."""

    admin: bool = False
    scopes: frozenset[str] = frozenset()
    token: TokenRecord | None = None
    session_id: str | None = None

    @property
    def name(self) -> str:
        return self.user.username


class HubIdentity:
    """Identity provider of the hub (see the module docstring).

    Args:
        store: the hub's database.
        cookie_secret: signs the login cookie.
        hub_prefix: ``<base>hub/``: the login page is ``<hub_prefix>login``.
        cookie_max_age_days: a login lasts this long.
    """

    def __init__(
        self, store: Store, *, cookie_secret: bytes, hub_prefix: str, cookie_max_age_days: float
    ) -> None:
        self.store = store
        self.secret = cookie_secret
        self.hub_prefix = hub_prefix
        self.max_age_days = cookie_max_age_days

    @property
    def enabled(self) -> bool:
        return True

    async def identify(self, credentials: Credentials) -> AuthResult:
        token = bearer_token(credentials.authorization)
        if token == "":
            return AuthResult(None, "bad authorization header")
        if token is not None:
            return self.for_token(token)
        if credentials.cookie is None:
            return AuthResult(None, "no credential")
        return self.for_cookie(credentials.cookie)

    def for_token(self, token: str) -> AuthResult:
        record = self.store.find_token(token)
        if record is None:
            return AuthResult(None, "bad token")
        user = self.store.user(record.user)
        if user is None:
            return AuthResult(None, "bad token")
        owner = user_scopes(user.name, user.admin)
        # a token never holds more than its owner holds now (an admin demoted since loses
        # the admin scopes of their old tokens)
        held = frozenset(s for s in record.scopes if covered(s, owner))
        moment = now()
        last = record.last_activity
        if last is None or (moment - last).total_seconds() >= TOKEN_ACTIVITY_RESOLUTION:
            self.store.touch_token(record.id, moment)
        principal = Principal(
            User(user.name),
            Via.TOKEN,
            admin=user.admin,
            scopes=held,
            token=record,
            session_id=record.session_id,
        )
        return AuthResult(principal)

    def for_cookie(self, cookie: str) -> AuthResult:
        raw = decode_signed_value(self.secret, COOKIE_NAME, cookie, max_age_days=self.max_age_days)
        if raw is None:
            return AuthResult(None, "bad cookie")
        try:
            payload = json.loads(raw)
            name, session = str(payload["u"]), str(payload["s"])
        except (ValueError, KeyError, TypeError):
            return AuthResult(None, "bad cookie")
        user = self.store.user(name)
        if user is None:
            return AuthResult(None, "bad cookie: the user no longer exists")
        scopes = user_scopes(user.name, user.admin)
        return AuthResult(
            Principal(User(user.name), Via.COOKIE, admin=user.admin, scopes=scopes, session_id=session)
        )

    def login_cookie(self, name: str, session_id: str) -> bytes:
        """The signed value of the login cookie for ``name``'s new session."""
        payload = json.dumps({"u": name, "s": session_id, "t": int(time.time())})
        return create_signed_value(self.secret, COOKIE_NAME, payload)

    def start_login(self, next_url: str, *, secure: bool) -> LoginStart:
        return LoginStart(self.hub_prefix + "login?" + urlencode({"next": next_url}))
