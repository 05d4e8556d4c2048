"""Mounting the events service: its routes over the server's bus, and the managers connected to it."""

from __future__ import annotations

from ...context import ServerContext
from ...routing import Route
from ..contents.manager import ContentsManager
from ..kernels.manager import KernelManager
from .handlers import routes

__all__ = ["event_routes"]


def event_routes(ctx: ServerContext) -> list[Route]:
    """``/api/events`` and ``/api/events/subscribe`` over ``ctx.events``.

    Connects the bus to the emitting managers registered in ``ctx.services`` at this point (the
    contents and kernel managers: mount these routes after theirs), unless a manager already
    has a bus of its own (``events`` set)."""
    for service in ctx.services.values():
        if isinstance(service, (ContentsManager, KernelManager)) and service.events is None:
            service.events = ctx.events
    return routes(ctx, ctx.events)
