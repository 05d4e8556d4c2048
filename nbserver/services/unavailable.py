"""Routes of an optional service that cannot run here (an extra not installed, a setting off).

They stay mounted so that clients get a clear answer rather than a generic 404: every method
answers :class:`~nbserver.errors.NotFound` with the given message and reason, or, for the
routes listed in ``empty``, a 200 with an empty model (``/api/nbconvert`` says "no exporters").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..context import ServerContext
from ..errors import NotFound
from ..routing import Route
from ..web import Access, APIHandler

__all__ = ["UnavailableHandler", "unavailable_routes"]


class UnavailableHandler(APIHandler):
    """GET, POST, PUT, PATCH, DELETE: 404 ``{"message": why, "reason": reason}``; or, with
    ``empty`` set, GET answers 200 with that model."""

    access = Access.USER

    def initialize(  # type: ignore[override]
        self, ctx: ServerContext, why: str, reason: str, empty: Any = None
    ) -> None:
        super().initialize(ctx)
        self.why = why
        self.reason = reason
        self.empty = empty

    def get(self, *args: Any, **kwargs: Any) -> None:
        if self.empty is not None:
            self.write_json(self.empty)
            return
        self._refuse()

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise NotFound(self.why, reason=self.reason)

    post = put = patch = delete = _refuse


def unavailable_routes(
    ctx: ServerContext,
    templates: Iterable[tuple[str, Mapping[str, str]]],
    why: str,
    reason: str,
    empty: Mapping[str, Any] | None = None,
) -> list[Route]:
    """One :class:`UnavailableHandler` route per ``(template, params)``; ``empty`` maps a
    template to the model its GET answers instead of the 404."""
    empty = empty or {}
    return [
        Route(
            template,
            UnavailableHandler,
            {"ctx": ctx, "why": why, "reason": reason, "empty": empty.get(template)},
            params=params,
        )
        for template, params in templates
    ]
