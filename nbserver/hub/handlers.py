"""The base handlers of the hub's pages and API: the hub's objects, the principal, scope checks,
and JupyterHub's error body (``{"status", "message"}``, with nbserver's ``reason``)."""

from __future__ import annotations

from typing import Any, cast

from ..errors import Forbidden
from ..web import APIHandler, PageHandler
from .identity import Principal
from .runtime import HubRuntime
from .scopes import allows

__all__ = ["HubAPIHandler", "HubPageHandler", "HubRequestMixin"]


class HubRequestMixin:
    """What both kinds of hub handler share (a mixin of two methods, over one base class each)."""

    hub: HubRuntime
    identity: Any

    @property
    def principal(self) -> Principal:
        """The authenticated principal (only on ``Access.USER`` routes)."""
        return cast(Principal, self.identity)

    def need(self, base: str, user: str | None) -> None:
        """403 unless the request holds scope ``base`` on ``user`` (``None``: on everyone)."""
        if not allows(self.principal.scopes, base, user):
            on = f" on {user}" if user else ""
            raise Forbidden(
                f"Action is not authorized with current scopes; requires {base}{on}", reason="scope"
            )


class HubAPIHandler(HubRequestMixin, APIHandler):
    def initialize(self, ctx: Any, hub: HubRuntime) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.hub = hub

    def render_error(self, status: int, error: dict[str, str | None]) -> None:
        body: dict[str, Any] = {"status": status, **error}
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(self.hub_json(body))

    @staticmethod
    def hub_json(body: Any) -> bytes:
        import json

        return json.dumps(body).encode()


class HubPageHandler(HubRequestMixin, PageHandler):
    def initialize(self, ctx: Any, hub: HubRuntime) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.hub = hub
