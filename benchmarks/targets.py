"""How to start each benchmark target.

A :class:`TargetSpec` knows how to build the command line of one server. :func:`start_target`
starts it as a subprocess on ``127.0.0.1`` with a free port, a fresh temporary root directory, a
fixed token and its own ``HOME`` / ``JUPYTER_*`` directories, waits for the first ``200`` on
``GET /api/status`` (timing it), and always terminates it afterwards (SIGTERM, then SIGKILL after
5 s), even when the workload raised.

Only the standard library is used; RSS and CPU times are read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.metadata
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "HOST",
    "TARGETS",
    "TOKEN",
    "RunningTarget",
    "TargetExitedError",
    "TargetSpec",
    "TargetStartError",
    "free_port",
    "start_target",
]

HOST = "127.0.0.1"
TOKEN = "nbserver-benchmark-token-0123456789abcdef"
READY_PATH = "/api/status"
POLL_INTERVAL_S = 0.005
READY_TIMEOUT_S = 60.0
TERM_GRACE_S = 5.0

# Environment variables that could make a target read configuration from outside its temp dir.
_SCRUB_ENV = (
    "NBSERVER_TOKEN",
    "NBSERVER_CONFIG",
    "JUPYTER_TOKEN",
    "JUPYTER_PASSWORD",
    "JUPYTER_PATH",
    "JUPYTER_CONFIG_PATH",
    "JUPYTER_PREFER_ENV_PATH",
)


class TargetStartError(RuntimeError):
    """The target exited or did not answer ``GET /api/status`` with 200 in time."""


class TargetExitedError(RuntimeError):
    """The target process is no longer running."""


@dataclass(frozen=True)
class TargetSpec:
    """One server implementation that can be benchmarked."""

    name: str
    module: str  # importable module that must exist for the target to be available
    distribution: str  # package name for the version line
    argv: Callable[[int, Path, Path], list[str]]  # (port, root_dir, runtime_dir) -> command

    def unavailable_reason(self) -> str | None:
        """``None`` if the target can run here, else why not."""
        try:
            found = importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            found = False
        return None if found else f"{self.module} is not importable in {sys.executable}"

    def version(self) -> str:
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"


def _nbserver_argv(port: int, root: Path, runtime: Path) -> list[str]:
    return [
        sys.executable, "-m", "nbserver",
        "--ip", HOST,
        "--port", str(port),
        "--token", TOKEN,
        "--root-dir", str(root),
        "--no-browser",
        "--runtime-dir", str(runtime),
    ]  # fmt: skip


def _jupyter_server_argv(port: int, root: Path, runtime: Path) -> list[str]:
    argv = [
        sys.executable, "-m", "jupyter_server",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
        "--ServerApp.port_retries=0",
    ]  # fmt: skip
    # jupyter_server refuses to start as root unless told to (containers, CI runners).
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")
    # The runtime dir comes from JUPYTER_RUNTIME_DIR in the environment (see start_target).
    return argv


TARGETS: dict[str, TargetSpec] = {
    spec.name: spec
    for spec in (
        TargetSpec("nbserver", "nbserver", "nbserver", _nbserver_argv),
        TargetSpec("jupyter_server", "jupyter_server", "jupyter_server", _jupyter_server_argv),
    )
}


def free_port() -> int:
    """A port that was free on ``HOST`` a moment ago (the usual bind-to-0 trick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


@dataclass
class RunningTarget:
    """A started server: what workloads get. Use :meth:`connection` and :meth:`headers`."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    root_dir: Path
    startup_s: float = float("nan")  # spawn -> first 200 on GET /api/status
    token: str = TOKEN
    host: str = HOST
    history: list[str] = field(default_factory=list)  # workloads already run on this process
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def stdout_path(self) -> Path:
        return self.workdir / "stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "stderr.log"

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"token {self.token}", **extra}

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        """A new keep-alive connection to the target (not yet connected)."""
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def get(self, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
        """One ``GET`` on a fresh connection: ``(status, body)``."""
        conn = self.connection(timeout)
        try:
            conn.request("GET", path, headers=self.headers())
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def rss_mb(self) -> float:
        """Resident set size of the server process in MiB (``VmRSS`` of ``/proc/<pid>/status``)."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    kib = int(line.split()[1])
                    return kib / 1024.0
        raise RuntimeError(f"no VmRSS for pid {self.pid} (process gone?)")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (``/proc/<pid>/stat``)."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as f:
            stat = f.read()
        # Field 2 (comm) may contain spaces; everything after the last ')' is space-separated.
        fields = stat[stat.rindex(")") + 2 :].split()
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    def wait_idle(
        self, window: float = 0.2, quiet: int = 3, threshold: float = 0.05, timeout: float = 15.0
    ) -> float:
        """Wait until the server has used less than ``threshold`` of a CPU in each of ``quiet``
        consecutive ``window``-second windows, so that background work (a deferred import, a
        kernel shutdown in progress) is over, including work scheduled to start a moment after
        start-up. Gives up after ``timeout``. Returns the seconds waited."""
        t0 = time.perf_counter()
        calm = 0
        while calm < quiet and time.perf_counter() - t0 < timeout:
            c0 = self.cpu_seconds()
            time.sleep(window)
            calm = calm + 1 if (self.cpu_seconds() - c0) / window < threshold else 0
        return time.perf_counter() - t0

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise TargetExitedError(f"{self.name} exited with code {code}: {_tail(self.stderr_path, 3)}")


def _target_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB_ENV}
    dirs = {
        "HOME": workdir / "home",
        "JUPYTER_RUNTIME_DIR": workdir / "runtime",
        "JUPYTER_CONFIG_DIR": workdir / "config",
        "JUPYTER_DATA_DIR": workdir / "data",
    }
    for key, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[key] = str(path)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_ready(target: RunningTarget, t_spawn: float, timeout: float) -> float:
    """Poll ``GET /api/status`` with a fresh connection every ~5 ms; seconds to the first 200."""
    deadline = t_spawn + timeout
    last = "no answer"
    while True:
        code = target.proc.poll()
        if code is not None:
            raise TargetStartError(
                f"{target.name} exited with code {code} during start-up: {_tail(target.stderr_path)}"
            )
        conn = http.client.HTTPConnection(target.host, target.port, timeout=2.0)
        try:
            conn.request("GET", READY_PATH, headers=target.headers())
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                return time.perf_counter() - t_spawn
            last = f"HTTP {resp.status}"
        except (OSError, http.client.HTTPException) as exc:
            last = type(exc).__name__
        finally:
            conn.close()
        if time.perf_counter() > deadline:
            raise TargetStartError(
                f"{target.name} did not answer GET {READY_PATH} with 200 within {timeout:.0f} s "
                f"(last: {last}): {_tail(target.stderr_path)}"
            )
        time.sleep(POLL_INTERVAL_S)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(TERM_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


@contextlib.contextmanager
def start_target(
    spec: TargetSpec,
    *,
    ready_timeout: float = READY_TIMEOUT_S,
    keep_dir: Path | None = None,
    prepare: Callable[[Path], None] | None = None,
) -> Iterator[RunningTarget]:
    """Start ``spec`` fresh, wait until it serves ``GET /api/status``, yield it, always stop it.

    ``keep_dir``: if given, the server's stdout/stderr logs are copied there (named after the
    target and pid) before the temporary directory is removed.
    ``prepare``: if given, called with the fresh root directory before the process is spawned
    (workload fixtures; not part of the measured start-up time).
    """
    workdir = Path(tempfile.mkdtemp(prefix=f"nbbench-{spec.name}-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        root = workdir / "root"
        root.mkdir()
        if prepare is not None:
            prepare(root)
        env = _target_env(workdir)
        port = free_port()
        argv = spec.argv(port, root, Path(env["JUPYTER_RUNTIME_DIR"]))
        with open(workdir / "stdout.log", "wb") as out, open(workdir / "stderr.log", "wb") as err:
            t_spawn = time.perf_counter()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=root,
                start_new_session=True,  # Ctrl-C reaches only us; we stop the server ourselves
            )
        target = RunningTarget(spec.name, proc, port, workdir, root)
        target.startup_s = _wait_ready(target, t_spawn, ready_timeout)
        yield target
    finally:
        if proc is not None:
            _terminate(proc)
        if keep_dir is not None and proc is not None:
            keep_dir.mkdir(parents=True, exist_ok=True)
            for stream in ("stdout", "stderr"):
                with contextlib.suppress(OSError):
                    shutil.copy(workdir / f"{stream}.log", keep_dir / f"{spec.name}-{proc.pid}.{stream}.log")
        shutil.rmtree(workdir, ignore_errors=True)
