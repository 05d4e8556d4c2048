"""``/api/sessions`` REST handlers: parse and check the body, call the manager, answer."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ...context import ServerContext
from ...errors import BadRequest
from ...routing import Route
from ...web import Access, APIHandler
from .manager import SessionManager

__all__ = ["routes"]

_SESSION_ID = {"session_id": r"[\w-]+"}


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object, not {type(value).__name__}", reason="bad model")
    return value


def _string(body: dict[str, Any], key: str, what: str = "") -> str | None:
    """``body[key]`` if it is a string of text, None when absent or null; 400 for anything else
    (a lone surrogate such as ``"\\udc00"`` parses as JSON, but is no text SQLite can store)."""
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{what}{key} must be a string, not {type(value).__name__}", reason="bad model")
    if value is not None and not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise BadRequest(f"{what}{key} is not valid Unicode text", reason="bad model") from None
    return value


def _kernel(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """``(name, id)`` of the optional ``kernel`` object."""
    kernel = body.get("kernel")
    if kernel is None:
        return None, None
    kernel = _object(kernel, "kernel")
    return _string(kernel, "name", "kernel."), _string(kernel, "id", "kernel.")


class SessionsBase(APIHandler):
    access = Access.USER

    def initialize(self, ctx: ServerContext, sessions: SessionManager) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.sessions = sessions

    def body_object(self) -> dict[str, Any]:
        """The JSON body, which must be an object (400 ``"bad model"`` otherwise)."""
        return _object(self.json_body(), "The body")


class SessionsHandler(SessionsBase):
    async def get(self) -> None:
        self.write_json(await self.sessions.list())

    async def post(self) -> None:
        """Create (or find) a session: ``{path, type, name?, kernel?: {name?, id?}}``, or the
        legacy ``{notebook: {path, name?}}`` (type ``notebook``). 201 in both cases."""
        body = self.body_object()
        path, type_, name = _string(body, "path"), _string(body, "type"), _string(body, "name")
        if path is None and "notebook" in body:
            notebook = _object(body["notebook"], "notebook")
            path = _string(notebook, "path", "notebook.")
            name = name if name is not None else _string(notebook, "name", "notebook.")
            type_ = type_ or "notebook"
        if path is None:
            raise BadRequest("Missing field in JSON data: path", reason="bad model")
        if type_ is None:
            raise BadRequest("Missing field in JSON data: type", reason="bad model")
        kernel_name, kernel_id = _kernel(body)
        model = await self.sessions.create(
            path, type_, name or "", kernel_name=kernel_name, kernel_id=kernel_id
        )
        self.set_header("Location", f"{self.ctx.config.base_url}api/sessions/{quote(model['id'])}")
        self.write_json(model, status=201)


class SessionHandler(SessionsBase):
    async def get(self, session_id: str) -> None:
        self.write_json(await self.sessions.get(session_id))

    async def patch(self, session_id: str) -> None:
        """Change ``path``, ``name``, ``type`` or the kernel (``kernel: {id}`` or ``{name}``)."""
        body = self.body_object()
        notebook = body.get("notebook")
        path, type_ = _string(body, "path"), _string(body, "type")
        if path is None and notebook is not None:
            path = _string(_object(notebook, "notebook"), "path", "notebook.")
            type_ = type_ or "notebook"
        kernel_name, kernel_id = _kernel(body)
        model = await self.sessions.update(
            session_id,
            path=path,
            name=_string(body, "name"),
            type=type_,
            kernel_name=kernel_name,
            kernel_id=kernel_id,
        )
        self.write_json(model)

    async def delete(self, session_id: str) -> None:
        await self.sessions.delete(session_id)
        self.set_status(204)
        self.finish()


def routes(ctx: ServerContext, sessions: SessionManager) -> list[Route]:
    kw = {"ctx": ctx, "sessions": sessions}
    return [
        Route("/api/sessions", SessionsHandler, kw),
        Route("/api/sessions/{session_id}", SessionHandler, kw, params=_SESSION_ID),
    ]
