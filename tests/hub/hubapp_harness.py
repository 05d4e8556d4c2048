"""Helpers for the hub's tests (``test_hubapp_*.py``): an in-process hub on a free port whose user
servers are real ``python -m nbserver --hub`` processes, an HTTP client that holds every
``/hub/api`` answer against ``hub-api.yaml``, and a login helper."""

from __future__ import annotations

import json as jsonlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import tornado.ioloop
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

from nbserver.auth.passwords import hash_password
from nbserver.hub.app import HubServer
from nbserver.hub.settings import HubSettings
from tests.hub import hubopenapi
from tests.hub.realhub import Browser

PASSWORDS = {
    "alice": "alice-password-1",
    "bob": "bob-password-2",
    "bobby": "bobby-password-3",
    "root1": "admin-pass-4",
}
_HASHES: dict[str, str] = {}


def settings(tmp_path: Path, **overrides: Any) -> HubSettings:
    env = tuple((k, os.environ[k]) for k in ("JUPYTER_DATA_DIR",) if k in os.environ)
    values: dict[str, Any] = {
        "port": 0,
        "db": str(tmp_path / "hub.sqlite"),
        "users_dir": tmp_path / "users",
        "spawner": "users-dir",
        "extra_env": env,
        "activity_interval": 1.0,
    }
    values.update(overrides)
    return HubSettings(**values)


def add_users(hub: HubServer, *names: str, admin: tuple[str, ...] = ()) -> None:
    for name in names:
        if name not in _HASHES:
            _HASHES[name] = hash_password(PASSWORDS[name])
        hub.hub.store.add_user(name, admin=name in admin, password_hash=_HASHES[name])


#: the users every test hub has (``root1`` is an admin)
USERS = ("alice", "bob", "bobby", "root1")


def serve(io_loop: tornado.ioloop.IOLoop, tmp_path: Path, **overrides: Any) -> Iterator[HubServer]:
    """A fixture's body: an in-process hub (``settings(tmp_path, **overrides)``) with
    :data:`USERS`; afterwards every user's server is stopped and the hub with them."""
    server = HubServer(settings(tmp_path, **overrides))
    io_loop.run_sync(server.start)
    add_users(server, *USERS, admin=("root1",))
    yield server

    async def stop() -> None:
        for user in USERS:
            s = await server.hub.servers.stop(user)
            if s is not None:
                await s.stopped.wait()
        await server.stop()

    io_loop.run_sync(stop, timeout=60)


def token_for(hub: HubServer, name: str) -> str:
    from nbserver.hub.scopes import user_scopes

    user = hub.hub.store.require_user(name)
    token, _ = hub.hub.store.add_token(name, kind="api", scopes=user_scopes(name, user.admin), note="test")
    return token


class Response:
    def __init__(self, raw: HTTPResponse) -> None:
        self.status = raw.code
        self.headers = raw.headers
        self.body = raw.body or b""

    @property
    def json(self) -> Any:
        return jsonlib.loads(self.body)


class HubClient:
    """HTTP to the hub; ``/hub/api`` answers are validated against hub-api.yaml."""

    def __init__(self, hub: HubServer) -> None:
        self.hub = hub
        self.http = AsyncHTTPClient(force_instance=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.hub.port}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        validate: bool = True,
    ) -> Response:
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"token {token}"
        if json is not None:
            body = jsonlib.dumps(json).encode()
            headers.setdefault("Content-Type", "application/json")
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        raw = await self.http.fetch(
            HTTPRequest(
                self.base + path,
                method=method,
                headers=headers,
                body=body,
                follow_redirects=False,
                allow_nonstandard_methods=True,
                request_timeout=120,
            ),
            raise_error=False,
        )
        if raw.code == 599:
            raise raw.error or ConnectionError(path)
        response = Response(raw)
        url_path = urlsplit(path).path
        if (
            validate
            and url_path.startswith("/hub/api")
            and not url_path.startswith("/hub/api/oauth2/authorize")
        ):
            try:
                hubopenapi.find_operation(method, url_path)
            except AssertionError:
                assert response.status == 404, f"{method} {url_path}: {response.status} not in hub-api.yaml"
                assert set(response.json) >= {"status", "message"}
            else:
                hubopenapi.validate_response(
                    method, url_path, response.status, raw.headers.get("Content-Type"), response.body
                )
        return response

    def close(self) -> None:
        self.http.close()


async def login(browser: Browser, name: str, next_url: str, password: str | None = None) -> HTTPResponse:
    """Open ``next_url``; on the hub's login form, log in as ``name``; follow on."""
    response = await browser.follow(next_url)
    assert "/hub/login" in response.effective_url, (response.code, response.effective_url)
    match = re.search(rb'name="_xsrf" value="([^"]+)"', response.body)
    assert match, response.body[:500]
    form = urlencode(
        {"username": name, "password": password or PASSWORDS[name], "_xsrf": match.group(1).decode()}
    )
    posted = await browser.fetch(
        response.effective_url,
        "POST",
        body=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert posted.code == 302, (posted.code, posted.body[:500])
    return await browser.follow(urljoin(posted.effective_url, posted.headers["Location"]))
