"""``status_under_load`` (issue 15): how long ``GET /api/status`` waits while the server is busy.

A separate client (:class:`~benchmarks.poller.StatusPoller`, a process of its own) polls
``GET /api/status`` every 10 ms on a keep-alive connection, first for a second with nothing else
going on (the baseline), then while, at the same time,

* a thread of the benchmark PUTs a large notebook (the ``notebook`` workload's ~10 MB, 2,000
  cells; quick: ~1 MB, 200 cells) to ``load.ipynb``, again and again, and
* a kernel prints 20,000 lines (quick: 1,000), one ``stream`` message each, to a websocket
  client (``KernelSocket.flood``, as in ``flood``).

The loaded window runs from the start of both to the end of the flood (its ``status: idle``)
and of the PUT in flight at that moment. The goal for nbserver, a p99 of at most 50 ms under
this load, is printed in the run's note, not asserted. Poll and PUT failures are counted in
``status_load_errors``; the run fails only if the kernel or the flood does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import threading
import time

from . import workloads_contents, workloads_kernels  # names looked up at call time (see loadstats)
from .kernelclient import FloodResult, received_lines
from .loadstats import ErrorLog, note
from .poller import PollPhase, StatusPoller
from .targets import RunningTarget
from .workloads import Measurements, RunConfig, call, percentile, register

__all__: list[str] = []

LOAD_NOTEBOOK = "load.ipynb"
GOAL_P99_MS = 50.0


def _put_loop(
    target: RunningTarget,
    body: bytes,
    stop: threading.Event,
    put_ms: list[float],
    errors: ErrorLog,
    count: int | None = None,
) -> None:
    """PUT ``body`` to :data:`LOAD_NOTEBOOK` until ``stop`` is set (the PUT in flight finishes),
    or ``count`` times; one keep-alive connection, opened again after an error."""
    conn = target.connection(timeout=120.0)
    try:
        for _ in itertools.repeat(None) if count is None else range(count):
            if stop.is_set():
                break
            t0 = time.perf_counter()
            try:
                status, reply = call(conn, target, "PUT", f"/api/contents/{LOAD_NOTEBOOK}", body)
            except Exception as exc:
                errors.add("PUT", exc)
                conn.close()
                conn = target.connection(timeout=120.0)
                continue
            if status in (200, 201):
                put_ms.append((time.perf_counter() - t0) * 1000.0)
            else:
                errors.add("PUT", f"HTTP {status}: {reply[:120]!r}")
    finally:
        conn.close()


def _phase_stats(phase: PollPhase, errors: ErrorLog, what: str) -> list[float]:
    if phase.errors:
        errors.add(f"GET /api/status ({what}; {phase.errors}x)", phase.first_error or "?", phase.errors)
    if not phase.latencies_ms:
        raise RuntimeError(f"no GET /api/status answered ({what}): {phase.first_error}")
    return phase.latencies_ms


@register(
    "status_under_load",
    "GET /api/status every 10 ms from another process while a ~10 MB notebook is PUT again and "
    "again and a kernel floods 20,000 lines (quick: ~1 MB, 1,000): p50/p99/max latency",
)
def status_under_load(target: RunningTarget, cfg: RunConfig) -> Measurements:
    notebook = json.loads(workloads_contents.make_notebook(cfg.notebook_cells))
    body = json.dumps(
        {"type": "notebook", "format": "json", "path": LOAD_NOTEBOOK, "content": notebook}
    ).encode()
    code = workloads_kernels.flood_code(cfg.status_flood_lines)
    errors = ErrorLog()
    put_ms: list[float] = []

    async def measure(poller: StatusPoller) -> tuple[PollPhase, PollPhase, FloodResult, float]:
        async with workloads_kernels.kernel_socket(target) as ws:
            await ws.flood("pass")  # warm-up: the kernel's first execute
            # warm-up: the first PUT creates the file, and a server that imports nbformat (and
            # builds its validator) on first use pays for that here (`notebook` times it)
            await asyncio.to_thread(_put_loop, target, body, threading.Event(), [], errors, 1)
            poller.go()
            await asyncio.sleep(cfg.status_idle_s)
            idle = poller.stop()
            stop = threading.Event()
            putter = threading.Thread(
                target=_put_loop, args=(target, body, stop, put_ms, errors), daemon=True
            )
            poller.go()
            t0 = time.perf_counter()
            putter.start()
            try:
                flood = await ws.flood(code)
            finally:
                stop.set()
                await asyncio.to_thread(putter.join)
            window = time.perf_counter() - t0
            loaded = poller.stop()
        return idle, loaded, flood, window

    try:
        with StatusPoller(target.host, target.port, target.headers(), cfg.status_poll_interval_s) as poller:
            idle, loaded, flood, window = asyncio.run(measure(poller))
    finally:
        conn = target.connection()
        try:
            call(conn, target, "DELETE", f"/api/contents/{LOAD_NOTEBOOK}")
        finally:
            conn.close()
    lines = len(received_lines(flood.stdout, cfg.status_flood_lines))
    lost = ""
    if lines < cfg.status_flood_lines:  # reported, not an error (as in `flood`)
        notice = " ".join("".join(flood.stderr).split())[:120]
        lost = f" (stderr: {notice or '(none)'})"
    if flood.idle_lost:
        lost += " (status: idle never arrived)"
    idle_ms = _phase_stats(idle, errors, "baseline")
    loaded_ms = _phase_stats(loaded, errors, "under load")
    p99 = percentile(loaded_ms, 99)
    goal = f"; goal p99 <= {GOAL_P99_MS:.0f} ms: {'met' if p99 <= GOAL_P99_MS else 'missed'}"
    note(
        target,
        f"status_under_load: {len(loaded_ms)} polls in {window:.1f} s, p99 {p99:.1f} ms, max "
        f"{max(loaded_ms):.1f} ms (baseline p99 {percentile(idle_ms, 99):.1f} ms){goal}; "
        f"{len(put_ms)} PUTs of {len(body) / 2**20:.1f} MiB; flood {lines}/{cfg.status_flood_lines} "
        f"lines in {flood.seconds:.1f} s{lost}; {errors.summary()}",
    )
    results: Measurements = {
        "status_load_idle_median_ms": statistics.median(idle_ms),
        "status_load_idle_p99_ms": percentile(idle_ms, 99),
        "status_load_median_ms": statistics.median(loaded_ms),
        "status_load_p99_ms": p99,
        "status_load_max_ms": max(loaded_ms),
        "status_load_errors": float(errors.count),
        "status_load_flood_s": flood.seconds,
        "status_load_flood_lines_count": float(lines),
    }
    if put_ms:
        results["status_load_put_median_ms"] = statistics.median(put_ms)
    return results
