"""The hub's pages: login, logout, home (my server), admin, the start-and-follow page, the
``/hub/user/<name>/...`` detour a stopped server's URL leads to, and OAuth's authorize step.

Every form carries ``_xsrf`` and is checked (the web layer checks it for logged-in users, the
login form checks it itself). The login cookie is ``HttpOnly``, ``SameSite=Lax``, and
``Secure`` over https. Failed logins are logged and rate-limited (429 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from tornado.web import HTTPError

from ..auth.handlers import safe_next
from ..auth.passwords import hash_password
from ..errors import Forbidden, NBServerError
from ..routing import Route
from ..web import Access
from .handlers import HubPageHandler
from .identity import COOKIE_NAME
from .proxy import client_address, public_scheme
from .runtime import HubRuntime
from .servers import ServerState
from .store import NAME_RULE, check_name

__all__ = ["routes"]

_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;color:#222}"
    "form.inline{display:inline}button,input{font:inherit;padding:.3rem .6rem}"
    "label{display:block;margin:.5rem 0}"
    "table{border-collapse:collapse;width:100%}"
    "td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}"
    ".error{color:#b00020}nav a{margin-right:1rem}progress{width:100%}"
)


def page(title: str, body: str, *, user: str | None = None, base: str = "/") -> str:
    nav = ""
    if user is not None:
        nav = (
            f'<nav><a href="{base}hub/home">Home</a><a href="{base}user/{quote(user)}/">My server</a>'
            f'<a href="{base}hub/logout">Log out ({escape(user)})</a></nav>'
        )
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{escape(title)}</title>"
        f"<meta name=viewport content='width=device-width'><style>{_STYLE}</style>{nav}"
        f"<h1>{escape(title)}</h1>{body}</html>"
    )


class HubPage(HubPageHandler):
    def xsrf_input(self) -> str:
        return f'<input type="hidden" name="_xsrf" value="{escape(self.xsrf_token.decode())}">'

    def send_page(self, title: str, body: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        user = self.principal.name if self.identity is not None else None
        self.finish(page(title, body, user=user, base=self.hub.base_url))


class RootHandler(HubPage):
    """``/`` and ``/hub/``: home when logged in, else the login page."""

    access = Access.PUBLIC

    def get(self) -> None:
        self.redirect(self.hub.hub_prefix + ("home" if self.identity is not None else "login"))


class LoginHandler(HubPage):
    """``/hub/login``: the form (``username``, ``password``, ``_xsrf``; ``?next=`` kept if local)."""

    access = Access.PUBLIC
    _stream_request_body = False

    def _next(self, name: str) -> str:
        default = f"{self.hub.base_url}user/{name}/" if name else self.hub.hub_prefix + "home"
        target = self.get_argument("next", None)
        return safe_next(target, self.hub.base_url) if target else default

    def _form(self, error: str = "", status: int = 200, username: str = "") -> None:
        action = self.hub.hub_prefix + "login"
        target = self.get_argument("next", None)
        if target:
            action += "?" + urlencode({"next": safe_next(target, self.hub.base_url)})
        message = f"<p class=error role=alert>{escape(error)}</p>" if error else ""
        self.send_page(
            "Sign in",
            f'{message}<form method=post action="{escape(action)}">{self.xsrf_input()}'
            f'<label>Username <input name=username autocomplete=username value="{escape(username)}"'
            " autofocus required></label>"
            "<label>Password <input name=password type=password autocomplete=current-password"
            " required></label>"
            f"<button type=submit>Sign in</button></form>",
            status,
        )

    def get(self) -> None:
        if self.identity is not None:
            self.redirect(self._next(self.principal.name))
            return
        self._form()

    async def post(self) -> None:
        try:
            self.check_xsrf_cookie()
        except HTTPError as exc:
            raise Forbidden(f"XSRF check failed: {exc.log_message}", reason="xsrf") from None
        name = self.get_body_argument("username", "").strip().lower()
        password = self.get_body_argument("password", "")
        address = client_address(self.request, self.hub.trusted_proxies)
        wait = self.hub.limiter.retry_after(address, name)
        if wait > 0:
            self.hub.ctx.log.warning("Login for %r from %s refused: too many failures", name, address)
            self.set_header("Retry-After", str(int(wait) + 1))
            self._form(f"Too many failed attempts; try again in {int(wait) + 1} seconds.", 429, name)
            return
        known = NAME_RULE.fullmatch(name) is not None and self.hub.store.user(name) is not None
        ok = await self.hub.authenticator.check(name, password) if NAME_RULE.fullmatch(name) else False
        if not (known and ok):
            self.hub.limiter.failed(address, name)
            self.hub.ctx.log.warning("Failed login for %r from %s", name, address)
            self._form("Invalid username or password.", 403, name)
            return
        self.hub.limiter.succeeded(name)
        self.hub.ctx.log.info("User %s logged in from %s", name, address)
        session = secrets.token_hex(16)
        self.set_cookie(
            COOKIE_NAME,
            self.hub.identity.login_cookie(name, session),
            path=self.hub.hub_prefix,
            expires_days=self.hub.settings.cookie_max_age_days,
            httponly=True,
            samesite="Lax",
            secure=public_scheme(self.request, self.hub.trusted_proxies) == "https",
        )
        self.redirect(self._next(name))


class LogoutHandler(HubPage):
    """``/hub/logout``: clears the login cookie and revokes the session's server logins."""

    access = Access.PUBLIC

    def get(self) -> None:
        if self.identity is not None and self.principal.session_id and self.principal.token is None:
            self.hub.store.delete_session_tokens(self.principal.session_id)
            self.hub.ctx.log.info("User %s logged out", self.principal.name)
        self.clear_cookie(COOKIE_NAME, path=self.hub.hub_prefix)
        self.identity = None
        self.send_page("Signed out", f'<p><a href="{self.hub.hub_prefix}login">Sign in again</a></p>')


def _status(hub: HubRuntime, name: str) -> str:
    server = hub.servers.get(name)
    if server is None:
        return "stopped"
    return {
        ServerState.SPAWNING: "starting",
        ServerState.RUNNING: "running",
        ServerState.STOPPING: "stopping",
    }[server.state]


class HomeHandler(HubPage):
    """``/hub/home``: my server's state, start/stop, a link to it."""

    access = Access.USER
    _stream_request_body = False

    def get(self) -> None:
        name = self.principal.name
        state = _status(self.hub, name)
        url = f"{self.hub.base_url}user/{quote(name)}/"
        action = "stop" if state in ("running", "starting") else "start"
        admin = f'<p><a href="{self.hub.hub_prefix}admin">Admin</a></p>' if self.principal.admin else ""
        self.send_page(
            "Home",
            f"<p>Your server is <strong id=state>{state}</strong>.</p>"
            f'<p><a id=open href="{url}">Open my server</a></p>'
            f"<form method=post>{self.xsrf_input()}<button name=action value={action}>"
            f"{action.capitalize()} my server</button></form>{admin}",
        )

    async def post(self) -> None:
        await _act(self, self.principal.name, self.get_body_argument("action", ""))
        self.redirect(self.hub.hub_prefix + "home")


async def _act(handler: HubPage, name: str, action: str) -> None:
    """Start or stop ``name``'s server for a page's form (the caller checked the scope)."""
    servers = handler.hub.servers
    if action == "start":
        if servers.get(name) is None:
            await servers.start(name)
    elif action == "stop":
        await servers.stop(name)  # no wait: the page shows "stopping"
    else:
        raise NBServerError(f"Unknown action {action!r}", reason="bad action", status=400)


class AdminHandler(HubPage):
    """``/hub/admin`` (admins only): every user, their server's state, start/stop; adding a user."""

    access = Access.USER
    _stream_request_body = False

    def get(self) -> None:
        self.need("admin-ui", None)
        rows = []
        for user in self.hub.store.users():
            state = _status(self.hub, user.name)
            action = "stop" if state in ("running", "starting") else "start"
            activity = self.hub.servers.user_activity(user.name, user.last_activity)
            rows.append(
                f"<tr><td>{escape(user.name)}{' (admin)' if user.admin else ''}</td><td>{state}</td>"
                f"<td>{escape(activity.isoformat(timespec='seconds')) if activity else '-'}</td>"
                f"<td><form class=inline method=post>{self.xsrf_input()}"
                f'<input type=hidden name=user value="{escape(user.name)}">'
                f"<button name=action value={action}>{action.capitalize()}</button></form></td></tr>"
            )
        self.send_page(
            "Admin",
            "<table><tr><th>User</th><th>Server</th><th>Last activity</th><th></th></tr>"
            + "".join(rows)
            + "</table><h2>Add a user</h2>"
            f"<form method=post>{self.xsrf_input()}"
            "<label>Name <input name=username required autocomplete=off></label>"
            "<label><input type=checkbox name=admin value=1> Administrator</label>"
            "<button name=action value=add>Add user</button></form>",
        )

    async def post(self) -> None:
        self.need("admin-ui", None)
        action = self.get_body_argument("action", "")
        if action == "add":
            await self._add()
            return
        name = self.get_body_argument("user", "")
        self.hub.store.require_user(name)
        await _act(self, name, action)
        self.redirect(self.hub.hub_prefix + "admin")

    async def _add(self) -> None:
        """Add the user named in the form (``username``, ``admin``). With the db authenticator
        they get a random password, shown on this page once (never stored but as its hash, never
        in a URL); with PAM their system password opens the account, as in JupyterHub.

        Raises:
            BadRequest: not a valid user name; Conflict: the user exists (409, ``"exists"``).
        """
        self.need("admin:users", None)
        name = check_name(self.get_body_argument("username", "").strip().lower())
        admin = self.get_body_argument("admin", "") == "1"
        password = secrets.token_urlsafe(12) if self.hub.authenticator.name == "db" else None
        digest = None
        if password is not None:
            digest = await asyncio.get_running_loop().run_in_executor(None, hash_password, password)
        self.hub.store.add_user(name, admin=admin, password_hash=digest)
        self.hub.ctx.log.info("%s added %s%s", self.principal.name, "admin " if admin else "", name)
        if password is None:
            told = f"<p>{escape(name)} signs in with their system account's password.</p>"
        else:
            told = (
                f"<p>{escape(name)}'s password, shown only this once: <code id=password>"
                f"{escape(password)}</code></p><p>Give it to them; it can be changed with "
                f"<code>python -m nbserver hub passwd {escape(name)}</code>.</p>"
            )
        self.send_page(
            f"Added {name}",
            f'{told}<p><a href="{self.hub.hub_prefix}admin">Back to the admin page</a></p>',
            201,
        )


class UserRedirectHandler(HubPage):
    """``/hub/user/<name>/<path>``: where ``/user/<name>/...`` of a stopped server leads. A
    running server: back to it. Its owner: the server starts and the progress page follows
    it, then continues to the URL asked for. Anybody else: 403 (an admin starts servers from
    the admin page)."""

    access = Access.USER

    async def get(self, name: str, path: str = "") -> None:
        target = f"{self.hub.base_url}user/{quote(name)}/{path}"
        if self.request.query:
            target += "?" + self.request.query
        if self.hub.servers.running(name) is not None:
            self.redirect(target)
            return
        if name != self.principal.name:
            self.need("servers", name)
            raise Forbidden(
                f"{name}'s server is not running; start it from the admin page", reason="not running"
            )
        if self.hub.servers.get(name) is None:
            await self.hub.servers.start(name)
        self.redirect(f"{self.hub.hub_prefix}spawn-pending/{quote(name)}?" + urlencode({"next": target}))


class SpawnPendingHandler(HubPage):
    """``/hub/spawn-pending/<name>?next=``: follows the start's progress, then goes on to ``next``."""

    access = Access.USER

    def get(self, name: str) -> None:
        self.need("read:servers", name)
        target = safe_next(self.get_argument("next", None), self.hub.base_url + "user/" + quote(name) + "/")
        server = self.hub.servers.get(name)
        if server is not None and server.state is ServerState.RUNNING:
            self.redirect(target)
            return
        progress = f"{self.hub.hub_prefix}api/users/{quote(name)}/server/progress"
        script = (
            "const bar=document.getElementById('bar'),log=document.getElementById('log');"
            f"const next={json.dumps(target)};const src=new EventSource({json.dumps(progress)});"
            "src.onmessage=e=>{const ev=JSON.parse(e.data);bar.value=ev.progress;"
            "const li=document.createElement('li');li.textContent=ev.message;log.appendChild(li);"
            "if(ev.ready){src.close();location.replace(next);}"
            "if(ev.failed){src.close();document.getElementById('failed').hidden=false;}};"
            "src.onerror=()=>{src.close();setTimeout(()=>location.replace(next),1500);};"
        )
        self.send_page(
            f"Starting {name}'s server",
            "<progress id=bar max=100 value=0></progress><ul id=log></ul>"
            "<p id=failed hidden class=error>The server could not start. "
            f'<a href="{self.hub.hub_prefix}home">Home</a></p>'
            f"<script>{script}</script>",
        )

    def csp(self) -> str:
        return "frame-ancestors 'self'; script-src 'unsafe-inline'"


class AuthorizeHandler(HubPage):
    """``/hub/api/oauth2/authorize``: a logged-in user who may access the client's server is sent
    back to it with a code (:meth:`~nbserver.hub.oauth.OAuthProvider.authorize`)."""

    access = Access.USER

    def get(self) -> None:
        query = {k: v[-1].decode("utf-8", "replace") for k, v in self.request.query_arguments.items() if v}
        p = self.principal
        self.redirect(self.hub.oauth.authorize(query, user=p.name, scopes=p.scopes, session_id=p.session_id))


def routes(ctx: Any, hub: HubRuntime) -> list[Route]:
    kw = {"ctx": ctx, "hub": hub}
    return [
        Route("/", RootHandler, kw, documented=False),
        Route("/hub", RootHandler, kw, documented=False),
        Route("/hub/", RootHandler, kw, documented=False),
        Route("/hub/login", LoginHandler, kw, documented=False),
        Route("/hub/logout", LogoutHandler, kw, documented=False),
        Route("/hub/home", HomeHandler, kw, documented=False),
        Route("/hub/admin", AdminHandler, kw, documented=False),
        Route("/hub/spawn-pending/{name}", SpawnPendingHandler, kw, documented=False),
        Route("/hub/user/{name}/{path}", UserRedirectHandler, kw, {"path": ".*"}, documented=False),
        Route("/hub/api/oauth2/authorize", AuthorizeHandler, kw, documented=False),
    ]
