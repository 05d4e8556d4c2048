"""``python -m nbserver hub`` as scripts run it: the administration commands, and a hub process
that is SIGKILLed and started again re-adopting a server whose kernel keeps its variables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.hub.realhub import free_port
from tests.services.kernels.wsclient import KernelSocket, stream_text


def hub_cli(db: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbserver", "hub", *args, "--db", str(db)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_admin_commands(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite"
    added = hub_cli(db, "adduser", "alice", "--admin", stdin="pw-alice\n")
    assert added.returncode == 0, added.stderr
    assert hub_cli(db, "adduser", "bob", stdin="pw-bob\n").returncode == 0
    again = hub_cli(db, "adduser", "bob", stdin="x\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    assert hub_cli(db, "adduser", "Bad/Name", stdin="x\n").returncode == 1
    assert hub_cli(db, "adduser", "carol", stdin="\n").returncode == 1  # empty password
    table = hub_cli(db, "users").stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "ADMIN", "SERVER"]
    assert [line.split()[:2] for line in table[1:]] == [["alice", "yes"], ["bob", "no"]]
    token = hub_cli(db, "token", "bob", "--note", "ci").stdout.strip()
    assert len(token) == 64 and all(c in "0123456789abcdef" for c in token)
    assert hub_cli(db, "passwd", "bob", stdin="pw-bob-2\n").returncode == 0
    assert hub_cli(db, "passwd", "nobody", stdin="x\n").returncode == 1
    from nbserver.auth.passwords import verify_password
    from nbserver.hub.store import Store

    store = Store(db)
    try:
        stored = store.require_user("bob").password_hash or ""
        assert stored.startswith("argon2:$argon2id$") and verify_password(stored, "pw-bob-2")
        record = store.find_token(token)
        assert record is not None and record.user == "bob" and record.note == "ci"
    finally:
        store.close()
    assert hub_cli(db, "deluser", "bob").returncode == 0
    assert hub_cli(db, "deluser", "bob").returncode == 1
    assert [line.split()[0] for line in hub_cli(db, "users").stdout.splitlines()[1:]] == ["alice"]
    assert (db.stat().st_mode & 0o077) == 0


class HubProcess:
    def __init__(self, tmp_path: Path, port: int) -> None:
        self.port, self.tmp = port, tmp_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ}
        with open(self.tmp / "hub.log", "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "nbserver",
                    "hub",
                    "--port",
                    str(self.port),
                    "--db",
                    str(self.tmp / "hub.sqlite"),
                    "--users-dir",
                    str(self.tmp / "users"),
                    "--spawner",
                    "users-dir",
                    "--activity-interval",
                    "1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.api("GET", "")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise AssertionError((self.tmp / "hub.log").read_text())

    def api(self, method: str, path: str, token: str = "", body: Any = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/hub/api/{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None),
            headers={"Authorization": f"token {token}"} if token else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
                return response.status, json.loads(
                    raw
                ) if raw and response.headers.get_content_type() == "application/json" else None
        except urllib.error.HTTPError as exc:
            return exc.code, None

    def kill(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)
        self.proc.wait(timeout=30)


def _run(code: str, port: int, kernel: str, token: str) -> str:
    import asyncio

    async def go() -> str:
        ws = await KernelSocket.connect(f"ws://127.0.0.1:{port}/user/alice/", kernel, token)
        try:
            outputs, _ = await ws.run(code)
            return stream_text(outputs)
        finally:
            ws.close()

    return asyncio.run(go())


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_restarted_hub_readopts_the_server_and_its_kernel(tmp_path: Path, signum: int) -> None:
    db = tmp_path / "hub.sqlite"
    assert hub_cli(db, "adduser", "alice", stdin="pw\n").returncode == 0
    token = hub_cli(db, "token", "alice").stdout.strip()
    hub = HubProcess(tmp_path, free_port())
    hub.start()
    try:
        status, _ = hub.api("POST", "users/alice/server", token)
        assert status in (201, 202)
        for _ in range(600):
            if hub.api("GET", "users/alice", token)[1]["server"]:
                break
            time.sleep(0.1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{hub.port}/user/alice/api/kernels",
            method="POST",
            data=b'{"name": "python3"}',
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            kernel = json.loads(response.read())["id"]
        assert _run("x = 41", hub.port, kernel, token) == ""
        hub.kill(signum)
        hub.start()
        model = hub.api("GET", "users/alice", token)[1]
        assert model["server"] == "/user/alice/" and model["servers"][""]["ready"]
        assert _run("print(x + 1)", hub.port, kernel, token) == "42\n"
        assert "Adopted alice's server" in (tmp_path / "hub.log").read_text()
    finally:
        hub.api("DELETE", "users/alice/server", token)
        hub.kill(signal.SIGTERM)
