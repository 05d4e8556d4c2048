"""End-to-end tests of ``python -m nbserver``: the real command in a subprocess, over real HTTP.

Every subprocess gets HOME, JUPYTER_RUNTIME_DIR and JUPYTER_CONFIG_DIR inside ``tmp_path`` (and no
inherited NBSERVER_* variables), so nothing touches the real user's directories. Servers are always
killed in teardown; readiness is polled on the public ``GET /api``.
"""

from __future__ import annotations

import asyncio
import getpass
import http.client
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from nbserver import cli
from nbserver._version import __version__
from nbserver.auth.passwords import verify_password

READY_TIMEOUT = 60.0  # start-up on a loaded machine (several test runs at once)
EXIT_TIMEOUT = 5.0


# -- helpers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBSERVER_", "JUPYTER"))}
    env.update(
        HOME=str(tmp_path / "home"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter_config"),
        PYTHONUNBUFFERED="1",
    )
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    env.update(extra)
    return env


def run_cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m nbserver ARGS`` to completion (for commands that exit by themselves)."""
    return subprocess.run(
        [sys.executable, "-m", "nbserver", *args],
        env=env or make_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET ``url``: (status, body); HTTP errors are returned, not raised; redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


class ServerProcess:
    """A ``python -m nbserver`` subprocess with its stderr (the log) captured in a file.

    Args:
        tmp_path: the test's directory; runtime dir, config dir, HOME and the log live under it.
        args: command-line arguments (``--no-browser`` and ``--runtime-dir`` are added).
        env: extra environment variables.
    """

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None):
        self.tmp_path = tmp_path
        self.runtime_dir = tmp_path / "runtime"
        self.args = [*args, "--no-browser", "--runtime-dir", str(self.runtime_dir)]
        self.env = make_env(tmp_path, **(env or {}))
        self.log_path = tmp_path / f"server-{id(self)}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.base_url = "/"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def info_file(self) -> Path:
        return self.runtime_dir / f"nbserver-{self.pid}.json"

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{self.base_url}{path}"

    def start(self) -> ServerProcess:
        with self.log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nbserver", *self.args],
                env=self.env,
                cwd=self.tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> ServerProcess:
        """Poll ``GET /api`` (public) on the port announced in the log until it answers 200."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode} before ready:\n{self.log}")
            if self.port is None:
                match = re.search(r"Open http://[^:/]+:(\d+)(/\S*?)(?:\?token=\S*)?$", self.log, re.M)
                if match:
                    self.port, self.base_url = int(match[1]), match[2]
            if self.port is not None:
                try:
                    status, body = http_get(self.url("api"))
                except OSError:
                    pass
                else:
                    if status == 200 and json.loads(body) == {"version": __version__}:
                        return self
            time.sleep(0.05)
        pytest.fail(f"server not ready within {timeout} s:\n{self.log}")

    def wait_for_log(self, text: str, timeout: float = 5.0) -> str:
        """The log once it contains ``text`` (access lines are written after the response)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log
            if text in log:
                return log
            time.sleep(0.05)
        pytest.fail(f"{text!r} not in the log within {timeout} s:\n{self.log}")

    def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Kill the process if it still runs (teardown: never leave an orphan)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    """``start(*args, env=...)``: a started, ready :class:`ServerProcess`, killed at teardown."""
    servers: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        server = ServerProcess(tmp_path, *args, env=env)
        servers.append(server)
        return server.start().wait_ready()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def status(server: ServerProcess, token: str | None = None, path: str = "api/status") -> int:
    headers = {"Authorization": f"token {token}"} if token else {}
    return http_get(server.url(path), headers)[0]


# -- 1. help and version ----------------------------------------------------------------------


def test_help_lists_every_option(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    for option in (
        "--ip",
        "--port",
        "--root-dir",
        "--base-url",
        "--token",
        "--no-token",
        "--password",
        "--no-browser",
        "--allow-origin",
        "--config",
        "--log-level",
        "--version",
        "--runtime-dir",
        "--no-terminals",
        "--terminal-shell",
    ):
        assert re.search(rf"(?<![\w-]){option}(?![\w-])", result.stdout), option
    assert "(shlex)" in result.stdout  # how --terminal-shell splits its command line


def test_version(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"nbserver {__version__}"


# -- 2. token and start-up URL ----------------------------------------------------------------


def test_token_url_and_auth(tmp_path: Path, server_factory: Any) -> None:
    root = tmp_path / "root"
    root.mkdir()
    port = free_port()
    server = server_factory("--port", str(port), "--token", "T0ken", "--root-dir", str(root))
    assert server.port == port
    assert f"http://127.0.0.1:{port}/?token=T0ken" in server.log
    assert str(root.resolve()) in server.log
    assert status(server, "T0ken") == 200
    assert status(server) == 403
    assert status(server, "wrong") == 403
    assert http_get(server.url("api/status?token=T0ken"))[0] == 200
    assert "AUTHENTICATION IS DISABLED" not in server.log


# -- 3. port in use -----------------------------------------------------------------------------


def test_port_in_use_moves_on(tmp_path: Path, server_factory: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = server_factory("--port", str(port), "--token", "t")
        assert server.port is not None and port < server.port <= port + 50
        assert f"Port {port} is in use; using port {server.port} instead" in server.log
        assert status(server, "t") == 200


# -- 4. runtime info file, list, stop -----------------------------------------------------------


def test_info_file_list_and_stop(tmp_path: Path, server_factory: Any) -> None:
    port = free_port()
    server = server_factory("--port", str(port), "--token", "secret-token", "--root-dir", str(tmp_path))
    runtime_dir = str(server.runtime_dir)

    assert stat.S_IMODE(server.info_file.stat().st_mode) == 0o600
    info = json.loads(server.info_file.read_text())
    assert info["url"] == f"http://127.0.0.1:{port}/"
    assert info["port"] == port
    assert info["token"] == "secret-token"
    assert info["root_dir"] == str(tmp_path.resolve())
    assert info["pid"] == server.pid
    assert info["version"] == __version__

    listed = run_cli(tmp_path, "list", "--runtime-dir", runtime_dir)
    assert listed.returncode == 0, listed.stderr
    assert f"http://127.0.0.1:{port}/?token=secret-token" in listed.stdout

    as_json = run_cli(tmp_path, "list", "--json", "--runtime-dir", runtime_dir)
    assert as_json.returncode == 0, as_json.stderr
    lines = as_json.stdout.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == info

    # `stop` polls until the pid is gone; the server is our child, so reap it while stop waits
    # (an unreaped zombie would still look alive to stop's kill(pid, 0)).
    with subprocess.Popen(
        [sys.executable, "-m", "nbserver", "stop", str(port), "--runtime-dir", runtime_dir],
        env=make_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as stopper:
        try:
            assert server.wait_exit() == 0
            out, err = stopper.communicate(timeout=15)
        finally:
            stopper.kill()
    assert stopper.returncode == 0, err
    assert f"Stopped the server on port {port}" in out
    assert not server.info_file.exists()
    assert "Received SIGTERM" in server.log


def test_stop_without_server(tmp_path: Path) -> None:
    port = free_port()
    result = run_cli(tmp_path, "stop", str(port), "--runtime-dir", str(tmp_path / "runtime"))
    assert result.returncode == 1
    assert f"No nbserver is running on port {port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_list_prunes_stale_info_file(tmp_path: Path) -> None:
    runtime_dir = tmp_path / "runtime"
    runtime_dir.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: this pid is gone
    stale = runtime_dir / f"nbserver-{dead.pid}.json"
    stale.write_text(
        json.dumps(
            {
                "url": "http://127.0.0.1:1/",
                "port": 1,
                "token": "x",
                "root_dir": "/",
                "pid": dead.pid,
            }
        )
    )
    result = run_cli(tmp_path, "list", "--runtime-dir", str(runtime_dir))
    assert result.returncode == 0
    assert "No running servers." in result.stdout
    assert not stale.exists()


# -- 5. graceful shutdown -----------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_shuts_down_cleanly(server_factory: Any, signum: signal.Signals) -> None:
    server = server_factory("--port", str(free_port()), "--token", "t")
    assert server.info_file.exists()
    assert server.proc is not None
    server.proc.send_signal(signum)
    assert server.wait_exit() == 0
    assert not server.info_file.exists()
    log = server.log
    assert f"Received {signum.name}: shutting down" in log
    assert "nbserver stopped" in log
    assert "Traceback" not in log


def test_sigterm_stops_the_kernels_it_started(tmp_path: Path, server_factory: Any) -> None:
    """No kernel process outlives the server it belongs to."""
    root = tmp_path / "root"
    root.mkdir()
    server = server_factory("--port", str(free_port()), "--token", "t", "--root-dir", str(root))
    request = urllib.request.Request(
        server.url("api/kernels"), data=b"{}", method="POST", headers={"Authorization": "token t"}
    )
    kernel = json.loads(urllib.request.urlopen(request, timeout=60).read())
    assert kernel["execution_state"] == "idle"
    pids = kernel_pids(root)
    assert len(pids) == 1
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert kernel_pids(root) == []
    assert "Traceback" not in server.log


def kernel_pids(cwd: Path) -> list[int]:
    """ipykernel processes running in ``cwd`` (each test's root is its own)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if b"ipykernel" in (entry / "cmdline").read_bytes() and Path(os.readlink(entry / "cwd")) == cwd:
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


# -- 6. configuration precedence and errors -----------------------------------------------------


def write_config(path: Path, **settings: Any) -> Path:
    if path.suffix == ".toml":
        path.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items()))
    else:
        path.write_text(json.dumps(settings))
    return path


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_config_file_sets_token_and_port(tmp_path: Path, server_factory: Any, suffix: str) -> None:
    port = free_port()
    config = write_config(tmp_path / f"conf{suffix}", token="from-file", port=port)
    server = server_factory("--config", str(config))
    assert server.port == port
    assert status(server, "from-file") == 200


def test_env_token_beats_file_and_nbserver_config_selects_it(tmp_path: Path, server_factory: Any) -> None:
    port = free_port()
    config = write_config(tmp_path / "conf.toml", token="from-file", port=port)
    server = server_factory(env={"NBSERVER_CONFIG": str(config), "NBSERVER_TOKEN": "from-env"})
    assert server.port == port  # the port came from the file named by NBSERVER_CONFIG
    assert status(server, "from-env") == 200
    assert status(server, "from-file") == 403


def test_command_line_token_beats_env(tmp_path: Path, server_factory: Any) -> None:
    config = write_config(tmp_path / "conf.json", token="from-file", port=free_port())
    server = server_factory(
        "--config", str(config), "--token", "from-argv", env={"NBSERVER_TOKEN": "from-env"}
    )
    assert status(server, "from-argv") == 200
    assert status(server, "from-env") == 403
    assert status(server, "from-file") == 403


def test_default_config_file_in_jupyter_config_dir(tmp_path: Path, server_factory: Any) -> None:
    port = free_port()
    (tmp_path / "jupyter_config").mkdir()
    write_config(tmp_path / "jupyter_config" / "nbserver_config.json", token="default-file", port=port)
    server = server_factory()
    assert server.port == port
    assert status(server, "default-file") == 200


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        (
            {"c.json": '{"token": "t", "bogus_key": 1}'},
            ["--config", "c.json"],
            "unknown setting(s) bogus_key",
        ),
        (
            {"c.toml": 'token = "t"\nbogus_key = 1\n'},
            ["--config", "c.toml"],
            "unknown setting(s) bogus_key",
        ),
        ({"c.json": '{"token": '}, ["--config", "c.json"], "is not valid json"),
        ({"c.toml": 'token = "unterminated\n'}, ["--config", "c.toml"], "is not valid toml"),
        ({"c.json": "[1, 2]"}, ["--config", "c.json"], "must hold a table/object"),
        (
            {"c.json": '{"port": "8888"}'},
            ["--config", "c.json"],
            "setting port in c.json must be int",
        ),
        ({"c.toml": "root_dir = 5\n"}, ["--config", "c.toml"], "setting root_dir"),
        ({}, ["--config", "missing.json"], "cannot read config file missing.json"),
        ({"afile": "x"}, ["--root-dir", "afile"], "is not a directory"),
        ({}, ["--root-dir", "no/such/dir"], "is not a directory"),
        ({}, ["--password"], "no password is stored"),
        ({}, ["--port", "70000"], "port 70000 is not between 0 and 65535"),
        ({}, ["--base-url", "/a/../b"], "must be a plain URL path"),
        ({}, ["--allow-origin", "not-an-origin"], "allow_origin entry 'not-an-origin'"),
        ({}, ["--terminal-shell", "sh -c 'echo"], '--terminal-shell "sh -c \'echo" is not a command line'),
        ({}, ["--terminal-shell", " "], "--terminal-shell names no command"),
        ({"c.json": '{"terminal_shell": "a\\\\"}'}, ["--config", "c.json"], "terminal_shell in c.json"),
    ],
    ids=[
        "unknown-json",
        "unknown-toml",
        "bad-json",
        "bad-toml",
        "not-object",
        "wrong-type",
        "wrong-type-toml",
        "missing-file",
        "root-is-file",
        "root-missing",
        "password-no-hash",
        "bad-port",
        "bad-base-url",
        "bad-origin",
        "terminal-shell-unclosed-quote",
        "terminal-shell-empty",
        "terminal-shell-trailing-escape-in-file",
    ],
)
def test_bad_configuration_exits_2(
    tmp_path: Path, files: dict[str, str], args: list[str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = run_cli(tmp_path, *args, "--no-browser", "--runtime-dir", str(tmp_path / "runtime"))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stderr.startswith("nbserver: error: ")
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("runtime/nbserver-*.json"))  # never started


# -- 7. --no-token ------------------------------------------------------------------------------


def test_no_token_disables_auth_loudly(server_factory: Any) -> None:
    server = server_factory("--port", str(free_port()), "--no-token")
    assert status(server) == 200
    assert "AUTHENTICATION IS DISABLED" in server.log
    assert "?token=" not in server.log
    info = json.loads(server.info_file.read_text())
    assert info["token"] == ""


# -- 8. --base-url ------------------------------------------------------------------------------


def test_base_url(server_factory: Any) -> None:
    port = free_port()
    server = server_factory("--port", str(port), "--token", "t", "--base-url", "/jp/")
    assert server.base_url == "/jp/"
    assert f"http://127.0.0.1:{port}/jp/?token=t" in server.log
    assert status(server, "t", "api/status") == 200  # server.url() carries the base URL
    assert http_get(f"http://127.0.0.1:{port}/api/status", {"Authorization": "token t"})[0] == 404
    assert json.loads(server.info_file.read_text())["url"] == f"http://127.0.0.1:{port}/jp/"


# -- 9. password ----------------------------------------------------------------------------------


def fake_getpass(monkeypatch: pytest.MonkeyPatch, *answers: str) -> None:
    replies = iter(answers)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(replies))


def test_password_subcommand_writes_private_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "conf.json"
    path.write_text(json.dumps({"port": 9999, "cookie_secret": "keep-me"}))
    fake_getpass(monkeypatch, "s3cret!", "s3cret!")
    assert cli.main(["password", "--config", str(path)]) == 0
    assert "Wrote the password hash" in capsys.readouterr().out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = json.loads(path.read_text())
    assert settings["port"] == 9999 and settings["cookie_secret"] == "keep-me"  # kept as written
    assert settings["password_hash"].startswith("argon2:")
    assert verify_password(settings["password_hash"], "s3cret!")
    assert not verify_password(settings["password_hash"], "wrong")


@pytest.mark.parametrize("answers", [("one", "two"), ("",), ()], ids=["mismatch", "empty", "eof"])
def test_password_subcommand_refusals_write_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    answers: tuple[str, ...],
) -> None:
    path = tmp_path / "conf.json"
    replies = iter(answers)

    def answer(prompt: str = "") -> str:
        try:
            return next(replies)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr(getpass, "getpass", answer)
    assert cli.main(["password", "--config", str(path)]) == 1
    assert "nothing changed" in capsys.readouterr().err
    assert not path.exists()


def test_password_subcommand_bad_existing_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "conf.json"
    path.write_text("{not json")
    fake_getpass(monkeypatch)  # must not even be asked
    assert cli.main(["password", "--config", str(path)]) == 2
    assert "is not valid json" in capsys.readouterr().err
    assert path.read_text() == "{not json"


def test_password_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_factory: Any) -> None:
    path = tmp_path / "conf.json"
    fake_getpass(monkeypatch, "hunter22", "hunter22")
    assert cli.main(["password", "--config", str(path)]) == 0

    server = server_factory("--config", str(path), "--password", "--port", str(free_port()))
    assert "?token=" not in server.log  # a password replaces the generated token
    assert "AUTHENTICATION IS DISABLED" not in server.log
    assert status(server) == 403
    code, page = http_get(server.url("login"))
    assert code == 200
    assert '<form method="post"' in page and 'name="password"' in page and 'name="_xsrf"' in page

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", "/login")
        response = conn.getresponse()
        response.read()
        xsrf = SimpleCookie(response.getheader("Set-Cookie"))["_xsrf"].value

        def login(password: str) -> http.client.HTTPResponse:
            body = urlencode({"_xsrf": xsrf, "password": password})
            conn.request(
                "POST",
                "/login?next=%2Fapi%2Fstatus",
                body=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Cookie": f"_xsrf={xsrf}",
                },
            )
            response = conn.getresponse()
            response.read()
            return response

        assert login("wrong").status == 401
        response = login("hunter22")
        assert response.status == 302
        assert response.getheader("Location") == "/api/status"
        cookie = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie.load(header)
        name = f"nbserver-{server.port}"
        assert name in cookie
        conn.request("GET", "/api/status", headers={"Cookie": f"{name}={cookie[name].value}"})
        response = conn.getresponse()
        assert response.status == 200
        assert "started" in json.loads(response.read())
    finally:
        conn.close()
    assert "hunter22" not in server.log


# -- 10. logging ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "loop"), [((), "uvloop"), (("--event-loop", "asyncio"), "asyncio")])
def test_event_loop_is_uvloop_unless_asked(server_factory: Any, args: tuple[str, ...], loop: str) -> None:
    """``auto`` runs on uvloop (a dependency here); ``--event-loop asyncio`` on the stdlib's.
    Either serves."""
    pytest.importorskip("uvloop")
    server = server_factory("--port", str(free_port()), "--token", "t" * 24, *args)
    assert status(server, "t" * 24) == 200
    assert f"Event loop: {loop}" in server.wait_for_log(f"Event loop: {loop}")


def test_event_loop_uvloop_without_uvloop_is_a_clear_error(tmp_path: Path) -> None:
    """``event_loop = "uvloop"`` where uvloop cannot be imported: exit 1 with the reason, as for
    other start-up errors."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "uvloop.py").write_text("raise ImportError('blocked for the test')\n")
    env = {**make_env(tmp_path), "PYTHONPATH": str(blocker)}
    result = run_cli(tmp_path, "--event-loop", "uvloop", "--no-browser", "--port", str(free_port()), env=env)
    assert result.returncode == 1
    assert "uvloop, which is not installed" in result.stderr


def test_debug_access_log_scrubs_token(server_factory: Any) -> None:
    token = "very-secret-token-123"
    server = server_factory("--port", str(free_port()), "--token", token, "--log-level", "DEBUG")
    assert status(server, token) == 200
    server.wait_for_log("200 GET /api/status (")
    assert http_get(server.url(f"api/status?token={token}&x=1"))[0] == 200
    log = server.wait_for_log("200 GET /api/status?token=[secret]&x=1")
    assert http_get(server.url("api/status?token=wrong-guess-456"))[0] == 403
    log = server.wait_for_log("403 GET /api/status?token=[secret]")
    assert "wrong-guess-456" not in log
    lines_with_token = [line for line in log.splitlines() if token in line]
    assert len(lines_with_token) == 1
    assert f"Open http://127.0.0.1:{server.port}/?token={token}" in lines_with_token[0]


def test_default_log_level_hides_2xx_access_lines(server_factory: Any) -> None:
    server = server_factory("--port", str(free_port()), "--token", "t")
    assert status(server, "t") == 200
    assert status(server) == 403
    log = server.wait_for_log("403 GET /api/status (")
    assert "200 GET" not in log


# -- 11. terminals --------------------------------------------------------------------------------


def parse(*argv: str, environ: dict[str, str] | None = None) -> Any:
    return cli.build_config(cli._parser().parse_args(list(argv)), environ or {})


def test_terminal_flags_set_the_config(tmp_path: Path) -> None:
    """``--no-terminals`` turns ``terminals_enabled`` off; ``--terminal-shell`` is one command
    line, split as a POSIX shell splits it (quotes kept together, not run through a shell)."""
    assert parse().terminals_enabled is True and parse().terminal_shell == ()
    assert parse("--no-terminals").terminals_enabled is False
    config = parse("--terminal-shell", "/bin/sh -c 'echo a  b; exec sh' \"x y\"")
    assert config.terminal_shell == ("/bin/sh", "-c", "echo a  b; exec sh", "x y")
    assert parse("--terminal-shell", "bash").terminal_shell == ("bash",)


def test_terminal_settings_in_a_config_file(tmp_path: Path) -> None:
    """The config file's ``terminal_shell`` is a command line too (a string is split like the
    flag's; a list is the argv as it is), and the command line beats the file."""
    file = write_config(tmp_path / "c.toml", terminals_enabled=False, terminal_shell="zsh -l -i")
    config = parse("--config", str(file))
    assert config.terminals_enabled is False and config.terminal_shell == ("zsh", "-l", "-i")
    file = write_config(tmp_path / "c.json", terminal_shell=["/opt/my shell", "-l"])
    assert parse("--config", str(file)).terminal_shell == ("/opt/my shell", "-l")
    assert parse("--config", str(file), "--terminal-shell", "sh").terminal_shell == ("sh",)


def test_no_terminals_answers_as_jupyter_server_does(server_factory: Any) -> None:
    """``jupyter server --ServerApp.terminals_enabled=False`` (2.21) answers 404 on every terminal
    route (its HTML 404 page); nbserver's 404 is JSON and says why. The terminal websocket is a
    404 too, before any upgrade."""
    server = server_factory("--port", str(free_port()), "--token", "t", "--no-terminals")
    for method in ("GET", "POST"):
        request = urllib.request.Request(
            server.url("api/terminals"), method=method, headers={"Authorization": "token t"}
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        with info.value as error:
            assert error.code == 404
            body = json.loads(error.read())
        assert body["reason"] == "terminals unavailable" and "terminals_enabled" in body["message"]
    assert status(server, "t", "api/terminals/1") == 404
    assert status(server, "t", "terminals/websocket/1") == 404


async def test_terminal_shell_runs_that_command_line(server_factory: Any) -> None:
    """The shell is the flag's command line, split by shlex: ``/bin/sh -c '...'`` prints a
    marker computed by that shell (so not the flag's text echoed), then becomes an interactive
    ``sh`` that runs what is typed through the terminal websocket."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    shell = "/bin/sh -c 'echo marker-$((6*7)); exec /bin/sh'"
    server = server_factory("--port", str(free_port()), "--token", "t", "--terminal-shell", shell)
    headers = {"Authorization": "token t", "Content-Type": "application/json"}
    request = urllib.request.Request(server.url("api/terminals"), data=b"{}", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        name = json.loads(response.read())["name"]
    url = server.url(f"terminals/websocket/{name}").replace("http://", "ws://")
    conn = await websocket_connect(HTTPRequest(url, headers={"Authorization": "token t"}))
    output = ""
    try:
        typed = False
        while "typed-" + "64" not in output:
            raw = await asyncio.wait_for(conn.read_message(), 30)
            assert raw is not None, f"closed; output: {output!r}"
            frame = json.loads(raw)
            if frame[0] == "stdout":
                output += frame[1]
            if "marker-42" in output and not typed:
                await conn.write_message(json.dumps(["stdin", "echo typed-$((8*8))\r"]))
                typed = True
    finally:
        conn.close()
    assert "marker-42" in output
