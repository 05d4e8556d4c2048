"""``/api``, ``/api/status``, ``/api/me``, ``/api/spec.yaml``, ``/api/shutdown``."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from ..._version import __version__
from ...context import ServerContext, isoformat
from ...errors import BadRequest, NBServerError
from ...routing import Route
from ...web import Access, APIHandler


@cache
def api_spec() -> bytes:
    """The OpenAPI document shipped inside the package (a link to the repository's api.yaml)."""
    return resources.files("nbserver").joinpath("api.yaml").read_bytes()


class VersionHandler(APIHandler):
    access = Access.PUBLIC
    track_activity = False

    def get(self) -> None:
        self.write_json({"version": __version__})


class StatusHandler(APIHandler):
    access = Access.USER
    track_activity = False  # polling the status is not activity

    def get(self) -> None:
        activity = self.ctx.activity
        self.write_json(
            {
                "started": isoformat(activity.started),
                "last_activity": isoformat(activity.last_activity),
                "connections": activity.gauge("connections"),
                "kernels": activity.gauge("kernels"),
            }
        )


def _parse_permissions(raw: str) -> dict[str, list[str]]:
    message = f'permissions should be a JSON object of {{"resource": ["action", ...]}}, got {raw!r}'
    try:
        wanted = json.loads(raw)
        json.dumps(wanted, ensure_ascii=False).encode()  # a lone surrogate ("\ud800") is no text
    except ValueError:  # UnicodeEncodeError included
        raise BadRequest(message, reason="bad permissions") from None
    if not isinstance(wanted, dict) or not all(
        isinstance(actions, list) and all(isinstance(a, str) for a in actions) for actions in wanted.values()
    ):
        raise BadRequest(message, reason="bad permissions")
    return wanted


class MeHandler(APIHandler):
    """Identity and permissions. The single user may do everything it asks about; no identity
    field can be changed (``updatable_fields`` is empty), as frontends learn from this model."""

    access = Access.USER

    def get(self) -> None:
        assert self.identity is not None
        raw = self.get_query_argument("permissions", "")
        permissions: dict[str, list[str]] = _parse_permissions(raw) if raw else {}
        permissions["updatable_fields"] = []
        self.write_json({"identity": self.identity.user.to_model(), "permissions": permissions})


class SpecHandler(APIHandler):
    access = Access.USER

    def get(self) -> None:
        self.set_header("Content-Type", "text/x-yaml; charset=UTF-8")
        self.finish(api_spec())


class ShutdownHandler(APIHandler):
    """Stops the server as SIGTERM would: kernels are shut down, the runtime file removed."""

    access = Access.USER

    def post(self) -> None:
        request_shutdown = self.ctx.request_shutdown
        if request_shutdown is None:
            raise NBServerError(
                "This server is embedded and cannot be shut down through the API",
                reason="not supported",
                status=501,
            )
        self.ctx.log.info("Shutting down on /api/shutdown request")
        self.set_status(204)
        self.finish()
        request_shutdown()


def routes(ctx: ServerContext) -> list[Route]:
    kw = {"ctx": ctx}
    return [
        Route("/api", VersionHandler, kw),
        Route("/api/status", StatusHandler, kw),
        Route("/api/me", MeHandler, kw),
        Route("/api/spec.yaml", SpecHandler, kw),
        Route("/api/shutdown", ShutdownHandler, kw),
    ]
