"""``/login`` and ``/logout``: the password (or token) form and the login cookie."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from tornado.web import HTTPError

from ..context import ServerContext
from ..errors import Forbidden
from ..routing import Route
from ..web import Access, PageHandler

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

    def _form(self, error: str = "", status: int = 200) -> None:
        """The form; ``error``, the label and the hint are message keys of the UI's catalogue."""
        password = self.ctx.auth.has_password
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
            return
        self._form()

    async def post(self) -> None:
        try:
            self.check_xsrf_cookie()
        except HTTPError as exc:
            raise Forbidden(f"XSRF check failed: {exc.log_message}", reason="xsrf") from None
        secret = self.get_body_argument("password", "")
        if not self.ctx.auth.enabled:
            self.redirect(self._next())
        elif await self.ctx.auth.check_login(secret):
            self.ctx.log.info("Login from %s", self.request.remote_ip)
            self.set_login_cookie()
            self.redirect(self._next())
        else:
            self.ctx.log.warning("Failed login from %s", self.request.remote_ip)
            self._form("login.invalid", status=401)


class LogoutHandler(PageHandler):
    access = Access.PUBLIC

    def get(self) -> None:
        self.clear_cookie(self.ctx.cookie_name, path=self.ctx.config.base_url)
        render_login(self, logged_out=True)


def render_login(handler: PageHandler, **kwargs: Any) -> None:
    """``login.html``, a page of the web UI (its styles, languages and ``custom.css``)."""
    handler.render("login.html", page="login", path="", name="", config_extra={}, show_logout=False, **kwargs)


def routes(ctx: ServerContext) -> list[Route]:
    return [
        Route("/login", LoginHandler, {"ctx": ctx}),
        Route("/logout", LogoutHandler, {"ctx": ctx}),
    ]
