"""``/api/resolvePath?path=&kernel=``: which API path a path a user typed or a kernel printed
names (JupyterLab's file-path links and ``%cd``-aware openers ask it).

The ``server`` scope resolves ``path`` against the contents root: a relative path is taken as
an API path, an absolute (or ``~``) path inside the root is made relative to it; the result is
listed only when something exists there (hidden and outside-root paths never resolve). A
``kernel`` id that names no running kernel is reported under ``unresolved``; kernels resolve no
paths of their own (jupyter_server's kernels neither).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...context import ServerContext
from ...errors import BadRequest, NotFound
from ...routing import Route
from ...web import Access, APIHandler
from . import paths
from .manager import ContentsManager

__all__ = ["ResolvePathHandler", "api_path", "routes"]


def api_path(path: str, root: Path) -> str | None:
    """``path`` as an API path under ``root``, or ``None`` when it cannot be one (an absolute
    path outside the root, ``..`` escapes, control characters)."""
    expanded = os.path.expanduser(path) if path.startswith("~") else path
    if os.path.isabs(expanded):
        real_root = os.path.realpath(root)
        target = os.path.abspath(expanded)
        if target != real_root and not target.startswith(real_root.rstrip(os.sep) + os.sep):
            plain_root = os.path.abspath(root)
            if target != plain_root and not target.startswith(plain_root.rstrip(os.sep) + os.sep):
                return None
            real_root = plain_root
        expanded = os.path.relpath(target, real_root).replace(os.sep, "/")
        if expanded == ".":
            expanded = ""
    try:
        return paths.normalize(expanded)
    except NotFound:
        return None


class ResolvePathHandler(APIHandler):
    access = Access.USER
    track_activity = False

    def initialize(self, ctx: ServerContext, contents: ContentsManager) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.contents = contents

    async def get(self) -> None:
        path = self.get_query_argument("path", None)
        if path is None:
            raise BadRequest("Missing query argument 'path'", reason="bad path")
        resolved: list[dict[str, str]] = []
        candidate = api_path(path, self.ctx.config.root_dir)
        if candidate is not None and await self.contents.kind(candidate) is not None:
            resolved.append({"scope": "server", "path": candidate})
        model: dict[str, Any] = {"resolved": resolved}
        kernel_id = self.get_query_argument("kernel", None)
        kernels = self.ctx.services.get("kernels")
        if kernel_id and kernel_id not in getattr(kernels, "kernels", {}):
            model["unresolved"] = [{"scope": "kernel", "reason": f"Kernel {kernel_id} could not be found"}]
        self.write_json(model)


def routes(ctx: ServerContext, contents: ContentsManager) -> list[Route]:
    return [Route("/api/resolvePath", ResolvePathHandler, {"ctx": ctx, "contents": contents})]
