"""``/api/kernels`` REST handlers and the channels websocket route."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ...context import ServerContext
from ...errors import BadRequest
from ...routing import Route
from ...web import Access, APIHandler
from .manager import KernelManager
from .websocket import KernelWebSocket

__all__ = ["routes"]

_KERNEL_ID = {"kernel_id": r"\w+-\w+-\w+-\w+-\w+"}


class KernelsBase(APIHandler):
    access = Access.USER

    def initialize(self, ctx: ServerContext, kernels: KernelManager) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.kernels = kernels


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{key} must be a string, not {type(value).__name__}", reason="bad model")
    return value or None


class KernelsHandler(KernelsBase):
    def get(self) -> None:
        self.write_json(self.kernels.models())

    async def post(self) -> None:
        """Start a kernel: optional body ``{name, path, kernel_id}``."""
        body = self.json_body()
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object", reason="bad model")
        kernel = await self.kernels.start(
            _optional_str(body, "name"),
            path=_optional_str(body, "path"),
            kernel_id=_optional_str(body, "kernel_id"),
        )
        self.set_header("Location", f"{self.ctx.config.base_url}api/kernels/{quote(kernel.id)}")
        self.write_json(kernel.model(), status=201)


class KernelHandler(KernelsBase):
    def get(self, kernel_id: str) -> None:
        self.write_json(self.kernels.get(kernel_id).model())

    async def delete(self, kernel_id: str) -> None:
        await self.kernels.shutdown_kernel(kernel_id)
        self.set_status(204)
        self.finish()


class InterruptHandler(KernelsBase):
    async def post(self, kernel_id: str) -> None:
        await self.kernels.interrupt(kernel_id)
        self.set_status(204)
        self.finish()


class RestartHandler(KernelsBase):
    async def post(self, kernel_id: str) -> None:
        kernel = await self.kernels.restart(kernel_id)
        self.write_json(kernel.model())


def routes(ctx: ServerContext, kernels: KernelManager) -> list[Route]:
    kw = {"ctx": ctx, "kernels": kernels}
    return [
        Route("/api/kernels", KernelsHandler, kw),
        Route("/api/kernels/{kernel_id}", KernelHandler, kw, params=_KERNEL_ID),
        Route("/api/kernels/{kernel_id}/interrupt", InterruptHandler, kw, params=_KERNEL_ID),
        Route("/api/kernels/{kernel_id}/restart", RestartHandler, kw, params=_KERNEL_ID),
        Route("/api/kernels/{kernel_id}/channels", KernelWebSocket, kw, params=_KERNEL_ID),
    ]
