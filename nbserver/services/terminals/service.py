"""Mounting the terminals: the real service when it can run here, else routes that say why.

Importing this module imports neither terminado nor ptyprocess.
"""

from __future__ import annotations

import importlib.util

from ...context import ServerContext
from ...routing import Route
from ..unavailable import unavailable_routes

__all__ = ["terminal_routes", "unavailable_reason"]

_NAME = {"name": r"\w+"}
TEMPLATES: tuple[tuple[str, dict[str, str]], ...] = (
    ("/api/terminals", {}),
    ("/api/terminals/{name}", _NAME),
    ("/terminals/websocket/{name}", _NAME),
)


def unavailable_reason(ctx: ServerContext) -> str | None:
    """Why this server has no terminals, or None when it has them."""
    if not ctx.config.terminals_enabled:
        return "Terminals are disabled on this server (terminals_enabled is off)"
    if importlib.util.find_spec("terminado") is None:
        return "Terminals need terminado, which is not installed (pip install terminado)"
    from .manager import pty_available

    if not pty_available():
        return "Terminals need a pty, which this platform does not provide"
    return None


def terminal_routes(ctx: ServerContext) -> list[Route]:
    """The terminal routes over ``ctx.services["terminals"]`` (a
    :class:`~.manager.TerminalManager` for ``config.root_dir`` is created and registered when
    missing), or, without terminals, routes answering 404 with the reason."""
    why = unavailable_reason(ctx)
    if why is not None:
        return unavailable_routes(ctx, TEMPLATES, why, "terminals unavailable")
    from .handlers import routes
    from .manager import TerminalManager

    manager = ctx.services.get("terminals")
    if manager is None:
        config = ctx.config
        manager = ctx.services["terminals"] = TerminalManager(
            config.root_dir,
            activity=ctx.activity,
            shell_command=config.terminal_shell,
            extra_env={"JUPYTER_SERVER_ROOT": str(config.root_dir)},
            cull_idle_timeout=config.cull_idle_timeout,
            cull_interval=config.cull_interval,
            cull_connected=config.cull_connected,
        )
    return routes(ctx, manager)
