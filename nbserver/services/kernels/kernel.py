"""One running kernel, and how the server tells that it is ready.

A kernel is *ready* when the process behind it answers ``kernel_info_request`` on shell AND an
iopub message caused by that request has reached the server (:meth:`.KernelChannels.kernel_info`):
PUB/SUB drops what a kernel publishes before the server's subscription reaches it, so a reply on
shell alone does not prove that outputs will be seen. Start, restart (asked for or automatic) and
a kernel found again after its restart timed out all wait for that (:func:`wait_ready`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ...context import isoformat
from ...errors import NBServerError
from .channels import KernelChannels

__all__ = ["Kernel", "follow_connection", "stdin_linked", "utcnow", "wait_ready"]

log = logging.getLogger("nbserver.kernel")

FIRST_ASK = 1.0  # seconds the first kernel_info request gets; each next one gets twice as long
LONGEST_ASK = 8.0  # ... up to this


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(eq=False)
class Kernel:
    """One running kernel. ``connections`` counts attached websockets; ``dropped_messages``
    counts messages dropped for clients that could not keep up (an nbserver addition to the
    model). ``reason`` says why a kernel is ``dead``."""

    id: str
    name: str
    km: Any  # jupyter_client AsyncIOLoopKernelManager, or an AdoptedKernel
    channels: KernelChannels
    execution_state: str = "starting"
    last_activity: datetime = field(default_factory=utcnow)
    reason: str = ""
    connections: int = 0
    dropped_messages: int = 0
    #: what a record keeps to restart the kernel: its directory, the variables the server added
    cwd: str = ""
    env: dict[str, str] = field(default_factory=dict)
    interrupt_mode: str = "signal"

    def model(self) -> dict[str, Any]:
        model: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "last_activity": isoformat(self.last_activity),
            "execution_state": self.execution_state,
            "connections": self.connections,
            "dropped_messages": self.dropped_messages,
        }
        if self.reason:
            model["reason"] = self.reason
        return model


async def wait_ready(kernel: Kernel, timeout: float, what: str) -> None:
    """Ask ``kernel_info`` until the kernel is ready (see the module docstring), each request
    given twice as long as the one before (from :data:`FIRST_ASK` to :data:`LONGEST_ASK` s: a
    loaded machine answers slowly, and an answer to an earlier request does not count), then
    wait briefly for its stdin link. ``what`` names the step in errors ("start-up", ...).

    Raises:
        NBServerError: 500 ``"kernel failed"`` when the process exits first, or after
            ``timeout`` seconds without readiness.
        ChannelsClosed: the kernel's channels were closed (it was shut down meanwhile).
    """
    deadline = time.monotonic() + timeout
    ask = FIRST_ASK
    while True:
        if not await kernel.km.is_alive():
            raise NBServerError(
                f"Kernel {kernel.name} exited during {what} (see the server log for its output)",
                reason="kernel failed",
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NBServerError(
                f"Kernel {kernel.name} did not answer within {timeout:.0f} s of its {what}",
                reason="kernel failed",
            )
        try:
            if await kernel.channels.kernel_info(min(ask, remaining)):
                break
        except asyncio.TimeoutError:
            pass
        ask = min(2 * ask, LONGEST_ASK)
    await stdin_linked(kernel)


def follow_connection(kernel: Kernel) -> None:
    """Point the kernel's channels at its process's connection info if that changed (a restarted
    process may have new ports or a new key)."""
    info = kernel.km.get_connection_info(session=False)
    if any(info.get(k) != kernel.channels.info.get(k) for k in ("ip", "shell_port", "iopub_port", "key")):
        kernel.channels.reconnect(info)


async def stdin_linked(kernel: Kernel, timeout: float = 2.0) -> None:
    """Wait (briefly: the kernel has bound its sockets once it answers) until the kernel can
    reach us on stdin; a kernel that never links stdin is still usable, minus input()."""
    try:
        await asyncio.wait_for(kernel.channels.stdin_linked.wait(), timeout)
    except asyncio.TimeoutError:
        log.warning(
            "Kernel %s: no stdin connection after %.0f s; input() may not reach clients", kernel.id, timeout
        )
