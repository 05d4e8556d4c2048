"""Typed, frozen configuration.

Only the CLI layer (:mod:`nbserver.cli`) reads argv, the environment and config files; everything
else receives a :class:`ServerConfig`. Constructing one validates it and raises
:class:`~nbserver.errors.ConfigError` with a message naming the bad field.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["EVENT_LOOPS", "HubConfig", "ServerConfig", "normalize_base_url"]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EVENT_LOOPS = ("auto", "asyncio", "uvloop")


def normalize_base_url(base_url: str) -> str:
    """Return ``base_url`` with exactly one leading and one trailing slash (``"a/b"`` -> ``"/a/b/"``)."""
    parts = [p for p in base_url.split("/") if p]
    if any(p in (".", "..") for p in parts) or re.search(r"[\s?#%\\]", base_url):
        raise ConfigError(f"base_url {base_url!r} must be a plain URL path")
    return "/" + "".join(p + "/" for p in parts)


def _random_token() -> str:
    return secrets.token_hex(24)


_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 6265 token


@dataclass(frozen=True)
class HubConfig:
    """Running as a JupyterHub single-user server (``--hub``). The CLI fills this from the
    ``JUPYTERHUB_*`` environment the Hub's spawner sets; see :mod:`nbserver.auth.hub`.

    Attributes:
        api_url: the Hub's API (``JUPYTERHUB_API_URL``), e.g. ``http://127.0.0.1:8081/hub/api``.
        api_token: this server's Hub API token (``JUPYTERHUB_API_TOKEN``), also its OAuth secret.
        client_id: this server's OAuth client id (``jupyterhub-user-<name>``); it names the
            login cookie, as in jupyterhub-singleuser.
        user, server_name: whose server this is (``""`` is the default server).
        oauth_callback_url: the redirect URI the Hub registered (a path or a URL); ``""`` is
            ``<base_url>oauth_callback``.
        access_scopes: a Hub token is let in when one of its scopes grants one of these
            (``JUPYTERHUB_OAUTH_ACCESS_SCOPES``); empty means this server's and its owner's
            ``access:servers`` scopes.
        client_allowed_scopes: the scopes the Hub lets this client's tokens carry (kept as given;
            the Hub enforces them).
        activity_url, activity_interval: where, and every how many seconds (0: never), the
            server's last activity is posted.
        cookie_host_prefix: ``__Host-`` cookies on path ``/`` (``JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED``).
        hub_host: the Hub's public ``scheme://host`` for browser redirects; ``""`` (the default)
            is this server's own host, behind the same proxy.
        hub_prefix: the Hub's URL path (``/hub/``, from ``JUPYTERHUB_BASE_URL``).
        public_url: the public URL of this server (``JUPYTERHUB_PUBLIC_URL``); an ``https`` one
            makes the cookies ``Secure`` whatever the proxy says.
        cache_seconds: how long the Hub's answer about a token is reused (0: ask every time).
    """

    api_url: str
    api_token: str = field(repr=False)
    client_id: str
    user: str
    server_name: str = ""
    oauth_callback_url: str = ""
    access_scopes: tuple[str, ...] = ()
    client_allowed_scopes: tuple[str, ...] = ()
    activity_url: str = ""
    activity_interval: float = 300.0
    cookie_host_prefix: bool = False
    hub_host: str = ""
    hub_prefix: str = "/hub/"
    public_url: str = ""
    cache_seconds: float = 60.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", self.api_url):
            raise ConfigError(f"hub api_url {self.api_url!r} is not an http(s) URL")
        for name in ("api_token", "client_id", "user"):
            if not getattr(self, name):
                raise ConfigError(f"hub {name} is empty: is this server started by JupyterHub?")
        if not _COOKIE_NAME.fullmatch(self.client_id):
            raise ConfigError(f"hub client_id {self.client_id!r} cannot name a cookie")
        if self.activity_interval < 0 or self.cache_seconds < 0:
            raise ConfigError("hub activity_interval and cache_seconds must be >= 0")
        if self.hub_host and not re.fullmatch(r"https?://[^/\s]+", self.hub_host):
            raise ConfigError(f"hub hub_host {self.hub_host!r} is not scheme://host[:port]")
        set_(self, "hub_prefix", normalize_base_url(self.hub_prefix))
        scopes = tuple(self.access_scopes) or (
            f"access:servers!server={self.user}/{self.server_name}",
            f"access:servers!user={self.user}",
        )
        set_(self, "access_scopes", scopes)
        set_(self, "client_allowed_scopes", tuple(self.client_allowed_scopes))


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server needs to know; the defaults are safe.

    Attributes:
        ip: interface to listen on.
        port: first port to try; ``0`` lets the OS choose.
        port_retries: how many following ports to try when ``port`` is taken.
        root_dir: the directory whose contents are served; nothing outside it is reachable.
        base_url: URL prefix of every route, normalised to ``/prefix/``.
        token: the shared secret; ``""`` disables token authentication. The default is random.
        password_hash: an argon2 hash (``argon2:$argon2id$...``) enabling the ``/login`` password form.
        username: the name reported by ``/api/me`` for the (single) authenticated user.
        allow_origin: origins (``scheme://host[:port]``) allowed for CORS and cookie-authenticated
            websockets, or ``("*",)``.
        allow_remote_access: when False and ``ip`` is a loopback address, requests whose ``Host``
            is not local are refused (DNS-rebinding protection).
        cookie_secret: key for signed cookies; ``None`` means the one persisted in ``runtime_dir``.
        cookie_max_age_days: lifetime of the login cookie.
        max_body_size: largest request body accepted; larger ones get 413.
        runtime_dir: where the runtime info file and cookie secret live; ``None`` is Jupyter's
            runtime directory.
        allow_hidden: whether hidden files (dot files) are served.
        delete_to_trash: deleting moves to the trash (when send2trash is installed).
        always_delete_dir: delete non-empty directories for good when not moving to the trash.
        default_kernel_name: the kernelspec started when a request names none.
        kernel_info_timeout: seconds a starting or restarting kernel gets to answer.
        cull_idle_timeout, cull_interval, cull_connected, cull_busy: idle-kernel culling, as
            jupyter_server names them (a timeout of 0 turns culling off). Terminals are culled
            by the same settings (``cull_busy`` does not apply to them).
        terminals_enabled: serve terminals (``/api/terminals``); they also need terminado and a
            pty (POSIX, or pywinpty on Windows), else the routes answer 404 saying why.
        terminal_shell: argv of a terminal's shell; empty (the default) is ``$SHELL -l`` (or
            ``sh``), as jupyter_server. A config file may give it as one command-line string,
            split as a POSIX shell splits it (``shlex``), or as a list.
        session_store: the SQLite file of sessions and kernel records, or ``":memory:"`` (the
            default). With a file, kernels outlive the server: one started again on the same
            file re-attaches those still running. The path is made absolute; its directory
            must exist. Kernel sockets live in ``<session_store>.kernels/``.
        keep_kernels: a clean shutdown leaves kernels running (and recorded) instead of
            stopping them; needs a file ``session_store``.
        event_loop: the event loop of :func:`~nbserver.server.run` (``python -m nbserver``):
            ``"auto"`` (the default) is uvloop when it is installed (it is a dependency except
            on Windows; about 12% less server CPU per websocket round trip), else asyncio's;
            ``"asyncio"`` or ``"uvloop"`` chooses. An application that mounts nbserver runs
            its own loop and this is not used.
        client_buffer_bytes: outgoing bytes a slow websocket client may have pending before
            messages for it are dropped (with one stderr notice).
        replay_buffer_bytes, replay_buffer_seconds: what is kept for a disconnected client and
            replayed when it reconnects with the same ``session_id``.
        max_ws_message_size: largest websocket message accepted from a client.
        ws_ping_interval, ws_ping_timeout: websocket keep-alive, as jupyter_server's
            ``ws_ping_interval`` / ``ws_ping_timeout`` (but in seconds): every websocket is pinged
            every ``ws_ping_interval`` seconds and closed (1001) once it has answered no ping for
            more than ``ws_ping_timeout`` seconds, a condition checked at each ping. A ping that
            went out late (the server's loop was blocked, or the machine suspended) skips the
            check once, so a pong that could not have come yet closes nothing. 0 turns pings
            (interval) or the closing (timeout) off; a timeout must be longer than the interval.
        iopub_msg_rate_limit, iopub_data_rate_limit, rate_limit_window: jupyter_server's iopub
            rate limits (messages/s, bytes/s); 0 (the default) means none.
        frame_ancestors: origins (``scheme://host[:port]``, the host may start with ``*.``) allowed
            to show the server's pages in a frame, next to the server itself
            (``Content-Security-Policy: frame-ancestors``).
        cookie_samesite: ``SameSite`` of the login and ``_xsrf`` cookies: ``"Lax"`` (default),
            ``"Strict"``, or ``"None"`` for pages embedded in another site's frame; ``"None"``
            makes the cookies ``Secure``, so browsers keep them only over https.
        custom_dir: directory whose ``custom.css`` the web UI loads after its own styles;
            ``None`` is ``<Jupyter config dir>/custom``, as jupyter_server.
        certfile, keyfile, client_ca: serve https with this certificate and key; with
            ``client_ca``, clients must present a certificate it signed. Under a hub they also
            identify this server to the Hub's API (JupyterHub's internal SSL).
        default_url: where ``/`` leads, relative to ``base_url`` (``/tree``).
        hub: run as a JupyterHub single-user server (:class:`HubConfig`): the Hub's OAuth and
            tokens replace ``token`` and ``password_hash``.
        log_level: level name for the ``nbserver`` loggers.
        open_browser: open a browser at start-up; ``None`` opens one only when there is a display.
    """

    ip: str = "127.0.0.1"
    port: int = 8888
    port_retries: int = 50
    root_dir: Path = field(default_factory=Path.cwd)
    base_url: str = "/"
    token: str = field(default_factory=_random_token, repr=False)
    password_hash: str | None = field(default=None, repr=False)
    username: str = "user"
    allow_origin: tuple[str, ...] = ()
    allow_remote_access: bool = False
    cookie_secret: bytes | None = field(default=None, repr=False)
    cookie_max_age_days: float = 14.0
    max_body_size: int = 512 * 1024 * 1024
    runtime_dir: Path | None = None
    allow_hidden: bool = False
    delete_to_trash: bool = True
    always_delete_dir: bool = False
    default_kernel_name: str = "python3"
    kernel_info_timeout: float = 60.0
    cull_idle_timeout: float = 0.0
    cull_interval: float = 300.0
    cull_connected: bool = False
    cull_busy: bool = False
    terminals_enabled: bool = True
    terminal_shell: tuple[str, ...] = ()
    session_store: str = ":memory:"
    keep_kernels: bool = False
    event_loop: str = "auto"
    client_buffer_bytes: int = 256 * 1024 * 1024
    replay_buffer_bytes: int = 64 * 1024 * 1024
    replay_buffer_seconds: float = 600.0
    max_ws_message_size: int = 64 * 1024 * 1024
    ws_ping_interval: float = 30.0
    ws_ping_timeout: float = 90.0
    certfile: Path | None = None
    keyfile: Path | None = None
    client_ca: Path | None = None
    default_url: str = "/tree"
    hub: HubConfig | None = None
    iopub_msg_rate_limit: float = 0.0
    iopub_data_rate_limit: float = 0.0
    rate_limit_window: float = 3.0
    frame_ancestors: tuple[str, ...] = ()
    cookie_samesite: str = "Lax"
    custom_dir: Path | None = None
    log_level: str = "INFO"
    open_browser: bool | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise through the back door, once
        set_(self, "base_url", normalize_base_url(self.base_url))
        set_(self, "root_dir", Path(os.path.realpath(os.fspath(self.root_dir))))
        if self.runtime_dir is not None:
            set_(self, "runtime_dir", Path(self.runtime_dir))
        set_(self, "allow_origin", tuple(self.allow_origin))
        set_(self, "frame_ancestors", tuple(self.frame_ancestors))
        set_(self, "terminal_shell", tuple(self.terminal_shell))
        set_(self, "cookie_samesite", str(self.cookie_samesite).capitalize())
        if self.custom_dir is not None:
            set_(self, "custom_dir", Path(self.custom_dir))
        set_(self, "log_level", str(self.log_level).upper())
        if not self.root_dir.is_dir():
            raise ConfigError(f"root_dir {str(self.root_dir)!r} is not a directory")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is not between 0 and 65535")
        if self.port_retries < 0:
            raise ConfigError("port_retries must be >= 0")
        if self.max_body_size <= 0:
            raise ConfigError("max_body_size must be positive")
        for name in ("kernel_info_timeout", "cull_interval", "rate_limit_window", "replay_buffer_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        for name in (
            "cull_idle_timeout",
            "iopub_msg_rate_limit",
            "iopub_data_rate_limit",
            "ws_ping_interval",
            "ws_ping_timeout",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        if 0 < self.ws_ping_timeout <= self.ws_ping_interval:
            raise ConfigError(
                "ws_ping_timeout must be 0 (off) or longer than ws_ping_interval: the timeout is "
                "checked at each ping, so a shorter one would close every connection"
            )
        for name in ("client_buffer_bytes", "replay_buffer_bytes", "max_ws_message_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        store = os.fspath(self.session_store)
        if store != ":memory:":
            store = os.path.abspath(os.path.expanduser(store)) if store else ""
            if not store or not os.path.isdir(os.path.dirname(store)) or os.path.isdir(store):
                raise ConfigError(f"session_store {store!r} must be a file in an existing directory")
            set_(self, "session_store", store)
        elif self.keep_kernels:
            raise ConfigError(
                "keep_kernels needs a file session_store (--session-store PATH): kernels left "
                "running with an in-memory store could never be found again"
            )
        if self.event_loop not in EVENT_LOOPS:
            raise ConfigError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}, not {self.event_loop!r}")
        if self.cookie_max_age_days <= 0:
            raise ConfigError("cookie_max_age_days must be positive")
        if self.log_level not in _LOG_LEVELS:
            raise ConfigError(f"log_level must be one of {', '.join(_LOG_LEVELS)}")
        if self.password_hash is not None and not self.password_hash.startswith(
            ("argon2:", "$argon2", "sha1:", "sha256:", "sha512:")
        ):
            raise ConfigError("password_hash is not a hash: run `python -m nbserver password`")
        for origin in self.allow_origin:
            if origin != "*" and not re.fullmatch(r"[a-zA-Z][\w+.-]*://[^/\s]+", origin):
                raise ConfigError(f"allow_origin entry {origin!r} is not scheme://host[:port]")
        for origin in self.frame_ancestors:
            if not re.fullmatch(r"[a-zA-Z][\w+.-]*://((\*\.)?[\w.-]+|\[[\da-fA-F:.]+\])(:(\d+|\*))?", origin):
                raise ConfigError(f"frame_ancestors entry {origin!r} is not scheme://host[:port]")
        if self.cookie_samesite not in ("Lax", "Strict", "None"):
            raise ConfigError("cookie_samesite must be Lax, Strict or None")
        for name in ("certfile", "keyfile", "client_ca"):
            path = getattr(self, name)
            if path is not None:
                set_(self, name, Path(path))
                if not Path(path).is_file():
                    raise ConfigError(f"{name} {str(path)!r} is not a file")
        if self.certfile is None and (self.keyfile is not None or self.client_ca is not None):
            raise ConfigError("keyfile and client_ca need a certfile")
        if not re.fullmatch(r"/(?![/\\])[^\s\\#]*", self.default_url):
            raise ConfigError(f"default_url {self.default_url!r} must be a local path such as /tree")
        if self.hub is not None and (self.token or self.password_hash):
            raise ConfigError("under a hub (--hub) the Hub logs users in: set no token or password_hash")

    @property
    def auth_enabled(self) -> bool:
        return bool(self.token) or self.password_hash is not None or self.hub is not None

    def replace(self, **changes: Any) -> ServerConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))
