"""A ``GET /api/status`` poller in a process of its own, for ``status_under_load``.

The poller measures how long a server keeps a small request waiting while it is busy with
other work. It runs in its own interpreter so that the load generator's threads (a PUT of a
large notebook, a websocket client reading a flood) do not hold the poller's GIL: in one
process, a poll that is ready could wait up to the interpreter's switch interval (5 ms) and
more before it is even sent, which would be counted against the server.

Child (``python -I benchmarks/poller.py HOST PORT INTERVAL_S``, request headers as a JSON object on
the first line of stdin): it makes a few untimed warm-up GETs on one keep-alive connection,
prints ``ready``, then obeys one command per line of stdin:

* ``go``: start a phase: one GET every ``INTERVAL_S`` seconds (a poll that took longer is
  followed at once by the next one, without catching up on the missed ones);
* ``stop``: end the phase and print one JSON line
  ``{"latencies_ms": [...], "errors": N, "first_error": "..." | null}``;
* end of input: exit.

Each latency runs from sending the request to having read the whole response. A non-200 answer
or a connection error counts as an error (the connection is then opened again); a request
times out after 10 s. Standard library only; the child imports nothing from the package.

Parent: :class:`StatusPoller` (a context manager) starts the child and runs its phases.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["PollPhase", "StatusPoller"]

PATH = "/api/status"
REQUEST_TIMEOUT_S = 10.0
WARMUP = 20


@dataclass
class PollPhase:
    """The polls of one phase."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None


class StatusPoller:
    """The parent side: ``with StatusPoller(host, port, headers) as poller: poller.go(); ...;
    phase = poller.stop()``. The child is started (and warmed up) on entering, and always
    stopped on leaving.

    Raises:
        RuntimeError: the child did not start, or did not answer a command.
    """

    def __init__(self, host: str, port: int, headers: dict[str, str], interval_s: float = 0.01) -> None:
        # -I: only the standard library is needed, and the script's own directory (benchmarks/,
        # with its codecs.py) must not shadow the standard library's modules
        self._argv = [sys.executable, "-I", os.path.abspath(__file__), host, str(port), repr(interval_s)]
        self._headers = headers
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> StatusPoller:
        self._proc = subprocess.Popen(
            self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self._send(json.dumps(self._headers))
        line = self._read()
        if line != "ready":
            raise RuntimeError(f"the status poller did not start: {line!r}")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.close()
            proc.wait(REQUEST_TIMEOUT_S + 5.0)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            proc.stdout.close()

    def go(self) -> None:
        """Start a phase: the child polls until :meth:`stop`."""
        self._send("go")

    def stop(self) -> PollPhase:
        """End the phase; its polls."""
        self._send("stop")
        raw = json.loads(self._read())
        return PollPhase(list(raw["latencies_ms"]), int(raw["errors"]), raw["first_error"])

    def _send(self, line: str) -> None:
        if self._proc is None or self._proc.stdin is None:
            raise RuntimeError("the status poller is not running")
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()

    def _read(self) -> str:
        if self._proc is None or self._proc.stdout is None:
            raise RuntimeError("the status poller is not running")
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the status poller exited (code {self._proc.poll()})")
        return line.strip()


# --------------------------------------------------------------------------------------------
# The child


class _Client:
    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port, self.headers = host, port, headers
        self.conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT_S)

    def poll(self, phase: PollPhase) -> None:
        t0 = time.perf_counter()
        try:
            self.conn.request("GET", PATH, headers=self.headers)
            resp = self.conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"GET {PATH} -> HTTP {resp.status}")
        except (OSError, http.client.HTTPException, RuntimeError) as exc:
            phase.errors += 1
            phase.first_error = phase.first_error or f"{type(exc).__name__}: {exc}"
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
            return
        phase.latencies_ms.append((time.perf_counter() - t0) * 1000.0)


class _Stdin:
    """Lines of stdin, read with ``os.read`` so that :meth:`ready` can ``select`` on it."""

    def __init__(self) -> None:
        self.buf = b""

    def ready(self, timeout: float) -> bool:
        """Whether a line (or the end of input) is there to read, waiting at most ``timeout``."""
        return b"\n" in self.buf or bool(select.select([0], [], [], timeout)[0])

    def line(self) -> str | None:
        """The next line, stripped (blocks); None at the end of input."""
        while b"\n" not in self.buf:
            chunk = os.read(0, 4096)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode().strip()


def _child(host: str, port: int, interval_s: float) -> None:
    stdin = _Stdin()
    headers = json.loads(stdin.line() or "{}")
    client = _Client(host, port, headers)
    for _ in range(WARMUP):
        client.poll(PollPhase())
    print("ready", flush=True)
    while (command := stdin.line()) is not None:
        if command != "go":
            continue  # the "stop" that ended the last phase
        phase = PollPhase()
        next_t = time.perf_counter()
        # poll until a command (or the end of input) arrives; either ends the phase
        while not stdin.ready(max(0.0, next_t - time.perf_counter())):
            start = time.perf_counter()
            client.poll(phase)
            next_t = max(start + interval_s, time.perf_counter())
        print(json.dumps(phase.__dict__), flush=True)


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
