"""Faults around a kernel's life cycle, with real kernels over real HTTP and websockets.

Faults tried: a restart whose new process does not answer in time (a kernelspec that stalls
before starting ipykernel), then answers late or never; an interrupt while a restart is in
flight, asked for or automatic; a kernel SIGKILLed while a cell runs, and a cell sent while it
restarts; a start that fails after its process was launched (jupyter_client's control socket,
the server's channels, or the process watcher refusing: "too many open files" and the like); a
websocket replaced by a new one of the same ``session_id`` while its connection is stalled with
megabytes unsent (a dropped network).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
import os
import re
import signal
import socket
import struct
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq
from jupyter_client.ioloop.manager import AsyncIOLoopKernelManager
from jupyter_client.manager import KernelManager as JupyterKernelManager

from nbserver.services.kernels.channels import KernelChannels
from tests.conftest import TOKEN, Client
from tests.services.kernels.test_failures import install_spec
from tests.services.kernels.test_kernels_api import kernel_processes, until_kernel_processes
from tests.services.kernels.wsclient import KernelSocket, Message, make_parts, stream_text

TIMEOUT = 8.0  # kernel_info_timeout of the servers whose restarts are made to time out

# ipykernel, except that the launches listed in its third argument first wait until the file
# named by its second exists (alive, not answering); its first counts the launches. The name
# ends in "ipykernel_launcher" so that the process counts of test_kernels_api see it.
_STALLING = """
import os, sys, time
counter, release, stall = sys.argv.pop(1), sys.argv.pop(1), sys.argv.pop(1).split(",")
launch = (int(open(counter).read()) if os.path.exists(counter) else 0) + 1
with open(counter, "w") as f:
    f.write(str(launch))
if str(launch) in stall:
    while not os.path.exists(release):
        time.sleep(0.05)
from ipykernel import kernelapp
kernelapp.launch_new_instance()
"""


@dataclass
class Stalling:
    """The ``stalling`` kernelspec: its second launch (the first restart) waits for
    :meth:`release`."""

    name: str
    release_file: Path

    def release(self) -> None:
        self.release_file.touch()


@pytest.fixture
def stalling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stalling]:
    """Installs the ``stalling`` kernelspec in a private JUPYTER_PATH (before the server starts:
    list this fixture before ``client``); whatever still waits is released at the end."""
    path = tmp_path / "jupyter-path"
    path.mkdir()
    monkeypatch.setenv("JUPYTER_PATH", str(path))
    script = tmp_path / "stalling_ipykernel_launcher.py"
    script.write_text(_STALLING)
    release = tmp_path / "release"
    argv = [sys.executable, str(script), str(tmp_path / "launches"), str(release), "2"]
    install_spec(path, "stalling", [*argv, "-f", "{connection_file}"])
    yield Stalling("stalling", release)
    release.touch()


def ws_base(client: Client) -> str:
    return client.base.replace("http://", "ws://")


@contextlib.asynccontextmanager
async def connected(client: Client, kernel_id: str) -> AsyncIterator[KernelSocket]:
    """A websocket to the kernel, closed however the test ends."""
    ws = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN)
    try:
        yield ws
    finally:
        ws.close()


async def start_kernel(client: Client, name: str | None = None) -> str:
    r = await client.post("api/kernels", json={"name": name} if name else {})
    assert r.status == 201, r.text
    return str(r.json["id"])


async def model(client: Client, kernel_id: str) -> dict[str, Any]:
    r = await client.get(f"api/kernels/{kernel_id}")
    assert r.status == 200, r.text
    return dict(r.json)


async def until_state(client: Client, kernel_id: str, state: str, timeout: float = 60) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (found := await model(client, kernel_id))["execution_state"] != state:
        assert loop.time() < deadline, f"the kernel is {found['execution_state']}, never {state}"
        await asyncio.sleep(0.1)
    return found


async def until_connections(client: Client, kernel_id: str, count: int, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (await model(client, kernel_id))["connections"] != count:
        assert loop.time() < deadline, f"the kernel never had {count} connections"
        await asyncio.sleep(0.1)


async def status_until(ws: KernelSocket, state: str, timeout: float = 60) -> list[Message]:
    """Messages until the first iopub status ``state``."""
    return await ws.until(
        lambda m: m.msg_type == "status" and m.content["execution_state"] == state, timeout=timeout
    )


async def cell_outputs(ws: KernelSocket, msg_id: str, timeout: float = 60) -> tuple[list[Message], Message]:
    """The iopub messages of the cell ``msg_id`` up to its closing idle, and its reply."""
    return await ws.outputs_of(msg_id, timeout)


# -- restarts that time out (point 2) --------------------------------------------------------------


async def test_a_restart_that_times_out_leaves_the_kernel_dead_and_restartable(
    stalling: Stalling, make_server: Callable[..., Any], make_client: Callable[..., Client]
) -> None:
    """The new process never answers: the restart answers 500 after kernel_info_timeout and the
    kernel is dead, with a reason, and its clients are told (it stayed "restarting" forever);
    an interrupt is refused; a further restart works, and so does a shutdown, which leaves no
    process."""
    client = make_client(await make_server(kernel_info_timeout=TIMEOUT))
    before = kernel_processes()
    kernel_id = await start_kernel(client, stalling.name)
    async with connected(client, kernel_id) as ws:
        r = await client.post(f"api/kernels/{kernel_id}/restart")
        assert r.status == 500, f"{r.status} {r.text}"
        assert r.json["reason"] == "kernel failed"
        assert "did not answer within" in r.json["message"]
        dead = await model(client, kernel_id)
        assert dead["execution_state"] == "dead" and "did not answer" in dead["reason"]
        await status_until(ws, "dead")
        r = await client.post(f"api/kernels/{kernel_id}/interrupt")
        assert r.status == 409, f"{r.status} {r.text}"
        assert r.json["reason"] == "kernel dead"

        r = await client.post(f"api/kernels/{kernel_id}/restart")  # the stalled process goes
        assert r.status == 200 and r.json["execution_state"] == "idle", r.text
        assert "reason" not in r.json
        outputs, reply = await cell_outputs(ws, await ws.execute("print('back')"))
        assert reply.content["status"] == "ok" and stream_text(outputs) == "back\n"
    assert (await client.request("DELETE", f"api/kernels/{kernel_id}")).status == 204
    await until_kernel_processes(len(before))


async def test_a_kernel_that_answers_after_its_restart_timed_out_is_back(
    stalling: Stalling, make_server: Callable[..., Any], make_client: Callable[..., Client]
) -> None:
    """The new process answers only after the restart gave up: the kernel is dead meanwhile,
    then idle again, and a cell sent while it was dead runs with all its output."""
    client = make_client(await make_server(kernel_info_timeout=TIMEOUT))
    kernel_id = await start_kernel(client, stalling.name)
    r = await client.post(f"api/kernels/{kernel_id}/restart")
    assert r.status == 500, r.text
    assert (await model(client, kernel_id))["execution_state"] == "dead"
    async with connected(client, kernel_id) as ws:
        msg_id = await ws.execute("print('late')")
        stalling.release()
        outputs, reply = await cell_outputs(ws, msg_id)
        assert reply.content["status"] == "ok" and stream_text(outputs) == "late\n"
        back = await until_state(client, kernel_id, "idle")
        assert "reason" not in back


# -- interrupts during restarts (point 4), a kernel killed mid-cell (point 6) ----------------------


async def test_an_interrupt_during_a_restart_is_refused_then_reaches_the_new_kernel(
    stalling: Stalling, client: Client
) -> None:
    """While a restart is in flight the interrupt is refused, 409 "kernel restarting", and sent
    nowhere (the old code signalled the new process as it started: here that killed it); once
    the restart is done, an interrupt stops the new kernel's running cell."""
    kernel_id = await start_kernel(client, stalling.name)
    restart = asyncio.ensure_future(client.post(f"api/kernels/{kernel_id}/restart"))
    try:
        await until_state(client, kernel_id, "restarting")
        r = await client.post(f"api/kernels/{kernel_id}/interrupt")
        assert r.status == 409, f"{r.status} {r.text}"
        assert r.json["reason"] == "kernel restarting"
        assert "restarting" in r.json["message"]
    finally:
        stalling.release()
        r = await restart
    assert r.status == 200 and r.json["execution_state"] == "idle", r.text

    async with connected(client, kernel_id) as ws:
        msg_id = await ws.execute("import time\nprint('running', flush=True)\ntime.sleep(60)")
        await ws.until(lambda m: m.msg_type == "stream" and m.parent_header.get("msg_id") == msg_id)
        assert (await client.post(f"api/kernels/{kernel_id}/interrupt")).status == 204
        _, reply = await cell_outputs(ws, msg_id, timeout=30)
        assert reply.content["ename"] == "KeyboardInterrupt"


async def test_a_kernel_killed_mid_cell_restarts_and_its_clients_are_told(
    stalling: Stalling, client: Client
) -> None:
    """SIGKILL while a cell runs: the client gets status "restarting", the model says so, an
    interrupt is refused meanwhile; a cell sent while the kernel restarts is held until the new
    kernel's output reaches the server, then runs in the new process with all its output (busy,
    stream, idle); the model is idle again, and later cells work. (This extends
    test_kernels_api's former test of a kernel killed while idle.)"""
    kernel_id = await start_kernel(client, stalling.name)
    async with connected(client, kernel_id) as ws:
        running = await ws.execute("import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)")
        seen = await ws.until(lambda m: m.msg_type == "stream" and m.parent_header.get("msg_id") == running)
        os.kill(int(seen[-1].content["text"]), signal.SIGKILL)
        await status_until(ws, "restarting")
        assert (await model(client, kernel_id))["execution_state"] == "restarting"  # it stalls
        r = await client.post(f"api/kernels/{kernel_id}/interrupt")
        assert r.status == 409, f"{r.status} {r.text}"
        assert r.json["reason"] == "kernel restarting"

        held = await ws.execute("print('time' in dir())")  # a new process: a fresh namespace
        stalling.release()
        outputs, reply = await cell_outputs(ws, held)
        assert reply.content["status"] == "ok"
        assert outputs[0].msg_type == "status" and outputs[0].content["execution_state"] == "busy"
        assert stream_text(outputs) == "False\n"
        assert (await until_state(client, kernel_id, "idle"))["execution_state"] == "idle"
        outputs, reply = await cell_outputs(ws, await ws.execute("print('again')"))
        assert stream_text(outputs) == "again\n"


# -- starts that fail after the launch (point 3) ---------------------------------------------------


def _emfile(*args: Any, **kwargs: Any) -> None:
    raise zmq.ZMQError(errno.EMFILE)


def _refused(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("the process watcher cannot start")


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts processes in /proc")
@pytest.mark.parametrize(
    ("owner", "method", "fault"),
    [
        (JupyterKernelManager, "_connect_control_socket", _emfile),  # jupyter_client, after Popen
        (KernelChannels, "open", _emfile),  # the server's channels
        (AsyncIOLoopKernelManager, "add_restart_callback", _refused),  # once the kernel is ready
    ],
    ids=["control-socket-emfile", "channels-emfile", "watcher-refused"],
)
async def test_a_start_that_fails_after_the_launch_leaves_no_process(
    client: Client, monkeypatch: pytest.MonkeyPatch, owner: Any, method: str, fault: Any
) -> None:
    """A fault after the kernel's process began: POST /api/kernels answers 500 "kernel failed"
    with the cause, lists nothing, and the process is gone (the old code left it running)."""
    before = kernel_processes()
    monkeypatch.setattr(owner, method, fault)
    try:
        r = await client.post("api/kernels", json={})
        assert r.status == 500, f"{r.status} {r.text}"
        assert r.json["reason"] == "kernel failed"
        assert "failed to start" in r.json["message"]
        assert (await client.get("api/kernels")).json == []
        await until_kernel_processes(len(before))
    finally:
        monkeypatch.undo()
        for pid in kernel_processes() - before:  # what the old code left behind
            os.kill(pid, signal.SIGKILL)
    assert (await client.get("api/status")).json["kernels"] == 0


# -- a websocket replaced by one of the same session (point 5) -------------------------------------


class StalledSocket:
    """A kernel websocket (legacy framing) over a raw socket whose receive buffer is made small
    BEFORE it connects, so the kernel never autotunes it: once the test stops reading, the
    server's writes back up after a few megabytes, as for a peer whose network dropped.
    (tornado's client sets its socket up itself, with an autotuned buffer that swallows tens
    of megabytes on loopback.)"""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: str):
        self.reader, self.writer, self.session = reader, writer, session

    @classmethod
    async def connect(cls, client: Client, kernel_id: str) -> StalledSocket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", client.server.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=16384)
        session = uuid.uuid4().hex
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /api/kernels/{kernel_id}/channels?session_id={session} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{client.server.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: token {TOKEN}\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer, session)

    async def execute(self, code: str) -> str:
        msg_id, parts = make_parts(
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
            self.session,
        )
        body = json.dumps(
            {
                "header": json.loads(parts[0]),
                "parent_header": {},
                "metadata": {},
                "content": json.loads(parts[3]),
                "channel": "shell",
                "buffers": [],
            }
        ).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(body))
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, len(body))
        self.writer.write(header + mask + masked)
        await self.writer.drain()
        return msg_id

    async def recv(self, timeout: float = 60) -> dict[str, Any] | None:
        """The next message (parsed legacy JSON), None once the connection ends (a close frame,
        or the server dropping it; a frame cut short counts as never received)."""
        try:
            first, second = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            size = second & 0x7F
            if size == 126:
                size = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            payload = await asyncio.wait_for(self.reader.readexactly(size), timeout)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        if first & 0x0F == 0x8:
            return None
        assert first & 0x0F == 0x1, "a text frame (legacy framing, no buffers)"
        message: dict[str, Any] = json.loads(payload)
        return message

    def close(self) -> None:
        self.writer.close()


_LINE = re.compile(r"^(\d{6}) x+$")


def numbers(texts: list[str]) -> list[int]:
    """The line numbers in stream texts (each line ``NNNNNN xxx...``)."""
    found = []
    for line in "".join(texts).splitlines():
        match = _LINE.match(line)
        assert match, line[:40]
        found.append(int(match.group(1)))
    return found


async def test_a_replaced_stalled_websocket_hands_over_in_order(client: Client, tmp_path: Path) -> None:
    """A browser whose network dropped reconnects with the same session_id while the server still
    holds megabytes for the old connection, unsent (the old one stops reading, as a dead peer
    does). Every line of a numbered stream reaches the client exactly once and in the kernel's
    order: what the old connection got, then what the new one gets (the unsent rest, then live
    output). The old code delivered the old connection's unsent frames to the new socket when
    tornado gave up on the old one (5 s later), after the live output."""
    kernel_id = await start_kernel(client)
    go, stop = tmp_path / "go", tmp_path / "stop"
    big = 150  # 9 MB: the stalled connection's socket buffers take about 4
    code = (
        "import os, time\n"
        f"for i in range({big}):\n"
        "    print(f'{i:06d} ' + 'x' * 60_000, flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        f"i = {big}\n"
        f"while not os.path.exists({str(stop)!r}) and i < 10_000:\n"
        "    print(f'{i:06d} x', flush=True)\n"
        "    i += 1\n"
        "    time.sleep(0.02)\n"
    )
    old = await StalledSocket.connect(client, kernel_id)
    try:
        got_old, got_new = await _hand_over(client, kernel_id, old, code, big, stop, go)
    finally:
        old.close()
        stop.touch()
    assert got_old and got_new
    assert got_old + got_new == list(range(got_new[-1] + 1)), (got_old[-2:], got_new[:3])


async def _hand_over(
    client: Client, kernel_id: str, old: StalledSocket, code: str, big: int, stop: Path, go: Path
) -> tuple[list[int], list[int]]:
    """Run ``code`` from ``old``; stall ``old`` once the big lines are out, connect a new socket
    of its session, let the small lines go; the numbers each socket received."""
    msg_id = await old.execute(code)
    received_old: list[str] = []

    def keep_old(msg: dict[str, Any]) -> None:
        if msg["header"]["msg_type"] == "stream" and msg["parent_header"].get("msg_id") == msg_id:
            received_old.append(msg["content"]["text"])

    while len(numbers(received_old)) < 5:  # the stream flows; from here on, old reads nothing
        raw = await old.recv()
        assert raw is not None
        keep_old(raw)
    seen: list[str] = []  # once an ordinary client has every big line, old was handed them too
    async with connected(client, kernel_id) as observer:
        while not seen or numbers(seen)[-1] < big - 1:
            note = await observer.recv(timeout=120)
            assert note is not None
            if note.msg_type == "stream" and note.parent_header.get("msg_id") == msg_id:
                seen.append(note.content["text"])

    received_new: list[str] = []
    new = await KernelSocket.connect(ws_base(client), kernel_id, TOKEN, session=old.session)
    try:
        go.touch()  # live output from here on
        # old is never read while the server holds it (as a dead peer): wait until the server
        # let go of it (then only new counts; it stops writing to old at once or, at the
        # latest, when it gives up on it, after tornado's 5 s)
        await until_connections(client, kernel_id, 1)
        reply = idle = False
        while not (reply and idle):
            msg = await new.recv(timeout=120)
            assert msg is not None, "the new websocket closed"
            if msg.parent_header.get("msg_id") != msg_id:
                continue
            if msg.channel == "shell":
                reply = True
            elif msg.msg_type == "stream":
                received_new.append(msg.content["text"])
                if numbers(received_new)[-1] >= big + 10:
                    stop.touch()
            elif msg.msg_type == "status" and msg.content["execution_state"] == "idle":
                idle = True
    finally:
        new.close()
    while (raw := await old.recv()) is not None:  # what reached the old socket before it ended
        keep_old(raw)
    return numbers(received_old), numbers(received_new)
