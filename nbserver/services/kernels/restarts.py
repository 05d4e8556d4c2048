"""Restarting kernels: asked for (``POST /api/kernels/{id}/restart``) or automatic (jupyter_client's
restarter, or an adopted kernel's watcher, when a kernel process dies).

Contract, for both kinds:

- From the moment a restart begins until the new process is *ready* (:func:`.kernel.wait_ready`:
  it answered AND its iopub output is proven to reach the server), the kernel's
  ``execution_state`` is ``restarting``, clients' messages are held back
  (:meth:`.KernelChannels.hold`: a cell sent meanwhile runs once its output can be seen, not
  before), and interrupts are refused (:meth:`.KernelManager.interrupt`). Then the kernel is
  ``idle`` and the held messages go, in order.
- A restart asked for answers once the kernel is ready; one asked for while another runs (of
  either kind) joins it.
- An automatic restart tells the clients: an iopub ``status`` of ``restarting`` (as jupyter_server
  does), then the new kernel's own ``status`` messages once it is ready.
- No readiness within ``kernel_info_timeout`` (or the new process failing): the kernel is ``dead``
  with a ``reason``, its clients get a ``dead`` status, the restart answers 500, and the kernel
  stays listed, so that a further restart or a shutdown works. The server keeps asking it, less
  and less often: a kernel that answers after all (a slow start, a process that was stopped) is
  ``idle`` again, and the held messages go.
- The automatic restarter giving up: the kernel is ``dead``, its clients are told, and it is
  removed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ...errors import NBServerError, NotFound
from .adopted import AdoptedKernel
from .channels import ChannelsClosed
from .kernel import Kernel, follow_connection, wait_ready

if TYPE_CHECKING:
    from .manager import KernelManager

__all__ = ["Restarts"]

log = logging.getLogger("nbserver.kernel")

POLL = 0.2  # seconds between looks at a process that is being (re)started


class Restarts:
    """The restarts of one :class:`~.manager.KernelManager`'s kernels (see the module docstring).

    The manager calls :meth:`restart` for a restart asked for, and :meth:`watch` for every kernel
    it keeps, which routes the process's deaths here."""

    def __init__(self, manager: KernelManager) -> None:
        self.manager = manager
        self._running: dict[str, asyncio.Future[Kernel]] = {}
        self._recovering: dict[str, asyncio.Future[Any]] = {}

    def running(self, kernel_id: str) -> bool:
        """True while a restart of the kernel is in flight (until it is ready, or failed)."""
        return kernel_id in self._running

    def watch(self, kernel: Kernel) -> None:
        """Follow the kernel's process: automatic restarts and death."""
        kernel.km.add_restart_callback(lambda: self._on_restarting(kernel), "restart")
        kernel.km.add_restart_callback(lambda: self._on_dead(kernel), "dead")
        kernel.km.start_restarter()

    def forget(self, kernel_id: str) -> None:
        """The kernel is gone: stop asking it (a restart in flight finds out by itself)."""
        self._stop_recovering(kernel_id)

    async def finished(self, kernel_id: str) -> None:
        """Wait until the restart in flight, if any, has ended (however it ended). A kernel's
        process is stopped only after that: jupyter_client cannot stop a kernel it is
        restarting, and the restart stops the process it started for a kernel gone meanwhile."""
        running = self._running.get(kernel_id)
        if running is not None:
            await asyncio.wait([running])

    # -- asked for -------------------------------------------------------------------------------

    async def restart(self, kernel: Kernel) -> Kernel:
        """Restart ``kernel`` (or join the restart in flight) and wait until it is ready. An
        adopted kernel is stopped and a new process launched on the same connection info, which
        the manager then controls like any kernel it started.

        Raises:
            NotFound: the kernel was shut down during the restart; for an adopted kernel, its
                kernelspec is no longer installed (``"no such kernelspec"``; the kernel is left
                as it was).
            NBServerError: 500 ``"kernel failed"``: no new process, or it did not become ready
                (the kernel is then ``dead``, see the module docstring).
        """
        running = self._running.get(kernel.id)
        if running is None:
            adopted = isinstance(kernel.km, AdoptedKernel)
            spec = await self.manager.specs.get(kernel.name) if adopted else None
            if kernel.id not in self.manager.kernels:  # shut down meanwhile
                raise _removed(kernel)
            running = self._running.get(kernel.id)  # one may have begun meanwhile
            if running is None:
                running = self._begin(kernel, self._restart(kernel, spec))
        return await asyncio.shield(running)

    async def _restart(self, kernel: Kernel, spec: Any) -> Kernel:
        manager = self.manager
        try:
            if isinstance(kernel.km, AdoptedKernel) and spec is not None:
                adopted = kernel.km
                await adopted.shutdown_kernel(now=False, restart=True)
                kernel.km = await manager.launcher.launch(
                    kernel.id, spec, kernel.cwd, kernel.env, adopted.connection
                )
                self.watch(kernel)
            else:
                await kernel.km.restart_kernel(now=False)
        except Exception as exc:
            if kernel.id not in manager.kernels:  # the new process may have begun all the same
                await manager.kill(kernel.km)
                raise _removed(kernel) from exc
            raise self._failed(kernel, f"Restarting kernel {kernel.id} failed: {exc}") from exc
        if kernel.id not in manager.kernels:  # shut down meanwhile, maybe before the new process began
            await manager.kill(kernel.km)
            raise _removed(kernel)
        try:
            return await self._ready(kernel, "restart", manager.config.kernel_info_timeout)
        except NotFound:
            raise
        except NBServerError as exc:
            raise self._failed(kernel, exc.message) from exc

    # -- automatic -------------------------------------------------------------------------------

    def _on_restarting(self, kernel: Kernel) -> None:
        """The restarter found the process dead and is starting a new one."""
        log.warning("Kernel %s died; restarting", kernel.id)
        kernel.channels.broadcast_status("restarting")
        if kernel.id not in self._running:  # else the restart in flight (or, if its process
            self._begin(kernel, self._follow(kernel))  # died under it, its recovery) follows

    async def _follow(self, kernel: Kernel) -> Kernel:
        """Wait for the restarter's new process, then until it is ready. A new process that
        exits is the restarter's to replace (or to give up on: :meth:`_on_dead`); this fails
        only when no process is ready ``kernel_info_timeout`` seconds after the first death."""
        timeout = self.manager.config.kernel_info_timeout
        deadline = time.monotonic() + timeout
        while True:
            while not await kernel.km.is_alive():
                if kernel.id not in self.manager.kernels:
                    raise _removed(kernel)
                if time.monotonic() >= deadline:
                    raise self._failed(kernel, f"Kernel {kernel.id} did not come back within {timeout:.0f} s")
                await asyncio.sleep(POLL)
            try:
                return await self._ready(kernel, "automatic restart", max(0.0, deadline - time.monotonic()))
            except NotFound:
                raise
            except NBServerError as exc:
                if time.monotonic() < deadline and not await kernel.km.is_alive():
                    continue
                message = f"Kernel {kernel.id} did not come back within {timeout:.0f} s ({exc.message})"
                raise self._failed(kernel, message) from exc

    def _on_dead(self, kernel: Kernel) -> None:
        log.error("Kernel %s died and could not be restarted", kernel.id)
        kernel.execution_state = "dead"
        kernel.reason = "the kernel died and could not be restarted"
        kernel.channels.broadcast_status("dead")
        self.manager.background(self.manager.remove(kernel, now=True))

    # -- both ------------------------------------------------------------------------------------

    def _begin(self, kernel: Kernel, restart: Coroutine[Any, Any, Kernel]) -> asyncio.Future[Kernel]:
        """Enter the restarting state at once (interrupts are refused from here) and run
        ``restart`` as the kernel's restart in flight."""
        self._stop_recovering(kernel.id)
        kernel.execution_state = "restarting"
        kernel.reason = ""
        kernel.channels.hold()
        task = self.manager.background(restart)
        self._running[kernel.id] = task

        def done(_: asyncio.Future[Kernel]) -> None:
            if self._running.get(kernel.id) is task:
                del self._running[kernel.id]
            if not task.cancelled():
                task.exception()  # retrieved: an automatic restart may have no one waiting for it

        task.add_done_callback(done)
        return task

    async def _ready(self, kernel: Kernel, what: str, timeout: float) -> Kernel:
        """Wait until the new process is ready; then the kernel is ``idle`` and held messages go.
        Raises NotFound (shut down meanwhile), NBServerError (:func:`.kernel.wait_ready`)."""
        manager = self.manager
        try:
            await manager.save_record(kernel)  # a new process: a new pid, maybe new ports
            follow_connection(kernel)
            await wait_ready(kernel, timeout, what)
        except (ChannelsClosed, NBServerError) as exc:
            if kernel.id not in manager.kernels:
                raise _removed(kernel) from exc
            if isinstance(exc, ChannelsClosed):
                raise NBServerError(f"Kernel {kernel.id}: its channels closed ({exc})") from exc
            raise
        kernel.execution_state = "idle"
        kernel.channels.release()
        return kernel

    def _failed(self, kernel: Kernel, message: str) -> NBServerError:
        """The restart failed: the kernel is ``dead`` (clients are told) until it answers after
        all. Returns the error for the restart to raise."""
        log.error("%s; the kernel is dead unless it answers later", message)
        kernel.execution_state = "dead"
        kernel.reason = message
        kernel.channels.broadcast_status("dead")
        self._stop_recovering(kernel.id)
        self._recovering[kernel.id] = self.manager.background(self._recover(kernel))
        return NBServerError(message, reason="kernel failed")

    async def _recover(self, kernel: Kernel) -> None:
        """Keep asking a kernel whose restart failed; if it becomes ready, it is back. Ends when
        the kernel is shut down (its channels close) or a new restart begins (cancelled)."""
        while kernel.id in self.manager.kernels:
            if not await kernel.km.is_alive():  # the restarter may bring it back
                await asyncio.sleep(POLL * 10)
                continue
            try:
                follow_connection(kernel)
                await wait_ready(kernel, math.inf, "restart")
            except NBServerError:  # the process exited
                continue
            except ChannelsClosed:
                return
            log.warning("Kernel %s answered after its restart had failed: it is back", kernel.id)
            kernel.execution_state = "idle"
            kernel.reason = ""
            kernel.channels.release()
            return

    def _stop_recovering(self, kernel_id: str) -> None:
        recovering = self._recovering.pop(kernel_id, None)
        if recovering is not None:
            recovering.cancel()


def _removed(kernel: Kernel) -> NotFound:
    return NotFound(f"Kernel {kernel.id} was shut down during its restart", reason="no such kernel")
