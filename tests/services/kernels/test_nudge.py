"""The "nudge": a client that opens a kernel websocket is told the kernel's execution_state at
once (one iopub ``status`` message), both framings, without asking anything first. Before,
it received nothing until it sent a request, and a page's kernel indicator stayed unknown.

States tried: idle, busy (a cell blocked on a file the test creates), and a reconnect with
messages kept for the session (the replay comes first, then the nudge). The message must pass
@jupyterlab/services' ``validateMessage`` (header fields are strings, ``execution_state`` one of
its five values) and not look like the end of anybody's request (empty ``parent_header``).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from nbserver.protocol import legacy, v1
from tests.conftest import TOKEN, Client
from tests.services.kernels.wsclient import KernelSocket, Message, stream_text

PROTOCOLS = ["v1", "legacy"]


def ws_base(client: Client) -> str:
    return client.base.replace("http://", "ws://")


async def start_kernel(client: Client) -> str:
    r = await client.post("api/kernels", json={})
    assert r.status == 201, r.text
    return str(r.json["id"])


async def read_raw(ws: KernelSocket, timeout: float = 30) -> dict[str, Any]:
    """The next frame as the message dict a client builds (all four JSON parts + channel)."""
    frame = await asyncio.wait_for(ws.conn.read_message(), timeout)
    assert frame is not None, "the websocket closed"
    if ws.protocol == "v1":
        assert isinstance(frame, bytes)
        channel, parts = v1.decode(frame)
    else:
        assert isinstance(frame, str), "a legacy message without buffers is a text frame"
        maybe, parts = legacy.decode(frame)
        assert maybe is not None
        channel = maybe
    header, parent, metadata, content = (json.loads(p) for p in parts[:4])
    return {"channel": channel, "header": header, "parent_header": parent, "metadata": metadata, "content": content}


def assert_nudge(msg: dict[str, Any], state: str, internal_session: str) -> None:
    """A complete Jupyter status message, as @jupyterlab/services validates it."""
    assert msg["channel"] == "iopub"
    header = msg["header"]
    for field in ("msg_id", "msg_type", "session", "username", "version", "date"):
        assert isinstance(header[field], str) and header[field], field
    assert header["msg_type"] == "status"
    assert header["session"] == internal_session
    assert header["version"].startswith("5.")
    datetime.fromisoformat(header["date"].replace("Z", "+00:00"))
    assert msg["parent_header"] == {} and msg["metadata"] == {}
    assert msg["content"] == {"execution_state": state}


def is_nudge(m: Message) -> bool:
    """A status of the server's own (its internal session) that answers nothing."""
    return (
        m.channel == "iopub"
        and m.msg_type == "status"
        and m.parent_header == {}
        and m.header["session"].startswith("nbserver-")
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_idle_kernel_says_idle_on_connect(client: Client, protocol: str) -> None:
    """Without sending anything, the first message is the nudge; the other clients of the
    kernel do not get it."""
    kernel_id = await start_kernel(client)
    internal = client.server.ctx.services["kernels"].kernels[kernel_id].channels.internal_session
    first = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, protocol)
    assert_nudge(await read_raw(first), "idle", internal)
    second = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, protocol)
    assert_nudge(await read_raw(second), "idle", internal)
    msg_id = await first.send("shell", "kernel_info_request", {})
    seen = await first.until(
        lambda m: m.msg_type == "status"
        and m.parent_header.get("msg_id") == msg_id
        and m.content["execution_state"] == "idle"
    )
    assert not any(is_nudge(m) for m in seen), "the second client's nudge went to the first"
    first.close()
    second.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_busy_kernel_says_busy_on_connect(client: Client, protocol: str, tmp_path: Path) -> None:
    """A cell runs (blocked until the test lets it go): a client connecting meanwhile is told
    ``busy`` at once, then sees the cell's ``idle``."""
    kernel_id = await start_kernel(client)
    internal = client.server.ctx.services["kernels"].kernels[kernel_id].channels.internal_session
    release = tmp_path / "release"
    runner = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, protocol)
    msg_id = await runner.execute(
        f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.02)\nprint('done')"
    )
    await runner.until(
        lambda m: m.msg_type == "status"
        and m.parent_header.get("msg_id") == msg_id
        and m.content["execution_state"] == "busy"
    )
    late = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, protocol)
    assert_nudge(await read_raw(late), "busy", internal)
    release.touch()
    seen = await late.until(
        lambda m: m.msg_type == "status"
        and m.parent_header.get("msg_id") == msg_id
        and m.content["execution_state"] == "idle"
    )
    assert stream_text(seen) == "done\n"
    runner.close()
    late.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_reconnect_gets_its_replay_then_the_nudge(client: Client, protocol: str) -> None:
    """A session that was away gets what it missed first, then the current state: the last
    status it reads is the present one."""
    kernel_id = await start_kernel(client)
    kernel = client.server.ctx.services["kernels"].kernels[kernel_id]
    other = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, protocol)
    away = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, protocol, session="away")
    assert is_nudge(await away.recv())
    away.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while kernel.connections != 1:  # the server has detached it: what follows is kept for it
        assert loop.time() < deadline, "the server never saw the close"
        await asyncio.sleep(0.05)
    outputs, _reply = await other.run("print('while you were away')")
    back = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, protocol, session="away")
    seen = await back.until(is_nudge)
    assert stream_text(seen) == "while you were away\n"
    replayed = [m for m in seen if not is_nudge(m)]
    assert replayed[-1].msg_type == "status" and replayed[-1].content["execution_state"] == "idle"
    assert seen[-1].content == {"execution_state": "idle"}
    # the replay ends with the cell's messages (before them may come stragglers of the
    # kernel's start-up, published after the first connection closed)
    expected = [m.header["msg_id"] for m in outputs]
    assert [m.header["msg_id"] for m in replayed][-len(expected) :] == expected
    other.close()
    back.close()
