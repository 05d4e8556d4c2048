"""Kernel workloads: start-up, websocket round trips, an output flood, concurrent sessions.

Targets are driven over REST and the kernel websocket only (``kernelclient.KernelSocket``: v1
subprotocol when the server selects it, ``TCP_NODELAY`` on the client socket). ``ws_rtt`` and
``flood`` also measure the *floor*: the same requests made straight over ZMQ, by a client as lean
as the websocket one, to a kernel the benchmark starts itself (no server in between), in the
same run. ``ws_rtt``
alternates blocks of round trips between the two kernels; ``flood`` runs the floor after the
target's own kernel has been deleted. The two kernels are started side by side (not timed).

Every kernel a workload starts is deleted again (``DELETE /api/kernels/<id>``), also after an
error, so the next workload sees an idle server. A target without ``POST /api/kernels``
(jupyverse) gets its kernels from ``POST /api/sessions`` instead, one session per kernel; its
``DELETE /api/kernels/<id>`` removes the session too.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator

from .kernelclient import (
    KERNEL_NAME,
    DirectKernel,
    FloodResult,
    KernelSocket,
    direct_kernel,
    missing_ranges,
    received_lines,
)
from .targets import RunningTarget
from .workloads import Measurements, NotApplicable, RunConfig, call, call_json, percentile, register

__all__: list[str] = []

RTT_BLOCK = 25  # ws_rtt alternates target and floor round trips in blocks of this many
KERNEL_TIMEOUT_S = 120.0


def start_kernel(target: RunningTarget) -> str:
    """Start a ``python3`` kernel; its id. ``POST /api/kernels``, or for a target with
    ``kernels_via_sessions`` ``POST /api/sessions`` on a fresh notebook path."""
    conn = target.connection(timeout=KERNEL_TIMEOUT_S)
    try:
        if not target.spec.kernels_via_sessions:
            model = call_json(conn, target, "POST", "/api/kernels", {"name": KERNEL_NAME}, (200, 201))
            return str(model["id"])
        path = f"kernel-{uuid.uuid4().hex[:12]}.ipynb"
        body = {"path": path, "name": path, "type": "notebook", "kernel": {"name": KERNEL_NAME}}
        model = call_json(conn, target, "POST", "/api/sessions", body, (201,))
        return str(model["kernel"]["id"])
    finally:
        conn.close()


def delete_kernel(target: RunningTarget, kernel_id: str) -> None:
    conn = target.connection(timeout=KERNEL_TIMEOUT_S)
    try:
        call_json(conn, target, "DELETE", f"/api/kernels/{kernel_id}", None, (204,))
    finally:
        conn.close()


@contextlib.asynccontextmanager
async def kernel_socket(target: RunningTarget) -> AsyncIterator[KernelSocket]:
    """POST a kernel, open its websocket, wait for a kernel_info_reply; always DELETE it after.
    The blocking HTTP calls run in a thread, so a floor kernel can start meanwhile."""
    kernel_id = await asyncio.to_thread(start_kernel, target)
    try:
        ws = await KernelSocket.open(target, kernel_id)
        try:
            await ws.request("kernel_info_request", {}, timeout=KERNEL_TIMEOUT_S)
            yield ws
        finally:
            await ws.aclose()
    finally:
        await asyncio.to_thread(delete_kernel, target, kernel_id)


async def start_side_by_side(
    floor_stack: contextlib.AsyncExitStack[bool | None],
    target_stack: contextlib.AsyncExitStack[bool | None],
    target: RunningTarget,
) -> tuple[DirectKernel, KernelSocket]:
    """Start the floor kernel and a target kernel at the same time (set-up, not timed); each is
    stopped when its stack closes, also if the other failed to start."""
    started = await asyncio.gather(
        floor_stack.enter_async_context(direct_kernel()),
        target_stack.enter_async_context(kernel_socket(target)),
        return_exceptions=True,
    )
    for outcome in started:
        if isinstance(outcome, BaseException):
            raise outcome
    direct, ws = started
    assert isinstance(direct, DirectKernel) and isinstance(ws, KernelSocket)
    return direct, ws


# --------------------------------------------------------------------------------------------
# kernel_start


@register(
    "kernel_start",
    "POST /api/kernels -> websocket open -> first kernel_info_reply; then DELETE (full: 5x, quick: 1x)",
)
def kernel_start(target: RunningTarget, cfg: RunConfig) -> Measurements:
    post_ms: list[float] = []
    ready_s: list[float] = []
    delete_ms: list[float] = []

    async def once() -> None:
        t0 = time.perf_counter()
        kernel_id = start_kernel(target)
        post_ms.append((time.perf_counter() - t0) * 1000.0)
        deleted = False
        try:
            ws = await KernelSocket.open(target, kernel_id, timeout=KERNEL_TIMEOUT_S)
            try:
                await ws.request("kernel_info_request", {}, timeout=KERNEL_TIMEOUT_S)
                ready_s.append(time.perf_counter() - t0)
            finally:
                await ws.aclose()
            t1 = time.perf_counter()
            delete_kernel(target, kernel_id)
            deleted = True
            delete_ms.append((time.perf_counter() - t1) * 1000.0)
        finally:
            if not deleted:
                delete_kernel(target, kernel_id)

    async def all_rounds() -> None:
        for _ in range(cfg.kernel_start_repeats):
            await once()

    asyncio.run(all_rounds())
    return {
        "kernel_post_ms": statistics.median(post_ms),
        "kernel_ready_s": statistics.median(ready_s),
        "kernel_delete_ms": statistics.median(delete_ms),
    }


# --------------------------------------------------------------------------------------------
# ws_rtt


@register(
    "ws_rtt",
    "500 sequential kernel_info round trips on one websocket (quick: 100), and the same straight "
    "over ZMQ (floor; and with jupyter_client's client)",
)
def ws_rtt(target: RunningTarget, cfg: RunConfig) -> Measurements:
    n = cfg.ws_rtt_requests

    async def measure() -> tuple[list[float], list[float], list[float]]:
        # Both kernels stay up and the round trips alternate in blocks, so that the floor and
        # the target see the same machine (a single 2-core VM drifts by a millisecond or more).
        samples: list[float] = []
        floor: list[float] = []
        with_jupyter_client: list[float] = []
        async with contextlib.AsyncExitStack() as stack:
            direct, ws = await start_side_by_side(stack, stack, target)
            await ws.rtt(cfg.ws_rtt_warmup)
            await direct.rtt(cfg.ws_rtt_warmup)
            await direct.jupyter_client_rtt(cfg.ws_rtt_warmup)
            for start in range(0, n, RTT_BLOCK):
                count = min(RTT_BLOCK, n - start)
                samples += await ws.rtt(count)
                floor += await direct.rtt(count)
                with_jupyter_client += await direct.jupyter_client_rtt(count)
        return samples, floor, with_jupyter_client

    samples, floor, with_jupyter_client = asyncio.run(measure())
    median, floor_median = statistics.median(samples), statistics.median(floor)
    return {
        "ws_rtt_median_ms": median,
        "ws_rtt_p99_ms": percentile(samples, 99),
        "ws_rtt_zmq_floor_median_ms": floor_median,
        "ws_rtt_over_floor_ms": median - floor_median,
        "ws_rtt_jupyter_client_median_ms": statistics.median(with_jupyter_client),
    }


# --------------------------------------------------------------------------------------------
# flood


def flood_code(lines: int) -> str:
    """A cell printing ``0 .. lines-1``, one line and one flush (one ``stream`` message) each."""
    return f"for i in range({lines}):\n    print(i, flush=True)\n"


@register(
    "flood",
    "a cell printing 20,000 lines with flush (quick: 2,000): time to idle, msg/s, lines received; ZMQ floor",
)
def flood(target: RunningTarget, cfg: RunConfig) -> Measurements:
    code = flood_code(cfg.flood_lines)

    async def measure() -> tuple[FloodResult, FloodResult]:
        # Both kernels start together; the floor kernel then waits, idle, until the target's
        # kernel has run its flood and has been deleted.
        async with contextlib.AsyncExitStack() as floor_stack:
            async with contextlib.AsyncExitStack() as target_stack:
                direct, ws = await start_side_by_side(floor_stack, target_stack, target)
                await ws.flood("pass")  # warm-up: first execute of the kernel
                result = await ws.flood(code)
            await direct.flood("pass")
            floor = await direct.flood(code)
        return result, floor

    result, floor = asyncio.run(measure())
    lines = received_lines(result.stdout, cfg.flood_lines)
    floor_lines = received_lines(floor.stdout, cfg.flood_lines)
    for who, got, res in ((target.name, lines, result), ("zmq floor", floor_lines, floor)):
        if res.idle_lost:
            print(
                f"  note: {who}: flood: status idle never arrived (timed to the last message)",
                file=sys.stderr,
            )
        if len(got) < cfg.flood_lines:  # not a failure: reported, with a hint where they went
            notice = " ".join("".join(res.stderr).split())[:160]
            print(
                f"  note: {who}: flood received {len(got)}/{cfg.flood_lines} distinct lines in "
                f"{res.messages} messages; missing: {missing_ranges(got, cfg.flood_lines)}; "
                f"stderr: {notice or '(none)'}",
                file=sys.stderr,
                flush=True,
            )
    return {
        "flood_s": result.seconds,
        "flood_mps": result.msgs_per_s,
        "flood_lines_count": float(len(lines)),
        "flood_zmq_floor_s": floor.seconds,
        "flood_zmq_floor_mps": floor.msgs_per_s,
        "flood_zmq_floor_lines_count": float(len(floor_lines)),
    }


# --------------------------------------------------------------------------------------------
# sessions10


@register(
    "sessions10",
    "10 concurrent POST /api/sessions (quick: 3), each starting a kernel, until all answer "
    "kernel_info; DELETE",
)
def sessions10(target: RunningTarget, cfg: RunConfig) -> Measurements:
    n = cfg.sessions_concurrency
    names = [
        f"sessions_c{n}_wall_s",
        f"sessions_c{n}_post_median_s",
        f"sessions_c{n}_ready_s",
        f"sessions_c{n}_rss_mb",
        f"sessions_c{n}_delete_wall_s",
    ]
    code, _ = target.get("/api/sessions")
    if code == 404:
        na = NotApplicable("GET /api/sessions -> HTTP 404 (no sessions service)")
        return dict.fromkeys(names, na)
    barrier = threading.Barrier(n + 1)
    post_s: list[float] = []
    ids: list[str] = []
    kernel_ids: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def create(i: int) -> None:
        conn = target.connection(timeout=KERNEL_TIMEOUT_S)
        body = {
            "path": f"s{i}.ipynb",
            "name": f"s{i}.ipynb",
            "type": "notebook",
            "kernel": {"name": KERNEL_NAME},
        }
        try:
            try:
                conn.connect()
            finally:
                barrier.wait()
            t0 = time.perf_counter()
            model = call_json(conn, target, "POST", "/api/sessions", body, (201,))
            with lock:
                post_s.append(time.perf_counter() - t0)
                ids.append(str(model["id"]))
                kernel_ids.append(str(model["kernel"]["id"]))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            conn.close()

    def delete(session_id: str) -> None:
        conn = target.connection(timeout=KERNEL_TIMEOUT_S)
        try:
            status, body = call(conn, target, "DELETE", f"/api/sessions/{session_id}")
            if status != 204:
                errors.append(RuntimeError(f"DELETE session -> HTTP {status}: {body[:200]!r}"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    async def ready(kernel_id: str) -> None:
        ws = await KernelSocket.open(target, kernel_id, timeout=KERNEL_TIMEOUT_S)
        try:
            await ws.request("kernel_info_request", {}, timeout=KERNEL_TIMEOUT_S)
        finally:
            await ws.aclose()

    async def all_ready() -> None:
        await asyncio.gather(*(ready(kid) for kid in kernel_ids))

    threads = [threading.Thread(target=create, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ready_s = rss = math.nan
    if not errors:
        try:
            asyncio.run(all_ready())
            ready_s = time.perf_counter() - t0
            rss = target.tree_rss_mb()
        except Exception as exc:  # still delete what was created
            errors.append(exc)
    t1 = time.perf_counter()
    deleters = [threading.Thread(target=delete, args=(sid,), daemon=True) for sid in ids]
    for t in deleters:
        t.start()
    for t in deleters:
        t.join()
    delete_wall = time.perf_counter() - t1
    if errors:
        raise RuntimeError(f"{len(errors)} session requests failed; first: {errors[0]!r}")
    _check_no_kernel_left(target)
    values = [wall, statistics.median(post_s), ready_s, rss, delete_wall]
    return dict(zip(names, values, strict=True))


def kernels_left(target: RunningTarget, grace_s: float = 10.0) -> tuple[int, int]:
    """Wait up to ``grace_s`` until ``GET /api/kernels`` is empty and no kernel process (a
    descendant of the server running ipykernel) is left; ``(kernels listed, kernel processes)``
    at the end: ``(0, 0)`` when everything is gone."""
    deadline = time.monotonic() + grace_s
    while True:
        conn = target.connection()
        try:
            listed = call_json(conn, target, "GET", "/api/kernels")
        finally:
            conn.close()
        procs = [cmd for cmd in target.descendants().values() if "ipykernel" in cmd]
        if (not listed and not procs) or time.monotonic() > deadline:
            return len(listed), len(procs)
        time.sleep(0.1)


def _check_no_kernel_left(target: RunningTarget, grace_s: float = 10.0) -> None:
    """Raise unless, within ``grace_s``, ``GET /api/kernels`` is empty and no kernel process
    (a descendant of the server running ipykernel) is left."""
    listed, procs = kernels_left(target, grace_s)
    if listed or procs:
        raise RuntimeError(
            f"after deleting the sessions, {listed} kernels are listed and {procs} "
            f"kernel processes are left (after {grace_s:.0f} s)"
        )
