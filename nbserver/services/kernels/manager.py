"""Running kernels: start, list, interrupt, restart, shut down, cull.

Kernel processes are launched by :class:`~.launcher.Launcher` (jupyter_client, ipc sockets for
local kernels). A kernel is ready when it answers ``kernel_info_request`` on shell and its iopub
output is proven to reach the server (:func:`.kernel.wait_ready`); start and restart wait for
that (bounded by ``kernel_info_timeout``) and fail fast when the process exits first. Restarts,
asked for and automatic, follow the contract of :mod:`.restarts`. A start that fails after the
kernel's process was launched stops that process: no process outlives a failed start.

Kernels that outlive the server: given :class:`~.records.KernelRecords` (a file session store),
the manager records every kernel it starts (connection info, pid, cwd...), launches kernels
independent of the server process, with their sockets in a ``state_dir`` that outlives it.
:meth:`KernelManager.startup` re-attaches the recorded kernels that still run (as
:class:`~.adopted.AdoptedKernel`) and forgets the others. :meth:`KernelManager.shutdown` stops
every kernel unless ``config.keep_kernels``, which leaves them running, recorded.

Events: with ``events`` set (the server's bus), :meth:`~KernelManager.start`,
:meth:`~KernelManager.interrupt`, :meth:`~KernelManager.restart`,
:meth:`~KernelManager.shutdown_kernel` and culling emit jupyter_server's ``kernel_actions/v1``
events: ``status`` ``"success"``, or ``"error"`` with the error's ``status_code`` and message
(as jupyter_server, an unknown kernel id is not an action and emits nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ...config import ServerConfig
from ...context import Activity
from ...errors import BadRequest, ConfigError, Conflict, NBServerError, NotFound
from ...protocol.wire import string_field
from ...tasks import cancel
from ..contents import paths
from ..events.bus import EventSink
from ..events.schemas import KERNEL_ACTIONS, kernel_action
from ..kernelspecs.manager import KernelSpec, KernelSpecManager
from .adopted import AdoptedKernel, kernel_pid, pid_alive, probe
from .channels import KernelChannels
from .kernel import Kernel, stdin_linked, utcnow, wait_ready
from .launcher import Launcher, kill
from .records import KernelRecord, KernelRecords, RecordKeeper, connection_record
from .restarts import Restarts

if TYPE_CHECKING:
    import zmq.asyncio

__all__ = ["Kernel", "KernelManager"]

log = logging.getLogger("nbserver.kernel")

_KERNEL_ID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
ADOPT_TIMEOUT = 10.0  # seconds a recorded kernel gets to answer at start-up (at most kernel_info_timeout)
ACTIVITY_FLUSH_INTERVAL = 30.0  # seconds between writes of changed last_activity to the records
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


_Method = TypeVar("_Method", bound=Callable[..., Awaitable[Any]])


def _action(action: str) -> Callable[[_Method], _Method]:
    """Emit a ``kernel_actions`` event for each call of the decorated method (see the module
    docstring): its first argument is a kernel id, or for ``start`` the kernelspec name."""

    def decorate(method: _Method) -> _Method:
        @functools.wraps(method)
        async def emitting(self: KernelManager, *args: Any, **kwargs: Any) -> Any:
            if action == "start":
                kernel_id, name = kwargs.get("kernel_id"), args[0] if args else kwargs.get("name")
                if kernel_id in self.kernels or kernel_id in self._starting:  # joins one: no action
                    return await method(self, *args, **kwargs)
            else:
                kernel_id = args[0] if args else kwargs["kernel_id"]
                known = self.kernels.get(kernel_id)
                if known is None:  # 404: no kernel, no action
                    return await method(self, *args, **kwargs)
                name = known.name
            try:
                result = await method(self, *args, **kwargs)
            except Exception as exc:
                self.emit_action(action, kernel_id, name, exc)
                raise
            if isinstance(result, Kernel):
                kernel_id, name = result.id, result.name
            self.emit_action(action, kernel_id, name)
            return result

        return emitting  # type: ignore[return-value]

    return decorate


class KernelManager:
    """All kernels of one server.

    Args:
        config: limits and culling settings (``kernel_info_timeout``, ``cull_*``, replay bounds),
            and ``keep_kernels``.
        specs: where kernelspecs come from.
        activity: the server's activity tracker; kernel traffic counts as activity, and the
            ``kernels`` / ``connections`` gauges of ``/api/status`` read from here.
        records: where kernels are recorded so that they outlive the server (None: they stop
            with it). With records, kernels are launched independent of the server process,
            :meth:`startup` re-attaches the recorded ones, and ``config.keep_kernels`` applies.
        state_dir: required with ``records`` (and ignored without): the directory (created
            0700) for connection files and ipc sockets, which must outlive the server. Without
            records they go to a private temporary directory, removed at shutdown.

    Raises:
        ConfigError: ``records`` without ``state_dir``; a ``state_dir`` that is not ours.
    """

    def __init__(
        self,
        config: ServerConfig,
        specs: KernelSpecManager,
        activity: Activity | None = None,
        *,
        records: KernelRecords | None = None,
        state_dir: Path | None = None,
    ) -> None:
        if records is not None and state_dir is None:
            raise ConfigError("a kernel manager with records needs a state_dir that outlives it")
        self.config = config
        self.root_dir = config.root_dir
        self.specs = specs
        self.activity = activity
        self.records = RecordKeeper(records)
        self.kernels: dict[str, Kernel] = {}
        self._starting: dict[str, asyncio.Task[Kernel]] = {}
        self._zmq: zmq.asyncio.Context | None = None  # created with the first kernel
        self.launcher = Launcher(specs, state_dir if records is not None else None)
        self._culler: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self.restarts = Restarts(self)
        self.events: EventSink | None = None  # where kernel_actions events go (module docstring)
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

    @_action("start")
    async def start(
        self,
        name: str | None = None,
        *,
        path: str | None = None,
        kernel_id: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Kernel:
        """Start a kernel and wait until it is ready (:func:`.kernel.wait_ready`).

        ``kernel_id`` of a running kernel returns that kernel (jupyter_server 2.21 behaviour).

        Raises:
            NotFound: unknown kernelspec (reason ``"no such kernelspec"``).
            BadRequest: a ``kernel_id`` that is not a UUID.
            NBServerError: 500 ``"kernel failed"`` when the kernel process exits or does not
                answer in time, or anything else fails once it was launched (its channels,
                watching it; a record that cannot be written is only logged: the kernel then
                does not outlive the server); the process is stopped and nothing is kept.
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
        task = asyncio.ensure_future(self._start(kernel_id, spec, cwd, env or {}))
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

    def _make_kernel(
        self, kernel_id: str, name: str, km: Any, cwd: str, env: dict[str, str], interrupt_mode: str
    ) -> Kernel:
        """A :class:`Kernel` for ``km``, its channels open (state and activity are followed once
        :meth:`_track` is called)."""
        channels = KernelChannels(
            dict(km.get_connection_info(session=False)),
            context=self._context(),
            replay_bytes=self.config.replay_buffer_bytes,
            replay_seconds=self.config.replay_buffer_seconds,
        )
        kernel = Kernel(kernel_id, name, km, channels, cwd=cwd, env=env, interrupt_mode=interrupt_mode)
        channels.open()
        return kernel

    def _track(self, kernel: Kernel) -> None:
        """Follow the kernel's state and activity from its iopub messages."""
        kernel.channels.on_iopub = lambda msg_type, parent, content: self._on_iopub(
            kernel, msg_type, parent, content
        )

    async def _start(self, kernel_id: str, spec: KernelSpec, cwd: Path, env: dict[str, str]) -> Kernel:
        started = time.monotonic()
        try:
            km = await self.launcher.launch(kernel_id, spec, str(cwd), env)
        except Exception as exc:
            raise NBServerError(f"Kernel {spec.name} failed to start: {exc}", reason="kernel failed") from exc
        kernel: Kernel | None = None
        try:
            interrupt_mode = str(spec.spec.get("interrupt_mode", "signal"))
            kernel = self._make_kernel(kernel_id, spec.name, km, str(cwd), dict(env), interrupt_mode)
            self._track(kernel)
            await self.save_record(kernel)  # before the wait: a server killed now still finds it
            await wait_ready(kernel, self.config.kernel_info_timeout, "start-up")
            kernel.execution_state = "idle"
            self.restarts.watch(kernel)
        except BaseException as exc:
            # whatever failed, the process is ours: it goes, with its record
            if kernel is not None:
                kernel.channels.close()
            await asyncio.shield(self.background(self.kill(km)))
            await self.records.delete(kernel_id)
            if isinstance(exc, Exception) and not isinstance(exc, NBServerError):
                message = f"Kernel {spec.name} failed to start: {exc}"
                raise NBServerError(message, reason="kernel failed") from exc
            raise
        self.kernels[kernel_id] = kernel
        self._ensure_background_tasks()
        log.info(
            "Kernel %s (%s) started in %.2f s in %s", kernel_id, spec.name, time.monotonic() - started, cwd
        )
        return kernel

    async def kill(self, km: Any) -> None:
        """Stop the process behind ``km`` at once (one that failed to start, or lost its
        kernel): :func:`.launcher.kill`."""
        await kill(km)

    # -- state from the kernel -------------------------------------------------------------------

    def _on_iopub(self, kernel: Kernel, msg_type: str, parent: bytes, content: bytes) -> None:
        was_busy = kernel.execution_state == "busy"
        if msg_type == "status":
            state = string_field(content, "execution_state")
            # restarting and dead end when the restart says so (see .restarts): the old
            # process's last words and the new one's answers to probes are not the end
            if state is not None and kernel.execution_state not in ("restarting", "dead"):
                kernel.execution_state = state
            # The end of a request is activity (a long silent cell: the idle clock starts when
            # it finishes), unless the request was the server's own: its kernel_info probes
            # (readiness, re-attaching) make the kernel busy and idle without anyone using it.
            active = (
                was_busy
                and kernel.execution_state == "idle"
                and string_field(parent, "session") != kernel.channels.internal_session
            )
        else:
            active = msg_type not in _UNTRACKED or kernel.execution_state == "busy"
        if active:
            kernel.last_activity = utcnow()
            if self.activity is not None:
                self.activity.touch()

    def emit_action(
        self, action: str, kernel_id: str | None, name: str | None, error: Exception | None = None
    ) -> None:
        """Emit a ``kernel_actions`` event (when ``events`` is set); a failure is only logged."""
        if self.events is None:
            return
        data = kernel_action(action, kernel_id, name, error)
        try:
            self.events.emit(KERNEL_ACTIONS, data)
        except Exception:
            log.exception("Could not emit the kernel event %s", data)

    def background(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        """Run ``coro`` as a task the manager keeps (and :meth:`shutdown` waits for)."""
        task: asyncio.Future[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- control ---------------------------------------------------------------------------------

    @_action("interrupt")
    async def interrupt(self, kernel_id: str) -> None:
        """Interrupt what the kernel runs (by signal or message, as its kernelspec says).

        Refused while a restart, asked for or automatic, is in flight (until the new kernel is
        ready): sent then, an interrupt would reach the old process as it stops, or the new
        one before it runs anything, and be lost either way; the client sees the kernel come
        back (its status) and interrupts what runs then. Refused for a dead kernel, or one
        whose process has exited (the restarter may not have noticed yet): no signal ever
        goes to a process that is not the kernel.

        Raises:
            NotFound: no such kernel (also when shut down meanwhile).
            Conflict: 409, reason ``"kernel restarting"`` or ``"kernel dead"``.
        """
        kernel = self.get(kernel_id)
        self._interruptible(kernel)
        alive = await kernel.km.is_alive()
        kernel = self.get(kernel_id)
        self._interruptible(kernel)  # again: a restart may have begun meanwhile
        if not alive:
            raise Conflict(f"Kernel {kernel_id} is dead: its process has exited", reason="kernel dead")
        await kernel.km.interrupt_kernel()

    def _interruptible(self, kernel: Kernel) -> None:
        if self.restarts.running(kernel.id) or kernel.execution_state == "restarting":
            raise Conflict(
                f"Kernel {kernel.id} is restarting: interrupt it once it is back", reason="kernel restarting"
            )
        if kernel.execution_state == "dead":
            raise Conflict(f"Kernel {kernel.id} is dead ({kernel.reason}): restart it", reason="kernel dead")

    @_action("restart")
    async def restart(self, kernel_id: str) -> Kernel:
        """Restart and wait until the new kernel is ready; one asked for while a restart runs
        joins it. See :mod:`.restarts` for the contract and :meth:`.Restarts.restart` for
        the errors (404 no such kernel, also when shut down meanwhile; 500 ``"kernel
        failed"``, the kernel then ``dead``)."""
        return await self.restarts.restart(self.get(kernel_id))

    @_action("shutdown")
    async def shutdown_kernel(self, kernel_id: str) -> None:
        await self.remove(self.get(kernel_id))

    async def remove(self, kernel: Kernel, now: bool = False) -> None:
        """Forget the kernel and stop its process. The stop runs as a tracked task that a
        cancelled caller (the culler, a dropped request) cannot interrupt half-way: a kernel
        is never left running without a record of it."""
        if self.kernels.pop(kernel.id, None) is None:
            return
        self.restarts.forget(kernel.id)
        kernel.channels.close()
        task = self.background(self._stop_process(kernel, now))
        await asyncio.shield(task)

    async def _stop_process(self, kernel: Kernel, now: bool) -> None:
        await self.restarts.finished(kernel.id)
        try:
            await kernel.km.shutdown_kernel(now=now)
        except Exception:
            log.exception("Shutting down kernel %s failed; killing it", kernel.id)
            await kill(kernel.km)
        await self.records.delete(kernel.id)
        log.info("Kernel %s shut down", kernel.id)

    async def shutdown(self) -> None:
        """Server shutdown: stop every kernel, or with ``config.keep_kernels`` (and records)
        leave them all running and recorded for the next server on the same store. Kernels
        still starting are waited for first, so none is left unaccounted for."""
        for task in (self._culler, self._flusher):
            await cancel(task)
        self._culler = self._flusher = None
        for starting in list(self._starting.values()):
            with contextlib.suppress(Exception):
                await starting
        keep = self.config.keep_kernels and self.persistent
        if keep:
            await self._leave_running()
        else:
            await asyncio.gather(*(self.remove(k) for k in list(self.kernels.values())))
        while self._tasks:  # stops begun elsewhere (culler, restarter) finish before we go
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.activity is not None:
            self.activity.gauges.pop("kernels", None)
            self.activity.gauges.pop("connections", None)
        if self._zmq is not None:
            self._zmq.destroy(linger=0)
            self._zmq = None
        self.launcher.close(keep)

    async def _leave_running(self) -> None:
        """Let go of every kernel without stopping it; its record stays (with its latest
        ``last_activity``), for :meth:`startup` of the next server."""
        kernels = list(self.kernels.values())
        self.kernels.clear()
        for kernel in kernels:
            kernel.km.stop_restarter()
            kernel.channels.close()
        await self.records.touch({k.id: k.last_activity for k in kernels})
        if kernels:
            log.info("Leaving %d kernel(s) running (keep_kernels)", len(kernels))

    # -- records (kernels that outlive the server) -----------------------------------------------

    @property
    def persistent(self) -> bool:
        """True when kernels are recorded, and so outlive the server."""
        return self.records.records is not None

    async def save_record(self, kernel: Kernel) -> None:
        await self.records.save(
            KernelRecord(
                kernel_id=kernel.id,
                name=kernel.name,
                connection=connection_record(kernel.km.get_connection_info(session=False)),
                pid=kernel_pid(kernel.km),
                cwd=kernel.cwd,
                env=kernel.env,
                interrupt_mode=kernel.interrupt_mode,
                last_activity=kernel.last_activity,
            )
        )

    async def _flush_loop(self) -> None:
        """Write changed ``last_activity`` every :data:`ACTIVITY_FLUSH_INTERVAL` seconds."""
        while True:
            await asyncio.sleep(ACTIVITY_FLUSH_INTERVAL)
            await self.records.touch({k.id: k.last_activity for k in self.kernels.values()})

    async def startup(self) -> None:
        """Re-attach the kernels recorded by an earlier server on the same store (call before
        serving): same id, same sessions, listed in :meth:`models`. A no-op without records.

        A recorded kernel is re-attached when its process is alive and it answers
        ``kernel_info_request`` within :data:`ADOPT_TIMEOUT` seconds: on shell (it is idle),
        or on control (a cell keeps shell busy). A live process that answers neither is
        re-attached (as busy) only if it is verifiably that kernel (its command line names the
        kernel's connection file), so that a long computation holding the GIL is not lost;
        otherwise it is left alone. The records of kernels not re-attached are dropped, with
        their sessions.
        """
        records = [r for r in await self.records.load() if r.kernel_id not in self.kernels]
        adopted = await asyncio.gather(*(self._adopt(record) for record in records))
        if records:
            log.info("Re-attached %d of %d recorded kernel(s)", sum(adopted), len(records))
        if self.kernels:
            self._ensure_background_tasks()

    async def _adopt(self, record: KernelRecord) -> bool:
        km = AdoptedKernel(record, self._context(), self.launcher.connection_file(record.kernel_id))
        state = None
        if record.pid is None or pid_alive(record.pid):
            kernel = self._make_kernel(
                record.kernel_id, record.name, km, record.cwd, dict(record.env), record.interrupt_mode
            )
            timeout = min(ADOPT_TIMEOUT, self.config.kernel_info_timeout)
            state = await probe(kernel.channels, record.pid, timeout)
            if state is None and km.launched_as_recorded():
                log.warning("Kernel %s (pid %s) does not answer; re-attaching it", record.kernel_id, km.pid)
                state = "busy"
            if state is None:
                kernel.channels.close()
        if state is None:
            if record.pid is not None and pid_alive(record.pid):
                log.warning(
                    "Kernel %s: process %d does not answer as the kernel; forgetting the kernel, "
                    "leaving that process alone",
                    record.kernel_id,
                    record.pid,
                )
            else:
                log.info("Kernel %s is gone; forgetting it and its sessions", record.kernel_id)
                km.remove_files()
            await self.records.forget(record.kernel_id)
            return False
        await stdin_linked(kernel)  # as for a kernel we start: input() must reach this server
        # the probe's own messages are not activity: track from here, with the recorded activity
        kernel.execution_state = state
        kernel.last_activity = record.last_activity
        self._track(kernel)
        self.records.adopted(record)
        self.restarts.watch(kernel)
        self.kernels[kernel.id] = kernel
        log.info("Re-attached kernel %s (%s, pid %s, %s)", kernel.id, kernel.name, record.pid, state)
        return True

    # -- culling ---------------------------------------------------------------------------------

    def _ensure_background_tasks(self) -> None:
        """The culler (when culling is on) and the activity flusher (when there are records)."""
        if self.config.cull_idle_timeout > 0 and self._culler is None:
            self._culler = asyncio.ensure_future(self._cull_loop())
        if self.persistent and self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush_loop())

    async def _cull_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.cull_interval)
            await self.cull_once()

    async def cull_once(self) -> list[str]:
        """Shut down the kernels idle longer than ``cull_idle_timeout`` (and dead ones)."""
        cfg = self.config
        now = utcnow()
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
            await self.remove(kernel)
            self.emit_action("shutdown", kernel.id, kernel.name)
            culled.append(kernel.id)
        return culled
