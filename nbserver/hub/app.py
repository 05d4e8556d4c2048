"""The hub's tornado application and its running server.

``make_hub_app`` mounts the API (:mod:`~nbserver.hub.api`), the pages (:mod:`~nbserver.hub.pages`)
and the proxy (:mod:`~nbserver.hub.proxy`) under ``base_url``, behind one
:class:`~nbserver.context.ServerContext` whose identity provider is the hub's. It never imports
``nbserver.services``: user servers are reached over HTTP only, as JupyterHub reaches them.

:class:`HubServer` binds, re-adopts the servers a previous hub left running, serves, and on
stop leaves the user servers running (a hub started again on the same database takes them back).
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
from typing import Any

import tornado.web
from tornado.routing import Rule

from .._version import __version__
from ..errors import ConfigError
from ..routing import Route, mount
from ..server import NoDelayHTTPServer, bind
from ..web import Access, log_request
from . import api, pages
from .culler import IdleCuller
from .proxy import ProxyHandler, WebSocketUpgrade
from .runtime import HubRuntime
from .settings import HubSettings
from .wsproxy import WebSocketProxy

__all__ = ["HubServer", "hub_routes", "make_hub_app", "run_hub", "serve_hub"]

log = logging.getLogger("nbserver.hub")


def hub_routes(hub: HubRuntime) -> list[Route]:
    """Every route of the hub but the proxy's, relative to ``base_url``."""
    return [*api.routes(hub.ctx, hub), *pages.routes(hub.ctx, hub), *api.fallback_routes(hub.ctx, hub)]


def make_hub_app(hub: HubRuntime) -> tornado.web.Application:
    routes = hub_routes(hub)
    for route in routes:
        if not isinstance(getattr(route.handler, "access", None), Access):
            raise ConfigError(f"handler {route.handler.__qualname__} declares no access rule")
    base = re.escape(hub.base_url.rstrip("/"))
    user_path = base + r"/user/(?P<name>[^/]*)(?P<path>.*)"
    rules: list[Any] = [
        Rule(WebSocketUpgrade(user_path), WebSocketProxy, {"hub": hub}),
        *mount(hub.base_url, routes),
        (user_path, ProxyHandler, {"hub": hub}),
    ]
    return tornado.web.Application(
        rules,
        log_function=log_request,
        xsrf_cookie_kwargs={"path": hub.hub_prefix, "samesite": "Lax", "httponly": True},
        websocket_max_message_size=hub.max_body_size,
        websocket_ping_interval=30,
        nbserver=hub.ctx,
    )


class HubServer:
    """One hub listening on a socket."""

    def __init__(self, settings: HubSettings, hub: HubRuntime | None = None) -> None:
        self.settings = settings
        self.hub = hub or HubRuntime(settings)
        self.culler: IdleCuller | None = None
        self._http: NoDelayHTTPServer | None = None
        self._stopped = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        host = self.settings.ip or "127.0.0.1"
        return f"http://{host}:{self.port}{self.settings.base_url}"

    async def start(self) -> None:
        sockets, self.port = bind(self.settings.ip, self.settings.port, 0)
        self.hub.bind(self.port)
        await self.hub.startup()
        if self.settings.cull_idle_timeout > 0:
            self.culler = IdleCuller(
                self.hub.servers,
                timeout=self.settings.cull_idle_timeout,
                interval=self.settings.cull_interval,
            )
            await self.culler.startup()
        self._http = NoDelayHTTPServer(
            make_hub_app(self.hub),
            max_body_size=self.settings.max_body_size,
            idle_connection_timeout=3600,
        )
        self._http.add_sockets(sockets)

    def request_stop(self) -> None:
        self._stopped.set()

    async def wait(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        """Stop serving; user servers keep running for the next hub."""
        if self._http is not None:
            self._http.stop()
            try:
                await asyncio.wait_for(self._http.close_all_connections(), 3.0)
            except asyncio.TimeoutError:
                log.warning("Some connections did not close within 3 s")
            self._http = None
        if self.culler is not None:
            await self.culler.shutdown()
        await self.hub.shutdown()


async def serve_hub(settings: HubSettings) -> None:
    """Run a hub until SIGINT or SIGTERM."""
    server = HubServer(settings)
    await server.start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.request_stop)
    mode = settings.spawner
    log.info(
        "nbserver %s hub at %s (users: %s, servers: %s)",
        __version__,
        server.url,
        settings.authenticator,
        mode,
    )
    if mode == "users-dir":
        log.warning(
            "User servers run under this account in %s: users can reach each other's files through "
            "their kernels. This mode is for a team whose members trust each other.",
            settings.users_dir,
        )
    try:
        await server.wait()
    finally:
        log.info("Stopping the hub; user servers keep running and will be re-adopted")
        await server.stop()


def run_hub(settings: HubSettings) -> None:
    """Blocking form of :func:`serve_hub`: on uvloop when it is installed (as the user servers
    run: the proxy's per-message cost is mostly the event loop's), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve_hub(settings))
    else:
        uvloop.run(serve_hub(settings))
