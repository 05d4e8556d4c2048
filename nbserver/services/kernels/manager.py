"""Running kernels: start, list, interrupt, restart, shut down, cull.

Kernels are started through jupyter_client's ``AsyncIOLoopKernelManager``, so kernelspec
provisioners (gateway_provisioners for Kubernetes, Docker, YARN...) keep working, and so does
jupyter_client's auto-restarter for kernels whose process dies.

Local kernels talk over ZMQ ``ipc`` sockets in a private directory instead of TCP ports: picking
free TCP ports is racy (jupyter_client binds port 0, closes it, and hopes the kernel gets it), and
with many concurrent starts a kernel loses that race and dies with "Address already in use".
Socket files cannot collide. Kernels with a non-local provisioner keep TCP.

A kernel is ready when it answers ``kernel_info_request`` on shell; start and restart wait for
that (bounded by ``kernel_info_timeout``) and fail fast when the process exits first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...config import ServerConfig
from ...context import Activity, isoformat
from ...errors import BadRequest, NBServerError, NotFound
from ..contents import paths
from ..kernelspecs.manager import KernelSpecManager
from .channels import ChannelsClosed, KernelChannels

if TYPE_CHECKING:
    import zmq.asyncio

__all__ = ["Kernel", "KernelManager"]

log = logging.getLogger("nbserver.kernel")

_KERNEL_ID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_IPC_PATH_MAX = 90  # sun_path holds 107 bytes; leave room for "-<port>"
#: iopub message types that are not user activity (as jupyter_server's untracked types)
_UNTRACKED = frozenset(
    {
        "status",
        "kernel_info_reply",
        "comm_info_reply",
        "stream",
        "display_data",
        "update_display_data",
        "execute_result",
        "error",
        "execute_input",
    }
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(eq=False)
class Kernel:
    """One running kernel. ``connections`` counts attached websockets; ``dropped_messages``
    counts messages dropped for clients that could not keep up (an nbserver addition to the
    model)."""

    id: str
    name: str
    km: Any  # jupyter_client AsyncIOLoopKernelManager
    channels: KernelChannels
    execution_state: str = "starting"
    last_activity: datetime = field(default_factory=_now)
    reason: str = ""
    connections: int = 0
    dropped_messages: int = 0

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


class KernelManager:
    """All kernels of one server.

    Args:
        config: limits and culling settings (``kernel_info_timeout``, ``cull_*``, replay bounds).
        specs: where kernelspecs come from.
        activity: the server's activity tracker; kernel traffic counts as activity, and the
            ``kernels`` / ``connections`` gauges of ``/api/status`` read from here.
    """

    def __init__(
        self, config: ServerConfig, specs: KernelSpecManager, activity: Activity | None = None
    ) -> None:
        self.config = config
        self.root_dir = config.root_dir
        self.specs = specs
        self.activity = activity
        self.kernels: dict[str, Kernel] = {}
        self._starting: dict[str, asyncio.Task[Kernel]] = {}
        self._zmq: zmq.asyncio.Context | None = None  # created with the first kernel
        self._private_dir: str | None = None
        self._culler: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        if activity is not None:
            activity.gauges["kernels"] = lambda: len(self.kernels)
            activity.gauges["connections"] = lambda: sum(k.connections for k in self.kernels.values())

    # -- queries ---------------------------------------------------------------------------------

    def get(self, kernel_id: str) -> Kernel:
        kernel = self.kernels.get(kernel_id)
        if kernel is None:
            raise NotFound(f"Kernel does not exist: {kernel_id}", reason="no such kernel")
        return kernel

    def models(self) -> list[dict[str, Any]]:
        return [k.model() for k in self.kernels.values()]

    # -- start -----------------------------------------------------------------------------------

    def kernel_cwd(self, path: str | None) -> Path:
        """The directory a kernel for API ``path`` starts in: ``path`` itself if it is a directory,
        else its nearest existing parent, never outside the root."""
        current = paths.normalize(path)
        while True:
            candidate = Path(
                os.path.realpath(self.root_dir.joinpath(*current.split("/")) if current else self.root_dir)
            )
            inside = candidate == self.root_dir or str(candidate).startswith(str(self.root_dir) + os.sep)
            if inside and candidate.is_dir():
                return candidate
            if not current:
                return self.root_dir
            current = paths.split(current)[0]

    async def start(
        self,
        name: str | None = None,
        *,
        path: str | None = None,
        kernel_id: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Kernel:
        """Start a kernel and wait until it answers ``kernel_info_request``.

        ``kernel_id`` of a running kernel returns that kernel (jupyter_server 2.21 behaviour).

        Raises:
            NotFound: unknown kernelspec (reason ``"no such kernelspec"``).
            BadRequest: a ``kernel_id`` that is not a UUID.
            NBServerError: 500 when the kernel process exits or does not answer in time.
        """
        if kernel_id is not None:
            if not _KERNEL_ID.fullmatch(kernel_id):
                raise BadRequest(f"kernel_id must be a UUID, not {kernel_id!r}", reason="bad kernel id")
            if kernel_id in self.kernels:
                return self.kernels[kernel_id]
            if kernel_id in self._starting:
                return await asyncio.shield(self._starting[kernel_id])
        name = name or await self.specs.default_name()
        spec = await self.specs.get(name)  # 404 before anything is spawned
        kernel_id = kernel_id or str(uuid.uuid4())
        cwd = self.kernel_cwd(path)
        task = asyncio.ensure_future(self._start(kernel_id, spec.name, spec.spec, cwd, env))
        self._starting[kernel_id] = task
        try:
            return await asyncio.shield(task)
        finally:
            self._starting.pop(kernel_id, None)

    def _context(self) -> zmq.asyncio.Context:
        if self._zmq is None:
            import zmq.asyncio

            self._zmq = zmq.asyncio.Context()
        return self._zmq

    def private_dir(self) -> str:
        """A 0700 directory for connection files and ipc sockets, removed at shutdown."""
        if self._private_dir is None:
            self._private_dir = tempfile.mkdtemp(prefix="nbserver-")
        return self._private_dir

    def _ipc_prefix(self, kernel_id: str) -> str | None:
        if os.name != "posix":
            return None
        prefix = os.path.join(self.private_dir(), kernel_id[:8])
        return prefix if len(prefix) < _IPC_PATH_MAX else None

    async def _start(
        self, kernel_id: str, name: str, spec: dict[str, Any], cwd: Path, env: dict[str, str] | None
    ) -> Kernel:
        from jupyter_client.ioloop.manager import AsyncIOLoopKernelManager

        local = (
            spec.get("metadata", {})
            .get("kernel_provisioner", {})
            .get("provisioner_name", "local-provisioner")
            == "local-provisioner"
        )
        prefix = self._ipc_prefix(kernel_id) if local else None
        km = AsyncIOLoopKernelManager(
            kernel_name=name,
            kernel_spec_manager=self.specs.inner,
            connection_file=os.path.join(self.private_dir(), f"kernel-{kernel_id}.json"),
        )
        if prefix is not None:
            km.transport = "ipc"
            km.ip = prefix
        started = time.monotonic()
        kernel_env = {**os.environ, **(env or {})}
        try:
            await km.start_kernel(cwd=str(cwd), env=kernel_env, kernel_id=kernel_id)
        except Exception as exc:
            raise NBServerError(f"Kernel {name} failed to start: {exc}", reason="kernel failed") from exc
        channels = KernelChannels(
            dict(km.get_connection_info(session=False)),
            context=self._context(),
            replay_bytes=self.config.replay_buffer_bytes,
            replay_seconds=self.config.replay_buffer_seconds,
        )
        kernel = Kernel(kernel_id, name, km, channels)
        channels.on_iopub = lambda msg_type, header, content: self._on_iopub(kernel, msg_type, content)
        channels.open()
        try:
            await self._wait_ready(kernel)
        except BaseException:
            channels.close()
            await self._kill(km)
            raise
        kernel.execution_state = "idle"
        km.add_restart_callback(lambda: self._on_restarting(kernel), "restart")
        km.add_restart_callback(lambda: self._on_dead(kernel), "dead")
        self.kernels[kernel_id] = kernel
        self._ensure_culler()
        log.info("Kernel %s (%s) started in %.2f s in %s", kernel_id, name, time.monotonic() - started, cwd)
        return kernel

    async def _wait_ready(self, kernel: Kernel) -> None:
        """Ask ``kernel_info`` until it is answered on shell AND an iopub message has arrived
        (PUB/SUB drops everything sent before the subscription reaches the kernel, so a reply
        on shell alone does not prove that outputs will be seen); fail fast if the process
        dies."""
        deadline = time.monotonic() + self.config.kernel_info_timeout
        while True:
            if not await kernel.km.is_alive():
                raise NBServerError(
                    f"Kernel {kernel.name} exited during start-up (see the server log for its output)",
                    reason="kernel failed",
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NBServerError(
                    f"Kernel {kernel.name} did not answer within {self.config.kernel_info_timeout:.0f} s",
                    reason="kernel failed",
                )
            try:
                await kernel.channels.request("shell", "kernel_info_request", {}, timeout=min(1.0, remaining))
            except asyncio.TimeoutError:
                continue
            try:
                await asyncio.wait_for(kernel.channels.iopub_seen.wait(), min(0.5, remaining))
                return
            except asyncio.TimeoutError:
                continue

    async def _kill(self, km: Any) -> None:
        try:
            await km.shutdown_kernel(now=True)
        except Exception:
            log.exception("Killing a kernel that failed to start also failed")

    # -- state from the kernel -------------------------------------------------------------------

    def _on_iopub(self, kernel: Kernel, msg_type: str, content: bytes) -> None:
        if msg_type == "status":
            import json

            try:
                state = json.loads(content).get("execution_state")
            except (ValueError, AttributeError):
                state = None
            if isinstance(state, str) and kernel.execution_state not in ("restarting", "dead"):
                kernel.execution_state = state
        if msg_type not in _UNTRACKED or kernel.execution_state == "busy":
            kernel.last_activity = _now()
            if self.activity is not None:
                self.activity.touch()

    def _on_restarting(self, kernel: Kernel) -> None:
        log.warning("Kernel %s died; restarting", kernel.id)
        kernel.execution_state = "restarting"
        kernel.channels.iopub_seen.clear()
        kernel.channels.broadcast_status("restarting")
        self._background(self._after_auto_restart(kernel))

    async def _after_auto_restart(self, kernel: Kernel) -> None:
        """Follow the restarter: reconnect if the kernel came back on new sockets, then wait
        until it answers and report it idle."""
        deadline = time.monotonic() + self.config.kernel_info_timeout
        while time.monotonic() < deadline and kernel.id in self.kernels:
            await asyncio.sleep(0.2)
            if not await kernel.km.is_alive():
                continue
            info = kernel.km.get_connection_info(session=False)
            if any(
                info.get(k) != kernel.channels.info.get(k) for k in ("ip", "shell_port", "iopub_port", "key")
            ):
                kernel.channels.reconnect(info)
            try:
                await kernel.channels.request("shell", "kernel_info_request", {}, timeout=1.0)
                await asyncio.wait_for(kernel.channels.iopub_seen.wait(), 1.0)
            except (asyncio.TimeoutError, ChannelsClosed):
                continue
            kernel.execution_state = "idle"
            return

    def _on_dead(self, kernel: Kernel) -> None:
        log.error("Kernel %s died and could not be restarted", kernel.id)
        kernel.execution_state = "dead"
        kernel.reason = "the kernel died and could not be restarted"
        kernel.channels.broadcast_status("dead")
        self._background(self._remove(kernel, now=True))

    def _background(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        """Run ``coro`` as a task the manager keeps (and :meth:`shutdown` waits for)."""
        task: asyncio.Future[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- control ---------------------------------------------------------------------------------

    async def interrupt(self, kernel_id: str) -> None:
        kernel = self.get(kernel_id)
        await kernel.km.interrupt_kernel()

    async def restart(self, kernel_id: str) -> Kernel:
        """Restart and wait until the kernel answers again (clients see the kernel's own status
        messages). Raises NotFound; NBServerError 500 if it does not come back."""
        kernel = self.get(kernel_id)
        kernel.execution_state = "restarting"
        kernel.channels.iopub_seen.clear()
        try:
            await kernel.km.restart_kernel(now=False)
        except Exception as exc:
            kernel.execution_state = "dead"
            raise NBServerError(
                f"Restarting kernel {kernel_id} failed: {exc}", reason="kernel failed"
            ) from exc
        info = kernel.km.get_connection_info(session=False)
        if any(info.get(k) != kernel.channels.info.get(k) for k in ("ip", "shell_port", "iopub_port", "key")):
            kernel.channels.reconnect(info)
        await self._wait_ready(kernel)
        kernel.execution_state = "idle"
        return kernel

    async def shutdown_kernel(self, kernel_id: str) -> None:
        await self._remove(self.get(kernel_id))

    async def _remove(self, kernel: Kernel, now: bool = False) -> None:
        """Forget the kernel and stop its process. The stop runs as a tracked task that a
        cancelled caller (the culler, a dropped request) cannot interrupt half-way: a kernel
        is never left running without a record of it."""
        if self.kernels.pop(kernel.id, None) is None:
            return
        kernel.channels.close()
        task = self._background(self._stop_process(kernel, now))
        await asyncio.shield(task)

    async def _stop_process(self, kernel: Kernel, now: bool) -> None:
        try:
            await kernel.km.shutdown_kernel(now=now)
        except Exception:
            log.exception("Shutting down kernel %s failed", kernel.id)
        log.info("Kernel %s shut down", kernel.id)

    async def shutdown(self) -> None:
        """Stop every kernel (server shutdown). Kernels still starting are waited for, then
        stopped, so that no kernel process outlives the server."""
        if self._culler is not None:
            self._culler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._culler
            self._culler = None
        for starting in list(self._starting.values()):
            with contextlib.suppress(Exception):
                await starting
        await asyncio.gather(*(self._remove(k) for k in list(self.kernels.values())))
        while self._tasks:  # stops begun elsewhere (culler, restarter) finish before we go
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.activity is not None:
            self.activity.gauges.pop("kernels", None)
            self.activity.gauges.pop("connections", None)
        if self._zmq is not None:
            self._zmq.destroy(linger=0)
            self._zmq = None
        if self._private_dir is not None:
            import shutil

            shutil.rmtree(self._private_dir, ignore_errors=True)

    # -- culling ---------------------------------------------------------------------------------

    def _ensure_culler(self) -> None:
        if self.config.cull_idle_timeout > 0 and self._culler is None:
            self._culler = asyncio.ensure_future(self._cull_loop())

    async def _cull_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.cull_interval)
            await self.cull_once()

    async def cull_once(self) -> list[str]:
        """Shut down the kernels idle longer than ``cull_idle_timeout`` (and dead ones)."""
        cfg = self.config
        now = _now()
        culled = []
        for kernel in list(self.kernels.values()):
            idle = (now - kernel.last_activity).total_seconds()
            if kernel.execution_state == "dead":
                pass
            elif (
                idle < cfg.cull_idle_timeout
                or (kernel.connections and not cfg.cull_connected)
                or (kernel.execution_state == "busy" and not cfg.cull_busy)
            ):
                continue
            log.info("Culling kernel %s (%s, idle %.0f s)", kernel.id, kernel.execution_state, idle)
            await self._remove(kernel)
            culled.append(kernel.id)
        return culled
