"""Kernels that misbehave: one that cannot start, one that dies and cannot come back, and the
optional jupyter_server-style iopub rate limit.

Bad kernels tried: a kernelspec whose process exits at once; one that starts once, is killed,
and then fails every restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TOKEN, Client
from tests.services.kernels.wsclient import KernelSocket, stream_text


def install_spec(base: Path, name: str, argv: list[str]) -> None:
    spec_dir = base / "kernels" / name
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": name, "language": "python"})
    )


@pytest.fixture
def kernel_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private JUPYTER_PATH holding the broken kernelspecs (python3 stays available)."""
    path = tmp_path / "jupyter-path"
    path.mkdir()
    monkeypatch.setenv("JUPYTER_PATH", str(path))
    return path


async def test_a_kernel_that_cannot_start_is_a_clear_error_in_seconds(
    kernel_path: Path, client: Client
) -> None:
    install_spec(kernel_path, "broken", [sys.executable, "-c", "import sys; sys.exit(3)"])
    started = time.monotonic()
    r = await client.post("api/kernels", json={"name": "broken"})
    assert r.status == 500
    assert r.json["reason"] == "kernel failed"
    assert "exited during start-up" in r.json["message"]
    assert time.monotonic() - started < 15
    assert (await client.get("api/kernels")).json == []


async def test_a_kernel_that_cannot_be_restarted_is_reported_dead(
    kernel_path: Path, tmp_path: Path, client: Client
) -> None:
    marker = tmp_path / "started-once"
    script = (
        "import os, sys\n"
        f"marker = {str(marker)!r}\n"
        "if os.path.exists(marker): sys.exit(1)\n"
        "open(marker, 'w').close()\n"
        "from ipykernel import kernelapp\n"
        "kernelapp.launch_new_instance()\n"
    )
    install_spec(kernel_path, "once", [sys.executable, "-c", script, "-f", "{connection_file}"])
    r = await client.post("api/kernels", json={"name": "once"})
    assert r.status == 201, r.text
    kernel_id = r.json["id"]
    ws = await KernelSocket.connect(client.base.replace("http", "ws", 1), kernel_id, TOKEN)
    outputs, _ = await ws.run("import os; print(os.getpid())")
    os.kill(int(stream_text(outputs)), signal.SIGKILL)
    states = [
        m.content["execution_state"]
        for m in await ws.until(
            lambda m: m.msg_type == "status" and m.content["execution_state"] == "dead", timeout=120
        )
        if m.msg_type == "status"
    ]
    assert "restarting" in states
    for _ in range(50):
        if (await client.get(f"api/kernels/{kernel_id}")).status == 404:
            break
        await asyncio.sleep(0.2)
    assert (await client.get("api/kernels")).json == []
    ws.close()


async def test_optional_rate_limit_drops_output_with_a_notice(make_server, make_client) -> None:
    client = make_client(await make_server(iopub_msg_rate_limit=50, rate_limit_window=1))
    r = await client.post("api/kernels", json={})
    ws = await KernelSocket.connect(client.base.replace("http", "ws", 1), r.json["id"], TOKEN)
    outputs, reply = await ws.run("for i in range(3000): print(i, flush=True)", timeout=120)
    assert reply.content["status"] == "ok"
    lines = stream_text(outputs).splitlines()
    assert 0 < len(lines) < 3000
    notices = stream_text(outputs, "stderr")
    assert "IOPub message rate exceeded" in notices
    ws.close()
