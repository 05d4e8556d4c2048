"""A small kernel-websocket client for the tests: real websockets, either framing."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from nbserver.protocol import legacy, v1


@dataclass
class Message:
    channel: str
    header: dict[str, Any]
    parent_header: dict[str, Any]
    content: dict[str, Any]
    buffers: list[bytes] = field(default_factory=list)

    @property
    def msg_type(self) -> str:
        return str(self.header["msg_type"])


def make_parts(
    msg_type: str, content: dict[str, Any], session: str, parent: dict | None = None
) -> tuple[str, list[bytes]]:
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "msg_type": msg_type,
        "session": session,
        "username": "test",
        "date": "2026-01-01T00:00:00Z",
        "version": "5.3",
    }
    parts = [
        json.dumps(header).encode(),
        json.dumps(parent or {}).encode(),
        b"{}",
        json.dumps(content).encode(),
    ]
    return msg_id, parts


class KernelSocket:
    """One websocket to ``/api/kernels/<id>/channels``; ``protocol`` is "v1" or "legacy"."""

    def __init__(self, conn: WebSocketClientConnection, protocol: str, session: str) -> None:
        self.conn = conn
        self.protocol = protocol
        self.session = session

    @classmethod
    async def connect(
        cls, base_ws: str, kernel_id: str, token: str, protocol: str = "v1", session: str | None = None
    ) -> KernelSocket:
        session = session or uuid.uuid4().hex
        url = f"{base_ws}api/kernels/{kernel_id}/channels?session_id={session}"
        request = HTTPRequest(url, headers={"Authorization": f"token {token}"})
        subprotocols = [v1.PROTOCOL] if protocol == "v1" else None
        conn = await websocket_connect(request, subprotocols=subprotocols)
        assert conn.selected_subprotocol == (v1.PROTOCOL if protocol == "v1" else None)
        return cls(conn, protocol, session)

    async def send(
        self, channel: str, msg_type: str, content: dict[str, Any], parent: dict | None = None
    ) -> str:
        msg_id, parts = make_parts(msg_type, content, self.session, parent)
        if self.protocol == "v1":
            await self.conn.write_message(v1.encode(channel, parts), binary=True)
        else:
            msg = {
                "header": json.loads(parts[0]),
                "parent_header": parent or {},
                "metadata": {},
                "content": content,
                "channel": channel,
                "buffers": [],
            }
            await self.conn.write_message(json.dumps(msg))
        return msg_id

    async def execute(self, code: str, allow_stdin: bool = False) -> str:
        return await self.send(
            "shell",
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": allow_stdin,
                "stop_on_error": True,
            },
        )

    async def recv(self, timeout: float = 30) -> Message | None:
        raw = await asyncio.wait_for(self.conn.read_message(), timeout)
        if raw is None:
            return None
        if self.protocol == "v1":
            assert isinstance(raw, bytes), "v1 frames are binary"
            channel, parts = v1.decode(raw)
        else:
            maybe, parts = legacy.decode(raw)
            assert maybe is not None
            channel = maybe
        return Message(channel, json.loads(parts[0]), json.loads(parts[1]), json.loads(parts[3]), parts[4:])

    async def until(self, predicate: Any, timeout: float = 60) -> list[Message]:
        """Messages received until (and including) the first that satisfies ``predicate``."""
        seen: list[Message] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self.recv(timeout=max(0.1, deadline - loop.time()))
            assert msg is not None, "the websocket closed"
            seen.append(msg)
            if predicate(msg):
                return seen

    async def run(self, code: str, timeout: float = 60) -> tuple[list[Message], Message]:
        """Execute ``code``; return (iopub messages of it, execute_reply), waiting for idle."""
        return await self.outputs_of(await self.execute(code), timeout)

    async def outputs_of(self, msg_id: str, timeout: float = 60) -> tuple[list[Message], Message]:
        """(the iopub messages of request ``msg_id`` up to its idle status, its shell reply)."""
        reply: Message | None = None
        idle = False
        outputs: list[Message] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while reply is None or not idle:
            msg = await self.recv(timeout=max(0.1, deadline - loop.time()))
            assert msg is not None, "the websocket closed"
            if msg.parent_header.get("msg_id") != msg_id:
                continue
            if msg.channel == "shell":
                reply = msg
            elif msg.channel == "iopub":
                outputs.append(msg)
                if msg.msg_type == "status" and msg.content["execution_state"] == "idle":
                    idle = True
        return outputs, reply

    def close(self) -> None:
        self.conn.close()

    def start_close(self) -> None:
        """Send the close frame but keep reading until the server's close: what the server sent
        before it saw our close is ours to read. tornado's client would abort the connection
        5 s after close() and drop unread data, so that timer is cancelled (private API)."""
        protocol = self.conn.protocol
        self.conn.close()
        waiting = getattr(protocol, "_waiting", None)
        if waiting is not None:
            protocol.stream.io_loop.remove_timeout(waiting)
            protocol._waiting = None


def stream_text(messages: list[Message], name: str = "stdout") -> str:
    return "".join(
        m.content["text"] for m in messages if m.msg_type == "stream" and m.content["name"] == name
    )
