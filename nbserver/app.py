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

from . import lab, runtime, ui
from .auth import handlers as auth_handlers
from .auth.identity import Authenticator, User
from .config import ServerConfig
from .context import ServerContext
from .errors import ConfigError, NotFound
from .routing import Route, mount
from .services import api
from .services.clusters.service import cluster_routes
from .services.config import handlers as config_handlers
from .services.config.manager import ConfigSections
from .services.contents import handlers as contents_handlers
from .services.contents import resolve as resolve_handlers
from .services.contents.manager import ContentsManager
from .services.events.service import event_routes
from .services.kernels import handlers as kernels_handlers
from .services.kernels.manager import KernelManager
from .services.kernelspecs import handlers as kernelspecs_handlers
from .services.kernelspecs.manager import KernelSpecManager
from .services.nbconvert.service import nbconvert_routes
from .services.sessions import handlers as sessions_handlers
from .services.sessions.manager import SessionManager
from .services.sessions.store import SessionStore
from .services.terminals.service import terminal_routes
from .ui import legacy
from .web import Access, APIHandler, PageHandler, log_request

__all__ = [
    "contents_manager",
    "kernel_manager",
    "make_app",
    "make_context",
    "server_routes",
    "session_manager",
    "session_store",
]

STATIC_DIR = Path(__file__).parent / "static"


class TrailingSlashHandler(PageHandler):
    """``/api/`` -> ``/api``: any path with a trailing slash, query kept (as jupyter_server).

    The target is the request's own path as sent (base URL included, still percent-encoded),
    with its trailing slashes cut and any run of leading slashes or backslashes made one ``/``:
    never a URL that a browser would read as another host (``//evil.com/``, ``/%2Fevil.com/``
    whose decoded match is ``//evil.com``, ``/\\evil.com/``)."""

    access = Access.PUBLIC

    def get(self, path: str) -> None:
        raw_path, _, query = (self.request.uri or "/").partition("?")
        target = "/" + raw_path.lstrip("/\\").rstrip("/")
        self.redirect(target + ("?" + query if query else ""))

    head = get


class APINotFoundHandler(APIHandler):
    """Unknown ``/api/...`` paths: a JSON 404, whatever the method."""

    access = Access.PUBLIC

    def prepare(self) -> None:  # type: ignore[override]
        self.answer_after_body(NotFound(f"No API endpoint at {self.request.path}", reason="no such endpoint"))


class NotFoundHandler(PageHandler):
    access = Access.PUBLIC

    def prepare(self) -> None:  # type: ignore[override]
        self.answer_after_body(NotFound(f"Nothing at {self.request.path}"))


def make_context(config: ServerConfig, *, authenticator: Authenticator | None = None) -> ServerContext:
    """The shared state of one server; reads (or creates) the persisted cookie secret.

    With ``config.hub`` the identity provider is the Hub's (:mod:`nbserver.auth.hub`); it and
    the activity reporter are registered as services (``hub``, ``hub_activity``), so that a
    :class:`~nbserver.Server` starts and stops them."""
    cookie_name = f"nbserver-{config.port or 'auth'}"
    if authenticator is not None:
        return ServerContext(config=config, auth=authenticator, cookie_name=cookie_name)
    secret = config.cookie_secret
    if secret is None:
        secret = runtime.load_cookie_secret(config.runtime_dir or runtime.default_runtime_dir())
    if config.hub is not None:
        from .auth.hub import hub_context  # import nbserver stays light

        return hub_context(config, secret)
    authenticator = Authenticator(
        token=config.token,
        password_hash=config.password_hash,
        cookie_secret=secret,
        cookie_max_age_days=config.cookie_max_age_days,
        user=User(config.username),
        login_url=config.base_url + "login",
    )
    return ServerContext(config=config, auth=authenticator, cookie_name=cookie_name)


def contents_manager(ctx: ServerContext) -> ContentsManager:
    """The server's contents manager, ``ctx.services["contents"]``; when there is none yet, the
    local file manager for ``config.root_dir`` (with notebook trust in Jupyter's data directory)
    is created and registered there."""
    manager: ContentsManager | None = ctx.services.get("contents")
    if manager is None:
        from .services.contents.filemanager import FileContentsManager  # import nbserver stays light
        from .services.contents.trust import Notary

        config = ctx.config
        manager = ctx.services["contents"] = FileContentsManager(
            config.root_dir,
            allow_hidden=config.allow_hidden,
            delete_to_trash=config.delete_to_trash,
            always_delete_dir=config.always_delete_dir,
            notary=Notary(),  # Jupyter's trust store: trust carries over both ways
            state_dir=config.runtime_dir or runtime.default_runtime_dir(),  # temp-file journal
        )
    return manager


def session_store(ctx: ServerContext) -> SessionStore:
    """The server's SQLite store of sessions and kernel records, ``ctx.services["session_store"]``
    (opened on ``config.session_store`` when missing). It has no ``shutdown()``: the session
    manager closes it, after the kernel manager (registered before it) is done with it."""
    store: SessionStore | None = ctx.services.get("session_store")
    if store is None:
        store = ctx.services["session_store"] = SessionStore(ctx.config.session_store)
    return store


def kernel_manager(ctx: ServerContext) -> KernelManager:
    """The server's kernel manager, ``ctx.services["kernels"]`` (created, with the kernelspec
    manager ``ctx.services["kernelspecs"]``, when missing). With a file ``session_store`` its
    kernels are recorded there and outlive the server."""
    specs: KernelSpecManager | None = ctx.services.get("kernelspecs")
    if specs is None:
        specs = ctx.services["kernelspecs"] = KernelSpecManager(default_name=ctx.config.default_kernel_name)
    manager: KernelManager | None = ctx.services.get("kernels")
    if manager is None:
        store = session_store(ctx) if ctx.config.session_store != ":memory:" else None
        manager = ctx.services["kernels"] = KernelManager(
            ctx.config,
            specs,
            ctx.activity,
            records=store.kernel_records() if store is not None else None,
            state_dir=store.kernels_dir if store is not None else None,
        )
    return manager


def session_manager(ctx: ServerContext) -> SessionManager:
    """The server's session manager, ``ctx.services["sessions"]``; when missing, one over
    :func:`session_store` and :func:`kernel_manager` is created and registered there. Its
    ``shutdown()`` only closes the store: the kernel manager stops (or keeps) the kernels."""
    manager: SessionManager | None = ctx.services.get("sessions")
    if manager is None:
        manager = ctx.services["sessions"] = SessionManager(
            session_store(ctx), kernel_manager(ctx), ctx.config.root_dir
        )
    return manager


def config_sections(ctx: ServerContext) -> ConfigSections:
    """The frontend config store behind ``/api/config``, ``ctx.services["config"]`` (the
    ``nbconfig`` directories of Jupyter's config path when missing)."""
    sections: ConfigSections | None = ctx.services.get("config")
    if sections is None:
        from jupyter_core.paths import jupyter_config_dir, jupyter_config_path

        sections = ctx.services["config"] = ConfigSections(
            Path(jupyter_config_dir()), [Path(p) for p in jupyter_config_path()]
        )
    return sections


def server_routes(ctx: ServerContext, extra: Iterable[Route] = ()) -> list[Route]:
    """Every route of a server with the given services, fallbacks last. The services are those
    registered in ``ctx.services`` (the defaults are created for those missing)."""
    kw = {"ctx": ctx}
    return [
        *api.routes(ctx),
        *contents_handlers.routes(ctx, contents_manager(ctx)),
        *kernels_handlers.routes(ctx, kernel_manager(ctx)),
        *kernelspecs_handlers.routes(ctx, ctx.services["kernelspecs"]),
        *sessions_handlers.routes(ctx, session_manager(ctx)),
        *event_routes(ctx),  # after the contents and kernel managers: it connects them to ctx.events
        *terminal_routes(ctx),
        *nbconvert_routes(ctx, contents_manager(ctx)),
        *cluster_routes(ctx),
        *config_handlers.routes(ctx, config_sections(ctx)),
        *resolve_handlers.routes(ctx, contents_manager(ctx)),
        *auth_handlers.routes(ctx),
        *legacy.routes(ctx, contents_manager(ctx), session_manager(ctx)),  # old notebook URLs
        # JupyterLab; Notebook 7, which owns /tree, /notebooks, /edit when installed: before the
        # built-in UI, whose pages are then only under /nbserver/ (both read lab.notebook_installed)
        *lab.routes(ctx, contents_manager(ctx)),
        *ui.routes(ctx, contents_manager(ctx)),
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
    contents: ContentsManager | None = None,
    kernels: KernelManager | None = None,
    sessions: SessionManager | None = None,
    extra_routes: Iterable[Route] = (),
    **settings: Any,
) -> tornado.web.Application:
    """Build the application for ``config``.

    Args:
        config: the server's configuration.
        context: shared state to use (default: :func:`make_context`). Pass one to share an
            authenticator or activity tracker with other applications.
        contents: the contents manager behind ``/api/contents`` and ``/files`` (default: the
            local filesystem under ``config.root_dir``). It is registered as
            ``context.services["contents"]``, so stopping a :class:`~nbserver.Server` calls its
            ``shutdown()``.
        kernels: the kernel manager behind ``/api/kernels`` and the channels websocket (default:
            local kernels from jupyter_client's kernelspecs, recorded in a file
            ``config.session_store``). Its ``startup()`` re-attaches recorded kernels (a
            :class:`~nbserver.Server` calls it before serving); its ``shutdown()`` stops them
            all (unless ``config.keep_kernels``).
        sessions: the session manager behind ``/api/sessions`` (default: an SQLite store on
            ``config.session_store``, in memory by default). Its kernel manager becomes the
            server's; passing a different ``kernels`` as well is a ConfigError.
        extra_routes: more routes, mounted under ``base_url`` before the fallbacks.
        settings: extra tornado application settings.

    Raises:
        ConfigError: if a handler does not declare its access rule, or if ``sessions`` uses
            another kernel manager than ``kernels``.
    """
    ctx = context or make_context(config)
    if sessions is not None:
        if kernels is not None and kernels is not sessions.kernels:
            raise ConfigError("sessions= must use the kernel manager passed as kernels=")
        kernels = sessions.kernels
    if contents is not None:
        ctx.services["contents"] = contents
    if kernels is not None:
        ctx.services["kernels"] = kernels
        ctx.services["kernelspecs"] = kernels.specs
    if sessions is not None:  # after the kernels: services shut down in this order
        ctx.services["sessions"] = sessions
    routes = server_routes(ctx, extra_routes)
    check_access_declared(routes)
    app = tornado.web.Application(
        mount(config.base_url, routes),
        log_function=log_request,
        template_path=str(STATIC_DIR / "templates"),
        ui_methods=ui.TEMPLATE_METHODS,
        xsrf_cookie_kwargs={
            "path": config.base_url,
            "samesite": config.cookie_samesite,
            "secure": config.cookie_samesite == "None",  # browsers drop SameSite=None without it
        },
        websocket_ping_interval=30,
        websocket_max_message_size=config.max_ws_message_size,
        nbserver=ctx,
        nbserver_routes=routes,
        **settings,
    )
    return app
