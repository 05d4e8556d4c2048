"""``adopted.py`` on its own: process liveness, the adoption probe, and an adopted kernel that has
no pid (a kernel that is not a local process), controlled by messages alone. The pid-based paths
(signals, SIGKILL, the watcher) run end to end in ``test_survival.py``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import zmq.asyncio
from jupyter_client.manager import AsyncKernelManager

from nbserver.services.kernels.adopted import AdoptedKernel, pid_alive, probe
from nbserver.services.kernels.channels import KernelChannels
from nbserver.services.kernels.records import KernelRecord, connection_record


def test_pid_alive_is_false_for_exited_processes_and_zombies() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(0) and not pid_alive(-1)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)  # gone (reaped)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        while Path(f"/proc/{zombie.pid}/stat").exists():
            state = Path(f"/proc/{zombie.pid}/stat").read_bytes().rpartition(b")")[2].split()[0]
            if state == b"Z":
                break
        else:
            pytest.skip("no /proc here")
        os.kill(zombie.pid, 0)  # the process table still has it...
        assert not pid_alive(zombie.pid)  # ...but it is no kernel any more
    finally:
        zombie.wait()


def _parts(msg_type: str, content: dict[str, Any]) -> list[bytes]:
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "session": "test",
        "username": "test",
        "date": "2026-01-01T00:00:00Z",
        "version": "5.3",
    }
    return [json.dumps(header).encode(), b"{}", b"{}", json.dumps(content).encode()]


async def until_idle(channels: KernelChannels) -> None:
    """Probe until shell answers: busy kernels (and slow ones, on a loaded machine) answer on
    control first."""
    for _ in range(30):
        if await probe(channels, None, timeout=30) == "idle":
            return
    pytest.fail("the kernel never answered on shell")


async def test_probe_and_an_adopted_kernel_without_pid(tmp_path: Path) -> None:
    """A real ipykernel launched with jupyter_client (TCP) is probed, then controlled as an
    adopted kernel that has no pid: liveness, interrupt and shutdown by messages on control."""
    km = AsyncKernelManager(kernel_name="python3", connection_file=str(tmp_path / "kernel.json"))
    await km.start_kernel()
    context = zmq.asyncio.Context()
    info = connection_record(km.get_connection_info(session=False))
    channels = KernelChannels(info, context=context)
    channels.open()
    try:
        await until_idle(channels)  # a kernel still starting may answer on control first
        # a loop rather than one long sleep: ipykernel interrupts itself by message with a
        # signal that may land on its control thread, which a blocking sleep would not notice
        code = {"code": "import time\nwhile True:\n    time.sleep(0.05)", "silent": False}
        channels.send("test", "shell", _parts("execute_request", code))
        assert await probe(channels, None, timeout=30) == "busy"  # shell waits, control answers

        record = KernelRecord(
            kernel_id="k",
            name="python3",
            connection=info,
            pid=None,
            cwd=".",
            env={},
            interrupt_mode="signal",  # but without a pid only a message can interrupt
            last_activity=datetime.now(timezone.utc),
        )
        adopted = AdoptedKernel(record, context)
        assert adopted.get_connection_info() == info
        assert await adopted.is_alive()
        await adopted.interrupt_kernel()
        await until_idle(channels)  # the endless cell was interrupted

        dead: list[bool] = []
        adopted.add_restart_callback(lambda: dead.append(True), "dead")
        adopted.start_restarter()
        await adopted.shutdown_kernel()  # shutdown_request; the watcher is stopped first
        for _ in range(200):
            if not await km.is_alive():
                break
            await asyncio.sleep(0.05)
        assert not await km.is_alive()
        assert not await adopted.is_alive()
        assert dead == []  # a shutdown is not a death
    finally:
        channels.close()
        if await km.is_alive():
            await km.shutdown_kernel(now=True)
        else:
            await km.cleanup_resources()
        context.destroy(linger=0)
