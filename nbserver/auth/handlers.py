"""``/login``, ``/logout`` and ``/oauth_callback``.

With the local authenticator: the password (or token) form and the login cookie. Under
JupyterHub (:mod:`nbserver.auth.hub`): ``/login`` starts the Hub's OAuth, ``/oauth_callback``
completes it (state checked, code traded, the login cookie set for the prefix only), and
``/logout`` clears the cookie and goes on to the Hub's logout. Without a Hub the callback is 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from tornado.web import HTTPError

from ..context import ServerContext
from ..errors import BadRequest, Forbidden, NotFound
from ..routing import Route
from ..web import Access, PageHandler
from .hub import HubAuthenticator
from .identity import Authenticator

__all__ = ["routes", "safe_next"]


def safe_next(target: str | None, base_url: str) -> str:
    """``target`` if it is a local path under ``base_url``, else ``base_url``.

    Refuses absolute URLs, scheme-relative ``//host`` and ``/\\host`` forms (which browsers treat
    as another host), and control characters: the login form must never be an open redirect.
    """
    if not target or any(ord(c) < 0x20 or c == "\\" for c in target):
        return base_url
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(base_url) or target.startswith("//"):
        return base_url
    return target


class LoginHandler(PageHandler):
    """The login form. Accepts the password, or the token for token-only servers."""

    access = Access.PUBLIC
    _stream_request_body = False  # a small form: let tornado parse it (XSRF reads `_xsrf` from it)

    def _next(self) -> str:
        return safe_next(self.get_argument("next", None), self.ctx.config.base_url)

    def _form(self, auth: Authenticator, error: str = "", status: int = 200) -> None:
        """The form; ``error``, the label and the hint are message keys of the UI's catalogue."""
        password = auth.has_password
        self.set_status(status)
        render_login(
            self,
            logged_out=False,
            error=error,
            action=self.request.path + "?" + urlencode({"next": self._next()}),
            label="login.password" if password else "login.token",
            hint="login.passwordHint" if password else "login.tokenHint",
        )

    def get(self) -> None:
        if self.identity is not None:
            self.redirect(self._next())
        elif isinstance(self.ctx.auth, Authenticator):
            self._form(self.ctx.auth)
        else:  # another provider logs people in elsewhere (the Hub's OAuth)
            self.go_to_login(self._next())

    async def post(self) -> None:
        try:
            self.check_xsrf_cookie()
        except HTTPError as exc:
            raise Forbidden(f"XSRF check failed: {exc.log_message}", reason="xsrf") from None
        auth = self.ctx.auth
        if not isinstance(auth, Authenticator):
            raise Forbidden("No password login here: log in through JupyterHub (GET /login)", reason="auth")
        secret = self.get_body_argument("password", "")
        if not auth.enabled:
            self.redirect(self._next())
        elif await auth.check_login(secret):
            self.ctx.log.info("Login from %s", self.request.remote_ip)
            self.set_login_cookie()
            self.redirect(self._next())
        else:
            self.ctx.log.warning("Failed login from %s", self.request.remote_ip)
            self._form(auth, "login.invalid", status=401)


class LogoutHandler(PageHandler):
    """Clears the login cookie; under JupyterHub, goes on to log out of the Hub."""

    access = Access.PUBLIC

    def get(self) -> None:
        auth = self.ctx.auth
        if isinstance(auth, HubAuthenticator):
            secure = auth.secure(self.request.protocol == "https")
            self.clear_cookie(auth.cookie_name, path=auth.cookie_path, secure=secure)
            self.redirect(auth.logout_url)
            return
        self.clear_cookie(self.ctx.cookie_name, path=self.ctx.config.base_url)
        render_login(self, logged_out=True)


class OAuthCallbackHandler(PageHandler):
    """``/oauth_callback?code=&state=``: the end of a login through the Hub's OAuth.

    400 for a callback without code or state, or with the Hub's ``error``; 403 when the state
    matches no login begun in this browser (its cookie is missing, forged, expired, or names
    another state), when the Hub refuses the code, or when the user may not use this server;
    503 when the Hub cannot be reached. A browser already logged in that comes back with a
    stale state is simply sent to ``base_url``. On success: the login cookie, every OAuth state
    cookie cleared, and a redirect to the (local) URL the login began from.
    """

    access = Access.PUBLIC
    _stream_request_body = False

    async def get(self) -> None:
        auth = self.ctx.auth
        if not isinstance(auth, HubAuthenticator):
            raise NotFound("No OAuth login here: this server does not run under JupyterHub", reason="no hub")
        error = self.get_query_argument("error", None)
        if error is not None:
            raise auth.oauth_error(error, self.get_query_argument("error_description", None))
        code, state = self.get_query_argument("code", ""), self.get_query_argument("state", "")
        if not code or not state:
            raise BadRequest("OAuth callback without a code or a state: log in again", reason="oauth")
        name = auth.state_cookie(state)
        value = self.get_cookie(name) if name is not None else None
        secure = self.request.protocol == "https"
        if value is None and self.identity is not None:
            self.ctx.log.warning("OAuth callback with a stale state from a browser already logged in")
            self._clear_state_cookies(auth, secure)
            self.redirect(self.ctx.config.base_url)
            return
        token, next_url = await auth.finish_login(code=code, state=state, state_value=value)
        self._clear_state_cookies(auth, secure)
        self.set_cookie_spec(auth.login_cookie(token, secure=secure))
        self.redirect(safe_next(next_url, self.ctx.config.base_url))

    def _clear_state_cookies(self, auth: HubAuthenticator, secure: bool) -> None:
        for name in self.request.cookies:
            if auth.is_state_cookie(name):
                self.clear_cookie(name, path=auth.cookie_path, secure=auth.secure(secure))


def render_login(handler: PageHandler, **kwargs: Any) -> None:
    """``login.html``, a page of the web UI (its styles, languages and ``custom.css``)."""
    handler.render("login.html", page="login", path="", name="", config_extra={}, show_logout=False, **kwargs)


def routes(ctx: ServerContext) -> list[Route]:
    return [
        Route("/login", LoginHandler, {"ctx": ctx}),
        Route("/logout", LogoutHandler, {"ctx": ctx}),
        Route("/oauth_callback", OAuthCallbackHandler, {"ctx": ctx}),
    ]
