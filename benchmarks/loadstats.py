"""Bookkeeping of the load workloads: errors, replies awaited, CPU use. No I/O but ``/proc``
reads (through :class:`~benchmarks.targets.RunningTarget`) and one line on stderr (:func:`note`).

Its own module so that every workload module can import it: workload modules import each other
only through module attributes at call time (``workloads.py`` imports them all at its end, so
the first one imported is still incomplete when the others load).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from .targets import RunningTarget

__all__ = ["CpuUse", "ErrorLog", "ReplyTracker", "note"]


def note(target: RunningTarget, text: str) -> None:
    """One line about a run on stderr (the table has the numbers; this line says what they are
    out of, and names the errors), with the machine's load average: other work on the machine
    shows there."""
    load = os.getloadavg()[0]
    print(f"  note: {target.name}: {text}; load average {load:.1f}", file=sys.stderr, flush=True)


@dataclass
class CpuUse:
    """CPU seconds used over a window by the server, its kernels and this process (the client,
    all its threads): :meth:`start`, then :meth:`stop`. Kernels are counted if they were
    running at both ends of the window."""

    target: RunningTarget
    wall_s: float = 0.0
    server_s: float = 0.0
    kernels_s: float = 0.0
    client_s: float = 0.0
    _at_start: tuple[float, float, dict[int, float], float] = (0.0, 0.0, {}, 0.0)

    def start(self) -> None:
        self._at_start = (
            time.perf_counter(),
            self.target.cpu_seconds(),
            self.target.descendants_cpu_seconds(),
            time.process_time(),
        )

    def stop(self) -> None:
        t0, server0, kernels0, client0 = self._at_start
        self.wall_s = time.perf_counter() - t0
        self.server_s = self.target.cpu_seconds() - server0
        now = self.target.descendants_cpu_seconds()
        self.kernels_s = sum(now[pid] - cpu for pid, cpu in kernels0.items() if pid in now)
        self.client_s = time.process_time() - client0

    def summary(self) -> str:
        """``"CPU (cores busy on average): server 0.4, kernels 1.1, client 0.3"``."""
        cores = [
            x / self.wall_s if self.wall_s > 0 else 0.0
            for x in (self.server_s, self.kernels_s, self.client_s)
        ]
        return "CPU in cores: server {:.2f}, kernels {:.2f}, client {:.2f}".format(*cores)


@dataclass
class ErrorLog:
    """Errors of a run: how many, and the first few messages (for the note)."""

    count: int = 0
    first: list[str] = field(default_factory=list)
    keep: int = 3

    def add(self, what: str, exc: BaseException | str, times: int = 1) -> None:
        """Count ``times`` errors of the same kind; ``exc`` describes them."""
        self.count += times
        if len(self.first) < self.keep:
            detail = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
            self.first.append(f"{what}: {detail}"[:200])

    def summary(self) -> str:
        return f"{self.count} errors" + (f" (first: {'; '.join(self.first)})" if self.first else "")


@dataclass
class ReplyTracker:
    """Send times of requests awaiting their replies; pure bookkeeping (times in seconds).

    A reply counts as *on time* when it arrives within ``timeout_s`` of its request. Every
    reply's latency is recorded, late ones included; :attr:`timeouts` is the number of requests
    that were late or (so far) unanswered.
    """

    timeout_s: float
    pending: dict[str, float] = field(default_factory=dict)  # msg_id -> send time
    latencies_ms: list[float] = field(default_factory=list)
    on_time: int = 0
    late: int = 0

    def sent(self, msg_id: str, at: float) -> None:
        self.pending[msg_id] = at

    def received(self, msg_id: str | None, at: float) -> bool:
        """Record the reply to ``msg_id``; False (and nothing recorded) if it is not awaited
        (unknown, or already answered)."""
        sent = self.pending.pop(msg_id, None) if msg_id is not None else None
        if sent is None:
            return False
        self.latencies_ms.append((at - sent) * 1000.0)
        if at - sent <= self.timeout_s:
            self.on_time += 1
        else:
            self.late += 1
        return True

    @property
    def timeouts(self) -> int:
        return self.late + len(self.pending)
