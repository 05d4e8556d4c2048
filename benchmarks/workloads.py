"""Workloads: the registry and the built-in workloads.

A workload is a function ``fn(target, cfg) -> dict[str, float | NotApplicable]``. It gets a
started :class:`~benchmarks.targets.RunningTarget` and the :class:`RunConfig` (quick or full
sizes). By default one fresh server process per repetition and target is shared by the selected
workloads, run in registry order (``--isolate``: one process per workload), so a workload must
leave the server as it found it (shut down the kernels it started, delete the files it made).
It returns named measurements; raising any exception marks that run FAILED with the exception
text as the reason. A measurement that the target cannot provide (an endpoint it does not
implement yet) is reported as :class:`NotApplicable` rather than failing the whole workload.

A *local* workload (:func:`register_local`: the codec micro-benchmarks) starts no server. It
gets the target's :class:`~benchmarks.targets.TargetSpec` instead, runs after the server
workloads of each repetition, and measures that target's code in a process of its own.

Measurement names end in their unit, which also tells the report which direction is better:

========== ======== ======
suffix     unit     better
========== ======== ======
_ms        ms       lower
_us        us       lower
_s         s        lower
_mb        MiB      lower
_kib       KiB      lower
_rps       req/s    higher
_ops       op/s     higher
_mps       msg/s    higher
_count     count    higher
_errors    errors   lower
_timeouts  timeouts lower
========== ======== ======

A run in which nbserver reports more than 0 ``_errors`` makes ``python -m benchmarks`` exit 1, as
a FAILED run does (``_timeouts``, which a loaded machine can cause, do not).

Register a new workload with :func:`register`::

    @register("contents", "GET /api/contents on a directory of 1000 files", setup=make_files)
    def contents(target: RunningTarget, cfg: RunConfig) -> Measurements:
        ...
        return {"list_median_ms": ...}

``setup(root_dir, cfg)``, if given, creates the workload's fixtures in the target's root
directory *before* the server process starts (the same files for every target).

The built-in workloads live here (``startup``, ``status``), in ``workloads_contents``
(``listing``, ``notebook``, ``fileops``), ``workloads_kernels`` (``kernel_start``, ``ws_rtt``,
``flood``, ``sessions10``), ``workloads_load`` (``ws_many``, ``kernels64``),
``workloads_status_load`` (``status_under_load``), ``workloads_hub`` (``hub20``) and
``workloads_codecs`` (``codecs``);
importing this module registers all of them.
"""

from __future__ import annotations

import http.client
import json
import math
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .targets import RunningTarget, TargetSpec

__all__ = [
    "WORKLOADS",
    "LocalFunc",
    "Measurements",
    "NotApplicable",
    "RunConfig",
    "ServerFunc",
    "Setup",
    "Workload",
    "call",
    "call_json",
    "counts_errors",
    "higher_is_better",
    "register",
    "register_local",
    "unit_of",
]


@dataclass(frozen=True)
class NotApplicable:
    """A measurement the target cannot provide (shown as ``n/a``, not FAILED)."""

    reason: str


Measurements = dict[str, "float | NotApplicable"]


@dataclass(frozen=True)
class RunConfig:
    """Sizes of the workloads: the issue's sizes by default, small ones from
    :meth:`for_mode` ``(quick=True)`` (the whole quick suite in under a minute on 2 cores).

    Heavier endpoints (``/api/kernelspecs``) run ``heavy_scale`` times the request counts.
    """

    quick: bool = False
    warmup: int = 100
    seq_requests: int = 2000
    concurrency: int = 16
    throughput_requests: int = 10000
    startup_load_requests: int = 5000  # the burst between the two RSS readings of `startup`
    heavy_scale: float = 0.5
    # settling before each workload (RunningTarget.wait_idle): quiet windows of this length
    settle_window_s: float = 0.2
    settle_quiet: int = 3
    settle_timeout_s: float = 15.0
    # workloads_contents
    listing_files: int = 10_000  # files in the directory of `listing`
    listing_requests: int = 20
    notebook_cells: int = 2000  # code cells of the ~10 MB notebook of `notebook` (~5 KB each)
    notebook_requests: int = 10  # GETs and PUTs each
    fileops_clients: int = 8
    fileops_rounds: int = 25  # create + save + rename + delete per client and round
    # workloads_kernels
    kernel_start_repeats: int = 5
    ws_rtt_requests: int = 500
    ws_rtt_warmup: int = 20  # untimed round trips on each of the two kernels first
    flood_lines: int = 20_000
    sessions_concurrency: int = 10
    # workloads_load: ws_many
    ws_many_kernels: int = 10
    ws_many_sockets: int = 10  # websockets per kernel (each with its own session_id)
    ws_many_executes: int = 20  # sequential executes per websocket
    # workloads_load: kernels64
    load_kernels: int = 64
    load_rate: float = 10.0  # kernel_info_requests per second and kernel, paced
    load_duration_s: float = 60.0
    load_reply_timeout_s: float = 5.0  # a reply later than this (or never) is a timeout
    load_start_concurrency: int = 8  # kernels being started at once
    # workloads_status_load: status_under_load (the PUT notebook has notebook_cells cells)
    status_poll_interval_s: float = 0.01
    status_idle_s: float = 1.0  # polls without load first, for comparison
    status_flood_lines: int = 20_000
    # workloads_codecs: each operation is timed in `codec_batches` batches of at least
    # `codec_batch_s` seconds; the fastest batch counts
    codec_batch_s: float = 0.05
    codec_batches: int = 5
    # workloads_hub: hub20 (users logging in, spawning and running a cell at once)
    hub_users: int = 20

    @classmethod
    def for_mode(cls, quick: bool) -> RunConfig:
        if quick:
            return cls(
                quick=True,
                warmup=20,
                seq_requests=100,
                throughput_requests=400,
                startup_load_requests=200,
                settle_window_s=0.1,
                settle_quiet=1,
                settle_timeout_s=5.0,
                listing_files=1000,
                listing_requests=2,
                notebook_cells=200,  # ~1 MB
                notebook_requests=2,
                fileops_rounds=3,
                kernel_start_repeats=1,
                ws_rtt_requests=100,
                ws_rtt_warmup=5,
                flood_lines=2000,
                sessions_concurrency=3,
                ws_many_kernels=2,
                ws_many_sockets=5,
                ws_many_executes=5,
                load_kernels=8,
                load_duration_s=5.0,
                status_idle_s=0.5,
                status_flood_lines=1000,  # under the PUTs, a flood is several times slower
                codec_batch_s=0.01,
                codec_batches=3,
                hub_users=3,
            )
        return cls()


Setup = Callable[[Path, RunConfig], None]  # (root_dir, cfg): fixtures made before start-up
ServerFunc = Callable[[RunningTarget, RunConfig], Measurements]  # runs against a started server
LocalFunc = Callable[[TargetSpec, RunConfig], Measurements]  # runs without a server


@dataclass(frozen=True)
class Workload:
    """A registered workload: exactly one of ``func`` (server) and ``local`` is set."""

    name: str
    description: str
    func: ServerFunc | None = None
    setup: Setup | None = None
    local: LocalFunc | None = None

    @property
    def needs_server(self) -> bool:
        return self.local is None


WORKLOADS: dict[str, Workload] = {}

_UNITS: dict[str, tuple[str, bool]] = {  # suffix -> (unit label, higher is better)
    "ms": ("ms", False),
    "us": ("us", False),
    "s": ("s", False),
    "mb": ("MiB", False),
    "kib": ("KiB", False),
    "rps": ("req/s", True),
    "ops": ("op/s", True),
    "mps": ("msg/s", True),
    "count": ("count", True),
    "errors": ("errors", False),
    "timeouts": ("timeouts", False),
}


def _suffix(name: str) -> str:
    suffix = name.rsplit("_", 1)[-1]
    if suffix not in _UNITS:
        raise ValueError(f"measurement {name!r} must end in one of _{', _'.join(_UNITS)}")
    return suffix


def unit_of(name: str) -> str:
    return _UNITS[_suffix(name)][0]


def higher_is_better(name: str) -> bool:
    return _UNITS[_suffix(name)][1]


def counts_errors(name: str) -> bool:
    """Whether ``name`` counts errors: above 0 for nbserver, the benchmark exits 1."""
    return _suffix(name) == "errors"


def _add(workload: Workload) -> None:
    if workload.name in WORKLOADS:
        raise ValueError(f"workload {workload.name!r} registered twice")
    WORKLOADS[workload.name] = workload


def register(name: str, description: str, setup: Setup | None = None) -> Callable[[ServerFunc], ServerFunc]:
    """Decorator adding a server workload to :data:`WORKLOADS` (run in registration order).

    ``setup(root_dir, cfg)`` runs before the server starts, in the fresh root directory.
    """

    def deco(func: ServerFunc) -> ServerFunc:
        _add(Workload(name, description, func=func, setup=setup))
        return func

    return deco


def register_local(name: str, description: str) -> Callable[[LocalFunc], LocalFunc]:
    """Decorator adding a workload that starts no server: ``fn(spec, cfg)``, once per target
    and repetition, interleaved like the others."""

    def deco(func: LocalFunc) -> LocalFunc:
        _add(Workload(name, description, local=func))
        return func

    return deco


# --------------------------------------------------------------------------------------------
# Helpers shared by workloads


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _checked_get(conn: http.client.HTTPConnection, target: RunningTarget, path: str) -> None:
    """One GET on ``conn`` (kept alive: the body is read fully); raises unless it is a 200."""
    conn.request("GET", path, headers=target.headers())
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"GET {path} -> HTTP {resp.status}: {body[:200]!r}")


def call(
    conn: http.client.HTTPConnection,
    target: RunningTarget,
    method: str,
    path: str,
    body: object = None,
) -> tuple[int, bytes]:
    """One request on ``conn`` (kept alive: the body is read fully): ``(status, body)``.

    ``body``: ``bytes`` are sent as they are, anything else but ``None`` as JSON.
    """
    headers = target.headers()
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def call_json(
    conn: http.client.HTTPConnection,
    target: RunningTarget,
    method: str,
    path: str,
    body: object = None,
    expect: tuple[int, ...] = (200,),
) -> Any:
    """:func:`call`, raising unless the status is in ``expect``; the parsed JSON body (or None)."""
    status, raw = call(conn, target, method, path, body)
    if status not in expect:
        raise RuntimeError(f"{method} {path} -> HTTP {status}: {raw[:200]!r}")
    return json.loads(raw) if raw else None


def sequential_latency(target: RunningTarget, path: str, n: int, warmup: int) -> list[float]:
    """Latencies in ms of ``n`` sequential GETs on one keep-alive connection (after warm-up)."""
    conn = target.connection()
    try:
        for _ in range(warmup):
            _checked_get(conn, target, path)
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            _checked_get(conn, target, path)
            samples.append((time.perf_counter() - t0) * 1000.0)
        return samples
    finally:
        conn.close()


@dataclass(frozen=True)
class Throughput:
    requests: int
    wall_s: float
    server_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s

    @property
    def server_cpu_per_req_us(self) -> float:
        return self.server_cpu_s / self.requests * 1e6


def throughput(target: RunningTarget, path: str, total: int, clients: int) -> Throughput:
    """``total`` GETs spread over ``clients`` threads, each with its own keep-alive connection.

    Every client connects and sends one untimed request first; the clock starts when all are
    ready (a barrier) and stops when the last one finishes. Also returns the server's CPU time
    spent in the timed window (from ``/proc``; resolution one clock tick, usually 10 ms).
    """
    per_client = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]

    def work(conn: Any, c: int) -> None:
        for _ in range(per_client[c]):
            _checked_get(conn, target, path)

    wall, cpu = run_clients(target, clients, lambda conn, c: _checked_get(conn, target, path), work)
    return Throughput(total, wall, cpu)


def run_clients(
    target: RunningTarget,
    clients: int,
    warmup: Callable[[Any, int], None],
    work: Callable[[Any, int], None],
) -> tuple[float, float]:
    """``clients`` threads, each with its own keep-alive connection: ``warmup(conn, c)`` untimed,
    then, once all are ready (a barrier), ``work(conn, c)``. Returns the wall seconds and the
    server's CPU seconds of the timed part (from ``/proc``; one clock tick, usually 10 ms).

    Raises:
        RuntimeError: some client failed (the first error is named).
    """
    barrier = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def client(c: int) -> None:
        conn = target.connection()
        try:
            try:
                warmup(conn, c)
            finally:
                barrier.wait()
            work(conn, c)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    cpu0 = target.cpu_seconds()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu = target.cpu_seconds() - cpu0
    if errors:
        raise RuntimeError(f"{len(errors)}/{clients} clients failed; first: {errors[0]!r}")
    return wall, cpu


def _http_suite(
    target: RunningTarget, cfg: RunConfig, prefix: str, path: str, scale: float = 1.0
) -> Measurements:
    """Sequential latency (median, p99) then concurrent throughput and server CPU per request."""
    lat = sequential_latency(target, path, max(1, round(cfg.seq_requests * scale)), cfg.warmup)
    n = max(cfg.concurrency, round(cfg.throughput_requests * scale))
    tp = throughput(target, path, n, cfg.concurrency)
    values = [statistics.median(lat), percentile(lat, 99), tp.rps, tp.server_cpu_per_req_us]
    return dict(zip(_http_suite_keys(prefix, cfg), values, strict=True))


def _http_suite_keys(prefix: str, cfg: RunConfig) -> list[str]:
    c = cfg.concurrency
    return [
        f"{prefix}_seq_median_ms",
        f"{prefix}_seq_p99_ms",
        f"{prefix}_c{c}_rps",
        f"{prefix}_c{c}_server_cpu_per_req_us",
    ]


# --------------------------------------------------------------------------------------------
# Built-in workloads


@register(
    "startup",
    "spawn -> first 200 on GET /api/status; RSS after start-up and after a throughput burst",
)
def startup(target: RunningTarget, cfg: RunConfig) -> Measurements:
    if target.history:
        raise RuntimeError(f"startup must run first on a fresh process (ran: {target.history})")
    rss_start = target.rss_mb()
    throughput(target, "/api/status", cfg.startup_load_requests, cfg.concurrency)
    target.check_alive()
    rss_load = target.rss_mb()
    # background work after start-up (e.g. a deferred import) has finished
    target.wait_idle(cfg.settle_window_s, cfg.settle_quiet, timeout=cfg.settle_timeout_s)
    return {
        "startup_ms": target.startup_s * 1000.0,
        "rss_after_start_mb": rss_start,
        "rss_after_load_mb": rss_load,
        "rss_settled_mb": target.rss_mb(),
    }


@register(
    "status",
    "GET /api/status (and /api/kernelspecs if served): sequential latency, concurrent throughput",
)
def status(target: RunningTarget, cfg: RunConfig) -> Measurements:
    results = _http_suite(target, cfg, "status", "/api/status")
    code, _ = target.get("/api/kernelspecs")
    if code == 200:
        results.update(_http_suite(target, cfg, "kernelspecs", "/api/kernelspecs", cfg.heavy_scale))
    else:
        na = NotApplicable(f"GET /api/kernelspecs -> HTTP {code}")
        for key in _http_suite_keys("kernelspecs", cfg):
            results[key] = na
    target.check_alive()
    return results


# Registers the workloads of the other modules, after these (registry order = run order).
from . import workloads_contents, workloads_kernels  # noqa: E402, F401

# isort: split
from . import workloads_load  # noqa: E402, F401  (issue 15: load)

# isort: split
# (one module per line: mypy does not resolve the second of two in one `from . import`
# when it imports the first)
from . import workloads_status_load  # noqa: E402, F401

# isort: split
from . import workloads_hub  # noqa: E402, F401  (issue 17: a hub for a team)

# isort: split
from . import workloads_codecs  # noqa: E402, F401  (workload 10 of the issue: last)
