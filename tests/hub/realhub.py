"""A real JupyterHub (pip) with configurable-http-proxy (npm) for the tests, and a browser-like
HTTP client that follows redirects by hand and keeps cookies per path, as a browser does.

The Hub runs in its own temporary directory (database, cookie secret, the users' homes and
runtime files) on free ports, with DummyAuthenticator and SimpleLocalProcessSpawner starting
``python -m nbserver --hub``. Everything it starts is found through ``/proc`` (process tree
under the Hub) so that a test can check that stopping left nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

from benchmarks.workloads_hub import jupyterhub_config, start_jupyterhub

ADMIN_TOKEN = "tester-admin-token-0123456789abcdef"
PASSWORD = "not-checked-by-the-dummy-authenticator"
USER_AGENT = "nbserver-tests-browser/1.0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    """Every process descended from ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent:
                found.append(child)
                frontier.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Hub:
    """A running JupyterHub; ``url`` is its public URL (the proxy), ``api`` its REST API."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    started: list[int] = field(default_factory=list)  # every pid seen under the Hub

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return self.url + "/hub/api/"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, body: Any = None, token: str = ADMIN_TOKEN) -> Any:
        """A synchronous Hub API call; the decoded JSON (None for an empty body)."""
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(
            self.api + path, data=data, method=method, headers={"Authorization": f"token {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def processes(self) -> list[int]:
        """The Hub's descendants now (the proxy, user servers, their kernels); remembered."""
        pids = children(self.process.pid)
        self.started.extend(p for p in pids if p not in self.started)
        return pids

    def servers(self) -> list[int]:
        return [p for p in self.processes() if "-m nbserver" in cmdline(p)]

    def wait_for(self, check: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            if self.process.poll() is not None:
                raise AssertionError(f"the Hub exited while waiting for {what}:\n{self.log()[-4000:]}")
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()[-4000:]}")

    def spawn(self, user: str, timeout: float = 60) -> dict[str, Any]:
        """Start ``user``'s server through the Hub's API; its model once ready."""
        try:
            self.request("POST", f"users/{user}/server")
        except urllib.error.HTTPError as exc:
            if exc.code != 400:  # 400: already running
                raise

        def ready() -> dict[str, Any] | None:
            server = self.request("GET", f"users/{user}")["servers"].get("")
            return server if server and server.get("ready") else None

        model: dict[str, Any] = self.wait_for(ready, timeout, f"{user}'s server to be ready")
        return model

    def stop_server(self, user: str, timeout: float = 60) -> None:
        try:
            self.request("DELETE", f"users/{user}/server")
        except urllib.error.HTTPError as exc:
            if exc.code != 400:
                raise
        self.wait_for(
            lambda: not self.request("GET", f"users/{user}")["servers"], timeout, f"{user}'s server to stop"
        )

    def stop(self) -> list[int]:
        """Stop the Hub (it stops the servers and the proxy), then kill whatever it left.
        Returns the pids that had to be killed."""
        self.processes()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        leftovers = [p for p in self.started if alive(p)]
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return leftovers


#: what the tests' JupyterHub adds to the shared configuration (benchmarks.workloads_hub)
_TEST_CONFIG = """
    c.Spawner.default_url = "/tree"
    c.Spawner.environment = {{
        "JUPYTERHUB_ACTIVITY_INTERVAL": "1",
        "JUPYTER_RUNTIME_DIR": {runtime!r},
        "JUPYTER_DATA_DIR": {data!r},
        "JUPYTER_CONFIG_DIR": {config!r},
    }}
    # the server's token may read its owner's groups: group scopes can then be checked
    c.Spawner.server_token_scopes = [
        "users:activity!user", "access:servers!server", "read:users:groups!user",
    ]
    # the Hub's own activity poll of the proxy would move last_activity too: not in this test
    c.JupyterHub.last_activity_interval = 3600
    c.JupyterHub.load_groups = {{"team": {{"users": ["alice", "carol"]}}}}
    c.JupyterHub.load_roles.append(
        {{"name": "team-access", "scopes": ["access:servers!group=team"], "groups": ["team"]}}
    )
"""


def config_text(directory: Path, port: int, chp: str) -> str:
    """JupyterHub spawning ``python -m nbserver --hub --debug`` for alice, bob and carol, with a
    group ``team`` (alice, carol) whose members may access each other's servers."""
    return jupyterhub_config(
        directory,
        port=port,
        chp=chp,
        users=["alice", "bob", "carol"],
        cmd=[sys.executable, "-m", "nbserver", "--hub"],
        args=["--debug"],
        timeout=60,
        service="tester",
        token=ADMIN_TOKEN,
        scopes=["admin:users", "admin:servers", "tokens", "read:users", "groups"],
        extra=_TEST_CONFIG.format(
            runtime=str(directory / "runtime"), data=str(directory / "data"), config=str(directory / "config")
        ),
    )


def start_hub(directory: Path, timeout: float = 60) -> Hub:
    """Start JupyterHub and its proxy in ``directory``; returns once its API answers."""
    chp = shutil.which("configurable-http-proxy")
    assert chp is not None
    port = free_port()
    (directory / "runtime").mkdir()
    process = start_jupyterhub(sys.executable, directory, config_text(directory, port, chp), dict(os.environ))
    hub = Hub(directory, port, process, directory / "hub.log")

    def answers() -> bool:
        try:
            with urllib.request.urlopen(hub.api, timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        hub.wait_for(answers, timeout, "the Hub's API")
    except BaseException:
        hub.stop()
        raise
    return hub


class Browser:
    """HTTP like a browser: cookies kept per (name, path) and sent by path prefix, redirects
    followed by hand, ``Sec-Fetch-Mode: navigate`` on page loads."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies: dict[tuple[str, str], str] = {}
        self.http = AsyncHTTPClient(force_instance=True)
        self.trail: list[tuple[int, str]] = []  # (status, url) of every response followed

    def close(self) -> None:
        self.http.close()

    def cookie_header(self, path: str) -> str:
        matching = sorted(
            (
                (name, p, v)
                for (name, p), v in self.cookies.items()
                if path.startswith(p.rstrip("/") + "/") or path == p
            ),
            key=lambda c: -len(c[1]),  # the most specific path first, as browsers send them
        )
        return "; ".join(f"{name}={value}" for name, _, value in matching)

    def store(self, response: HTTPResponse, url: str) -> None:
        default_path = urlsplit(url).path.rsplit("/", 1)[0] or "/"
        for header in response.headers.get_list("Set-Cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                key = (name, morsel["path"] or default_path)
                expires = parsedate_to_datetime(morsel["expires"]) if morsel["expires"] else None
                if morsel["max-age"] == "0" or (expires is not None and expires < datetime.now(timezone.utc)):
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = morsel.value

    async def fetch(
        self,
        url: str,
        method: str = "GET",
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        navigate: bool = True,
    ) -> HTTPResponse:
        url = urljoin(self.base, url)
        all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if navigate:
            all_headers.setdefault("Sec-Fetch-Mode", "navigate")
        cookie = self.cookie_header(urlsplit(url).path)
        if cookie:
            all_headers["Cookie"] = cookie
        request = HTTPRequest(
            url,
            method=method,
            headers=all_headers,
            body=body if body is not None or method not in ("POST", "PUT", "PATCH") else b"",
            follow_redirects=False,
            request_timeout=60,
        )
        response = await self.http.fetch(request, raise_error=False)
        if response.code == 599:
            raise response.error or ConnectionError(url)
        self.store(response, url)
        self.trail.append((response.code, url))
        return response

    async def follow(self, url: str, limit: int = 12, **kw: Any) -> HTTPResponse:
        """Fetch ``url`` and follow redirects (GET, as browsers do after 302)."""
        response = await self.fetch(url, **kw)
        for _ in range(limit):
            if response.code not in (301, 302, 303, 307, 308):
                return response
            url = urljoin(response.effective_url, response.headers["Location"])
            response = await self.fetch(url)
        raise AssertionError(f"too many redirects: {self.trail}")

    async def hub_login(self, user: str, next_url: str) -> HTTPResponse:
        """Open ``next_url``; when the Hub asks for a login, log in as ``user`` and follow on."""
        response = await self.follow(next_url)
        if "/hub/login" not in response.effective_url:
            return response
        match = re.search(rb'name="_xsrf" value="([^"]+)"', response.body)
        assert match, response.body[:500]
        form = urlencode({"username": user, "password": PASSWORD, "_xsrf": match.group(1).decode()})
        login = await self.fetch(
            response.effective_url,
            "POST",
            body=form.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": self.base},
        )
        assert login.code == 302, (login.code, login.body[:500])
        return await self.follow(urljoin(login.effective_url, login.headers["Location"]))
