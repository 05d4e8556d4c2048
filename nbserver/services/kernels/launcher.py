"""Launching kernel processes, and where their connection files and sockets live.

Kernels are launched through jupyter_client's ``AsyncIOLoopKernelManager``, so kernelspec
provisioners (gateway_provisioners for Kubernetes, Docker, YARN...) keep working, and so does
jupyter_client's auto-restarter for kernels whose process dies.

Local kernels talk over ZMQ ``ipc`` sockets in a private directory instead of TCP ports: picking
free TCP ports is racy (jupyter_client binds port 0, closes it, and hopes the kernel gets it), and
with many concurrent starts a kernel loses that race and dies with "Address already in use".
Socket files cannot collide. Kernels with a non-local provisioner keep TCP, and so does a local
kernel whose socket path would be too long for ``sun_path``.

The directory is a temporary one, removed at shutdown, unless kernels outlive the server: then it
is a ``state_dir`` that stays (``<session store>.kernels/``), and kernels are launched
*independent* (jupyter_client does not set ``JPY_PARENT_PID``, so ipykernel does not exit when
the server does).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ..kernelspecs.manager import KernelSpec, KernelSpecManager

__all__ = ["Launcher", "kill", "private_state_dir"]

log = logging.getLogger("nbserver.kernel")

_IPC_PATH_MAX = 90  # sun_path holds 107 bytes; leave room for "-<port>"


def private_state_dir(path: Path) -> Path:
    """Create ``path`` (0700), or check that it is a real directory of ours, closed to others.

    Raises:
        ConfigError: it cannot be created, or is a symlink, not a directory, or not ours.
    """
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise ConfigError(f"cannot create the kernel directory {path}: {exc.strerror}") from exc
    if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        raise ConfigError(f"{path} must be a directory owned by this user (it holds kernel sockets)")
    if info.st_mode & 0o077:
        path.chmod(0o700)
    return path


async def kill(km: Any) -> None:
    """Stop the process behind ``km`` (a jupyter_client KernelManager or an AdoptedKernel) at
    once, and remove its files. Should that fail (it interrupts the kernel first, which for some
    kernels takes a socket, as may the clean-up), the process is still killed. Failures are
    logged, never raised."""
    try:
        await km.shutdown_kernel(now=True)
        return
    except Exception:
        log.exception("Stopping a kernel process failed; killing it")
    provisioner = getattr(km, "provisioner", None)
    if provisioner is not None:
        try:
            await provisioner.kill()
        except Exception:
            log.exception("Killing a kernel process failed")


class Launcher:
    """Starts kernel processes for one kernel manager.

    Args:
        specs: where kernelspecs come from.
        state_dir: a directory that outlives the server (created 0700, checked to be ours), for
            kernels that outlive it; None: a temporary directory, and kernels that stop with the
            server.

    Raises:
        ConfigError: see :func:`private_state_dir`.
    """

    def __init__(self, specs: KernelSpecManager, state_dir: Path | None = None) -> None:
        self.specs = specs
        self.state_dir = private_state_dir(state_dir) if state_dir is not None else None
        self._temp_dir: str | None = None

    def private_dir(self) -> str:
        """The 0700 directory for connection files and ipc sockets."""
        if self.state_dir is not None:
            return str(self.state_dir)
        if self._temp_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="nbserver-")
        return self._temp_dir

    def connection_file(self, kernel_id: str) -> str:
        return os.path.join(self.private_dir(), f"kernel-{kernel_id}.json")

    def _ipc_prefix(self, kernel_id: str) -> str | None:
        if os.name != "posix":
            return None
        prefix = os.path.join(self.private_dir(), kernel_id[:8])
        if len(prefix) < _IPC_PATH_MAX:
            return prefix
        log.warning("%s is too long a path for ipc sockets; kernel %s uses TCP", prefix, kernel_id)
        return None

    async def launch(
        self,
        kernel_id: str,
        spec: KernelSpec,
        cwd: str,
        env: dict[str, str],
        connection: dict[str, Any] | None = None,
    ) -> Any:
        """Launch a kernel process; returns its ``AsyncIOLoopKernelManager``.

        Args:
            env: added to ``os.environ``.
            connection: connection info to reuse (the sockets and key of a kernel that is being
                replaced); else a local kernel gets ipc sockets in :meth:`private_dir` and
                another one TCP.

        Raises whatever jupyter_client raises. A launch that fails after the process began
        (jupyter_client's own bookkeeping after the launch: the restarter, the control socket,
        the provisioner's post-launch step) stops that process first: it has no kernel.
        """
        from jupyter_client.ioloop.manager import AsyncIOLoopKernelManager

        km: Any = AsyncIOLoopKernelManager(
            kernel_name=spec.name,
            kernel_spec_manager=self.specs.inner,
            connection_file=self.connection_file(kernel_id),
        )
        local = (
            spec.spec.get("metadata", {})
            .get("kernel_provisioner", {})
            .get("provisioner_name", "local-provisioner")
            == "local-provisioner"
        )
        if connection is not None:
            km.load_connection_info(connection)
        elif local and (prefix := self._ipc_prefix(kernel_id)) is not None:
            km.transport = "ipc"
            km.ip = prefix
        try:
            await km.start_kernel(
                cwd=cwd,
                env={**os.environ, **env},
                kernel_id=kernel_id,
                independent=self.state_dir is not None,  # no JPY_PARENT_PID: it may outlive the server
            )
        except BaseException:
            if km.has_kernel:
                log.warning("Kernel %s failed after its process was launched; stopping it", kernel_id)
                await kill(km)
            raise
        return km

    def close(self, keep: bool) -> None:
        """Server shutdown: remove the temporary directory; or the state directory if it is empty
        and nothing is ``keep``-t in it."""
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
        elif self.state_dir is not None and not keep:
            with contextlib.suppress(OSError):  # only if empty: files of kernels still recorded stay
                self.state_dir.rmdir()
