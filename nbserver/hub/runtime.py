"""One running hub's objects, built from :class:`~nbserver.hub.settings.HubSettings` and handed to
every handler (no module-level state: a process may run several hubs, as the tests do)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import ServerConfig
from ..context import ServerContext
from .api_version import API_VERSION
from .authenticators import Authenticator, LoginLimiter, make_authenticator
from .identity import COOKIE_NAME, HubIdentity
from .oauth import OAuthProvider
from .servers import Servers
from .settings import HubSettings
from .spawner import DEFAULT_COMMAND, LocalSpawner
from .store import Store

__all__ = ["HubRuntime"]

log = logging.getLogger("nbserver.hub")


class HubRuntime:
    """The hub's store, identity provider, authenticator, rate limiter, OAuth provider, servers
    and servers. ``port`` is the port actually bound (set by the server
    before :meth:`startup`), which the servers' ``JUPYTERHUB_API_URL`` names."""

    def __init__(self, settings: HubSettings, *, authenticator: Authenticator | None = None) -> None:
        self.settings = settings
        self.base_url = settings.base_url
        self.hub_prefix = settings.hub_prefix
        self.max_body_size = settings.max_body_size
        self.trusted_proxies = frozenset(settings.trusted_proxies)
        self.store = Store(settings.db)
        self.identity = HubIdentity(
            self.store,
            cookie_secret=self.store.secret("cookie_secret"),
            hub_prefix=settings.hub_prefix,
            cookie_max_age_days=settings.cookie_max_age_days,
        )
        self.authenticator = authenticator or make_authenticator(settings.authenticator, self.store)
        self.limiter = LoginLimiter(settings.login_attempts, settings.login_window)
        self.oauth = OAuthProvider(self.store, settings.base_url)
        self.spawner = LocalSpawner(
            mode=settings.spawner,
            users_dir=settings.users_dir,
            logs_dir=settings.logs_dir,
            command=settings.single_user_command or DEFAULT_COMMAND,
            extra_env=dict(settings.extra_env),
        )
        self.port = settings.port
        self.servers = Servers(
            self.store,
            self.spawner,
            hub_api_url="",  # set by bind()
            base_url=settings.base_url,
            activity_interval=settings.activity_interval,
            ready_timeout=settings.spawn_timeout,
        )
        config = ServerConfig(
            ip=settings.ip,
            port=settings.port,
            base_url=settings.base_url,
            token="",
            root_dir=Path.cwd(),
            allow_remote_access=settings.allow_remote_access,
            max_body_size=settings.max_body_size,
            cookie_max_age_days=settings.cookie_max_age_days,
            open_browser=False,
        )
        self.ctx = ServerContext(
            config=config,
            auth=self.identity,
            cookie_name=COOKIE_NAME,
            headers={"X-JupyterHub-Version": API_VERSION},  # single-user servers read it, as from JupyterHub
        )

    def bind(self, port: int) -> None:
        """Record the port the hub listens on: user servers reach the API there."""
        self.port = port
        host = self.settings.ip if self.settings.ip not in ("", "0.0.0.0", "::") else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        self.servers.hub_api_url = f"http://{host}:{port}{self.hub_prefix}api"

    async def startup(self) -> None:
        await self.servers.startup()

    async def shutdown(self) -> None:
        await self.servers.shutdown()
        self.store.close()
