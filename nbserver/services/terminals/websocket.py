"""``/terminals/websocket/{name}``: one browser's view of a terminal (terminado's protocol).

Frames are JSON arrays, text frames only. From the browser: ``["stdin", text]`` (keystrokes),
``["set_size", rows, cols]`` (the pty takes the smallest size among its clients). From the
server: ``["setup", {}]`` once, then the output kept so far as one ``["stdout", text]`` (so a
reconnecting page shows the recent screen), then live ``["stdout", text]``; when the shell exits
or the terminal is deleted, ``["disconnect", 1]`` and the socket closes (1000).

Authentication, XSRF-free token use and the Origin rule are those of every nbserver websocket
(:class:`~nbserver.websocket.AuthenticatedWebSocket`). An unknown terminal is a 404 before the
handshake. Malformed frames are dropped with a logged reason; the connection carries on.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tornado.websocket import WebSocketClosedError

from ...context import ServerContext
from ...errors import NotFound
from ...web import Access
from ...websocket import AuthenticatedWebSocket
from .manager import TerminalManager

__all__ = ["TerminalWebSocket"]

log = logging.getLogger("nbserver.terminal")


def parse_frame(message: str | bytes) -> tuple[str, list[Any]]:
    """``(kind, arguments)`` of a browser frame; ValueError for anything malformed."""
    command = json.loads(message)
    if not isinstance(command, list) or not command or not isinstance(command[0], str):
        raise ValueError("a frame must be a JSON array starting with a string")
    kind, args = command[0], command[1:]
    if kind == "stdin" and not (len(args) == 1 and isinstance(args[0], str)):
        raise ValueError('"stdin" takes one string')
    if kind == "set_size" and not (
        len(args) >= 2 and all(isinstance(a, int) and not isinstance(a, bool) and a > 0 for a in args[:2])
    ):
        raise ValueError('"set_size" takes two positive integers (rows, cols)')
    return kind, args


class TerminalWebSocket(AuthenticatedWebSocket):
    access = Access.USER

    name: str

    def initialize(self, ctx: ServerContext, terminals: TerminalManager) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.terminals = terminals
        self.size: tuple[int | None, int | None] = (None, None)
        self._attached = False

    async def prepare_connection(self, name: str) -> None:
        try:
            self.terminals.model(name)
        except NotFound as exc:
            self.set_status(404)
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(json.dumps(exc.to_json()))
            return
        self.name = name

    def get_compression_options(self) -> None:
        return None

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        try:
            kept = self.terminals.attach(self.name, self)
        except NotFound:
            self.close(1000, "the terminal has exited")
            return
        self._attached = True
        self._send(["setup", {}])
        if kept:
            self._send(["stdout", kept])

    async def on_message(self, message: str | bytes) -> None:
        try:
            kind, args = parse_frame(message)
        except ValueError as exc:
            log.warning("Dropped a malformed frame for terminal %s: %s", self.name, exc)
            return
        if kind == "stdin":
            try:
                await self.terminals.write(self.name, args[0])
            except NotFound:
                self.close(1000, "the terminal has exited")
        elif kind == "set_size":
            self.size = (args[0], args[1])
            self.terminals.resize(self.name)
        else:
            log.debug("Ignored a %r frame for terminal %s", kind, self.name)

    def on_close(self) -> None:
        if self._attached:
            self._attached = False
            self.terminals.detach(self.name, self)

    # -- TerminalClient ----------------------------------------------------------------------

    def on_pty_read(self, text: str) -> None:
        self._send(["stdout", text])

    def on_pty_died(self) -> None:
        self._attached = False  # terminado drops its clients with the terminal
        self._send(["disconnect", 1])
        self.close(1000, "the terminal has exited")

    def _send(self, frame: list[Any]) -> None:
        if self.ws_connection is None or self.ws_connection.is_closing():
            return
        try:
            written = self.write_frame(json.dumps(frame).encode("utf-8"), binary=False)
        except WebSocketClosedError:
            return
        written.add_done_callback(_settled)


def _settled(written: Any) -> None:
    """A frame's write is done; a failure (the connection closed) is expected: on_close follows."""
    if not written.cancelled():
        written.exception()
