"""Mounting nbconvert: the real service when nbconvert is installed, else routes that say so
(``/api/nbconvert`` then lists no exporters). Importing this module does not import nbconvert.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from ...context import ServerContext
from ...routing import Route
from ..contents.manager import ContentsManager
from ..unavailable import unavailable_routes

__all__ = ["installed", "nbconvert_routes"]

# POST: any name, one that names no exporter is a JSON 404; GET (a page): a word, else the
# HTML 404 of an unknown URL, before the page redirect that takes a ?token= out of the URL
FORMAT_PARAM = {"format": r"[^/]+"}
PAGE_FORMAT_PARAM = {"format": r"\w+"}
TEMPLATES: tuple[tuple[str, dict[str, str]], ...] = (
    ("/api/nbconvert", {}),
    ("/nbconvert/{format}", FORMAT_PARAM),
    ("/nbconvert/{format}/{path}", {**PAGE_FORMAT_PARAM, "path": r".+"}),
)
NOT_INSTALLED = "nbconvert is not installed: pip install 'nbserver[nbconvert]'"


def installed() -> bool:
    """Whether nbconvert can be imported (without importing it)."""
    if "nbconvert" in sys.modules:
        return sys.modules["nbconvert"] is not None
    try:
        return importlib.util.find_spec("nbconvert") is not None
    except (ImportError, ValueError):
        return False


def nbconvert_routes(ctx: ServerContext, contents: ContentsManager) -> list[Route]:
    """The nbconvert routes over ``ctx.services["nbconvert"]`` (created for ``contents`` when
    missing), or, without nbconvert, routes answering 404 ``"not installed"``."""
    if not installed():
        empty: dict[str, Any] = {"/api/nbconvert": {}}
        return unavailable_routes(ctx, TEMPLATES, NOT_INSTALLED, "not installed", empty=empty)
    from ..contents.filemanager import FileContentsManager
    from .handlers import routes
    from .manager import NbconvertManager

    manager = ctx.services.get("nbconvert")
    if manager is None:
        local = isinstance(contents, FileContentsManager)
        manager = ctx.services["nbconvert"] = NbconvertManager(
            contents, ctx.config.root_dir if local else None
        )
    return routes(ctx, manager)
