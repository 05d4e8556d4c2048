"""``make_app``: configuration and services in, a ``tornado.web.Application`` out.

Each service package exposes ``routes(ctx, ...) -> list[Route]``; this module mounts them under
``base_url`` behind one :class:`~nbserver.context.ServerContext`, adds the generic fallbacks
(trailing-slash redirect, JSON 404 under ``/api``), and refuses to build an application in which
any handler does not declare its :class:`~nbserver.web.Access`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tornado.web

from . import runtime
from ._version import __version__
from .auth import handlers as auth_handlers
from .auth.identity import Authenticator, User
from .config import ServerConfig
from .context import ServerContext
from .errors import ConfigError, NotFound
from .routing import Route, mount
from .services import api
from .web import Access, APIHandler, PageHandler, log_request

__all__ = ["make_app", "make_context", "server_routes"]

STATIC_DIR = Path(__file__).parent / "static"


class HomeHandler(PageHandler):
    """``/``: what this server is and where its API lives."""

    access = Access.USER

    def get(self) -> None:
        config = self.ctx.config
        self.render(
            "home.html",
            version=__version__,
            root_dir=str(config.root_dir),
            base_url=config.base_url,
        )


class TrailingSlashHandler(PageHandler):
    """``/api/`` -> ``/api``: any path with a trailing slash, query kept (as jupyter_server)."""

    access = Access.PUBLIC

    def get(self, path: str) -> None:
        query = self.request.query
        self.redirect(path + ("?" + query if query else ""))

    head = get


class APINotFoundHandler(APIHandler):
    """Unknown ``/api/...`` paths: a JSON 404, whatever the method."""

    access = Access.PUBLIC

    def prepare(self) -> None:  # type: ignore[override]
        raise NotFound(f"No API endpoint at {self.request.path}", reason="no such endpoint")


class NotFoundHandler(PageHandler):
    access = Access.PUBLIC

    def prepare(self) -> None:  # type: ignore[override]
        raise NotFound(f"Nothing at {self.request.path}")


def make_context(config: ServerConfig, *, authenticator: Authenticator | None = None) -> ServerContext:
    """The shared state of one server; reads (or creates) the persisted cookie secret."""
    if authenticator is None:
        secret = config.cookie_secret
        if secret is None:
            secret = runtime.load_cookie_secret(config.runtime_dir or runtime.default_runtime_dir())
        authenticator = Authenticator(
            token=config.token,
            password_hash=config.password_hash,
            cookie_secret=secret,
            cookie_max_age_days=config.cookie_max_age_days,
            user=User(config.username),
        )
    return ServerContext(config=config, auth=authenticator, cookie_name=f"nbserver-{config.port or 'auth'}")


def server_routes(ctx: ServerContext, extra: Iterable[Route] = ()) -> list[Route]:
    """Every route of a server with the given services, fallbacks last."""
    kw = {"ctx": ctx}
    return [
        Route("/", HomeHandler, kw),
        *api.routes(ctx),
        *auth_handlers.routes(ctx),
        *extra,
        Route("{path}/", TrailingSlashHandler, kw, params={"path": r"/.+?"}, documented=False),
        Route("/api{rest}", APINotFoundHandler, kw, params={"rest": r"(?:/.*)?"}, documented=False),
        Route("{rest}", NotFoundHandler, kw, params={"rest": r".*"}, documented=False),
    ]


def check_access_declared(routes: Iterable[Route]) -> None:
    """Refuse routes whose handler declares no :class:`Access`: unknown would mean refused."""
    for route in routes:
        if not isinstance(getattr(route.handler, "access", None), Access):
            raise ConfigError(
                f"handler {route.handler.__qualname__} of {route.template!r} declares no "
                "`access` (Access.USER or Access.PUBLIC)"
            )


def make_app(
    config: ServerConfig,
    *,
    context: ServerContext | None = None,
    extra_routes: Iterable[Route] = (),
    **settings: Any,
) -> tornado.web.Application:
    """Build the application for ``config``.

    Args:
        config: the server's configuration.
        context: shared state to use (default: :func:`make_context`). Pass one to share an
            authenticator or activity tracker with other applications.
        extra_routes: more routes, mounted under ``base_url`` before the fallbacks.
        settings: extra tornado application settings.

    Raises:
        ConfigError: if a handler does not declare its access rule.
    """
    ctx = context or make_context(config)
    routes = server_routes(ctx, extra_routes)
    check_access_declared(routes)
    app = tornado.web.Application(
        mount(config.base_url, routes),
        log_function=log_request,
        template_path=str(STATIC_DIR / "templates"),
        xsrf_cookie_kwargs={"path": config.base_url, "samesite": "Lax"},
        websocket_ping_interval=30,
        websocket_max_message_size=config.max_body_size,
        nbserver=ctx,
        nbserver_routes=routes,
        **settings,
    )
    return app
