"""``/api/terminals`` REST handlers and the terminal websocket route."""

from __future__ import annotations

from typing import Any

from ...context import ServerContext
from ...errors import BadRequest
from ...routing import Route
from ...web import Access, APIHandler
from .manager import TerminalManager
from .websocket import TerminalWebSocket

__all__ = ["routes"]

_NAME = {"name": r"\w+"}


class TerminalsBase(APIHandler):
    access = Access.USER

    def initialize(self, ctx: ServerContext, terminals: TerminalManager) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.terminals = terminals


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{key} must be a string, not {type(value).__name__}", reason="bad model")
    return value or None


class TerminalsHandler(TerminalsBase):
    def get(self) -> None:
        self.write_json(self.terminals.models())

    async def post(self) -> None:
        """Start a terminal: optional body ``{name, cwd}`` (other keys are ignored). 200, as
        jupyter_server (not 201)."""
        body = self.json_body()
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object", reason="bad model")
        model = await self.terminals.create(_optional_str(body, "name"), _optional_str(body, "cwd"))
        self.write_json(model)


class TerminalHandler(TerminalsBase):
    def get(self, name: str) -> None:
        self.write_json(self.terminals.model(name))

    async def delete(self, name: str) -> None:
        await self.terminals.terminate(name)
        self.set_status(204)
        self.finish()


def routes(ctx: ServerContext, terminals: TerminalManager) -> list[Route]:
    kw = {"ctx": ctx, "terminals": terminals}
    return [
        Route("/api/terminals", TerminalsHandler, kw),
        Route("/api/terminals/{name}", TerminalHandler, kw, params=_NAME),
        Route("/terminals/websocket/{name}", TerminalWebSocket, kw, params=_NAME),
    ]
