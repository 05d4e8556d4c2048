"""Running a server: bind (with port retries), serve with TCP_NODELAY, shut down cleanly.

:class:`Server` is the running-server object used by ``python -m nbserver``, by tests and by
embedders who want nbserver's own listener. Start-up: bind, build the app, run the services'
``startup()`` (the kernel manager re-attaches recorded kernels), then accept connections.
Shutdown order: stop accepting connections, close the open ones, shut down the services in the
order they were registered (every kernel the server started, unless kept), remove the runtime
file.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import ssl
import sys
import webbrowser
from pathlib import Path
from typing import Any

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream
from tornado.netutil import bind_sockets

from . import runtime
from ._version import __version__
from .app import make_app, make_context
from .config import ServerConfig
from .context import ServerContext
from .errors import ConfigError

__all__ = ["NoDelayHTTPServer", "Server", "run", "serve"]

log = logging.getLogger("nbserver.app")

SHUTDOWN_GRACE = 3.0  # seconds open connections get to finish on shutdown


class NoDelayHTTPServer(HTTPServer):
    """An HTTPServer that disables Nagle's algorithm on every connection.

    Without ``TCP_NODELAY`` small writes wait for the peer's delayed ACK, which costs a
    websocket round trip about 40 ms (jupyter_server pays this).
    """

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        stream.set_nodelay(True)
        # tornado turns Nagle back on after each HTTP response ("default state for the next
        # request"); on our connections, and on the websockets upgraded from them, it stays off.
        stream.set_nodelay = _keep_nodelay  # type: ignore[method-assign]
        super().handle_stream(stream, address)


def _keep_nodelay(value: bool) -> None:
    """Stands in for ``IOStream.set_nodelay`` on server connections: TCP_NODELAY stays on."""


def bind(ip: str, port: int, retries: int) -> tuple[list[socket.socket], int]:
    """Bind ``ip:port``, or the next free one of ``port+1 .. port+retries``.

    Raises:
        ConfigError: when no port could be bound, naming the last error.
    """
    last: OSError | None = None
    candidates = [0] if port == 0 else range(port, min(port + retries, 65535) + 1)
    for candidate in candidates:
        try:
            sockets = bind_sockets(candidate, ip or None)
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise ConfigError(f"cannot listen on {ip}:{candidate}: {exc.strerror}") from exc
            last = exc
            continue
        return sockets, sockets[0].getsockname()[1]
    raise ConfigError(f"no free port in {port}..{port + retries} on {ip}: {last}")


def ssl_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The server's TLS (``certfile``/``keyfile``; clients need a certificate signed by
    ``client_ca`` when it is set), or None for plain http.

    Raises:
        ConfigError: a certificate or key that cannot be loaded.
    """
    if config.certfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.certfile, config.keyfile)
        if config.client_ca is not None:
            context.load_verify_locations(config.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot use the TLS certificate {config.certfile}: {exc}") from exc
    return context


def _url_host(ip: str) -> str:
    if ip in ("", "0.0.0.0", "::"):
        return socket.gethostname() if ip else "localhost"
    return f"[{ip}]" if ":" in ip else ip


class Server:
    """One nbserver listening on a socket.

    Args:
        config: the configuration; ``config.port`` is the first port tried.
        services: keyword arguments passed through to :func:`~nbserver.app.make_app`, such
            as ``contents=`` (a :class:`~nbserver.services.contents.manager.ContentsManager`).
        write_runtime_info: write ``nbserver-<pid>.json`` so ``list`` / ``stop`` find it.
    """

    def __init__(self, config: ServerConfig, *, write_runtime_info: bool = True, **services: Any):
        self.config = config
        self._services = services
        self._write_info = write_runtime_info
        self._http: NoDelayHTTPServer | None = None
        self._stopped = asyncio.Event()
        self._stopping: asyncio.Future[None] | None = None  # the one shutdown, once begun
        self.app: tornado.web.Application | None = None
        self.ctx: ServerContext | None = None
        self.port = 0

    @property
    def base(self) -> str:
        """Base URL of the running server, e.g. ``http://127.0.0.1:8888/``."""
        scheme = "https" if self.config.certfile is not None else "http"
        return f"{scheme}://{_url_host(self.config.ip)}:{self.port}{self.config.base_url}"

    @property
    def url(self) -> str:
        """The URL to open: carries the token when there is one."""
        return self.base + (f"?token={self.config.token}" if self.config.token else "")

    async def start(self) -> None:
        config = self.config
        tls = ssl_context(config)
        sockets, self.port = bind(config.ip, config.port, config.port_retries)
        if config.port and self.port != config.port:
            log.warning("Port %d is in use; using port %d instead", config.port, self.port)
        self.config = config = config.replace(port=self.port)
        self.ctx = make_context(config)
        self.ctx.request_shutdown = self.request_stop
        self.app = make_app(config, context=self.ctx, **self._services)
        for service in list(self.ctx.services.values()):  # before serving: kernels re-attach
            startup = getattr(service, "startup", None)
            if startup is not None:
                await startup()
        self._http = NoDelayHTTPServer(
            self.app,
            max_body_size=config.max_body_size,
            idle_connection_timeout=3600,
            ssl_options=tls,
            xheaders=config.hub is not None,  # behind the Hub's proxy: the browser's scheme and address
        )
        self._http.add_sockets(sockets)
        if self._write_info:
            runtime.write_info(self._runtime_dir, self.info())

    @property
    def _runtime_dir(self) -> Path:
        return self.config.runtime_dir or runtime.default_runtime_dir()

    def info(self) -> dict[str, Any]:
        config = self.config
        return {
            "url": self.base,
            "hostname": config.ip,
            "port": self.port,
            "base_url": config.base_url,
            "token": config.token,
            "root_dir": str(config.root_dir),
            "pid": os.getpid(),
            "version": __version__,
            "password": config.password_hash is not None,
            "secure": config.certfile is not None,
        }

    def request_stop(self) -> None:
        """Ask :meth:`wait` to return (from a signal handler or ``/api/shutdown``)."""
        self._stopped.set()

    async def wait(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        """Stop accepting, close connections, shut services down, remove the runtime file.

        Idempotent: the first call does the work; any later call, also one made while the first
        still runs, waits for that one and does nothing more (services are shut down once). The
        work is shielded: a caller cancelled while waiting does not cut the shutdown short.
        """
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        if self._http is not None:
            self._http.stop()
            try:
                await asyncio.wait_for(self._http.close_all_connections(), SHUTDOWN_GRACE)
            except asyncio.TimeoutError:
                log.warning("Some connections did not close within %.0f s", SHUTDOWN_GRACE)
            self._http = None
        services = self.ctx.services if self.ctx is not None else {}
        for name, service in services.items():
            shutdown = getattr(service, "shutdown", None)
            if shutdown is not None:
                try:
                    await shutdown()
                except Exception:
                    log.exception("Shutting down %s failed", name)
        if self._write_info:
            runtime.remove_info(self._runtime_dir)


def _open_browser(server: Server) -> None:
    """Open the start page through a 0600 redirect file, so the token is not on a command line."""
    path = runtime.open_page_path(server._runtime_dir)
    page = f'<!doctype html><meta http-equiv="refresh" content="0;url={server.url}">'
    runtime.write_private(path, page.encode())
    try:
        webbrowser.open(path.as_uri(), new=2)
    except webbrowser.Error as exc:
        log.warning("Could not open a browser: %s", exc)


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


async def serve(config: ServerConfig, **services: Any) -> None:
    """Run a server until SIGINT or SIGTERM (or ``/api/shutdown``), then shut it down cleanly.

    A second signal during shutdown exits at once.
    """
    server = Server(config, **services)
    await server.start()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal(signum: int) -> None:
        if server._stopped.is_set():
            log.warning("Second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        log.info("Received %s: shutting down", signal.Signals(signum).name)
        server.request_stop()

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)

    cfg = server.config
    log.info("nbserver %s is serving %s", __version__, cfg.root_dir)
    if cfg.hub is not None:  # the Hub logs people in: no URL to open, no token to show
        log.info("Serving %s for JupyterHub (%s's server)", server.base, cfg.hub.user)
    else:
        log.info("Open %s", server.url)
    if not cfg.auth_enabled:
        log.warning(
            "AUTHENTICATION IS DISABLED (--no-token): anyone who can reach %s can read your files "
            "and run code as you.",
            server.base,
        )
    if cfg.open_browser or (cfg.open_browser is None and _has_display()):
        await loop.run_in_executor(None, _open_browser, server)
    try:
        await server.wait()
    finally:
        await server.stop()
        for signum in signals:
            loop.remove_signal_handler(signum)
        log.info("nbserver stopped")


def run(config: ServerConfig, **services: Any) -> None:
    """Blocking form of :func:`serve`, on the event loop ``config.event_loop`` names.

    Raises:
        ConfigError: ``event_loop="uvloop"`` and uvloop is not installed.
    """
    choice = config.event_loop
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ConfigError("event_loop is uvloop, which is not installed") from None
        else:
            log.info("Event loop: uvloop")
            uvloop.run(serve(config, **services))
            return
    log.info("Event loop: asyncio")
    asyncio.run(serve(config, **services))
