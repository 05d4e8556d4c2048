"""The hub's typed, frozen configuration (``python -m nbserver hub`` fills it from argv)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..config import normalize_base_url
from ..errors import ConfigError

__all__ = ["HubSettings"]


def _default_spawner() -> str:
    return "system" if hasattr(os, "geteuid") and os.geteuid() == 0 else "users-dir"


@dataclass(frozen=True)
class HubSettings:
    """Everything the hub needs to know; the defaults are safe.

    Attributes:
        ip, port: where the hub (pages, API and proxy) listens; ``port`` 0 lets the OS choose.
        db: the SQLite file (users, tokens, running servers, cookie secret); ``":memory:"`` for tests.
        users_dir: in ``users-dir`` mode, the parent of each user's directory.
        base_url: the public prefix: the hub is at ``<base>hub/``, servers at ``<base>user/<name>/``.
        cull_idle_timeout: stop a server idle this many seconds (0: never); checked every
            ``cull_interval`` seconds (default: a tenth of the timeout, between 1 and 300).
        authenticator: ``"db"`` (the hub's own passwords) or ``"pam"`` (system accounts).
        spawner: ``"system"`` (each server as its user's system account; the default as root) or
            ``"users-dir"`` (under the hub's account, in ``users_dir``; for users who trust each
            other; the default otherwise).
        activity_interval: how often user servers report their own activity (busy kernels).
        single_user_command: the command that starts a user server.
        allow_remote_access: accept a non-local ``Host`` although listening on loopback (a hub
            behind a reverse proxy on the same machine).
        login_attempts, login_window: at most this many failed logins per address and per user
            name in this many seconds; more get 429.
        cookie_max_age_days: how long a login lasts.
        max_body_size: the largest request body the hub and its proxy accept.
        spawn_timeout: seconds a server gets to answer after it was started.
        slow_spawn_timeout: how long ``POST /hub/api/users/<name>/server`` waits before answering
            202 (pending) instead of 201 (started), as JupyterHub's ``slow_spawn_timeout``.
        extra_env: more environment for every user server.
        trusted_proxies: addresses of reverse proxies in front of the hub (e.g. a TLS-terminating
            nginx on ``127.0.0.1``). Only a request from one of them has its
            ``X-Forwarded-Proto`` (for the ``Secure`` flag of the login cookie, and the scheme
            forwarded to user servers) and the last ``X-Forwarded-For`` hop (the client's address
            for the login rate limit) believed; from anyone else these headers are ignored, so a
            client cannot spoof its address or scheme. Empty by default.
    """

    ip: str = "127.0.0.1"
    port: int = 8000
    db: str = "nbserver-hub.sqlite"
    users_dir: Path = field(default_factory=lambda: Path("nbserver-hub-users"))
    base_url: str = "/"
    cull_idle_timeout: float = 0.0
    cull_interval: float = 0.0
    authenticator: str = "db"
    spawner: str = field(default_factory=_default_spawner)
    activity_interval: float = 10.0
    single_user_command: tuple[str, ...] = ()
    allow_remote_access: bool = False
    login_attempts: int = 5
    login_window: float = 60.0
    cookie_max_age_days: float = 14.0
    max_body_size: int = 512 * 1024 * 1024
    spawn_timeout: float = 60.0
    slow_spawn_timeout: float = 10.0
    extra_env: tuple[tuple[str, str], ...] = ()
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "base_url", normalize_base_url(self.base_url))
        set_(self, "users_dir", Path(self.users_dir).absolute())
        if self.db != ":memory:":
            set_(self, "db", os.path.abspath(os.path.expanduser(self.db)))
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is not between 0 and 65535")
        if self.authenticator not in ("db", "pam"):
            raise ConfigError(f"authenticator must be db or pam, not {self.authenticator!r}")
        if self.spawner not in ("system", "users-dir"):
            raise ConfigError(f"spawner must be system or users-dir, not {self.spawner!r}")
        for address in self.trusted_proxies:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ConfigError(f"trusted proxy {address!r} is not an IP address") from None
        if self.cull_idle_timeout < 0 or self.cull_interval < 0:
            raise ConfigError("cull_idle_timeout and cull_interval must be >= 0")
        if not self.cull_interval and self.cull_idle_timeout:
            set_(self, "cull_interval", min(max(self.cull_idle_timeout / 10, 1.0), 300.0))
        for name in ("activity_interval", "login_window", "cookie_max_age_days", "spawn_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.login_attempts < 1 or self.max_body_size <= 0 or self.slow_spawn_timeout < 0:
            raise ConfigError("login_attempts and max_body_size must be positive, slow_spawn_timeout >= 0")

    @property
    def hub_prefix(self) -> str:
        return self.base_url + "hub/"

    @property
    def logs_dir(self) -> Path:
        """Where the user servers' output goes: beside the database."""
        if self.db == ":memory:":
            return self.users_dir / ".logs"
        return Path(self.db + ".logs")
