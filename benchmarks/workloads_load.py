"""Load workloads (issue 15): many websockets at once, many kernels under a steady request rate.

Both workloads count what went wrong instead of failing on it: a server that drops a reply, closes
a websocket or fails to start a kernel gets a number in ``..._errors`` / ``..._timeouts``, and
the run goes on (and every kernel is still deleted). A one-line summary per run goes to stderr,
with the first error messages. ``python -m benchmarks`` exits 1 when nbserver reports errors.

* ``ws_many``: kernels x websockets per kernel (10 x 10 = 100; quick: 2 x 5), all open at once,
  each running its executes one after the other, all clients at the same time. Each websocket
  has its own ``session_id``, so the server has to route every reply to the right client, while
  each execute's iopub messages reach all the websockets of its kernel.
* ``kernels64``: 64 kernels (quick: 8), one websocket each, a ``kernel_info_request`` sent to
  each at 10/s for 60 s (quick: 5 s) on a fixed schedule (open loop: a slow reply does not delay
  the next request), the kernels' schedules staggered over the period.

The kernels are started through the REST API (``start_kernel``) and deleted at the end
(``delete_kernel``), at most :data:`DELETE_CONCURRENCY` at a time, then the server must have no
kernel listed and no kernel process left.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from . import workloads_kernels as wk  # names looked up at call time (see loadstats)
from .kernelclient import KernelSocket
from .loadstats import CpuUse, ErrorLog, ReplyTracker, note
from .targets import RunningTarget
from .workloads import Measurements, RunConfig, percentile, register

__all__ = ["delete_kernels"]

EXECUTE_TIMEOUT_S = 30.0  # ws_many: an execute's reply and idle must both arrive within this
DELETE_CONCURRENCY = 16
SHUTDOWN_GRACE_S = 60.0  # after the DELETEs: time for the last kernel processes to go
RECV_POLL_S = 0.2

T = TypeVar("T")
U = TypeVar("U")


def _parallel(fn: Callable[[U], T], items: Sequence[U], workers: int) -> list[T | BaseException]:
    """``fn(item)`` for every item in a thread pool; each result or the exception it raised."""

    def guarded(item: U) -> T | BaseException:
        try:
            return fn(item)
        except Exception as exc:
            return exc

    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(guarded, items))


def delete_kernels(target: RunningTarget, kernel_ids: Sequence[str], errors: ErrorLog) -> float:
    """DELETE every kernel (:data:`DELETE_CONCURRENCY` at a time), then wait up to
    :data:`SHUTDOWN_GRACE_S` until none is listed and no kernel process is left. Failed DELETEs
    and leftovers are added to ``errors``; never raises. Returns the seconds it all took."""
    t0 = time.perf_counter()
    for outcome in _parallel(lambda kid: wk.delete_kernel(target, kid), kernel_ids, DELETE_CONCURRENCY):
        if isinstance(outcome, BaseException):
            errors.add("DELETE /api/kernels/<id>", outcome)
    try:
        listed, procs = wk.kernels_left(target, SHUTDOWN_GRACE_S)
    except Exception as exc:
        errors.add("GET /api/kernels after the DELETEs", exc)
    else:
        if listed or procs:
            errors.add(
                "shutdown",
                f"{listed} kernels listed and {procs} kernel processes left {SHUTDOWN_GRACE_S:.0f} s "
                "after the DELETEs",
            )
    return time.perf_counter() - t0


async def _close_all(sockets: Sequence[KernelSocket]) -> None:
    await asyncio.gather(*(ws.aclose() for ws in sockets))


# --------------------------------------------------------------------------------------------
# ws_many


@register(
    "ws_many",
    "100 websockets (10 kernels x 10) each running 20 executes at once (quick: 2 x 5, 5 "
    "executes): errors, replies, wall time, latency per execute",
)
def ws_many(target: RunningTarget, cfg: RunConfig) -> Measurements:
    n_kernels, per_kernel, executes = cfg.ws_many_kernels, cfg.ws_many_sockets, cfg.ws_many_executes
    n = n_kernels * per_kernel
    errors = ErrorLog()
    latencies_ms: list[float] = []
    replies = 0
    kernel_ids: list[str] = []
    for outcome in _parallel(lambda _: wk.start_kernel(target), range(n_kernels), n_kernels):
        if isinstance(outcome, BaseException):
            errors.add("POST /api/kernels", outcome)
        else:
            kernel_ids.append(outcome)

    async def client(ws: KernelSocket, c: int, go: asyncio.Event, done: Callable[[], None]) -> None:
        nonlocal replies
        await go.wait()
        try:
            for i in range(executes):
                t0 = time.perf_counter()
                try:
                    status = await ws.execute(f"{c} * {i}", timeout=EXECUTE_TIMEOUT_S)
                except TimeoutError as exc:
                    errors.add(f"websocket {c} execute {i}", exc)
                    continue
                except Exception as exc:  # the websocket closed: the rest of its executes are lost
                    errors.add(f"websocket {c} execute {i}", exc)
                    return
                latencies_ms.append((time.perf_counter() - t0) * 1000.0)
                replies += 1
                if status != "ok":
                    errors.add(f"websocket {c} execute {i}", f"execute_reply status {status!r}")
        finally:
            done()

    async def measure() -> tuple[float, int]:
        t_open = time.perf_counter()
        opened = await asyncio.gather(
            *(
                KernelSocket.open(target, kid, wk.KERNEL_TIMEOUT_S)
                for kid in kernel_ids
                for _ in range(per_kernel)
            ),
            return_exceptions=True,
        )
        open_s = time.perf_counter() - t_open
        sockets = [ws for ws in opened if isinstance(ws, KernelSocket)]
        for outcome in opened:
            if isinstance(outcome, BaseException):
                errors.add("websocket open", outcome)
        go, all_done = asyncio.Event(), asyncio.Event()
        finished = 0

        def done() -> None:
            nonlocal finished
            finished += 1
            if finished == len(sockets):
                all_done.set()

        async def run(ws: KernelSocket, c: int) -> None:
            await client(ws, c, go, done)
            await ws.drain(all_done)  # keep reading the other clients' iopub until all are done

        try:
            tasks = [asyncio.ensure_future(run(ws, c)) for c, ws in enumerate(sockets)]
            use.start()
            go.set()
            if sockets:
                await all_done.wait()
            use.stop()
            await asyncio.gather(*tasks)
        finally:
            await _close_all(sockets)
        return open_s, len(sockets)

    use = CpuUse(target)
    try:
        open_s, opened = asyncio.run(measure())
    finally:
        shutdown_s = delete_kernels(target, kernel_ids, errors)
    expected = n * executes
    note(
        target,
        f"ws_many: {len(kernel_ids)}/{n_kernels} kernels, {opened}/{n} websockets, "
        f"{replies}/{expected} replies, {errors.summary()}; {use.summary()}",
    )
    prefix = f"ws{n}"
    results: Measurements = {
        f"{prefix}_errors": float(errors.count),
        f"{prefix}_replies_count": float(replies),
        f"{prefix}_open_s": open_s,
        f"{prefix}_wall_s": use.wall_s,
        f"{prefix}_server_cpu_per_exec_us": use.server_s / max(1, replies) * 1e6,
        f"{prefix}_shutdown_s": shutdown_s,
    }
    if latencies_ms:
        results[f"{prefix}_exec_median_ms"] = statistics.median(latencies_ms)
        results[f"{prefix}_exec_p99_ms"] = percentile(latencies_ms, 99)
    return results


# --------------------------------------------------------------------------------------------
# kernels64


async def _paced(
    ws: KernelSocket,
    tracker: ReplyTracker,
    schedule: Sequence[float],
    lags_ms: list[float],
    errors: ErrorLog,
) -> None:
    """Send a ``kernel_info_request`` at each time of ``schedule`` (``perf_counter`` seconds)
    and read the replies until every request is answered or ``timeout_s`` has passed since the
    last one was sent. A websocket that closes, or a send that fails, is one error (and ends
    this kernel's part)."""
    sending, last_sent = True, time.perf_counter()

    async def send() -> None:
        nonlocal sending, last_sent
        try:
            for at in schedule:
                delay = at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                msg_id = uuid.uuid4().hex
                now = time.perf_counter()
                lags_ms.append(max(0.0, now - at) * 1000.0)
                tracker.sent(msg_id, now)  # before the send: its reply may be read during it
                last_sent = now
                await ws.send("shell", "kernel_info_request", {}, msg_id=msg_id)
        finally:
            sending = False

    async def receive() -> None:
        while sending or (tracker.pending and time.perf_counter() - last_sent < tracker.timeout_s):
            try:
                msg = await ws.recv(RECV_POLL_S)
            except TimeoutError:
                continue
            if msg.channel == "shell":
                tracker.received(msg.parent_id, time.perf_counter())

    sender, receiver = asyncio.ensure_future(send()), asyncio.ensure_future(receive())
    try:
        await asyncio.gather(sender, receiver)
    except Exception as exc:
        errors.add(f"websocket {ws.session[:8]}", exc)
    finally:
        for task in (sender, receiver):
            task.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)


@register(
    "kernels64",
    "64 kernels (quick: 8), one websocket each, kernel_info_request at 10/s per kernel for 60 s "
    "(quick: 5 s): kernels started, errors, timeouts (> 5 s), replies, latency",
)
def kernels64(target: RunningTarget, cfg: RunConfig) -> Measurements:
    n, rate, duration = cfg.load_kernels, cfg.load_rate, cfg.load_duration_s
    per_kernel = round(rate * duration)
    errors = ErrorLog()
    kernel_ids: list[str] = []
    trackers: list[ReplyTracker] = []
    lags_ms: list[float] = []

    all_up = asyncio.Event()
    draining: list[asyncio.Future[None]] = []

    async def bring_up(limit: asyncio.Semaphore) -> KernelSocket | None:
        """POST a kernel, open its websocket, wait for kernel_info: the kernel has *started*.
        Its websocket is then read (and its messages dropped) until all kernels are up: a
        client that stops reading for a minute could miss the server's pings."""
        async with limit:
            try:
                kid = await asyncio.to_thread(wk.start_kernel, target)
            except Exception as exc:
                errors.add("POST /api/kernels", exc)
                return None
            kernel_ids.append(kid)
            try:
                ws = await KernelSocket.open(target, kid, wk.KERNEL_TIMEOUT_S)
            except Exception as exc:
                errors.add("websocket open", exc)
                return None
            try:
                await ws.request("kernel_info_request", {}, timeout=wk.KERNEL_TIMEOUT_S)
            except Exception as exc:
                await ws.aclose()
                errors.add("first kernel_info_request", exc)
                return None
            draining.append(asyncio.ensure_future(ws.drain(all_up)))
            return ws

    async def measure() -> tuple[float, float, int]:
        limit = asyncio.Semaphore(cfg.load_start_concurrency)
        t_start = time.perf_counter()
        started = await asyncio.gather(*(bring_up(limit) for _ in range(n)))
        start_s = time.perf_counter() - t_start
        sockets = [ws for ws in started if ws is not None]
        all_up.set()
        await asyncio.gather(*draining)
        try:
            rss = target.tree_rss_mb()
            t0 = time.perf_counter() + 0.2  # the first request; the kernels' schedules are staggered
            runs = []
            for k, ws in enumerate(sockets):
                tracker = ReplyTracker(cfg.load_reply_timeout_s)
                trackers.append(tracker)
                first = t0 + k / (len(sockets) * rate)
                schedule = [first + i / rate for i in range(per_kernel)]
                runs.append(_paced(ws, tracker, schedule, lags_ms, errors))
            use.start()
            await asyncio.gather(*runs)
            use.stop()
        finally:
            await _close_all(sockets)
        return start_s, rss, len(sockets)

    use = CpuUse(target)
    try:
        start_s, rss, started = asyncio.run(measure())
    finally:
        shutdown_s = delete_kernels(target, kernel_ids, errors)
    latencies = [x for t in trackers for x in t.latencies_ms]
    replies = sum(t.on_time for t in trackers)
    timeouts = sum(t.timeouts for t in trackers)
    note(
        target,
        f"kernels64: {started}/{n} kernels started, {replies}/{n * per_kernel} replies within "
        f"{cfg.load_reply_timeout_s:.0f} s ({len(latencies)} in all), {timeouts} timeouts, "
        f"{errors.summary()}; run {use.wall_s:.1f} s for {duration:.0f} s of requests; "
        f"{use.summary()}; client send lag max {max(lags_ms, default=0.0):.0f} ms",
    )
    prefix = f"kernels{n}"
    results: Measurements = {
        f"{prefix}_started_count": float(started),
        f"{prefix}_start_s": start_s,
        f"{prefix}_errors": float(errors.count),
        f"{prefix}_timeouts": float(timeouts),
        f"{prefix}_replies_count": float(replies),
        f"{prefix}_reply_rps": len(latencies) / use.wall_s if use.wall_s > 0 else 0.0,
        f"{prefix}_server_cpu_per_req_us": use.server_s / max(1, len(latencies)) * 1e6,
        f"{prefix}_rss_mb": rss,
        f"{prefix}_shutdown_s": shutdown_s,
    }
    if latencies:
        results[f"{prefix}_rtt_median_ms"] = statistics.median(latencies)
        results[f"{prefix}_rtt_p99_ms"] = percentile(latencies, 99)
    if lags_ms:
        results[f"{prefix}_send_lag_p99_ms"] = percentile(lags_ms, 99)
    return results
