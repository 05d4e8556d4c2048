"""A hub as people run it: ``python -m nbserver hub`` in its own process (so that its memory can
be read from ``/proc`` and a browser can drive it from another event loop), with users added by
``hub adduser`` and one API token each. Stopping it stops every user server first (they outlive
a hub on purpose)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.hub.realhub import free_port


def hub_cli(db: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbserver", "hub", *args, "--db", str(db)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    """A memory figure of process ``pid`` from ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field_name} for {pid}")


@dataclass
class RunningHub:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, method: str, path: str, user: str = "", body: Any = None) -> tuple[int, Any]:
        """``/hub/api/<path>`` with ``user``'s token: (status, JSON body or None)."""
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        headers = {"Authorization": f"token {self.tokens[user]}"} if user else {}
        request = urllib.request.Request(
            f"{self.base}/hub/api/{path}", method=method, data=data, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, None

    def start_server(self, user: str, timeout: float = 90) -> dict[str, Any]:
        """Start ``user``'s server and wait until the hub calls it ready; the user model."""
        status, _ = self.api("POST", f"users/{user}/server", user)
        assert status in (201, 202, 400), status  # 400: already running
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, model = self.api("GET", f"users/{user}", user)
            if model["servers"].get("", {}).get("ready"):
                return dict(model)
            time.sleep(0.1)
        raise AssertionError(f"{user}'s server never got ready:\n{self.log.read_text()[-3000:]}")


@contextmanager
def running_hub(
    tmp_path: Path, users: dict[str, str], *args: str, admin: tuple[str, ...] = ()
) -> Iterator[RunningHub]:
    """A hub on a free port with ``users`` (name: password) added; ``args`` go to ``hub``."""
    db = tmp_path / "hub.sqlite"
    for name, password in users.items():
        extra = ("--admin",) if name in admin else ()
        added = hub_cli(db, "adduser", name, *extra, stdin=password + "\n")
        assert added.returncode == 0, added.stderr
    tokens = {name: hub_cli(db, "token", name).stdout.strip() for name in users}
    port = free_port()
    log = tmp_path / "hub.log"
    argv = [
        *(sys.executable, "-m", "nbserver", "hub", "--port", str(port), "--db", str(db)),
        *("--users-dir", str(tmp_path / "users"), "--activity-interval", "1"),
    ]
    if "--spawner" not in args:
        argv += ["--spawner", "users-dir"]
    with log.open("ab") as out:
        proc = subprocess.Popen([*argv, *args], stdout=out, stderr=subprocess.STDOUT, env={**os.environ})
    hub = RunningHub(port, proc, log, tokens)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                hub.api("GET", "")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield hub
    finally:
        try:
            for name in users:
                if proc.poll() is None:
                    hub.api("DELETE", f"users/{name}/server", name)
            for name in users:
                deadline = time.monotonic() + 30
                while proc.poll() is None and time.monotonic() < deadline:
                    _, model = hub.api("GET", f"users/{name}", name)
                    if model is None or not model["servers"]:
                        break
                    time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
