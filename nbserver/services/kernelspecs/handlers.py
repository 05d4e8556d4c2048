"""``/api/kernelspecs``, ``/api/kernelspecs/{kernel_name}``, ``/kernelspecs/{kernel_name}/{file}``."""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import quote

from ...context import ServerContext
from ...routing import Route
from ...web import Access, APIHandler, BaseHandler
from .manager import KernelSpec, KernelSpecManager

__all__ = ["routes"]


def spec_model(spec: KernelSpec, base_url: str) -> dict[str, Any]:
    """jupyter_server's model: resource keys are file names without extension, values URLs."""
    prefix = f"{base_url}kernelspecs/{quote(spec.name, safe='')}/"
    resources = {
        f.rsplit(".", 1)[0] if f.startswith("logo-") else f: prefix + quote(f) for f in spec.resources
    }
    return {"name": spec.name, "spec": spec.spec, "resources": resources}


class KernelSpecsHandler(APIHandler):
    access = Access.USER

    def initialize(self, ctx: ServerContext, specs: KernelSpecManager) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.specs = specs

    async def get(self) -> None:
        default, specs = await self.specs.all()
        base = self.ctx.config.base_url
        self.write_json(
            {"default": default, "kernelspecs": {n: spec_model(s, base) for n, s in specs.items()}}
        )


class KernelSpecHandler(KernelSpecsHandler):
    async def get(self, kernel_name: str) -> None:  # type: ignore[override]
        self.write_json(spec_model(await self.specs.get(kernel_name), self.ctx.config.base_url))


class KernelSpecResourceHandler(BaseHandler):
    """A file of a kernelspec's directory (a logo, ``kernel.js``, ``kernel.json``, a file in a
    subdirectory); cacheable (they change only when a kernel is reinstalled)."""

    access = Access.USER

    def initialize(self, ctx: ServerContext, specs: KernelSpecManager) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.specs = specs

    async def get(self, kernel_name: str, file: str) -> None:
        data = await self.specs.resource(kernel_name, file)
        self.set_header("Content-Type", mimetypes.guess_type(file)[0] or "application/octet-stream")
        self.set_header("Cache-Control", "max-age=86400")
        self.finish(data)

    head = get


def routes(ctx: ServerContext, specs: KernelSpecManager) -> list[Route]:
    kw = {"ctx": ctx, "specs": specs}
    name = {"kernel_name": r"[\w.\-%]+"}
    resource = {**name, "file": r".+"}  # nested paths too; the manager keeps them inside the spec
    return [
        Route("/api/kernelspecs", KernelSpecsHandler, kw),
        Route("/api/kernelspecs/{kernel_name}", KernelSpecHandler, kw, params=name),
        Route("/kernelspecs/{kernel_name}/{file}", KernelSpecResourceHandler, kw, params=resource),
    ]
