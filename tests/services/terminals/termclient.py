"""A terminal-websocket client for the tests: terminado's JSON frames over a real websocket."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from tests.conftest import TOKEN, Client


class TermSocket:
    """One websocket to ``/terminals/websocket/<name>``; ``output`` is all stdout seen."""

    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn
        self.output = ""
        self.frames: list[list[Any]] = []

    @classmethod
    async def connect(cls, client: Client, name: str, headers: dict[str, str] | None = None) -> TermSocket:
        url = client.base.replace("http://", "ws://") + f"terminals/websocket/{name}"
        headers = {"Authorization": f"token {TOKEN}"} if headers is None else headers
        return cls(await websocket_connect(HTTPRequest(url, headers=headers)))

    async def send(self, *frame: Any) -> None:
        await self.conn.write_message(json.dumps(list(frame)))

    async def recv(self, timeout: float = 30) -> list[Any] | None:
        """The next frame, or None when the server closed the socket."""
        raw = await asyncio.wait_for(self.conn.read_message(), timeout)
        if raw is None:
            return None
        assert isinstance(raw, str), "terminal frames are text"
        frame = json.loads(raw)
        self.frames.append(frame)
        if frame[0] == "stdout":
            self.output += frame[1]
        return frame

    async def until_output(self, text: str, timeout: float = 30) -> str:
        """Read until ``text`` appears in the output; returns the output so far."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while text not in self.output:
            frame = await self.recv(max(0.1, deadline - loop.time()))
            assert frame is not None, f"closed before {text!r}; output: {self.output!r}"
        return self.output

    async def until_match(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Read until the output matches ``pattern``; returns the match."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (match := re.search(pattern, self.output)) is None:
            frame = await self.recv(max(0.1, deadline - loop.time()))
            assert frame is not None, f"closed before {pattern!r}; output: {self.output!r}"
        return match

    async def until_closed(self, timeout: float = 30) -> list[list[Any]]:
        """Read until the server closes the socket; returns the frames read meanwhile."""
        start = len(self.frames)
        while await self.recv(timeout) is not None:
            pass
        self.conn.close()  # the client side too (tornado warns about a connection never closed)
        return self.frames[start:]

    async def run(self, command: str, marker: str) -> str:
        """Type ``command`` (which must print ``marker``) and wait for the marker."""
        await self.send("stdin", command + "\r")
        return await self.until_output(marker)

    def close(self) -> None:
        self.conn.close()
