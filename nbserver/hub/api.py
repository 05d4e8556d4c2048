"""The hub's REST API at ``<base>hub/api``: JupyterHub's paths, models, scopes and status codes
for what a team hub does (users, their one server, activity, tokens). ``hub-api.yaml`` beside
this module documents it.

Authentication is ``Authorization: token <T>`` (or the hub's login cookie with XSRF, for the
hub's own pages). What a request may do is decided by scopes (:mod:`nbserver.hub.scopes`): a
user manages their own server and tokens; admins everything. A request without the scope on
another user's resource is refused with 403 (JupyterHub answers 404 there when the token holds
the scope for some other user; see docs/compatibility.md).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from ..errors import BadRequest, NBServerError, NotFound
from ..routing import Route
from ..web import Access
from .api_version import API_VERSION
from .handlers import HubAPIHandler
from .runtime import HubRuntime
from .scopes import subset_of, user_scopes
from .servers import ServerState
from .store import UserRecord, now, stamp

__all__ = ["API_VERSION", "routes", "user_model"]

PAGINATION = "application/jupyterhub-pagination+json"
PAGE_DEFAULT, PAGE_MAX = 50, 200


def _stamp(moment: Any) -> str | None:
    return stamp(moment) if moment is not None else None


def server_model(hub: HubRuntime, name: str) -> dict[str, Any] | None:
    """JupyterHub's server model of ``name``'s (default) server, or None when it is not active."""
    server = hub.servers.get(name)
    if server is None:
        return None
    url = hub.servers.prefix(name)
    return {
        "name": "",
        "full_name": f"{name}/",
        "display_name": "",
        "last_activity": _stamp(server.last_activity or server.started),
        "started": _stamp(server.started),
        "pending": server.pending,
        "ready": server.state is ServerState.RUNNING,
        "stopped": False,
        "url": url,
        "user_options": {},
        "progress_url": f"{hub.hub_prefix}api/users/{name}/server/progress",
        "full_url": None,
        "full_progress_url": None,
    }


def user_model(hub: HubRuntime, user: UserRecord) -> dict[str, Any]:
    """JupyterHub's user model."""
    server = server_model(hub, user.name)
    return {
        "kind": "user",
        "name": user.name,
        "admin": user.admin,
        "roles": ["admin", "user"] if user.admin else ["user"],
        "groups": [],
        "server": server["url"] if server is not None and server["ready"] else None,
        "pending": server["pending"] if server is not None else None,
        "created": stamp(user.created),
        "last_activity": _stamp(hub.servers.user_activity(user.name, user.last_activity)),
        "servers": {"": server} if server is not None else {},
        "auth_state": None,
    }


class VersionHandler(HubAPIHandler):
    """``GET /hub/api``: the API version."""

    access = Access.PUBLIC

    def get(self) -> None:
        from .._version import __version__

        self.write_json({"version": API_VERSION, "nbserver": __version__})


class SelfHandler(HubAPIHandler):
    """``GET /hub/api/user``: the token's owner, with the scopes this request holds."""

    access = Access.USER

    def get(self) -> None:
        p = self.principal
        model = user_model(self.hub, self.hub.store.require_user(p.name))
        model["scopes"] = sorted(p.scopes)
        model["token_id"] = p.token.api_id if p.token is not None else None
        model["session_id"] = p.session_id
        self.write_json(model)


class UsersHandler(HubAPIHandler):
    """``GET /hub/api/users``: ``?state=ready|active|inactive``, ``offset``, ``limit``; paginated
    (``{"items", "_pagination"}``) when the request accepts JupyterHub's pagination type."""

    access = Access.USER

    def get(self) -> None:
        self.need("list:users", None)
        state = self.get_query_argument("state", None)
        if state not in (None, "ready", "active", "inactive"):
            raise BadRequest(f"Unrecognized state filter: {state!r}", reason="bad state")
        paginated = PAGINATION in self.request.headers.get("Accept", "")
        try:
            offset = abs(int(self.get_query_argument("offset", "0")))
            limit = abs(int(self.get_query_argument("limit", str(PAGE_DEFAULT if paginated else PAGE_MAX))))
        except ValueError:
            raise BadRequest("offset and limit must be integers", reason="bad pagination") from None
        limit = min(max(limit, 1), PAGE_MAX)
        users = self.hub.store.users()
        if state is not None:
            users = [u for u in users if _state_matches(self.hub, u.name, state)]
        page = [user_model(self.hub, u) for u in users[offset : offset + limit]]
        if not paginated:
            self.write_json(page)
            return
        nxt = None
        if offset + limit < len(users):
            parts = urlsplit(self.request.full_url())
            query = parse_qs(parts.query, keep_blank_values=True)
            query.update(offset=[str(offset + limit)], limit=[str(limit)])
            url = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
            nxt = {"offset": offset + limit, "limit": limit, "url": url}
        pagination = {"offset": offset, "limit": limit, "total": len(users), "next": nxt}
        self.write_json({"items": page, "_pagination": pagination})


def _state_matches(hub: HubRuntime, name: str, state: str) -> bool:
    server = hub.servers.get(name)
    if state == "inactive":
        return server is None
    if state == "active":
        return server is not None
    return server is not None and server.state is ServerState.RUNNING


class UserHandler(HubAPIHandler):
    """``GET/POST/DELETE /hub/api/users/<name>``."""

    access = Access.USER

    def get(self, name: str) -> None:
        self.need("read:users", name)
        self.write_json(user_model(self.hub, self.hub.store.require_user(name)))

    def post(self, name: str) -> None:
        self.need("admin:users", name)
        body = self.json_body() or {}
        if not isinstance(body, dict):
            raise BadRequest("Body must be a JSON object", reason="bad json")
        user = self.hub.store.add_user(name, admin=bool(body.get("admin", False)))
        self.hub.ctx.log.info("%s created user %s", self.principal.name, name)
        self.write_json(user_model(self.hub, user), status=201)

    async def delete(self, name: str) -> None:
        self.need("admin:users", name)
        self.hub.store.require_user(name)
        if name == self.principal.name:
            raise BadRequest("Cannot delete yourself!", reason="self")
        server = await self.hub.servers.stop(name)
        if server is not None:
            await server.stopped.wait()
        self.hub.store.delete_user(name)
        self.hub.ctx.log.info("%s deleted user %s", self.principal.name, name)
        self.set_status(204)
        self.finish()


class ServerHandler(HubAPIHandler):
    """``POST/DELETE /hub/api/users/<name>/server``: 201 started, 202 pending, 204 stopped;
    400 when already running or stopping (JupyterHub's answers)."""

    access = Access.USER

    async def post(self, name: str) -> None:
        self.need("servers", name)
        self.hub.store.require_user(name)
        current = self.hub.servers.get(name)
        if current is not None and current.state is ServerState.SPAWNING:
            self._empty(202)
            return
        if current is not None:
            what = "pending stop" if current.state is ServerState.STOPPING else "already running"
            raise BadRequest(f"{name}'s server is {what}", reason=what.replace(" ", "_"))
        server = await self.hub.servers.start(name)
        ready = await self.hub.servers.wait_ready(server, self.hub.settings.slow_spawn_timeout)
        if server.failure is not None:
            raise NBServerError(f"{name}'s server failed to start: {server.failure}", reason="spawn failed")
        self._empty(201 if ready else 202)

    async def delete(self, name: str) -> None:
        self.need("delete:servers", name)
        self.hub.store.require_user(name)
        server = await self.hub.servers.stop(name)
        if server is not None:
            try:
                await asyncio.wait_for(
                    asyncio.shield(server.stopped.wait()), self.hub.settings.slow_spawn_timeout
                )
            except asyncio.TimeoutError:
                self._empty(202)
                return
        self._empty(204)

    def _empty(self, status: int) -> None:
        self.set_status(status)
        if status != 204:
            self.set_header("Content-Type", "text/plain")
        self.finish()


class ProgressHandler(HubAPIHandler):
    """``GET /hub/api/users/<name>/server/progress``: the start's events as server-sent events
    (``data: {"progress", "message", ["ready", "url"] | ["failed"]}``), ending with the ready
    or failed one. 400 when the server is neither starting nor running."""

    access = Access.USER

    async def get(self, name: str) -> None:
        self.need("read:servers", name)
        self.hub.store.require_user(name)
        server = self.hub.servers.get(name)
        if server is None or server.state is ServerState.STOPPING:
            raise BadRequest(f"{name}'s server is not starting", reason="not starting")
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        sent = 0
        while True:
            for event in server.events[sent:]:
                self.write(f"data: {json.dumps(event)}\n\n")
                sent += 1
            await self.flush()
            if server.events and (server.events[-1].get("ready") or server.events[-1].get("failed")):
                break
            if server.stopped.is_set():
                break
            await asyncio.sleep(0.2)
        self.finish()


class ActivityHandler(HubAPIHandler):
    """``POST /hub/api/users/<name>/activity``: ``{"last_activity", "servers": {"": {"last_activity"}}}``
    from a user's server; timestamps only move forward; 400 for a bad body, an unknown server
    or a time more than an hour ahead."""

    access = Access.USER

    def post(self, name: str) -> None:
        self.need("users:activity", name)
        self.hub.store.require_user(name)
        body = self.json_body()
        if not isinstance(body, dict):
            raise BadRequest("body must be a json dict", reason="bad json")
        last, servers = body.get("last_activity"), body.get("servers")
        if not last and not servers:
            raise BadRequest(
                "body must contain at least one of `last_activity` or `servers`", reason="bad body"
            )
        moments = []
        if servers:
            if not isinstance(servers, dict):
                raise BadRequest(
                    "servers must be a dict of {server_name: {last_activity: timestamp}}", reason="bad body"
                )
            for server_name, info in servers.items():
                if server_name != "" or self.hub.servers.get(name) is None:
                    raise BadRequest(f"No such server '{server_name}' for user {name}", reason="no server")
                if not isinstance(info, dict) or "last_activity" not in info:
                    raise BadRequest(
                        "servers must be a dict of {server_name: {last_activity: timestamp}}",
                        reason="bad body",
                    )
                moments.append(_parse_time(info["last_activity"]))
        if last:
            moments.append(_parse_time(last))
        self.hub.servers.touch(name, max(moments))
        self.finish()


def _parse_time(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Not a valid timestamp: {value!r}", reason="bad timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if moment - now() > timedelta(minutes=59):
        raise BadRequest(f"Rejecting activity from more than an hour in the future: {value}", reason="future")
    return moment


class TokensHandler(HubAPIHandler):
    """``GET/POST /hub/api/users/<name>/tokens``: list, or issue (``{"note", "expires_in",
    "scopes"}``; 201 with the token's model and its text, shown once). A token never holds
    more than its owner (400 otherwise)."""

    access = Access.USER

    def get(self, name: str) -> None:
        self.need("read:tokens", name)
        self.hub.store.require_user(name)
        tokens = [token_model(t) for t in self.hub.store.tokens_of(name) if t.kind == "api"]
        self.write_json({"api_tokens": tokens, "oauth_tokens": []})

    def post(self, name: str) -> None:
        self.need("tokens", name)
        user = self.hub.store.require_user(name)
        body = self.json_body() or {}
        if not isinstance(body, dict):
            raise BadRequest("Body must be a JSON dict or empty", reason="bad json")
        owner = user_scopes(user.name, user.admin)
        scopes = body.get("scopes")
        if scopes is None:
            scopes = sorted(owner)
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise BadRequest("scopes must be a list of strings", reason="bad scopes")
        if not subset_of(scopes, owner):
            raise BadRequest(f"Requested scopes exceed {name}'s own: {sorted(scopes)}", reason="bad scopes")
        expires_in = body.get("expires_in")
        if expires_in is not None and (not isinstance(expires_in, (int, float)) or expires_in <= 0):
            raise BadRequest("expires_in must be a positive number of seconds", reason="bad expiry")
        note = body.get("note") or f"Requested via api by user {self.principal.name}"
        token, record = self.hub.store.add_token(
            name,
            kind="api",
            scopes=scopes,
            note=str(note),
            expires_at=now() + timedelta(seconds=float(expires_in)) if expires_in else None,
        )
        model = token_model(record)
        model["token"] = token
        self.write_json(model, status=201)


def token_model(record: Any) -> dict[str, Any]:
    return {
        "kind": "api_token",
        "id": record.api_id,
        "user": record.user,
        "roles": [],
        "scopes": list(record.scopes),
        "note": record.note,
        "created": stamp(record.created),
        "last_activity": _stamp(record.last_activity),
        "expires_at": _stamp(record.expires_at),
        "session_id": record.session_id,
        "oauth_client": record.client_id,
    }


class OAuthTokenHandler(HubAPIHandler):
    """``POST /hub/api/oauth2/token``: a user server trades a login's code for a token (form
    body; :meth:`~nbserver.hub.oauth.OAuthProvider.token`)."""

    access = Access.PUBLIC
    _stream_request_body = False

    def post(self) -> None:
        form = {k: v[-1].decode("utf-8", "replace") for k, v in self.request.body_arguments.items() if v}
        self.set_header("Cache-Control", "no-store")
        self.write_json(self.hub.oauth.token(form))

    def render_error(self, status: int, error: dict[str, str | None]) -> None:
        if "error" in error:  # RFC 6749 5.2, as is
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(json.dumps(error))
        else:
            super().render_error(status, error)


class APINotFoundHandler(HubAPIHandler):
    """Any other path under ``/hub/api/``: a JSON 404."""

    access = Access.PUBLIC

    async def prepare(self) -> None:
        await super().prepare()
        if not self.answered:
            self.answer_after_body(NotFound(f"No API at {self.request.path}", reason="not found"))


def routes(ctx: Any, hub: HubRuntime) -> list[Route]:
    kw = {"ctx": ctx, "hub": hub}
    return [
        Route("/hub/api", VersionHandler, kw),
        Route("/hub/api/", VersionHandler, kw),
        Route("/hub/api/user", SelfHandler, kw),
        Route("/hub/api/users", UsersHandler, kw),
        Route("/hub/api/users/{name}", UserHandler, kw),
        Route("/hub/api/users/{name}/server", ServerHandler, kw),
        Route("/hub/api/users/{name}/server/progress", ProgressHandler, kw),
        Route("/hub/api/users/{name}/activity", ActivityHandler, kw),
        Route("/hub/api/users/{name}/tokens", TokensHandler, kw),
        Route("/hub/api/oauth2/token", OAuthTokenHandler, kw),
    ]


def fallback_routes(ctx: Any, hub: HubRuntime) -> list[Route]:
    """Mounted after every other route (the pages' authorize handler is under ``/hub/api``)."""
    return [
        Route(
            "/hub/api/{path}", APINotFoundHandler, {"ctx": ctx, "hub": hub}, {"path": ".*"}, documented=False
        )
    ]
