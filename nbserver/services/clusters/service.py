"""Mounting the clusters: the real service when ipyparallel is installed, else routes that say
so (``/api/clusters`` then lists none). Importing this module does not import ipyparallel."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from ...context import ServerContext
from ...routing import Route
from ..unavailable import unavailable_routes

__all__ = ["cluster_routes", "installed"]

_ID = {"cluster_id": r"[^/]+"}
TEMPLATES: tuple[tuple[str, dict[str, str]], ...] = (
    ("/api/clusters", {}),
    ("/api/clusters/{cluster_id}", _ID),
    ("/api/clusters/{cluster_id}/start", _ID),
    ("/api/clusters/{cluster_id}/stop", _ID),
)
NOT_INSTALLED = "IPython Parallel is not installed: pip install 'nbserver[parallel]'"


def installed() -> bool:
    """Whether ipyparallel can be imported (without importing it)."""
    if "ipyparallel" in sys.modules:
        return sys.modules["ipyparallel"] is not None
    try:
        return importlib.util.find_spec("ipyparallel") is not None
    except (ImportError, ValueError):
        return False


def cluster_routes(ctx: ServerContext) -> list[Route]:
    """The cluster routes over ``ctx.services["clusters"]`` (created when missing), or, without
    ipyparallel, routes answering 404 ``"not installed"`` (``/api/clusters`` lists none)."""
    if not installed():
        empty: dict[str, Any] = {"/api/clusters": []}
        return unavailable_routes(ctx, TEMPLATES, NOT_INSTALLED, "not installed", empty=empty)
    from .handlers import routes
    from .manager import ClusterManager

    manager = ctx.services.get("clusters")
    if manager is None:
        manager = ctx.services["clusters"] = ClusterManager()
    return routes(ctx, manager)
