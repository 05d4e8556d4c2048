"""The ``hub20`` workload: a team's hub under a burst of logins, nbserver's against JupyterHub's.

Each target's multi-user stack runs in a temporary directory, as people run it:

* ``nbserver``: ``python -m nbserver hub`` (one process: hub, proxy, API) spawning
  ``python -m nbserver --hub`` user servers (``--spawner users-dir``), users added with
  ``hub adduser``.
* ``jupyter_server``: JupyterHub (``python -m jupyterhub``, the installed 6.x) with
  configurable-http-proxy (npm) and ``SimpleLocalProcessSpawner`` spawning
  ``jupyterhub-singleuser`` (jupyter_server), ``DummyAuthenticator`` (it checks no password,
  where nbserver's hub verifies an argon2 hash per login).
* other targets: not applicable.

Then, all timed from one start:

1. ``N`` users (``cfg.hub_users``: 20, quick 3) at once each log in through the login form
   (GET ``/hub/login``, POST it with the ``_xsrf`` it set) and have their server started
   (``POST /hub/api/users/<u>/server`` with an admin token, polled until ``ready``):
   ``hubN_ready_s`` is the time until the last server is ready.
2. Each user, with a token of their own, starts a kernel through the proxy
   (``POST /user/<u>/api/kernels``), opens its websocket through the proxy and runs
   ``print(6*7)``: ``hubN_kernels_s`` is the time from (1)'s end until the last ``42``.
   ``hubN_lost_errors`` counts users whose server or kernel never got there.
3. Memory with the ``N`` users' servers and kernels up: ``hubN_hub_mb`` is the hub plus its
   proxy (nbserver: one process; JupyterHub: the hub and the node proxy), ``hubN_total_mb``
   everything (servers and kernels too). ``hub_idle_mb`` is the hub (plus proxy) before (1).
4. The proxy's cost per websocket round trip: on user 0's kernel, ``kernel_info_request`` round
   trips alternate in blocks between a websocket through the hub's proxy and one straight to the
   user server's port (read from the server's ``JUPYTERHUB_SERVICE_URL``). Each is timed to the
   first frame that answers (the kernel's ``status: busy``) and to the shell reply:
   ``hub_ws_{first,reply}_{proxy,direct}_median_ms`` and ``hub_ws_{first,reply}_added_ms``
   (proxy median - direct median). JupyterHub's user server does not set ``TCP_NODELAY``, so its
   replies can wait out Nagle's algorithm (~40 ms); the first-frame figure shows the proxy alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.websocket import websocket_connect

from .framing import V1_PROTOCOL
from .kernelclient import KernelSocket
from .targets import TargetSpec, _descendants, _rss_mb, free_port, target_env
from .workloads import Measurements, NotApplicable, RunConfig, register_local

__all__ = ["jupyterhub_config", "start_jupyterhub"]

ADMIN_TOKEN = "bench-hub-admin-token-0123456789abcdef"
PASSWORD = "bench-hub-password-1"
START_TIMEOUT_S = 120.0
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def _names(n: int) -> list[str]:
    return [
        "hub_idle_mb",
        f"hub{n}_ready_s",
        f"hub{n}_kernels_s",
        f"hub{n}_hub_mb",
        f"hub{n}_total_mb",
        f"hub{n}_lost_errors",
        *(f"hub_ws_{kind}_{where}_ms" for kind in ("first", "reply") for where in ("proxy", "direct")),
        "hub_ws_first_added_ms",
        "hub_ws_reply_added_ms",
    ]


@dataclass
class Stack:
    """A running hub (and proxy): its public port, the hub's process, and an admin token."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    proxy_cmd: str  # a command-line fragment naming the proxy process among the descendants
    admin: str  # a token that may start and stop everyone's server and make tokens
    started: set[int] = field(default_factory=set)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hub_mb(self) -> float:
        """The hub's RSS plus its proxy's (a descendant whose command line names it)."""
        total = _rss_mb(self.proc.pid) or 0.0
        if self.proxy_cmd:
            total += sum(_rss_mb(p) or 0.0 for p in _descendants(self.proc.pid) if self.proxy_cmd in _cmd(p))
        return total

    def total_mb(self) -> float:
        return (_rss_mb(self.proc.pid) or 0.0) + sum(_rss_mb(p) or 0.0 for p in _descendants(self.proc.pid))

    def remember(self) -> None:
        self.started.update(_descendants(self.proc.pid))


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {k: v for k, _, v in pairs}


def _wait_api(stack: Stack, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if stack.proc.poll() is not None:
            raise RuntimeError(f"the hub exited with {stack.proc.returncode}: {_tail(stack.log)}")
        try:
            with urllib.request.urlopen(stack.base + "/hub/api/", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the hub did not answer in {timeout:g} s: {_tail(stack.log)}")
        time.sleep(0.1)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def _start_nbserver_hub(spec: TargetSpec, tmp: Path, users: list[str]) -> Stack:
    env = target_env(spec, tmp, extra_path=(_PACKAGE_ROOT,))
    db = str(tmp / "hub.sqlite")

    def cli(*args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [spec.python, "-m", "nbserver", "hub", *args, "--db", db],
            input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"hub {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout.strip()

    cli("adduser", "benchadmin", "--admin", stdin=PASSWORD + "\n")
    for user in users:
        cli("adduser", user, stdin=PASSWORD + "\n")
    admin = cli("token", "benchadmin", "--note", "bench")
    port = free_port()
    log = tmp / "hub.log"
    argv = [
        spec.python, "-m", "nbserver", "hub", "--port", str(port), "--db", db,
        "--users-dir", str(tmp / "users"), "--spawner", "users-dir", "--log-level", "WARNING",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    stack = Stack(port, proc, log, proxy_cmd="", admin=admin)
    _wait_api(stack)
    return stack


def jupyterhub_config(
    directory: Path,
    *,
    port: int,
    chp: str,
    users: list[str],
    cmd: list[str],
    args: list[str],
    timeout: float,
    service: str,
    token: str,
    scopes: list[str],
    extra: str = "",
) -> str:
    """A ``jupyterhub_config.py`` for a JupyterHub on ``127.0.0.1:port`` with its
    configurable-http-proxy (``chp``), its database and secrets in ``directory``,
    ``DummyAuthenticator`` letting ``users`` in, ``SimpleLocalProcessSpawner`` running ``cmd`` +
    ``args`` in ``directory/home/<user>``, and a service ``service`` with API token ``token``
    holding ``scopes``. ``extra`` (Python, ``c`` in scope) is appended. Shared with the tests'
    real JupyterHub (``tests/hub/realhub.py``)."""
    text = f"""
        c = get_config()  # noqa
        c.JupyterHub.ip = "127.0.0.1"
        c.JupyterHub.port = {port}
        c.JupyterHub.hub_ip = "127.0.0.1"
        c.JupyterHub.hub_port = {free_port()}
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
        c.ConfigurableHTTPProxy.command = [{chp!r}]
        c.ConfigurableHTTPProxy.pid_file = {str(directory / "proxy.pid")!r}
        c.JupyterHub.db_url = "sqlite:///{directory / "jupyterhub.sqlite"}"
        c.JupyterHub.cookie_secret_file = {str(directory / "cookie_secret")!r}
        c.JupyterHub.authenticator_class = "dummy"
        c.Authenticator.allowed_users = {set(users)!r}
        c.JupyterHub.spawner_class = "simple"
        c.SimpleLocalProcessSpawner.home_dir_template = {str(directory / "home")!r} + "/{{username}}"
        c.Spawner.cmd = {cmd!r}
        c.Spawner.args = {args!r}
        c.Spawner.http_timeout = {timeout}
        c.Spawner.start_timeout = {timeout}
        c.JupyterHub.services = [{{"name": {service!r}, "api_token": {token!r}}}]
        c.JupyterHub.load_roles = [{{"name": {service!r}, "scopes": {scopes!r}, "services": [{service!r}]}}]
        """
    return textwrap.dedent(text) + textwrap.dedent(extra)


def start_jupyterhub(
    python: str, directory: Path, config: str, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """Write ``config`` to ``directory/jupyterhub_config.py`` and start ``python -m jupyterhub``
    there (output in ``directory/hub.log``); the caller waits for its API."""
    (directory / "home").mkdir(exist_ok=True)
    path = directory / "jupyterhub_config.py"
    path.write_text(config)
    clean = {k: v for k, v in env.items() if not k.startswith("JUPYTERHUB_")}
    with (directory / "hub.log").open("wb") as out:
        return subprocess.Popen(
            [python, "-m", "jupyterhub", "-f", str(path)],
            stdout=out, stderr=subprocess.STDOUT, env=clean, cwd=directory,
        )  # fmt: skip


def _start_jupyterhub(spec: TargetSpec, tmp: Path, users: list[str]) -> Stack:
    chp = shutil.which("configurable-http-proxy")
    if chp is None:
        raise RuntimeError("configurable-http-proxy is not on PATH (npm install -g configurable-http-proxy)")
    port = free_port()
    singleuser = shutil.which("jupyterhub-singleuser") or "jupyterhub-singleuser"
    config = jupyterhub_config(
        tmp, port=port, chp=chp, users=users, cmd=[singleuser],
        args=["--allow-root"] if os.geteuid() == 0 else [], timeout=START_TIMEOUT_S,
        service="bench", token=ADMIN_TOKEN,
        scopes=["admin:users", "admin:servers", "tokens", "access:servers"],
        extra="""
            c.JupyterHub.log_level = "WARN"
            c.JupyterHub.concurrent_spawn_limit = 1000
            """,
    )  # fmt: skip
    proc = start_jupyterhub(spec.python, tmp, config, target_env(spec, tmp))
    stack = Stack(port, proc, tmp / "hub.log", proxy_cmd="configurable-http-proxy", admin=ADMIN_TOKEN)
    _wait_api(stack)
    return stack


def _stop(stack: Stack, users: list[str]) -> None:
    """Stop every user server (nbserver's hub leaves them running on purpose), the hub, and
    then kill whatever is left of what it started."""
    stack.remember()
    for user in users:
        request = urllib.request.Request(
            f"{stack.base}/hub/api/users/{user}/server",
            method="DELETE",
            headers={"Authorization": f"token {stack.admin}"},
        )
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=30).close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
        "JUPYTERHUB_USER" in _environ(p) for p in _descendants(stack.proc.pid)
    ):
        time.sleep(0.2)
    stack.remember()
    if stack.proc.poll() is None:
        stack.proc.send_signal(signal.SIGTERM)
        try:
            stack.proc.wait(30)
        except subprocess.TimeoutExpired:
            stack.proc.kill()
            stack.proc.wait(10)
    for pid in stack.started:
        if _rss_mb(pid) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class Session:
    """One user's HTTP client with its cookies (as a browser keeps them, by name only)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.http = AsyncHTTPClient(force_instance=True)
        self.cookies: dict[str, str] = {}

    async def fetch(self, method: str, path: str, **kwargs: Any) -> HTTPResponse:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = await self.http.fetch(
            HTTPRequest(
                self.stack.base + path, method=method, headers=headers, follow_redirects=False,
                request_timeout=START_TIMEOUT_S, **kwargs,
            ),
            raise_error=False,
        )  # fmt: skip
        if response.code == 599:
            raise ConnectionError(f"{method} {path}: {response.error}")
        for header in response.headers.get_list("Set-Cookie"):
            name, _, value = header.split(";", 1)[0].strip().partition("=")
            self.cookies[name] = value
        return response

    async def login(self, user: str) -> None:
        page = await self.fetch("GET", "/hub/login")
        match = re.search(rb'name="_xsrf" value="([^"]+)"', page.body or b"")
        if page.code != 200 or match is None:
            raise RuntimeError(f"GET /hub/login: {page.code}, no _xsrf field")
        form = {"username": user, "password": PASSWORD, "_xsrf": match.group(1).decode()}
        posted = await self.fetch(
            "POST", "/hub/login", body=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        if posted.code != 302:
            raise RuntimeError(f"{user}'s login: HTTP {posted.code}")

    async def api(self, method: str, path: str, token: str, body: Any = None) -> Any:
        data = None if body is None and method != "POST" else json.dumps(body or {})
        response = await self.fetch(method, path, body=data, headers={"Authorization": f"token {token}"})
        if response.code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {response.code} {response.body[:200]!r}")
        return json.loads(response.body) if response.body else None

    def close(self) -> None:
        self.http.close()


async def _user_ready(stack: Stack, user: str) -> Session:
    """Log ``user`` in, start their server, wait until the hub calls it ready."""
    admin = stack.admin
    session = Session(stack)
    await session.login(user)
    response = await session.fetch(
        "POST", f"/hub/api/users/{user}/server", body="{}", headers={"Authorization": f"token {admin}"}
    )
    if response.code not in (201, 202, 400):
        raise RuntimeError(f"starting {user}'s server: HTTP {response.code}")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        model = await session.api("GET", f"/hub/api/users/{user}", admin)
        if model["servers"].get("", {}).get("ready"):
            return session
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{user}'s server was not ready within {START_TIMEOUT_S:g} s")


async def _socket(url: str, token: str) -> KernelSocket:
    request = HTTPRequest(url, headers={"Authorization": f"token {token}"}, request_timeout=60)
    conn = await websocket_connect(request, subprotocols=[V1_PROTOCOL], max_message_size=64 << 20)
    stream = conn.protocol.stream if conn.protocol is not None else None
    if stream is not None:
        stream.set_nodelay(True)
    return KernelSocket(conn, uuid.uuid4().hex)


async def _run_a_cell(stack: Stack, session: Session, user: str) -> tuple[str, str]:
    """A token of ``user``'s own, a kernel through the proxy, ``print(6*7)`` on its websocket;
    (token, kernel id)."""
    admin = stack.admin
    token = (await session.api("POST", f"/hub/api/users/{user}/tokens", admin, {"note": "bench"}))["token"]
    kernel = await session.api("POST", f"/user/{user}/api/kernels", token, {"name": "python3"})
    ws = await _socket(f"ws://127.0.0.1:{stack.port}/user/{user}/api/kernels/{kernel['id']}/channels", token)
    try:
        status = await ws.execute("print(6*7)", timeout=START_TIMEOUT_S)
    finally:
        ws.close()
    if status != "ok":
        raise RuntimeError(f"{user}'s cell: {status}")
    return token, str(kernel["id"])


async def _round_trips(ws: KernelSocket, count: int) -> tuple[list[float], list[float]]:
    """``count`` kernel_info round trips: ms to the first frame answering, ms to the reply."""
    first, reply = [], []
    for _ in range(count):
        t0 = time.perf_counter()
        msg_id = await ws.send("shell", "kernel_info_request", {})
        t_first = None
        while True:
            msg = await ws.recv(60)
            if msg.parent_id != msg_id:
                continue
            if t_first is None:
                t_first = time.perf_counter()
            if msg.channel == "shell":
                break
        reply.append((time.perf_counter() - t0) * 1000)
        first.append((t_first - t0) * 1000)
    return first, reply


def _server_port(stack: Stack, user: str) -> int:
    for pid in _descendants(stack.proc.pid):
        env = _environ(pid)
        if env.get("JUPYTERHUB_USER") == user and "JUPYTERHUB_SERVICE_URL" in env:
            match = re.match(r"https?://[^/]+:(\d+)/", env["JUPYTERHUB_SERVICE_URL"])
            if match:
                return int(match.group(1))
    raise RuntimeError(f"no process of {user}'s server with a JUPYTERHUB_SERVICE_URL")


async def _measure(stack: Stack, users: list[str], cfg: RunConfig) -> Measurements:
    n = len(users)
    out: Measurements = {"hub_idle_mb": stack.hub_mb()}
    t0 = time.perf_counter()
    ready = await asyncio.gather(*(_user_ready(stack, u) for u in users), return_exceptions=True)
    t_ready = time.perf_counter()
    sessions = {u: s for u, s in zip(users, ready, strict=True) if isinstance(s, Session)}
    ran = await asyncio.gather(
        *(_run_a_cell(stack, s, u) for u, s in sessions.items()), return_exceptions=True
    )
    t_ran = time.perf_counter()
    lost = [str(r) for r in (*ready, *ran) if isinstance(r, BaseException)]
    out[f"hub{n}_ready_s"] = t_ready - t0
    out[f"hub{n}_kernels_s"] = t_ran - t_ready
    out[f"hub{n}_lost_errors"] = float(len(lost))
    if lost:
        print(f"hub{n} on {stack.base}: {len(lost)} lost: {lost[:3]}", file=sys.stderr)
    out[f"hub{n}_hub_mb"] = stack.hub_mb()
    out[f"hub{n}_total_mb"] = stack.total_mb()
    good = [(u, r) for u, r in zip(sessions, ran, strict=True) if isinstance(r, tuple)]
    if not good:
        raise RuntimeError(f"no user got a kernel: {lost[:3]}")
    user, (token, kernel) = good[0]
    path = f"/user/{user}/api/kernels/{kernel}/channels"
    proxied = await _socket(f"ws://127.0.0.1:{stack.port}{path}", token)
    direct = await _socket(f"ws://127.0.0.1:{_server_port(stack, user)}{path}", token)
    samples: dict[str, list[float]] = {}
    try:
        for ws in (proxied, direct):
            await _round_trips(ws, cfg.ws_rtt_warmup)
        block = 25
        for _ in range(max(1, cfg.ws_rtt_requests // block)):
            for where, ws in (("proxy", proxied), ("direct", direct)):
                first, reply = await _round_trips(ws, block)
                samples.setdefault(f"first_{where}", []).extend(first)
                samples.setdefault(f"reply_{where}", []).extend(reply)
    finally:
        proxied.close()
        direct.close()
    for kind in ("first", "reply"):
        proxy = statistics.median(samples[f"{kind}_proxy"])
        straight = statistics.median(samples[f"{kind}_direct"])
        out[f"hub_ws_{kind}_proxy_ms"] = proxy
        out[f"hub_ws_{kind}_direct_ms"] = straight
        out[f"hub_ws_{kind}_added_ms"] = proxy - straight
    for session in sessions.values():
        session.close()
    return out


@register_local(
    "hub20",
    "N users (20; quick 3) log in, spawn and run a cell at once through a hub (nbserver's hub vs "
    "JupyterHub + configurable-http-proxy): time, memory, proxy cost per websocket round trip",
)
def hub20(spec: TargetSpec, cfg: RunConfig) -> Measurements:
    n = cfg.hub_users
    if spec.name == "nbserver":
        start = _start_nbserver_hub
    elif spec.name == "jupyter_server":
        if not spec.in_process or shutil.which("configurable-http-proxy") is None:
            return dict.fromkeys(_names(n), NotApplicable("needs jupyterhub and configurable-http-proxy"))
        try:
            import jupyterhub  # noqa: F401
        except ImportError:
            return dict.fromkeys(_names(n), NotApplicable("jupyterhub is not installed"))
        start = _start_jupyterhub
    else:
        return dict.fromkeys(_names(n), NotApplicable(f"no multi-user stack for {spec.name}"))
    users = [f"benchuser{i}" for i in range(n)]
    with tempfile.TemporaryDirectory(prefix=f"nbbench-hub-{spec.name}-") as tmp:
        stack = start(spec, Path(tmp), users)
        try:
            return asyncio.run(_measure(stack, users, cfg))
        except BaseException as exc:
            raise RuntimeError(f"{exc} | hub log: {_tail(stack.log, 3)}") from exc
        finally:
            _stop(stack, users)
