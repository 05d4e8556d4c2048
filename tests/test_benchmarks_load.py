"""The load workloads of the benchmark suite (``ws_many``, ``kernels64``, ``status_under_load``)
count what they claim to count. Their bookkeeping is tested pure; the workloads themselves run
at tiny sizes against a real nbserver subprocess with real kernels, as the suite starts it.
No timings are asserted: only counts (errors, replies, kernels) and that nothing is left behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.__main__ import reference_failures
from benchmarks.kernelclient import KernelSocket
from benchmarks.loadstats import ErrorLog, ReplyTracker
from benchmarks.poller import StatusPoller
from benchmarks.report import RunRecord, _ratio
from benchmarks.targets import TARGETS, RunningTarget, start_target
from benchmarks.workloads import RunConfig, counts_errors, higher_is_better, unit_of
from benchmarks.workloads_kernels import kernel_socket
from benchmarks.workloads_load import delete_kernels, kernels64, ws_many
from benchmarks.workloads_status_load import status_under_load

# --------------------------------------------------------------------------------------------
# Pure bookkeeping


def test_reply_tracker_counts_late_and_missing_replies_as_timeouts() -> None:
    """Bad inputs: a reply after 6 s (timeout 5 s), a request never answered, a reply to an id
    never sent, a second reply to the same id, a reply without a parent id."""
    tracker = ReplyTracker(timeout_s=5.0)
    for i, at in enumerate((0.0, 1.0, 2.0)):
        tracker.sent(f"m{i}", at)
    assert tracker.received("m0", 0.004)  # on time
    assert tracker.received("m1", 7.0)  # 6 s: late
    assert not tracker.received("unknown", 3.0)
    assert not tracker.received("m0", 3.0)  # already answered
    assert not tracker.received(None, 3.0)
    assert (tracker.on_time, tracker.late, tracker.timeouts) == (1, 1, 2)  # m2 never answered
    assert tracker.latencies_ms == pytest.approx([4.0, 6000.0])


def test_error_log_counts_every_error_and_keeps_the_first_messages() -> None:
    errors = ErrorLog(keep=2)
    errors.add("open", ConnectionError("refused"))
    errors.add("poll", "HTTP 503", times=4)
    errors.add("PUT", "HTTP 500")
    assert errors.count == 6
    assert errors.summary() == "6 errors (first: open: ConnectionError: refused; poll: HTTP 503)"


def test_error_and_timeout_counts_are_lower_is_better() -> None:
    """A `_count` is higher-is-better; counts of things that went wrong are not."""
    assert (unit_of("ws100_errors"), higher_is_better("ws100_errors")) == ("errors", False)
    assert (unit_of("kernels64_timeouts"), higher_is_better("kernels64_timeouts")) == ("timeouts", False)
    assert _ratio("kernels64_timeouts", 10.0, 30.0) == 3.0  # the peer had 3x the timeouts
    assert _ratio("ws100_errors", 0.0, 5.0) is None  # nbserver had none: no ratio, not a division by 0
    assert counts_errors("ws100_errors") and not counts_errors("kernels64_timeouts")


def test_nbserver_errors_fail_the_run_but_peer_errors_and_timeouts_do_not() -> None:
    """Bad inputs: nbserver with 2 errors (fails), a FAILED nbserver run (fails), jupyter_server
    with 7 errors, nbserver with 3 timeouts and with 0 errors (none of these fail)."""

    def record(target: str, ok: bool = True, **values: float) -> RunRecord:
        rec = RunRecord("w", target, 1, ok=ok, elapsed_s=1.0, measurements=dict(values))
        rec.error = None if ok else "RuntimeError: boom"
        return rec

    assert (
        reference_failures(
            [
                record("nbserver", ws100_errors=0.0, kernels64_timeouts=3.0),
                record("jupyter_server", ws100_errors=7.0),
            ]
        )
        == []
    )
    assert reference_failures([record("nbserver", ws100_errors=2.0), record("nbserver", ok=False)]) == [
        "w: ws100_errors = 2",
        "w: FAILED: RuntimeError: boom",
    ]


# --------------------------------------------------------------------------------------------
# The /api/status poller (a child process) against a small stdlib server


class _Handler(http.server.BaseHTTPRequestHandler):
    """200 with the right token, 403 without it; every third authorized request answers 503."""

    protocol_version = "HTTP/1.1"
    seen = 0

    def do_GET(self) -> None:
        type(self).seen += 1
        if self.headers.get("Authorization") != "token t":
            code = 403
        else:
            code = 503 if type(self).seen % 3 == 0 else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_poller_counts_non_200_answers_as_errors_phase_by_phase(stub_server: int) -> None:
    """Bad inputs: 503 answers (errors, not latencies); a poller without the token would get
    only 403s and fail to warm up, so the headers are passed through."""
    with StatusPoller("127.0.0.1", stub_server, {"Authorization": "token t"}, interval_s=0.01) as poller:
        for _ in range(2):  # two phases, each reported on its own
            poller.go()
            threading.Event().wait(0.3)
            phase = poller.stop()
            assert phase.errors >= 1 and phase.first_error == "RuntimeError: GET /api/status -> HTTP 503"
            assert len(phase.latencies_ms) >= 2 * phase.errors - 2  # two 200s for every 503


def test_poller_without_credentials_reports_every_poll_as_an_error(stub_server: int) -> None:
    with StatusPoller("127.0.0.1", stub_server, {}, interval_s=0.01) as poller:
        poller.go()
        threading.Event().wait(0.1)
        phase = poller.stop()
    assert phase.latencies_ms == [] and phase.errors >= 1
    assert phase.first_error == "RuntimeError: GET /api/status -> HTTP 403"


# --------------------------------------------------------------------------------------------
# The workloads, tiny, against a real nbserver with real kernels


@pytest.fixture(scope="module")
def nbserver() -> Iterator[RunningTarget]:
    with start_target(TARGETS["nbserver"]) as target:
        yield target


TINY = dataclasses.replace(
    RunConfig.for_mode(quick=True),
    ws_many_kernels=1,
    ws_many_sockets=3,
    ws_many_executes=3,
    load_kernels=2,
    load_duration_s=1.0,
    notebook_cells=20,
    status_flood_lines=200,
    status_idle_s=0.2,
)


def _kernel_processes(target: RunningTarget) -> list[str]:
    return [cmd for cmd in target.descendants().values() if "ipykernel" in cmd]


def test_ws_many_gets_every_reply_on_every_websocket(nbserver: RunningTarget) -> None:
    """3 websockets (3 session ids) on one kernel: each execute's iopub reaches all three, each
    client must still find its own reply and idle."""
    results = ws_many(nbserver, TINY)
    assert results["ws3_errors"] == 0
    assert results["ws3_replies_count"] == 9  # 3 websockets x 3 executes
    assert {"ws3_exec_median_ms", "ws3_exec_p99_ms", "ws3_wall_s"} <= set(results)
    assert _kernel_processes(nbserver) == []


def test_kernels64_gets_every_paced_reply(nbserver: RunningTarget) -> None:
    results = kernels64(nbserver, TINY)
    assert results["kernels2_started_count"] == 2
    assert (results["kernels2_errors"], results["kernels2_timeouts"]) == (0, 0)
    assert results["kernels2_replies_count"] == 20  # 2 kernels x 10/s x 1 s
    assert _kernel_processes(nbserver) == []


def test_status_under_load_polls_while_puts_and_a_flood_run(nbserver: RunningTarget) -> None:
    results = status_under_load(nbserver, TINY)
    assert results["status_load_errors"] == 0
    assert results["status_load_flood_lines_count"] == 200
    assert {"status_load_p99_ms", "status_load_max_ms", "status_load_put_median_ms"} <= set(results)
    assert not (nbserver.root_dir / "load.ipynb").exists()
    assert _kernel_processes(nbserver) == []


def test_delete_kernels_counts_a_failed_delete_instead_of_raising(nbserver: RunningTarget) -> None:
    """Bad input: a kernel id the server does not know (404)."""
    errors = ErrorLog()
    delete_kernels(nbserver, ["00000000-0000-0000-0000-000000000000"], errors)
    assert errors.count == 1 and "HTTP 404" in errors.first[0]


def test_execute_times_out_when_the_idle_does_not_come(nbserver: RunningTarget) -> None:
    """Bad input: a cell that runs longer than the timeout."""

    async def run() -> None:
        async with kernel_socket(nbserver) as ws:
            assert isinstance(ws, KernelSocket)
            assert await ws.execute("1 + 1", timeout=30.0) == "ok"
            assert await ws.execute("1 / 0", timeout=30.0) == "error"
            with pytest.raises(TimeoutError, match=r"no execute_reply within 0\.3 s"):
                await ws.execute("import time; time.sleep(3)", timeout=0.3)

    asyncio.run(run())


def test_aclose_closes_the_socket_of_a_client_that_stopped_reading(nbserver: RunningTarget) -> None:
    """Bad input: a client that sent an execute and read none of its messages. tornado reads
    nothing more while one message waits unread, so the server's close frame would never be
    seen and the socket would outlive the event loop (a ResourceWarning at best)."""

    async def run() -> None:
        async with kernel_socket(nbserver) as ws:
            protocol = ws.conn.protocol
            assert protocol is not None and protocol.stream is not None
            stream = protocol.stream
            await ws.send(
                "shell", "execute_request", {"code": "for i in range(50): print(i)", "silent": False}
            )
            await asyncio.sleep(0.5)  # the kernel's output is queued, unread
            await ws.aclose(timeout=10.0)
            assert stream.closed()

    asyncio.run(run())


@pytest.mark.parametrize(
    "module",
    ["workloads", "workloads_contents", "workloads_kernels", "workloads_load", "workloads_status_load", "workloads_hub"],
)
def test_every_workload_module_can_be_imported_first(module: str) -> None:
    """Bad input: a fresh interpreter whose first import is a workload module that another one
    imports names from. ``workloads`` imports all of them at its end, so that module is still
    incomplete then (it failed with "cannot import name ... from partially initialized module")."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import benchmarks.{module} as m, benchmarks.workloads as w; print(len(w.WORKLOADS))",
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert int(done.stdout) == 14
