"""How to start each benchmark target.

A :class:`TargetSpec` knows how to build the command line of one server, which interpreter runs
it, and its quirks (how it takes its token, how it starts kernels). :func:`start_target` starts
it as a subprocess on ``127.0.0.1`` with a free port, a fresh temporary root directory (also its
working directory), a fixed token and its own ``HOME`` / ``JUPYTER_*`` directories, waits for
the first ``200`` on ``GET /api/status`` (timing it), and always terminates it afterwards
(SIGTERM, then SIGKILL after 5 s), even when the workload raised.

Targets:

* ``nbserver``: the nbserver that ``import nbserver`` finds in this interpreter (its directory is
  put first on the server's ``PYTHONPATH``, so the working tree is what gets measured);
* ``jupyter_server``: ``python -m jupyter_server`` in this interpreter;
* ``jupyverse``: the ``jupyverse`` command next to its interpreter (this one, or another given
  with ``--python jupyverse=PATH``, e.g. a separate virtualenv). It serves its working
  directory, takes its token only as ``?token=`` or as the cookie it then sets (the benchmark
  asks once and sends the cookie afterwards), and has no ``POST /api/kernels`` (kernels are
  started with ``POST /api/sessions``).

Only the standard library is used; RSS and CPU times are read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import http.client
import importlib.metadata
import importlib.util
import os
import shutil
import signal
import site
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
    "import_root",
    "start_target",
    "target_env",
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


Argv = Callable[[str, int, Path, Path], list[str]]  # (python, port, root_dir, runtime_dir) -> command


@functools.cache
def _probe(python: str, code: str) -> tuple[int, str]:
    """``(exit status, stripped stdout)`` of ``python -c code``; (127, why) if it cannot run."""
    try:
        done = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, f"{type(exc).__name__}: {exc}"
    return done.returncode, done.stdout.strip()


def import_root(module: str) -> Path | None:
    """The directory to put on ``sys.path`` to import ``module`` as this interpreter does."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin).resolve()
    depth = module.count(".") + (1 if spec.submodule_search_locations is not None else 0)
    return origin.parents[depth]


@dataclass(frozen=True)
class TargetSpec:
    """One server implementation that can be benchmarked, and its quirks."""

    name: str
    module: str  # importable module that must exist (in ``python``) for the target to be available
    distribution: str  # package name for the version line
    argv: Argv
    python: str = sys.executable  # the interpreter that runs the server (and its codec workload)
    pythonpath: tuple[str, ...] = ()  # modules whose import root (here) goes first on PYTHONPATH
    token_in_query: bool = False  # takes no Authorization header: ?token= once, then its cookie
    kernels_via_sessions: bool = False  # no POST /api/kernels: kernels start via POST /api/sessions

    def with_python(self, python: str) -> TargetSpec:
        return dataclasses.replace(self, python=python)

    @property
    def in_process(self) -> bool:
        """Whether ``python`` is the interpreter running the benchmark. Paths are compared as
        given: a virtualenv's ``python`` is a symlink to its base interpreter, yet another
        environment."""
        return os.path.abspath(self.python) == os.path.abspath(sys.executable)

    def unavailable_reason(self) -> str | None:
        """``None`` if the target can run here, else why not."""
        if self.in_process:
            try:
                found = importlib.util.find_spec(self.module) is not None
            except (ImportError, ValueError):
                found = False
        else:
            code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({self.module!r}) is None)"
            found = _probe(self.python, code)[0] == 0
        if found:
            return None
        return f"not installed: {self.module} is not importable in {self.python}"

    def version(self) -> str:
        if self.in_process:
            try:
                return importlib.metadata.version(self.distribution)
            except importlib.metadata.PackageNotFoundError:
                return "not installed"
        code = f"import importlib.metadata as m; print(m.version({self.distribution!r}))"
        status, out = _probe(self.python, code)
        return out if status == 0 and out else "not installed"

    def pythonpath_dirs(self) -> list[Path]:
        """Directories to put first on the target's ``PYTHONPATH``: the import roots of
        ``pythonpath`` modules, unless they are site-packages (importable there anyway)."""
        installed = {Path(p).resolve() for p in (*site.getsitepackages(), site.getusersitepackages())}
        roots = (import_root(module) for module in self.pythonpath)
        return [root for root in roots if root is not None and root not in installed]


def _nbserver_argv(python: str, port: int, root: Path, runtime: Path) -> list[str]:
    return [
        python, "-m", "nbserver",
        "--ip", HOST,
        "--port", str(port),
        "--token", TOKEN,
        "--root-dir", str(root),
        "--no-browser",
        "--runtime-dir", str(runtime),
    ]  # fmt: skip


def _jupyter_server_argv(python: str, port: int, root: Path, runtime: Path) -> list[str]:
    argv = [
        python, "-m", "jupyter_server",
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


def _jupyverse_argv(python: str, port: int, root: Path, runtime: Path) -> list[str]:
    # The `jupyverse` console script is the documented entry point (there is no __main__).
    # It serves its working directory (start_target runs it in `root`); the runtime dir comes
    # from JUPYTER_RUNTIME_DIR. --timeout: its default module start-up timeout is too short for
    # a loaded 2-core machine (a module "timed out while preparing" and the server exits).
    script = Path(python).parent / "jupyverse"
    return [
        str(script),
        "--host", HOST,
        "--port", str(port),
        "--timeout", "60",
        "--set", f"auth.token={TOKEN}",
    ]  # fmt: skip


TARGETS: dict[str, TargetSpec] = {
    spec.name: spec
    for spec in (
        TargetSpec("nbserver", "nbserver", "nbserver", _nbserver_argv, pythonpath=("nbserver",)),
        TargetSpec("jupyter_server", "jupyter_server", "jupyter_server", _jupyter_server_argv),
        TargetSpec(
            "jupyverse",
            "jupyverse_api",
            "jupyverse",
            _jupyverse_argv,
            token_in_query=True,
            kernels_via_sessions=True,
        ),
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


def _log_tail(workdir: Path, lines: int = 5) -> str:
    """The last lines of the server's stderr, or of its stdout if stderr is empty (jupyverse
    logs to stdout)."""
    return _tail(workdir / "stderr.log", lines) or _tail(workdir / "stdout.log", lines)


@dataclass
class RunningTarget:
    """A started server: what workloads get. Use :meth:`connection` and :meth:`headers`."""

    spec: TargetSpec
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    root_dir: Path
    startup_s: float = float("nan")  # spawn -> first 200 on GET /api/status
    token: str = TOKEN
    host: str = HOST
    cookie: str | None = None  # ``name=value`` of the auth cookie (targets with token_in_query)
    history: list[str] = field(default_factory=list)  # workloads already run on this process
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

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
        """Request headers with the credentials: the token, or the cookie the target set."""
        if self.cookie is not None:
            return {"Cookie": self.cookie, **extra}
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
        rss = _rss_mb(self.pid)
        if rss is None:
            raise RuntimeError(f"no VmRSS for pid {self.pid} (process gone?)")
        return rss

    def descendants(self) -> dict[int, str]:
        """The server's child processes, recursively (its kernels among them): pid -> command line."""
        return {pid: _cmdline(pid) for pid in _descendants(self.pid)}

    def tree_rss_mb(self) -> float:
        """RSS of the server process plus all its descendants, in MiB."""
        return self.rss_mb() + sum(_rss_mb(pid) or 0.0 for pid in _descendants(self.pid))

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (``/proc/<pid>/stat``)."""
        cpu = _cpu_seconds(self.pid)
        if cpu is None:
            raise RuntimeError(f"no /proc/{self.pid}/stat (process gone?)")
        return cpu

    def descendants_cpu_seconds(self) -> dict[int, float]:
        """CPU time (user + system) used so far by each live descendant (the kernels): pid ->
        seconds. A difference of two readings is only meaningful for pids in both."""
        found = ((pid, _cpu_seconds(pid)) for pid in _descendants(self.pid))
        return {pid: cpu for pid, cpu in found if cpu is not None}

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
            raise TargetExitedError(f"{self.name} exited with code {code}: {_log_tail(self.workdir, 3)}")


def _rss_mb(pid: int) -> float | None:
    """``VmRSS`` of ``pid`` in MiB; None if it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (``/proc/<pid>/stat``); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    # Field 2 (comm) may contain spaces; everything after the last ')' is space-separated.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _descendants(root: int) -> list[int]:
    """Pids of all live descendants of ``root`` (from the parent pids in ``/proc/*/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":  # state; a zombie is gone but for its exit status
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def target_env(spec: TargetSpec, workdir: Path, extra_path: tuple[Path, ...] = ()) -> dict[str, str]:
    """The environment of a target's processes: outside configuration scrubbed, ``HOME`` and
    ``JUPYTER_*`` directories inside ``workdir``, ``spec``'s import roots (then ``extra_path``)
    first on ``PYTHONPATH``."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB_ENV}
    search = [str(p) for p in (*spec.pythonpath_dirs(), *extra_path)]
    if env.get("PYTHONPATH"):
        search.append(env["PYTHONPATH"])
    if search:
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(search))
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


def _auth_cookie(target: RunningTarget, resp: http.client.HTTPResponse) -> str:
    """``name=value`` of the first cookie ``resp`` sets (after ``?token=``), or TargetStartError."""
    for header in resp.headers.get_all("Set-Cookie") or []:
        pair = header.split(";", 1)[0].strip()
        if "=" in pair:
            return pair
    raise TargetStartError(f"{target.name} answered GET {READY_PATH}?token=... without setting a cookie")


def _wait_ready(target: RunningTarget, t_spawn: float, timeout: float) -> float:
    """Poll ``GET /api/status`` with a fresh connection every ~5 ms; seconds to the first 200.

    A target with ``token_in_query`` is polled with ``?token=``; the cookie its 200 sets is kept
    in ``target.cookie`` for all later requests.
    """
    deadline = t_spawn + timeout
    last = "no answer"
    path = f"{READY_PATH}?token={target.token}" if target.spec.token_in_query else READY_PATH
    while True:
        code = target.proc.poll()
        if code is not None:
            raise TargetStartError(
                f"{target.name} exited with code {code} during start-up: {_log_tail(target.workdir)}"
            )
        conn = http.client.HTTPConnection(target.host, target.port, timeout=2.0)
        try:
            conn.request("GET", path, headers=target.headers())
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                elapsed = time.perf_counter() - t_spawn
                if target.spec.token_in_query:
                    target.cookie = _auth_cookie(target, resp)
                return elapsed
            last = f"HTTP {resp.status}"
        except (OSError, http.client.HTTPException) as exc:
            last = type(exc).__name__
        finally:
            conn.close()
        if time.perf_counter() > deadline:
            raise TargetStartError(
                f"{target.name} did not answer GET {READY_PATH} with 200 within {timeout:.0f} s "
                f"(last: {last}): {_log_tail(target.workdir)}"
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
        env = target_env(spec, workdir)
        port = free_port()
        argv = spec.argv(spec.python, port, root, Path(env["JUPYTER_RUNTIME_DIR"]))
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
        target = RunningTarget(spec, proc, port, workdir, root)
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
