"""``python -m nbserver``: argv, environment and config file -> :class:`ServerConfig` -> run.

The only module that reads argv, the environment or config files. Precedence: command line, then
environment (``NBSERVER_TOKEN``), then the config file (``--config``, else ``NBSERVER_CONFIG``,
else ``<jupyter config dir>/nbserver_config.json`` if it exists), then defaults.

Subcommands: ``password`` (store an argon2 hash in the config file), ``list`` (running servers),
``stop PORT``.

Under JupyterHub (``--hub``, or by itself when ``JUPYTERHUB_SERVICE_URL`` and
``JUPYTERHUB_API_TOKEN`` are set, unless ``--no-hub``), :func:`hub_settings` maps the environment
the Hub's spawner sets onto the configuration: the exact address and port to listen on (no
other port is tried), the prefix, the root directory, TLS, and :class:`~nbserver.config.HubConfig`.
The Hub logs people in, so no token is made or printed, and a password in the config file is
ignored. Command-line flags still win (the Hub's ``Spawner.args``: ``--ip``, ``--port``,
``--notebook-dir``, ``--debug``...).
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import shlex
import signal
import sys
import time
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import runtime
from ._version import __version__
from .config import EVENT_LOOPS, HubConfig, ServerConfig
from .errors import ConfigError

__all__ = ["hub_settings", "main"]

log = logging.getLogger("nbserver.app")

DEFAULT_CONFIG_NAME = "nbserver_config.json"
SUBCOMMANDS = ("password", "list", "stop")


def default_config_path() -> Path:
    from jupyter_core.paths import jupyter_config_dir

    return Path(jupyter_config_dir()) / DEFAULT_CONFIG_NAME


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or JSON config file whose keys are ServerConfig field names.

    Raises:
        ConfigError: unreadable file, bad syntax, or an unknown key (named).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        if path.suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover
                import tomli as tomllib
            data = tomllib.loads(raw.decode())
        else:
            data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"config file {path} is not valid {path.suffix[1:] or 'JSON'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table/object of settings")
    data = {key.replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(data) - set(ServerConfig.field_names()))
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)} in {path}; "
            f"known: {', '.join(ServerConfig.field_names())}"
        )
    settings = {key: _check_type(key, value, path) for key, value in data.items()}
    if isinstance(data.get("terminal_shell"), str):  # a command line, as --terminal-shell
        settings["terminal_shell"] = shell_argv(data["terminal_shell"], f"terminal_shell in {path}")
    return settings


def shell_argv(command: str, source: str = "--terminal-shell") -> tuple[str, ...]:
    """``command`` split as a POSIX shell splits it (:func:`shlex.split`).

    Raises:
        ConfigError: an unclosed quote or a trailing escape, or no command at all (``source``
            named).
    """
    try:
        argv = tuple(shlex.split(command))
    except ValueError as exc:
        raise ConfigError(f"{source} {command!r} is not a command line: {exc}") from None
    if not argv:
        raise ConfigError(f"{source} names no command")
    return argv


def _check_type(name: str, value: Any, path: Path) -> Any:
    """``value`` of setting ``name`` converted to its field's type, or a ConfigError naming it."""
    hint = typing.get_type_hints(ServerConfig)[name]
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        kind = typing.get_origin(option) or option
        if value is None and option is type(None):
            return None
        if isinstance(value, bool) and kind is not bool:
            continue
        if kind in (bool, str, int) and isinstance(value, kind):
            return value
        if kind is float and isinstance(value, (int, float)):
            return float(value)
        if kind is Path and isinstance(value, str):
            return Path(value)
        if kind is bytes and isinstance(value, str):
            return value.encode()
        if kind is tuple and isinstance(value, str):
            return (value,)
        if kind is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    expected = hint.__name__ if isinstance(hint, type) else str(hint)
    raise ConfigError(f"setting {name} in {path} must be {expected}, not {value!r}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nbserver",
        description="Serve the Jupyter Server REST and kernel-websocket API.",
        epilog="Subcommands: `password` stores a login password, `list` shows running servers, "
        "`stop PORT` stops one. Environment: NBSERVER_TOKEN, NBSERVER_CONFIG.",
    )
    add = p.add_argument
    add("--ip", help="interface to listen on (default 127.0.0.1)")
    add("--port", type=int, help="first port to try (default 8888; the next free one is used)")
    add("--root-dir", type=Path, help="directory to serve (default: the current directory)")
    add("--notebook-dir", dest="root_dir", type=Path, help=argparse.SUPPRESS)  # jupyter's old name
    add("--base-url", help="URL prefix of every route (default /)")
    add("--token", help="the access token (default: a random one, printed at start-up)")
    add(
        "--no-token",
        action="store_true",
        help="no token: only safe with a password, else DANGEROUS",
    )
    add(
        "--password",
        action="store_true",
        help="log in with the password stored by `python -m nbserver password` (no token)",
    )
    add(
        "--no-browser",
        dest="open_browser",
        action="store_false",
        default=None,
        help="do not open a browser (default: open one when there is a display)",
    )
    add("--browser", dest="open_browser", action="store_true", help="open a browser at start-up")
    add(
        "--allow-origin",
        action="append",
        metavar="ORIGIN",
        help="origin allowed for CORS and cookie websockets (repeatable; '*' for any)",
    )
    add(
        "--allow-remote-access",
        action="store_true",
        default=None,
        help="accept any Host header although listening on loopback",
    )
    add("--max-body-size", type=int, metavar="BYTES", help="largest request body (default 512 MiB)")
    add(
        "--session-store",
        metavar="PATH",
        help="SQLite file of sessions and kernels; a server started again on it re-attaches the "
        "kernels still running (default :memory:, nothing outlives the server)",
    )
    add(
        "--keep-kernels",
        action="store_true",
        default=None,
        help="a clean shutdown leaves kernels running, for the next server on --session-store",
    )
    add(
        "--event-loop",
        choices=EVENT_LOOPS,
        help="auto (default): uvloop when installed, else asyncio's",
    )
    add(
        "--frame-ancestors",
        action="append",
        metavar="ORIGIN",
        help="origin allowed to show the pages in a frame (repeatable; default: only the server)",
    )
    add(
        "--cookie-samesite",
        choices=["Lax", "Strict", "None"],
        type=str.capitalize,
        help="SameSite of the login cookies (default Lax; None, for embedding, needs https)",
    )
    add(
        "--no-terminals",
        dest="terminals_enabled",
        action="store_false",
        default=None,
        help="serve no terminals: /api/terminals and the terminal websocket answer 404",
    )
    add(
        "--terminal-shell",
        metavar="CMD",
        help="the terminals' shell, a command line split as a POSIX shell splits it (shlex), e.g. "
        '"bash --login" or "/bin/sh -c \'cd src; exec sh\'" (default: $SHELL -l, else sh)',
    )
    add("--runtime-dir", type=Path, help="where runtime files go (default: Jupyter's runtime dir)")
    add("--certfile", type=Path, help="serve https with this certificate (PEM)")
    add("--keyfile", type=Path, help="the certificate's private key (PEM), if not in --certfile")
    add("--client-ca", type=Path, help="require client certificates signed by this CA (PEM)")
    add("--default-url", help="where / leads, relative to the base URL (default /tree)")
    add(
        "--hub",
        action="store_true",
        default=None,
        help="run as a JupyterHub single-user server (the default when JUPYTERHUB_SERVICE_URL and "
        "JUPYTERHUB_API_TOKEN are set): the Hub's OAuth and tokens, its address, prefix and activity",
    )
    add("--no-hub", dest="hub", action="store_false", help="ignore a JupyterHub environment")
    add("--config", type=Path, help="config file, TOML or JSON (default: $NBSERVER_CONFIG)")
    add("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], type=str.upper)
    add("--debug", dest="log_level", action="store_const", const="DEBUG", help="--log-level DEBUG")
    add("--version", action="version", version=f"nbserver {__version__}")
    return p


def _env_flag(environ: dict[str, str], name: str) -> bool:
    """JupyterHub's boolean variables: unset or empty is False, so are ``0`` and ``false``."""
    return environ.get(name, "").lower() not in ("", "0", "false")


def _env_scopes(environ: dict[str, str], *names: str) -> tuple[str, ...]:
    """A JSON list of scopes from the first of ``names`` that is set; ``()`` when none is."""
    for name in names:
        raw = environ.get(name)
        if raw:
            try:
                scopes = json.loads(raw)
            except ValueError:
                scopes = None
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise ConfigError(f"${name} must be a JSON list of scopes, not {raw!r}")
            return tuple(scopes)
    return ()


def hub_settings(environ: dict[str, str]) -> dict[str, Any]:
    """ServerConfig settings from the environment a JupyterHub spawner gives its servers.

    Raises:
        ConfigError: a required variable is missing or one is malformed (named).
    """
    missing = [
        name
        for name in (
            "JUPYTERHUB_SERVICE_URL",
            "JUPYTERHUB_API_TOKEN",
            "JUPYTERHUB_CLIENT_ID",
            "JUPYTERHUB_USER",
        )
        if not environ.get(name)
    ]
    if missing:
        raise ConfigError(f"--hub needs the environment JupyterHub gives: ${', $'.join(missing)} unset")
    service = urlsplit(environ["JUPYTERHUB_SERVICE_URL"])
    try:
        port = service.port or (443 if service.scheme == "https" else 80)
    except ValueError:
        raise ConfigError(
            f"$JUPYTERHUB_SERVICE_URL {environ['JUPYTERHUB_SERVICE_URL']!r} has a bad port"
        ) from None
    interval = environ.get("JUPYTERHUB_ACTIVITY_INTERVAL") or "300"
    try:
        activity_interval = float(interval)
    except ValueError:
        raise ConfigError(
            f"$JUPYTERHUB_ACTIVITY_INTERVAL must be a number of seconds, not {interval!r}"
        ) from None
    hub_base = environ.get("JUPYTERHUB_BASE_URL") or "/"
    hub = HubConfig(
        api_url=environ.get("JUPYTERHUB_API_URL") or "http://127.0.0.1:8081/hub/api",
        api_token=environ["JUPYTERHUB_API_TOKEN"],
        client_id=environ["JUPYTERHUB_CLIENT_ID"],
        user=environ["JUPYTERHUB_USER"],
        server_name=environ.get("JUPYTERHUB_SERVER_NAME", ""),
        oauth_callback_url=environ.get("JUPYTERHUB_OAUTH_CALLBACK_URL", ""),
        access_scopes=_env_scopes(environ, "JUPYTERHUB_OAUTH_ACCESS_SCOPES", "JUPYTERHUB_OAUTH_SCOPES"),
        client_allowed_scopes=_env_scopes(environ, "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES"),
        activity_url=environ.get("JUPYTERHUB_ACTIVITY_URL", ""),
        activity_interval=activity_interval,
        cookie_host_prefix=_env_flag(environ, "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED"),
        hub_host=environ.get("JUPYTERHUB_HOST", ""),
        hub_prefix=hub_base.rstrip("/") + "/hub/",
        public_url=environ.get("JUPYTERHUB_PUBLIC_URL", ""),
    )
    settings: dict[str, Any] = {
        "hub": hub,
        "ip": service.hostname or "",  # no host: every interface
        "port": port,
        "port_retries": 0,  # the Hub waits on exactly this port
        "base_url": environ.get("JUPYTERHUB_SERVICE_PREFIX") or "/",
        "username": hub.user,
        "token": "",
        "allow_remote_access": True,  # the Host is the Hub's public name
        "open_browser": False,
        "delete_to_trash": False,  # as jupyterhub-singleuser: containers rarely have a trash
    }
    if environ.get("JUPYTERHUB_ROOT_DIR"):
        settings["root_dir"] = Path(environ["JUPYTERHUB_ROOT_DIR"]).expanduser()
    if environ.get("JUPYTERHUB_DEFAULT_URL"):
        settings["default_url"] = "/" + environ["JUPYTERHUB_DEFAULT_URL"].lstrip("/")
    for name in ("certfile", "keyfile", "client_ca"):
        value = environ.get(f"JUPYTERHUB_SSL_{name.upper()}")
        if value:
            settings[name] = Path(value)
    if _env_flag(environ, "JUPYTERHUB_DEBUG"):
        settings["log_level"] = "DEBUG"
    return settings


def under_hub(args: argparse.Namespace, environ: dict[str, str]) -> bool:
    """``--hub``; or, unless ``--no-hub``, a JupyterHub spawner's environment."""
    if args.hub is not None:
        return bool(args.hub)
    return bool(environ.get("JUPYTERHUB_SERVICE_URL") and environ.get("JUPYTERHUB_API_TOKEN"))


def build_config(args: argparse.Namespace, environ: dict[str, str]) -> ServerConfig:
    """Merge file < environment < command line into a validated :class:`ServerConfig`."""
    settings: dict[str, Any] = {}
    hub = under_hub(args, environ)
    path = args.config or (Path(environ["NBSERVER_CONFIG"]) if environ.get("NBSERVER_CONFIG") else None)
    user_config = not (hub and _env_flag(environ, "JUPYTERHUB_DISABLE_USER_CONFIG"))
    if path is None and user_config and default_config_path().is_file():
        path = default_config_path()
    if path is not None:
        settings.update(load_config_file(path))
    if hub:
        for secret in ("token", "password_hash"):
            if settings.pop(secret, None):
                log.warning("Under JupyterHub the Hub logs users in: %s in %s is ignored", secret, path)
        settings.update(hub_settings(environ))
    elif "NBSERVER_TOKEN" in environ:
        settings["token"] = environ["NBSERVER_TOKEN"]
    for name in (
        "ip",
        "port",
        "root_dir",
        "base_url",
        "token",
        "open_browser",
        "max_body_size",
        "runtime_dir",
        "log_level",
        "allow_remote_access",
        "cookie_samesite",
        "session_store",
        "keep_kernels",
        "event_loop",
        "certfile",
        "keyfile",
        "client_ca",
        "default_url",
        "terminals_enabled",
    ):
        value = getattr(args, name)
        if value is not None:
            settings[name] = value
    if args.terminal_shell is not None:
        settings["terminal_shell"] = shell_argv(args.terminal_shell)
    if args.allow_origin:
        settings["allow_origin"] = tuple(args.allow_origin)
    if args.frame_ancestors:
        settings["frame_ancestors"] = tuple(args.frame_ancestors)
    if hub and (args.token is not None or args.password or args.no_token):
        raise ConfigError("--token, --password and --no-token do not apply under JupyterHub (--hub)")
    if args.password and not settings.get("password_hash"):
        raise ConfigError("--password: no password is stored; run `python -m nbserver password`")
    if args.no_token:
        settings["token"] = ""
    elif not hub and settings.get("password_hash") and "token" not in settings:
        settings["token"] = ""  # as jupyter_server: a password replaces the generated token
    settings.setdefault("username", environ.get("USER") or environ.get("LOGNAME") or "user")
    return ServerConfig(**settings)


def cmd_password(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m nbserver password", description="Store an argon2 hash of a login password."
    )
    p.add_argument("--config", type=Path, help=f"file to write (default: {default_config_path()})")
    args = p.parse_args(argv)
    from .auth.passwords import hash_password

    path: Path = args.config or default_config_path()
    settings: dict[str, Any] = {}
    if path.is_file():
        load_config_file(path)  # a bad file fails before prompting
        if path.suffix != ".toml":
            settings = json.loads(path.read_bytes())  # kept as written, not converted
    try:
        first = getpass.getpass("Enter password: ")
        if not first:
            print("The password is empty; nothing changed.", file=sys.stderr)
            return 1
        if getpass.getpass("Verify password: ") != first:
            print("Passwords do not match; nothing changed.", file=sys.stderr)
            return 1
    except (EOFError, KeyboardInterrupt):
        print("\nCancelled; nothing changed.", file=sys.stderr)
        return 1
    settings["password_hash"] = hash_password(first)
    if path.suffix == ".toml":
        print(
            "Write the hash into a TOML file yourself:\npassword_hash = "
            f"{json.dumps(settings['password_hash'])}"
        )
        return 0
    runtime.write_private(path, json.dumps(settings, indent=2).encode())
    print(f"Wrote the password hash to {path}")
    return 0


def _runtime_dir(argv: Sequence[str]) -> Path:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--runtime-dir", type=Path)
    known, _ = p.parse_known_args(argv)
    return known.runtime_dir or runtime.default_runtime_dir()


def cmd_list(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m nbserver list", description="List running servers.")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--runtime-dir", type=Path)
    args = p.parse_args(argv)
    servers = runtime.list_servers(args.runtime_dir or runtime.default_runtime_dir())
    if args.json:
        for info in servers:
            print(json.dumps(info))
        return 0
    print("Currently running servers:" if servers else "No running servers.")
    for info in servers:
        token = f"?token={info['token']}" if info.get("token") else ""
        print(f"{info['url']}{token} :: {info['root_dir']}")
    return 0


def cmd_stop(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m nbserver stop", description="Stop a running server.")
    p.add_argument("port", type=int)
    p.add_argument("--runtime-dir", type=Path)
    args = p.parse_args(argv)
    servers = runtime.list_servers(args.runtime_dir or runtime.default_runtime_dir())
    matches = [s for s in servers if s.get("port") == args.port]
    if not matches:
        ports = ", ".join(str(s.get("port")) for s in servers) or "none"
        print(f"No nbserver is running on port {args.port} (running: {ports}).", file=sys.stderr)
        return 1
    pid = int(matches[0]["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"The server on port {args.port} (pid {pid}) had already exited.")
        return 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"Stopped the server on port {args.port} (pid {pid}).")
            return 0
        time.sleep(0.1)
    print(
        f"The server on port {args.port} (pid {pid}) did not stop within 10 s; sending SIGKILL.",
        file=sys.stderr,
    )
    os.kill(pid, signal.SIGKILL)
    return 1


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("[%(levelname)1.1s %(asctime)s.%(msecs)03d %(name)s] %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger("nbserver")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "hub":  # the multi-user hub has its own command line
        from .hub.cli import main as hub_main

        return hub_main(argv[1:])
    if argv and argv[0] in SUBCOMMANDS:
        command = {"password": cmd_password, "list": cmd_list, "stop": cmd_stop}[argv[0]]
        try:
            return command(argv[1:])
        except ConfigError as exc:
            print(f"nbserver {argv[0]}: error: {exc}", file=sys.stderr)
            return 2
    args = _parser().parse_args(argv)
    try:
        config = build_config(args, dict(os.environ))
    except ConfigError as exc:
        print(f"nbserver: error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    from .server import run

    try:
        run(config)
    except ConfigError as exc:
        log.error("%s", exc)
        return 1
    return 0
