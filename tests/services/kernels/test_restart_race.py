"""Restarts and the first cell after them, with real kernels.

The race: a restart answered once the new kernel replied on shell, while iopub (PUB/SUB, which
drops whatever is published before the subscriber's subscription reaches the publisher) still
carried the old kernel's shutdown traffic, which the server took for its proof of output. The
first cell then got its ``execute_reply`` and none of its iopub output (no ``busy``, ``stream``
or ``idle``). After a kernel's death, a cell sent while the restarter brought it back ran as soon
as the new process started, before the subscription reached it: the same loss.

Inputs tried: 50 restarts asked for, each followed at once by a cell from a fresh websocket,
with two busy-loop processes competing for the CPU (the race as it happens: rarely); the server's
subscription made to reach the new process late (3 s after a restart asked for, 10 s after a
SIGKILL), with a cell sent at once (the race made certain).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import zmq

from nbserver import Server
from nbserver.services.kernels.channels import endpoint
from tests.conftest import TOKEN, Client
from tests.services.kernels.wsclient import KernelSocket, Message, stream_text

RESTARTS = 50
LATE = 15.0  # seconds a cell's iopub may trail its execute_reply before it counts as lost


@contextlib.contextmanager
def cpu_load(processes: int = 2) -> Iterator[None]:
    """Busy-loop processes competing with the server and the kernels for the CPU."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def ws_base(client: Client) -> str:
    return client.base.replace("http://", "ws://")


async def run_cell(ws: KernelSocket, code: str, what: str, timeout: float = 60) -> list[Message]:
    """Execute ``code``; the cell's iopub messages once its ``execute_reply`` AND its closing
    ``idle`` arrived, checked to begin with ``busy``. Output that does not come within
    :data:`LATE` seconds of the reply fails with ``what``."""
    msg_id = await ws.execute(code)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    reply: Message | None = None
    outputs: list[Message] = []
    while reply is None or not outputs or outputs[-1].content.get("execution_state") != "idle":
        try:
            msg = await ws.recv(timeout=max(0.1, deadline - loop.time()))
        except asyncio.TimeoutError:
            types = [m.msg_type for m in outputs]
            raise AssertionError(f"{what}: reply={reply is not None}, iopub of the cell: {types}") from None
        assert msg is not None, "the websocket closed"
        if msg.parent_header.get("msg_id") != msg_id:
            continue
        if msg.channel == "shell":
            reply = msg
            deadline = min(deadline, loop.time() + LATE)
        elif msg.channel == "iopub":
            outputs.append(msg)
    assert reply.content["status"] == "ok", reply.content
    first = outputs[0]
    assert first.msg_type == "status" and first.content["execution_state"] == "busy", what
    return outputs


async def test_fifty_restarts_each_followed_at_once_by_a_cell_lose_no_output(client: Client) -> None:
    r = await client.post("api/kernels", json={})
    assert r.status == 201
    kernel_id = r.json["id"]
    with cpu_load():
        for i in range(RESTARTS):
            r = await client.post(f"api/kernels/{kernel_id}/restart")
            assert r.status == 200, r.text
            assert r.json["execution_state"] == "idle"
            ws = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN)
            try:
                outputs = await run_cell(ws, f"print({i})", f"the cell after restart {i}")
            finally:
                ws.close()
            assert stream_text(outputs) == f"{i}\n"


def subscribe_late(server: Server, kernel_id: str, seconds: float) -> None:
    """The server's iopub subscription reaches the kernel's next process ``seconds`` late: its SUB
    socket reconnects only every ``seconds``, not every 0.1 s (as a loaded machine may make it).
    ZMQ reads the option when connecting, so the socket connects again with it."""
    assert server.ctx is not None
    channels = server.ctx.services["kernels"].kernels[kernel_id].channels
    sub, address = channels._sockets["iopub"], endpoint(channels.info, "iopub")
    sub.disconnect(address)
    sub.setsockopt(zmq.RECONNECT_IVL, int(seconds * 1000))
    sub.connect(address)


async def test_a_restart_answers_only_once_output_of_the_new_kernel_reaches_the_server(
    server: Server, client: Client
) -> None:
    """With the subscription 3 s late, the restart must still answer only once the new kernel's
    output reaches the server, so that a cell sent at once gets all of it. (The old code
    answered on the old kernel's shutdown traffic; the cell lost its output.)"""
    r = await client.post("api/kernels", json={})
    assert r.status == 201
    kernel_id = r.json["id"]
    subscribe_late(server, kernel_id, 3)
    r = await client.post(f"api/kernels/{kernel_id}/restart")
    assert r.status == 200, r.text
    ws = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN)
    try:
        outputs = await run_cell(ws, "print('after')", "the cell after the restart")
    finally:
        ws.close()
    assert stream_text(outputs) == "after\n"


async def test_a_cell_sent_while_a_dead_kernel_restarts_loses_no_output(
    server: Server, client: Client
) -> None:
    """SIGKILL, then, as soon as the client hears "restarting", a cell from a fresh websocket,
    with the subscription 10 s late (longer than the restart takes): the cell runs once the new
    kernel's output reaches the server, with all its output, and the model says idle only then.
    (The old code sent it to the new process as soon as it started; its output was lost.)"""
    r = await client.post("api/kernels", json={})
    kernel_id = r.json["id"]
    subscribe_late(server, kernel_id, 10)
    ws = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN)
    outputs = await run_cell(ws, "import os; print(os.getpid())", "the first cell")
    os.kill(int(stream_text(outputs)), signal.SIGKILL)
    await ws.until(lambda m: m.msg_type == "status" and m.content["execution_state"] == "restarting")
    ws.close()
    fresh = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN)
    try:
        outputs = await run_cell(fresh, "print('first')", "the cell sent while restarting")
        assert stream_text(outputs) == "first\n"
        assert (await client.get(f"api/kernels/{kernel_id}")).json["execution_state"] == "idle"
        outputs = await run_cell(fresh, "print('second')", "the next cell")
        assert stream_text(outputs) == "second\n"
    finally:
        fresh.close()
