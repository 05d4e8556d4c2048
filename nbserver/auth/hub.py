"""JupyterHub single-user mode: the Hub's OAuth and tokens as this server's identity provider.

Theory of operation (JupyterHub 5/6's single-user contract, as jupyterhub-singleuser keeps it):

- A request proves who it is with a token the Hub issued: ``Authorization: token|bearer <T>``;
  ``?token=<T>`` only on a websocket upgrade that a browser marked ``Sec-Fetch-Mode: websocket``
  (a token in a page URL would end up in history and logs; JupyterHub 5 ignores it too); or
  this server's login cookie, named after its OAuth client id, which holds a token signed with
  the server's cookie secret.
- The token is checked against ``{api_url}/user``; the Hub's answer (the owner's model, with
  the scopes this token holds) is kept ``cache_seconds``. The owner must hold a scope granting
  one of ``access_scopes`` (:func:`~nbserver.auth.hub_oauth.access_granted`); anybody else is
  refused with 403, never sent to log in again. Group scopes are resolved with the server
  owner's groups, which the Hub tells only when the server's token may read them.
- A browser without a valid cookie is sent to the Hub's authorize URL (code flow with PKCE and
  a state cookie, :mod:`~nbserver.auth.hub_oauth`) and comes back to ``oauth_callback``
  (:mod:`nbserver.auth.handlers`), where the code becomes a token and the token the cookie,
  for the server's prefix only.

Nothing here imports jupyterhub; the services of the server never learn that a Hub exists.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from tornado.web import create_signed_value, decode_signed_value

from ..config import HubConfig, ServerConfig
from ..context import ServerContext
from ..errors import BadRequest, Forbidden
from .hub_activity import HubActivityReporter
from .hub_client import HubClient, HubUnavailable
from .hub_oauth import (
    STATE_MAX_AGE,
    OAuthState,
    access_granted,
    auth_cookie_name,
    cookie_path,
    group_scopes,
    pkce_challenge,
    state_cookie_name,
)
from .identity import AuthResult, CookieSpec, Credentials, Identity, LoginStart, User, Via, bearer_token

__all__ = ["CONTRACT_VERSION", "HubAuthenticator", "hub_context", "hub_ssl_context"]

log = logging.getLogger("nbserver.hub")

#: the jupyterhub-singleuser contract nbserver implements, sent as ``X-JupyterHub-Version``
#: until the Hub has told its own version (then that one is echoed, for the majors below)
CONTRACT_VERSION = "6.1.1"
SUPPORTED_MAJORS = ("5", "6")


def hub_ssl_context(
    certfile: str | None, keyfile: str | None, client_ca: str | None
) -> ssl.SSLContext | None:
    """Client TLS towards the Hub (JupyterHub's internal SSL): trust ``client_ca``, show our
    certificate. None without a certificate."""
    if not certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=client_ca or None)
    context.load_cert_chain(certfile, keyfile or None)
    return context


def hub_context(config: ServerConfig, cookie_secret: bytes) -> ServerContext:
    """The shared state of a server started by JupyterHub (``config.hub``): the Hub's identity
    provider (also the service ``hub``), and the activity reporter (service ``hub_activity``)
    when the Hub gave an activity URL and a non-zero interval."""
    hub = config.hub
    if hub is None:
        raise ValueError("hub_context needs config.hub")
    tls = hub_ssl_context(
        *(str(p) if p is not None else None for p in (config.certfile, config.keyfile, config.client_ca))
    )
    client = HubClient(hub.api_url, hub.api_token, cache_seconds=hub.cache_seconds, ssl_context=tls)
    auth = HubAuthenticator(
        hub,
        base_url=config.base_url,
        cookie_secret=cookie_secret,
        cookie_max_age_days=config.cookie_max_age_days,
        client=client,
    )
    ctx = ServerContext(config=config, auth=auth, cookie_name=auth.cookie_name, headers=auth.headers)
    if hub.activity_url and hub.activity_interval > 0:  # registered first: it stops before the client closes
        ctx.services["hub_activity"] = HubActivityReporter(
            ctx.activity,
            client,
            url=hub.activity_url,
            server_name=hub.server_name,
            interval=hub.activity_interval,
        )
    else:
        log.warning(
            "No activity URL or interval from the Hub: its idle culler will not see this server's use"
        )
    ctx.services["hub"] = auth
    return ctx


def _user(model: Mapping[str, Any]) -> User:
    info = model.get("user_info")
    info = info if isinstance(info, dict) else {}

    def text(key: str) -> str | None:
        value = info.get(key)
        return value if isinstance(value, str) and value else None

    return User(
        username=str(model["name"]),
        name=text("name") or "",
        display_name=text("display_name") or "",
        initials=text("initials"),
        avatar_url=text("avatar_url"),
        color=text("color"),
    )


class HubAuthenticator:
    """:class:`~nbserver.auth.identity.IdentityProvider` of a server started by JupyterHub.

    Args:
        hub: the Hub settings (``ServerConfig.hub``).
        base_url: the server's prefix (``/user/<name>/``).
        cookie_secret: signs the login and OAuth state cookies.
        cookie_max_age_days: lifetime of the login cookie (the Hub's token may end sooner).
        client: the Hub API client.

    It is also a service of the server (``startup``: ask the Hub its version; ``shutdown``:
    close the client).
    """

    def __init__(
        self,
        hub: HubConfig,
        *,
        base_url: str,
        cookie_secret: bytes,
        cookie_max_age_days: float,
        client: HubClient,
    ) -> None:
        self.hub = hub
        self.base_url = base_url
        self.client = client
        self.cookie_name = auth_cookie_name(hub.client_id, hub.cookie_host_prefix)
        self.cookie_path = cookie_path(base_url, hub.cookie_host_prefix)
        self.redirect_uri = hub.oauth_callback_url or base_url + "oauth_callback"
        hub_root = hub.hub_host + hub.hub_prefix
        self.authorize_url = hub_root + "api/oauth2/authorize"
        self.logout_url = hub_root + "logout"
        self.headers = {"X-JupyterHub-Version": CONTRACT_VERSION}
        self._secret = cookie_secret
        self._max_age_days = cookie_max_age_days
        self._groups_warned = False

    @property
    def enabled(self) -> bool:
        return True

    # -- requests ----------------------------------------------------------------------------------

    async def identify(self, credentials: Credentials) -> AuthResult:
        """Who presents these credentials, according to the Hub (see the module docstring).

        Raises:
            HubUnavailable: the Hub could not be asked (503).
        """
        token = bearer_token(credentials.authorization)
        if token == "":
            return AuthResult(None, "bad authorization header")
        via = Via.TOKEN
        ignored = ""
        if token is None and credentials.query_token is not None:
            if credentials.websocket and credentials.fetch_mode == "websocket":
                token = credentials.query_token
            else:
                ignored = " (?token= counts only on websocket upgrades sent with Sec-Fetch-Mode: websocket)"
        if token == "":
            return AuthResult(None, "empty token")
        if token is None:
            via = Via.COOKIE
            if credentials.cookie is None:
                return AuthResult(None, "no credential" + ignored)
            token = self._token_in_cookie(credentials.cookie)
            if token is None:
                return AuthResult(None, "bad cookie" + ignored)
        model = await self.client.user_for_token(token)
        if model is None:
            what = "token" if via is Via.TOKEN else "cookie"
            return AuthResult(None, f"bad {what}: the Hub does not know its token (expired or revoked)")
        if not await self.allows(model):
            kind = model.get("kind") or "user"
            return AuthResult(
                None,
                f"Hub {kind} {model['name']!r} has no scope granting access to this server",
                refused=True,
            )
        return AuthResult(Identity(_user(model), via))

    async def allows(self, model: Mapping[str, Any]) -> bool:
        """Whether the Hub model's ``scopes`` grant one of the access scopes. A group scope
        asks the Hub for the owner's groups (cached); when it will not tell, the group scope
        grants nothing and a warning says once what is missing."""
        held = model.get("scopes") or ()
        required = self.hub.access_scopes
        if access_granted(held, required):
            return True
        if not group_scopes(held, required):
            return False
        groups = await self.client.groups_of(self.hub.user)
        if groups is None:
            if not self._groups_warned:
                self._groups_warned = True
                log.warning(
                    "A group scope could grant access to %s's server, but the Hub does not tell this "
                    "server %s's groups: add read:users:groups!user to c.Spawner.server_token_scopes",
                    self.hub.user,
                    self.hub.user,
                )
            return False
        return access_granted(held, required, groups)

    def _token_in_cookie(self, value: str) -> str | None:
        raw = decode_signed_value(self._secret, self.cookie_name, value, max_age_days=self._max_age_days)
        try:
            return raw.decode("ascii") if raw else None
        except UnicodeDecodeError:
            return None

    # -- logging in ----------------------------------------------------------------------------------

    def secure(self, request_is_https: bool) -> bool:
        """Whether cookies get ``Secure``: over https (the browser's, as the proxy reports it),
        when the Hub's public URL is https, and always for ``__Host-`` cookies."""
        return request_is_https or self.hub.public_url.startswith("https:") or self.hub.cookie_host_prefix

    def start_login(self, next_url: str, *, secure: bool) -> LoginStart:
        """The Hub's authorize URL, and the state cookie that the callback will expect."""
        state = OAuthState.new(next_url)
        name = state_cookie_name(self.cookie_name, state.state)
        assert name is not None
        query = {
            "client_id": self.hub.client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "state": state.state,
            "code_challenge": pkce_challenge(state.verifier),
            "code_challenge_method": "S256",
        }
        cookie = CookieSpec(
            name,
            state.cookie_value(self._secret, self.cookie_name),
            self.cookie_path,
            max_age=STATE_MAX_AGE,
            secure=self.secure(secure),
        )
        return LoginStart(self.authorize_url + "?" + urlencode(query), (cookie,))

    def state_cookie(self, state: str) -> str | None:
        """The name of the cookie that should carry ``state`` (None: not a state of ours)."""
        return state_cookie_name(self.cookie_name, state)

    def is_state_cookie(self, name: str) -> bool:
        return name.startswith(self.cookie_name + "-oauth-state-")

    async def finish_login(self, *, code: str, state: str, state_value: str | None) -> tuple[str, str]:
        """Complete a login at the callback: the state must match its cookie's (``state_value``),
        the code is traded for a token, whose owner must be allowed here.

        Returns:
            ``(token, next_url)``; ``next_url`` is as stored when the login started.

        Raises:
            Forbidden: the state does not match a login under way (reason ``"oauth state"``),
                or the user may not use this server (``"auth"``).
            HubRefused: the Hub refused the code. HubUnavailable: it could not be asked.
        """
        pending = OAuthState.from_cookie(self._secret, self.cookie_name, state, state_value)
        if pending is None:
            raise Forbidden(
                "OAuth state does not match a login begun here (or it is older than "
                f"{STATE_MAX_AGE // 60} minutes). Try again.",
                reason="oauth state",
            )
        token = await self.client.token_for_code(
            code=code, client_id=self.hub.client_id, redirect_uri=self.redirect_uri, verifier=pending.verifier
        )
        model = await self.client.user_for_token(token)
        if model is None:
            raise HubUnavailable("The Hub issued a token it does not recognise")
        if not await self.allows(model):
            raise Forbidden(f"Hub user {model['name']!r} may not use this server", reason="auth")
        log.info("Logged in Hub user %s through OAuth", model["name"])
        return token, pending.next_url

    def login_cookie(self, token: str, *, secure: bool) -> CookieSpec:
        """The login cookie holding ``token``: signed, ``HttpOnly``, for the prefix only."""
        value = create_signed_value(self._secret, self.cookie_name, token).decode("ascii")
        max_age = int(self._max_age_days * 86400)
        return CookieSpec(
            self.cookie_name, value, self.cookie_path, max_age=max_age, secure=self.secure(secure)
        )

    @staticmethod
    def oauth_error(error: str, description: str | None) -> BadRequest:
        """The error for a callback that carries the Hub's ``error`` instead of a code."""
        return BadRequest(f"The Hub refused the login: {description or error}", reason="oauth")

    # -- lifecycle --------------------------------------------------------------------------------------

    async def startup(self) -> None:
        """Ask the Hub its version (logged, echoed in ``X-JupyterHub-Version``); a Hub that
        does not answer is a warning only: every request will ask it again."""
        try:
            await self.client.request("GET", "", timeout=5.0)
        except HubUnavailable as exc:
            log.warning("%s; continuing: requests will wait for it", exc.message)
            return
        version = self.client.hub_version
        log.info(
            "JupyterHub %s at %s; serving %s's server",
            version or "(no version)",
            self.hub.api_url,
            self.hub.user,
        )
        if version and version.split(".")[0] in SUPPORTED_MAJORS:
            self.headers["X-JupyterHub-Version"] = version

    async def shutdown(self) -> None:
        self.client.close()
