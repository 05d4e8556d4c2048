"""A small stand-in for the JupyterHub API, in the test's own process: the parts a single-user
server calls (``/hub/api/``, ``/user``, ``/users/<name>``, ``/oauth2/token`` with PKCE,
``/users/<name>/activity``), with switches to make it fail. For what a real Hub cannot be made
to do on demand (go down, refuse activity, count requests); tests/hub/test_under_jupyterhub.py
runs the real one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
from dataclasses import dataclass, field
from typing import Any

import tornado.netutil
import tornado.web
from tornado.httpserver import HTTPServer

SERVER_TOKEN = "server-token-of-alice"
CLIENT_ID = "jupyterhub-user-alice"
VERSION = "6.1.1"


@dataclass
class FakeHub:
    """State of the fake Hub; tests change it between requests."""

    #: token -> the model /hub/api/user returns for it; the server's own token is alice's, with
    #: the scopes a real Hub gives it (access to her server among them)
    tokens: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            SERVER_TOKEN: {
                "name": "alice",
                "kind": "user",
                "scopes": ["users:activity!user=alice", "access:servers!server=alice/"],
            }
        }
    )
    #: user -> groups, for /users/<name> (None: the server's token may not read them)
    groups: dict[str, list[str] | None] = field(default_factory=dict)
    #: code -> (token it becomes, PKCE challenge, redirect_uri)
    codes: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: statuses the activity endpoint answers, in turn (then 200)
    activity_statuses: list[int] = field(default_factory=list)
    activity: list[dict[str, Any]] = field(default_factory=list)
    version: str = VERSION
    calls: list[str] = field(default_factory=list)
    port: int = 0
    http: HTTPServer | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub/api"  # (https://localhost:... when started with TLS)

    def user(self, name: str, *scopes: str, **user_info: str) -> str:
        """A new token of ``name`` holding ``scopes``; returns it."""
        token = secrets.token_hex(8)
        self.tokens[token] = {"name": name, "kind": "user", "scopes": list(scopes), "user_info": user_info}
        return token

    def issue_code(self, token: str, challenge: str, redirect_uri: str) -> str:
        """What the Hub's authorize endpoint does once the user is logged in."""
        code = secrets.token_hex(8)
        self.codes[code] = (token, challenge, redirect_uri)
        return code

    def count(self, call: str) -> int:
        return sum(1 for c in self.calls if c == call)

    def start(self, ssl_options: ssl.SSLContext | None = None) -> None:
        app = tornado.web.Application(
            [
                (r"/hub/api/", Root, {"hub": self}),
                (r"/hub/api/user", WhoAmI, {"hub": self}),
                (r"/hub/api/users/([^/]+)", UserModel, {"hub": self}),
                (r"/hub/api/users/([^/]+)/activity", Activity, {"hub": self}),
                (r"/hub/api/oauth2/token", Token, {"hub": self}),
            ]
        )
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self.http = HTTPServer(app, ssl_options=ssl_options)
        self.http.add_sockets(sockets)

    async def stop(self) -> None:
        if self.http is not None:
            self.http.stop()
            await self.http.close_all_connections()
            self.http = None


class Base(tornado.web.RequestHandler):
    def initialize(self, hub: FakeHub) -> None:
        self.hub = hub
        self.set_header("X-JupyterHub-Version", hub.version)

    def bearer(self) -> str:
        return self.request.headers.get("Authorization", "").partition(" ")[2]

    def json(self, model: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(model))

    def check_xsrf_cookie(self) -> None:
        pass


class Root(Base):
    def get(self) -> None:
        self.hub.calls.append("root")
        self.json({"version": self.hub.version})


class WhoAmI(Base):
    def get(self) -> None:
        self.hub.calls.append("user")
        model = self.hub.tokens.get(self.bearer())
        if model is None:
            self.json({"status": 403, "message": "Forbidden"}, 403)
        else:
            self.json({**model, "groups": [], "session_id": None})


class UserModel(Base):
    def get(self, name: str) -> None:
        self.hub.calls.append("users/" + name)
        if self.bearer() != SERVER_TOKEN or self.hub.groups.get(name) is None:
            self.json({"name": name})  # the model without the fields this token may not read
        else:
            self.json({"name": name, "groups": self.hub.groups[name]})


class Activity(Base):
    def post(self, name: str) -> None:
        self.hub.calls.append("activity")
        if self.bearer() != SERVER_TOKEN:
            self.json({"status": 403}, 403)
            return
        if self.hub.activity_statuses:
            self.json({}, self.hub.activity_statuses.pop(0))
            return
        self.hub.activity.append(json.loads(self.request.body))
        self.json({})


class Token(Base):
    def post(self) -> None:
        self.hub.calls.append("token")
        form = {
            k: self.get_body_argument(k, "")
            for k in ("client_id", "client_secret", "grant_type", "code", "redirect_uri", "code_verifier")
        }
        grant = self.hub.codes.pop(form["code"], None)
        digest = hashlib.sha256(form["code_verifier"].encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        if (
            grant is None
            or form["client_id"] != CLIENT_ID
            or form["client_secret"] != SERVER_TOKEN
            or form["grant_type"] != "authorization_code"
            or grant[1] != challenge
            or grant[2] != form["redirect_uri"]
        ):
            self.json({"error": "invalid_grant", "error_description": "Invalid code"}, 400)
            return
        self.json({"access_token": grant[0], "token_type": "Bearer"})
