"""Kernels this server did not launch: those an earlier server process started and left running.

Theory of operation
-------------------
jupyter_client's ``KernelManager`` controls a kernel through the ``Popen`` it launched. A kernel
found again from its :class:`~.records.KernelRecord` after a server restart has no such handle, so
:class:`AdoptedKernel` stands in for the KernelManager, with the part of its interface that the
kernel manager uses (``is_alive``, ``interrupt_kernel``, ``shutdown_kernel``,
``get_connection_info``, restart callbacks, ``start_restarter`` / ``stop_restarter``), and works
from the record alone:

- alive: the recorded pid exists, is ours and is not a zombie. A kernel without a pid (not a
  local process) is alive while it answers ``kernel_info_request`` on control.
- interrupt: ``interrupt_request`` on control when the kernelspec's ``interrupt_mode`` is
  ``message`` (or there is no pid), else SIGINT to the kernel's process group, as jupyter_client
  does (the kernel was started as a session leader).
- shutdown: ``shutdown_request`` on control; SIGKILL to the process group if it has not exited
  within :data:`SHUTDOWN_WAIT` seconds; then its ipc socket files and connection file go.
- death: a watcher checks liveness every :data:`POLL_INTERVAL` seconds and calls the ``"dead"``
  callbacks once. An adopted kernel is not restarted automatically; an explicit restart (the
  kernel manager's) launches a new process on the same connection info, which is then an
  ordinary jupyter_client kernel again.

:func:`probe` decides whether a recorded kernel is alive enough to adopt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...protocol import ProtocolError
from ...protocol.wire import Signer, new_message, split
from .channels import ChannelsClosed, KernelChannels, endpoint
from .records import KernelRecord

if TYPE_CHECKING:
    import zmq.asyncio

__all__ = [
    "POLL_INTERVAL",
    "SHUTDOWN_WAIT",
    "AdoptedKernel",
    "ipc_files",
    "kernel_pid",
    "pid_alive",
    "probe",
]

log = logging.getLogger("nbserver.kernel")

POLL_INTERVAL = 3.0  # seconds between liveness checks (jupyter_client's restarter uses 3 s too)
SHUTDOWN_WAIT = 5.0  # seconds a kernel gets to exit after shutdown_request (jupyter_client: 5 s)
_REQUEST_TIMEOUT = 5.0
_PORTS = ("shell_port", "iopub_port", "stdin_port", "hb_port", "control_port")


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` exists, may be signalled by us, and is not a zombie.

    A process of another user cannot be one of our kernels (its pid was reused). A zombie is a
    kernel that exited but whose new parent (init, after the server died) has not reaped it yet.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True  # no /proc (macOS): existence is all we can tell
    fields = stat.rpartition(b")")[2].split()
    return not fields or fields[0] not in (b"Z", b"X")


def kernel_pid(km: Any) -> int | None:
    """The process id of the kernel behind ``km`` (a jupyter_client KernelManager or an
    :class:`AdoptedKernel`) when it is a local process, else None."""
    if isinstance(km, AdoptedKernel):
        return km.pid
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner

    provisioner = getattr(km, "provisioner", None)
    pid = provisioner.pid if isinstance(provisioner, LocalProvisioner) else None
    return pid if isinstance(pid, int) else None


def _signal(pid: int, signum: int) -> None:
    """Send ``signum`` to the process group ``pid`` leads, else to ``pid`` alone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg") and os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def ipc_files(info: dict[str, Any]) -> list[str]:
    """The socket files of an ``ipc`` kernel (none for ``tcp``)."""
    if info.get("transport") != "ipc":
        return []
    return [f"{info['ip']}-{info[name]}" for name in _PORTS if name in info]


async def probe(channels: KernelChannels, pid: int | None, timeout: float) -> str | None:
    """Whether the kernel behind ``channels`` (open) answers, within ``timeout`` seconds.

    Returns ``"idle"`` when it answered ``kernel_info_request`` on shell (asked again, time
    permitting, until an iopub message caused by a request arrives too: the subscription is in
    place), ``"busy"`` when only control answered (a cell is running, so shell requests wait),
    None when neither answered or the process ``pid`` is gone.
    """
    deadline = time.monotonic() + timeout
    answered = False
    while (remaining := deadline - time.monotonic()) > 0:
        if pid is not None and not pid_alive(pid):
            return None
        try:
            if await channels.kernel_info(min(2.0 if answered else 1.0, remaining)):
                return "idle"
            answered = True
            continue
        except asyncio.TimeoutError:
            if answered:
                continue
        except ChannelsClosed:
            return None
        try:
            await channels.request("control", "kernel_info_request", {}, timeout=min(1.0, remaining))
        except asyncio.TimeoutError:
            continue
        except ChannelsClosed:
            return None
        return "busy"
    return "idle" if answered else None


class AdoptedKernel:
    """Control of a recorded kernel process through its connection info and pid.

    Args:
        record: the kernel's record.
        context: the ``zmq.asyncio.Context`` to open control sockets in.
        connection_file: the kernel's connection file, removed with its ipc files when the
            kernel is shut down (None: nothing to remove).
    """

    def __init__(
        self, record: KernelRecord, context: zmq.asyncio.Context, connection_file: str | None = None
    ) -> None:
        self.record = record
        self.pid = record.pid
        self.connection = dict(record.connection)
        self.connection_file = connection_file
        self._context = context
        key = str(self.connection.get("key") or "").encode()
        self._signer = Signer(key, str(self.connection.get("signature_scheme") or "hmac-sha256"))
        self._session = "nbserver-" + uuid.uuid4().hex[:8]
        self._callbacks: dict[str, list[Callable[[], None]]] = {"restart": [], "dead": []}
        self._watcher: asyncio.Task[None] | None = None

    # -- what the kernel manager calls (jupyter_client's KernelManager names) ----------------------

    def get_connection_info(self, session: bool = False) -> dict[str, Any]:
        return dict(self.connection)

    async def is_alive(self) -> bool:
        if self.pid is not None:
            return pid_alive(self.pid)
        return await self.request("kernel_info_request", {}, timeout=2.0) is not None

    async def interrupt_kernel(self) -> None:
        """Interrupt what the kernel is running (see the module docstring for how)."""
        if self.pid is not None and self.record.interrupt_mode != "message":
            _signal(self.pid, signal.SIGINT)
            return
        if await self.request("interrupt_request", {}, _REQUEST_TIMEOUT) is None:
            log.warning("Kernel %s did not answer interrupt_request", self.record.kernel_id)

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        """Stop the kernel process: ask it (unless ``now``), then kill its process group if it is
        still running after :data:`SHUTDOWN_WAIT` seconds. Unless ``restart`` (a new process will
        bind the same sockets), its ipc socket files and connection file are removed."""
        self.stop_restarter()
        deadline = time.monotonic() + SHUTDOWN_WAIT
        if not now or self.pid is None:
            await self.request("shutdown_request", {"restart": restart}, SHUTDOWN_WAIT)
        if self.pid is not None and not await self._exited(deadline if not now else 0.0):
            if not now:
                log.warning("Kernel %s (pid %d) did not exit; killing it", self.record.kernel_id, self.pid)
            _signal(self.pid, signal.SIGKILL)
            if not await self._exited(time.monotonic() + SHUTDOWN_WAIT):
                log.error("Kernel %s (pid %d) survived SIGKILL", self.record.kernel_id, self.pid)
        if not restart:
            self.remove_files()

    def add_restart_callback(self, callback: Callable[[], None], event: str = "restart") -> None:
        """``event`` ``"dead"``: called once when the process is found gone. (``"restart"``
        callbacks are kept but never called: adopted kernels are not restarted automatically.)"""
        self._callbacks[event].append(callback)

    def start_restarter(self) -> None:
        """Start watching the process (every :data:`POLL_INTERVAL` seconds)."""
        if self._watcher is None:
            self._watcher = asyncio.ensure_future(self._watch())

    def stop_restarter(self) -> None:
        if self._watcher is not None:
            if self._watcher is not asyncio.current_task():
                self._watcher.cancel()
            self._watcher = None

    # -- helpers -----------------------------------------------------------------------------------

    async def _exited(self, deadline: float) -> bool:
        """Wait until the process is gone or ``deadline`` (monotonic) passes; True if gone."""
        assert self.pid is not None
        while pid_alive(self.pid):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            if await self.is_alive():
                continue
            log.warning("Kernel %s (pid %s) has exited", self.record.kernel_id, self.pid)
            self._watcher = None
            for callback in self._callbacks["dead"]:
                try:
                    callback()
                except Exception:
                    log.exception("A dead-kernel callback failed")
            return

    def launched_as_recorded(self) -> bool:
        """True if process ``pid`` is verifiably this kernel: its command line names the
        kernel's connection file (False where that cannot be read, e.g. without ``/proc``)."""
        if self.pid is None or not self.connection_file:
            return False
        try:
            with open(f"/proc/{self.pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            return False
        return pid_alive(self.pid) and os.fsencode(self.connection_file) in argv

    def remove_files(self) -> None:
        """Remove the kernel's ipc socket files and connection file (if they are still there)."""
        for path in [*ipc_files(self.connection), self.connection_file]:
            if path:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    async def request(self, msg_type: str, content: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send a request on control (a socket of its own: the kernel's channels may be closed
        already) and return the content of its reply, or None if none came within ``timeout``."""
        import zmq

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        msg_id, parts = new_message(msg_type, content, self._session)
        sock = self._context.socket(zmq.DEALER)
        sock.linger = 0
        try:
            sock.connect(endpoint(self.connection, "control"))
            await sock.send_multipart(self._signer.frames(parts))
            while (remaining := deadline - loop.time()) > 0:
                frames = await asyncio.wait_for(sock.recv_multipart(), remaining)
                try:
                    _, _, reply = split(frames)
                    parent = json.loads(reply[1])
                    if isinstance(parent, dict) and parent.get("msg_id") == msg_id:
                        result = json.loads(reply[3])
                        return result if isinstance(result, dict) else {}
                except (ProtocolError, ValueError):
                    continue
        except asyncio.TimeoutError:
            pass
        except zmq.ZMQError as exc:
            log.warning("%s to kernel %s failed: %s", msg_type, self.record.kernel_id, exc)
        finally:
            sock.close(linger=0)
        return None
