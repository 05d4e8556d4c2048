"""The built-in UI's terminal page, ``/terminals/<name>``, and what the UI's pages may offer.

The page is a shell around a vendored xterm.js (``static/vendor/xterm``, loaded by the page
module from versioned URLs in the page configuration); everything it does goes through the
public terminal API: ``/terminals/websocket/<name>`` (``["stdin", text]``, ``["set_size", rows,
cols]`` out; ``["setup", {}]``, ``["stdout", text]``, ``["disconnect", code]`` in), cookie
authentication as for kernel websockets. Creating and deleting terminals happens on the file
browser's page, through ``/api/terminals``.

:func:`offered` tells every page's configuration which optional services this server runs, so
the file browser shows New ▸ Terminal and the Clusters tab only where they work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..context import ServerContext
from ..errors import NotFound
from ..routing import Route
from ..services.contents.manager import ContentsManager
from ..services.terminals.service import unavailable_reason
from .assets import asset_url
from .handlers import UIPage

if TYPE_CHECKING:  # importing the manager imports terminado
    from ..services.terminals.manager import TerminalManager

__all__ = ["TerminalPage", "offered", "routes"]

XTERM = "vendor/xterm/xterm.mjs"
XTERM_FIT = "vendor/xterm/addon-fit.mjs"


def _terminals(ctx: ServerContext) -> TerminalManager | None:
    """The server's terminal manager, or None when it has no terminals. The terminal routes
    register one exactly when terminals can run (``terminals_enabled``, terminado, a pty)."""
    return ctx.services.get("terminals") if ctx.config.terminals_enabled else None


def offered(ctx: ServerContext) -> dict[str, bool]:
    """``{"terminals", "clusters", "nbconvert"}``: whether this server runs each optional
    service (its manager is registered; an unavailable service's routes only say why). Every
    page's configuration carries it as ``services``."""
    services = {name: name in ctx.services for name in ("clusters", "nbconvert")}
    return {"terminals": _terminals(ctx) is not None, **services}


class TerminalPage(UIPage):
    """``/terminals/<name>``: one terminal in the browser. 404 (an HTML page) when the server
    has no terminals (with the reason) or no terminal of that name."""

    page = "terminal"

    def initialize(  # type: ignore[override]
        self, ctx: ServerContext, contents: ContentsManager, terminals: TerminalManager | None
    ) -> None:
        super().initialize(ctx, contents)
        self.terminals = terminals

    def get(self, name: str) -> None:
        if self.terminals is None:
            why = unavailable_reason(self.ctx) or "This server has no terminals"
            raise NotFound(why, reason="terminals unavailable")
        self.terminals.model(name)  # NotFound for an unknown terminal
        base = self.ctx.config.base_url
        self.render_page(
            "",
            terminal=name,
            xterm=asset_url(base, XTERM),
            xtermFit=asset_url(base, XTERM_FIT),
        )


def routes(ctx: ServerContext) -> list[Route]:
    """``/terminals/{name}`` (the name as the terminal API allows it: ``\\w+``)."""
    kw = {"ctx": ctx, "contents": ctx.services["contents"], "terminals": _terminals(ctx)}
    return [Route("/terminals/{name}", TerminalPage, kw, params={"name": r"\w+"})]
