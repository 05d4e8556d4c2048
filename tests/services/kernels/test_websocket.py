"""The kernel websocket bridge with real kernels: both framings, fan-out and routing, stdin,
replay after a disconnect, slow clients, and malformed frames.

Bad frames tried: hypothesis-generated garbage (binary and text, both framings), legacy
messages nested up to past Python's recursion limit, v1 garbage bytes, a v1 text frame, legacy
invalid JSON, a legacy message with NaN in it, one with 1e400 (infinite once parsed), JSON
nested 100,000 deep (v1 header, legacy content), a legacy message with no header, an unknown
channel, a message over max_ws_message_size, an unknown kernel id.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket

import sys
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from nbserver.protocol import v1
from tests.conftest import TOKEN, Client
from tests.services.kernels.wsclient import KernelSocket, stream_text


def ws_base(client: Client) -> str:
    return client.base.replace("http://", "ws://")


@pytest.fixture
def kernel_id(io_loop, client: Client) -> str:
    r = io_loop.run_sync(lambda: client.post("api/kernels", json={}))
    assert r.status == 201
    return str(r.json["id"])


@pytest.mark.parametrize("protocol", ["v1", "legacy"])
async def test_execute_and_kernel_info(client: Client, kernel_id: str, protocol: str) -> None:
    ws = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, protocol)
    msg_id = await ws.send("shell", "kernel_info_request", {})
    seen = await ws.until(lambda m: m.channel == "shell")
    assert seen[-1].msg_type == "kernel_info_reply"
    assert seen[-1].parent_header["msg_id"] == msg_id
    assert seen[-1].content["language_info"]["name"] == "python"
    outputs, reply = await ws.run("print(6*7)")
    assert stream_text(outputs) == "42\n"
    assert reply.content["status"] == "ok"
    outputs, reply = await ws.run("1/0")
    assert reply.content["ename"] == "ZeroDivisionError"
    assert any(m.msg_type == "error" for m in outputs)
    r = await client.get(f"api/kernels/{kernel_id}")
    assert r.json["connections"] == 1
    ws.close()


async def test_every_request_is_answered_sequential_and_pipelined(client: Client, kernel_id: str) -> None:
    """The kernel's sockets are read when their (edge-triggered) ZMQ FD signals; a send can
    consume that signal for a reply already in. Hundreds of round trips on shell and control,
    one at a time and 50 in flight at once: every reply arrives, none twice."""
    ws = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, "v1")
    for i in range(200):
        channel = "control" if i % 3 == 0 else "shell"
        msg_id = await ws.send(channel, "kernel_info_request", {})
        seen = await ws.until(lambda m, channel=channel: m.channel == channel, timeout=10)
        assert seen[-1].parent_header["msg_id"] == msg_id
    for _ in range(3):
        sent = {await ws.send(ch, "kernel_info_request", {}) for ch in ("shell", "control") * 25}
        answered: list[str] = []
        while len(answered) < len(sent):
            m = await ws.recv(timeout=10)
            assert m is not None
            if m.channel in ("shell", "control"):
                answered.append(m.parent_header["msg_id"])
        assert sorted(answered) == sorted(sent)
    ws.close()


@pytest.mark.parametrize("protocol", ["v1", "legacy"])
async def test_binary_buffers_travel_both_ways(client: Client, kernel_id: str, protocol: str) -> None:
    """A comm message with a buffer: legacy uses its binary framing, v1 its buffer parts."""
    ws = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, protocol)
    code = (
        "from ipykernel.comm import Comm\n"
        "c = Comm(target_name='t', data={})\n"
        "c.send(data={'n': 3}, buffers=[b'\\x00\\x01\\xff'])\n"
    )
    msg_id = await ws.execute(code)
    seen = await ws.until(lambda m: m.msg_type == "comm_msg")
    assert seen[-1].buffers == [b"\x00\x01\xff"]
    assert seen[-1].parent_header["msg_id"] == msg_id
    ws.close()


@pytest.mark.parametrize("protocol", ["v1", "legacy"])
async def test_frames_of_every_length_class_arrive_intact(
    client: Client, kernel_id: str, protocol: str
) -> None:
    """nbserver writes kernel messages as websocket frames itself: frames with a 16-bit length
    (a small message, and one just under 65,536 bytes) and with a 64-bit length (just over,
    and 3 MB) arrive whole and in order."""
    ws = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, protocol)
    sizes = [1, 64_000, 66_000, 3_000_000]
    code = (
        "from ipykernel.comm import Comm\n"
        "c = Comm(target_name='t', data={})\n"
        f"for n in {sizes}:\n"
        "    c.send(data={'n': n}, buffers=[(bytes(range(256)) * (n // 256 + 1))[:n]])\n"
    )
    await ws.execute(code)
    seen = await ws.until(lambda m: m.msg_type == "comm_msg" and m.content["data"]["n"] == sizes[-1])
    got = [m for m in seen if m.msg_type == "comm_msg"]
    assert [m.content["data"]["n"] for m in got] == sizes
    for m, n in zip(got, sizes, strict=True):
        assert m.buffers == [(bytes(range(256)) * (n // 256 + 1))[:n]]
    ws.close()


async def test_two_clients_share_output_but_not_replies_or_prompts(client: Client, kernel_id: str) -> None:
    a = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, "v1")
    b = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, "legacy")
    outputs, _reply = await a.run("print('shared')")
    assert stream_text(outputs) == "shared\n"
    seen_b = await b.until(lambda m: m.msg_type == "stream")
    assert seen_b[-1].content["text"] == "shared\n"
    assert not any(m.channel == "shell" for m in seen_b)
    msg_id = await a.execute("answer = input('name? ')", allow_stdin=True)
    prompt = await a.until(lambda m: m.channel == "stdin")
    assert prompt[-1].msg_type == "input_request" and prompt[-1].content["prompt"] == "name? "
    await a.send("stdin", "input_reply", {"value": "ada"}, parent=prompt[-1].header)
    await a.until(lambda m: m.channel == "shell" and m.parent_header.get("msg_id") == msg_id)
    seen_b = await b.until(
        lambda m: (
            m.msg_type == "status"
            and m.content["execution_state"] == "idle"
            and m.parent_header.get("msg_id") == msg_id
        )
    )
    assert not any(m.channel in ("stdin", "shell") for m in seen_b)
    outputs, _ = await b.run("print(answer)")
    assert stream_text(outputs) == "ada\n"
    assert (await client.get(f"api/kernels/{kernel_id}")).json["connections"] == 2
    assert (await client.get("api/status")).json["connections"] == 2
    a.close()
    b.close()


async def test_input_right_after_start_reaches_the_client(server, client: Client) -> None:
    """A kernel is ready only once its stdin socket is linked to ours: before that, its ROUTER
    drops an input_request (seen: input() in the first cell hung, about 1 start in 3 here)."""
    for _ in range(3):
        r = await client.post("api/kernels", json={})
        assert r.status == 201
        assert server.ctx.services["kernels"].kernels[r.json["id"]].channels.stdin_linked.is_set()
        ws = await KernelSocket.connect(ws_base(client), r.json["id"], TOKEN, "v1")
        msg_id = await ws.execute("x = input('? ')", allow_stdin=True)
        prompt = await ws.until(lambda m: m.channel == "stdin", timeout=10)
        await ws.send("stdin", "input_reply", {"value": "ok"}, parent=prompt[-1].header)
        await ws.until(
            lambda m, msg_id=msg_id: m.channel == "shell" and m.parent_header.get("msg_id") == msg_id
        )
        ws.close()
        assert (await client.request("DELETE", f"api/kernels/{r.json['id']}")).status == 204


async def test_reconnect_replays_every_line_exactly_once(client: Client, kernel_id: str) -> None:
    """A client drops in the middle of a 20,000-line print loop and reconnects with the same
    session_id: every line the server received from the kernel reaches the client exactly once,
    in order.

    The reference is what the server received (seen through the kernel manager's iopub hook),
    not range(20000): ipykernel's PUB socket itself drops output, in bursts, when its queue for a
    subscriber is full, and on a 2-core machine running client, server and kernel at once it
    sometimes is (those lines never reach the server, or any server)."""
    channels = client.server.ctx.services["kernels"].kernels[kernel_id].channels
    received: list[str] = []
    hook = channels.on_iopub

    def record(msg_type: str, parent: bytes, content: bytes) -> None:
        if msg_type == "stream":
            received.append(json.loads(content)["text"])
        if hook is not None:
            hook(msg_type, parent, content)

    channels.on_iopub = record
    ws = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, "v1", session="same-session")
    # one write per line, so that a lost message can only remove whole lines
    msg_id = await ws.execute("for i in range(20000): print(f'{i}\\n', end='', flush=True)")
    text: list[str] = []

    def take(m) -> bool:
        if m.msg_type == "stream":
            text.append(m.content["text"])
        return (
            m.msg_type == "status"
            and m.content["execution_state"] == "idle"
            and m.parent_header.get("msg_id") == msg_id
        )

    while sum(t.count("\n") for t in text) < 2000:
        take(await ws.recv())
    ws.start_close()  # then drain what the server sent before it saw the close
    while (m := await ws.recv()) is not None:
        take(m)
    await asyncio.sleep(0.5)  # the kernel keeps printing while nobody is connected
    ws = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, "v1", session="same-session")
    while not take(await ws.recv()):
        pass
    lines = [int(line) for line in "".join(text).splitlines()]
    sent = [int(line) for line in "".join(received).splitlines()]
    missing = sorted(set(sent) - set(lines))
    assert not missing, f"{len(missing)} lines lost by the server: {missing[:3]}..{missing[-3:]}"
    assert lines == sent, "every line exactly once, in order"
    assert len(sent) > 10_000 and sent[-1] == 19999  # the test exercised what it means to
    ws.close()


async def test_malformed_frames_are_skipped(client: Client, kernel_id: str) -> None:
    good = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, "v1")
    other = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, "legacy")
    deep = b"[" * 100_000  # deeper than Python's JSON parser can go: RecursionError, not ValueError
    for bad in (
        b"\x00garbage",
        v1.encode("nope", [b"{}"] * 4),
        v1.encode("shell", [b"{}"] * 4),
        v1.encode("shell", [deep, b"{}", b"{}", b"{}"]),
    ):
        await good.conn.write_message(bad, binary=True)
    await good.conn.write_message("text in v1")
    for bad in (
        "not json",
        json.dumps({"content": {}}),
        json.dumps({"header": {"msg_id": "x", "msg_type": "y"}, "channel": "iopub"}),
        '{"header": {"msg_id": "n", "msg_type": "execute_request"}, "content": {"x": NaN}}',
        '{"header": {"msg_id": "o", "msg_type": "execute_request"}, "content": {"x": 1e400}}',
        '{"header": {"msg_id": "p", "msg_type": "execute_request"}, "content": ' + "[" * 100_000 + "}",
    ):
        await other.conn.write_message(bad)
    outputs, _ = await good.run("print('still fine')")
    assert stream_text(outputs) == "still fine\n"
    outputs, _reply = await other.run("print('me too')")
    assert stream_text(outputs) == "me too\n"
    good.close()
    other.close()


def generated(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples of ``strategy``, the same every run (hypothesis drives a collector)."""
    found: list[Any] = []

    @settings(max_examples=count, database=None, derandomize=True, deadline=None, phases=[Phase.generate])
    @given(strategy)
    def collect(example: Any) -> None:
        found.append(example)

    collect()
    return found


async def test_garbage_frames_never_cost_the_connection(client: Client, kernel_id: str, caplog) -> None:
    """Hypothesis-generated garbage (binary and text frames, both framings), then legacy
    messages nested from 150 levels under Python's recursion limit to past it: one depth in
    that range used to parse and then raise RecursionError while being re-encoded, an exception
    that escaped the handler, which tornado answers by aborting the connection. Afterwards both
    connections still answer a kernel_info_request and nothing was logged as an error."""
    good = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, "v1")
    other = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, "legacy")
    binary = generated(st.binary(max_size=300), 25)
    text = generated(st.text(max_size=300), 25)
    limit = sys.getrecursionlimit()
    deep = [
        '{"header": {"msg_id": "d", "msg_type": "t"}, "channel": "iopub", "content": {"x": '
        + "[" * depth
        + "]" * depth
        + "}}"
        for depth in range(limit - 150, limit + 5)
    ]
    for ws in (good, other):
        for frame in binary:
            await ws.conn.write_message(frame, binary=True)
        for frame in text + (deep if ws is other else []):
            await ws.conn.write_message(frame)
    for ws in (good, other):
        msg_id = await ws.send("shell", "kernel_info_request", {})
        seen = await ws.until(lambda m: m.channel == "shell" and m.parent_header.get("msg_id") == msg_id)
        assert seen[-1].content["status"] == "ok"
        assert ws.conn.close_code is None
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    good.close()
    other.close()


async def test_oversized_message_closes_with_1009(make_server, make_client) -> None:
    client = make_client(await make_server(max_ws_message_size=10_000))
    r = await client.post("api/kernels", json={})
    ws = await KernelSocket.connect(ws_base(client), r.json["id"], TOKEN, "v1")
    await ws.execute("x = '" + "a" * 20_000 + "'")
    while (m := await ws.recv()) is not None:
        assert m.channel != "shell", "the oversized request must not reach the kernel"
    assert ws.conn.close_code == 1009
    ws.close()


async def test_slow_client_is_bounded_and_told(make_server, make_client) -> None:
    """A client that stops reading: its messages are dropped past client_buffer_bytes, and it
    gets one stderr notice, in the cell's output: before the cell's closing idle status, after
    which JupyterLab stops routing output to the cell (the kernel may well finish before the
    client catches up). The kernel model counts what was dropped."""
    client = make_client(await make_server(client_buffer_bytes=64 * 1024))
    r = await client.post("api/kernels", json={})
    ws = await KernelSocket.connect(ws_base(client), r.json["id"], TOKEN, "v1")
    payload = base64.b64encode(b"x" * 1000).decode()
    msg_id = await ws.execute(f"for i in range(3000): print('{payload}', flush=True)")
    await asyncio.sleep(8)  # do not read: the server must bound what it queues for us
    notices, lines = [], 0
    while True:
        m = await ws.recv()
        if m.msg_type == "stream" and m.content["name"] == "stderr":
            assert m.parent_header.get("msg_id") == msg_id
            notices.append(m.content["text"])
        elif m.msg_type == "stream":
            lines += m.content["text"].count("\n")
        elif (
            m.msg_type == "status"
            and m.parent_header.get("msg_id") == msg_id
            and m.content["execution_state"] == "idle"
        ):
            break
    assert len(notices) == 1 and "output was dropped" in notices[0]
    assert 0 < lines < 3000
    with pytest.raises(asyncio.TimeoutError):  # nothing after the idle: no late second notice
        await ws.recv(timeout=1)
    model = (await client.get(f"api/kernels/{r.json['id']}")).json
    assert model["dropped_messages"] > 0  # messages, not lines: ipykernel may merge prints
    ws.close()


async def test_unknown_kernel_and_missing_token(client: Client, kernel_id: str) -> None:
    url = f"{ws_base(client)}api/kernels/00000000-0000-0000-0000-000000000000/channels"
    with pytest.raises(HTTPClientError) as info:
        await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {TOKEN}"}))
    assert info.value.code == 404
    url = f"{ws_base(client)}api/kernels/{kernel_id}/channels"
    with pytest.raises(HTTPClientError) as info:
        await websocket_connect(HTTPRequest(url))
    assert info.value.code == 403


async def test_websocket_has_tcp_nodelay(server, client: Client, kernel_id: str) -> None:
    ws = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, "v1")
    await ws.run("1")
    channels = server.ctx.services["kernels"].kernels[kernel_id].channels
    (handler,) = channels.clients.values()
    sock = handler.ws_connection.stream.socket
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    ws.close()


async def test_shutting_the_kernel_down_closes_its_websockets(client: Client, kernel_id: str) -> None:
    """DELETE of a kernel closes its websockets (1000) at once, both protocols; a client that
    reconnects then gets 404: the page learns the kernel is gone without sending anything."""
    sockets = [
        await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, proto) for proto in ("v1", "legacy")
    ]
    assert (await client.request("DELETE", f"api/kernels/{kernel_id}")).status == 204
    for ws in sockets:
        try:
            async with asyncio.timeout(10):
                while await ws.recv() is not None:  # what the kernel said before it went
                    pass
            assert ws.conn.close_code == 1000
        finally:
            ws.close()
    assert (await client.get("api/status")).json["connections"] == 0
    with pytest.raises(HTTPClientError) as info:
        await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, "v1")
    assert info.value.code == 404
