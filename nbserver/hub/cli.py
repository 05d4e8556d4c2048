"""``python -m nbserver hub``: serve the hub, or administer its users.

::

    python -m nbserver hub [--ip 127.0.0.1] [--port 8000] [--db nbserver-hub.sqlite]
        [--users-dir DIR] [--base-url /] [--cull-idle-timeout SECONDS] [--authenticator db|pam]
        [--spawner system|users-dir] [--allow-remote-access] [--trusted-proxy IP]... [--log-level LEVEL]
    python -m nbserver hub adduser NAME [--admin] [--db ...]   # password: one line of stdin, or a prompt
    python -m nbserver hub passwd NAME [--db ...]
    python -m nbserver hub deluser NAME [--db ...]
    python -m nbserver hub users [--db ...]
    python -m nbserver hub token NAME [--note TEXT] [--db ...]  # prints a new API token

Exit status: 0 on success, 1 when the command failed (an unknown user, mismatched passwords),
2 for bad arguments or configuration. Messages go to stderr; ``token`` prints only the token.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Sequence

from ..errors import ConfigError, NBServerError

__all__ = ["main"]

COMMANDS = ("adduser", "passwd", "deluser", "users", "token")


def _db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", default="nbserver-hub.sqlite", help="the hub's SQLite file (default nbserver-hub.sqlite)"
    )


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nbserver hub",
        description="A multi-user hub: logins, one server per user, a proxy, JupyterHub's API.",
        epilog="Administration: hub adduser NAME [--admin], hub passwd NAME, hub deluser NAME, "
        "hub users, hub token NAME [--note TEXT].",
    )
    add = p.add_argument
    add("--ip", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8000, help="port (default 8000)")
    _db_option(p)
    add("--users-dir", default="nbserver-hub-users", help="users' directories in users-dir mode")
    add("--base-url", default="/", help="public URL prefix (default /)")
    add(
        "--cull-idle-timeout",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="stop servers idle this long (0: never)",
    )
    add("--cull-interval", type=float, default=0.0, metavar="SECONDS", help=argparse.SUPPRESS)
    add(
        "--authenticator",
        choices=["db", "pam"],
        default="db",
        help="db: the hub's passwords; pam: system accounts",
    )
    add(
        "--spawner",
        choices=["system", "users-dir"],
        default=None,
        help="system: each server as its user's account (default as root); users-dir: under this "
        "account in --users-dir (default otherwise; for users who trust each other)",
    )
    add(
        "--activity-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how often servers report activity",
    )
    add("--allow-remote-access", action="store_true", help="accept any Host header although on loopback")
    add(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="IP",
        help="a reverse proxy's address whose X-Forwarded-Proto/-For are believed (e.g. a TLS-terminating "
        "nginx: the login cookie is then Secure); repeatable",
    )
    add("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper, default="INFO")
    return p


def _read_password(confirm: bool) -> str:
    """One line of stdin when it is not a terminal; else a prompt (twice)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Verify password: ") != first:
        raise ValueError("Passwords do not match; nothing changed.")
    return first


def _admin(argv: Sequence[str]) -> int:
    from ..auth.passwords import hash_password
    from .scopes import user_scopes
    from .store import Store, check_name

    command = argv[0]
    p = argparse.ArgumentParser(prog=f"python -m nbserver hub {command}")
    if command != "users":
        p.add_argument("name")
    if command == "adduser":
        p.add_argument("--admin", action="store_true", help="the user administers the hub")
    if command == "token":
        p.add_argument("--note", default="", help="what the token is for")
    _db_option(p)
    args = p.parse_args(argv[1:])
    store = Store(args.db)
    try:
        if command == "users":
            users = store.users()
            running = {s.user for s in store.servers()}
            print(f"{'NAME':<24} {'ADMIN':<6} {'SERVER':<8} LAST ACTIVITY")
            for user in users:
                activity = user.last_activity.isoformat(timespec="seconds") if user.last_activity else "-"
                server = "running" if user.name in running else "-"
                print(f"{user.name:<24} {'yes' if user.admin else 'no':<6} {server:<8} {activity}")
            return 0
        name = check_name(args.name)
        if command == "adduser":
            password = _read_password(confirm=True)
            if not password:
                print("The password is empty; nothing changed.", file=sys.stderr)
                return 1
            store.add_user(name, admin=args.admin, password_hash=hash_password(password))
            print(f"Added {'admin ' if args.admin else ''}user {name}", file=sys.stderr)
        elif command == "passwd":
            store.require_user(name)
            password = _read_password(confirm=True)
            if not password:
                print("The password is empty; nothing changed.", file=sys.stderr)
                return 1
            store.set_password(name, hash_password(password))
            print(f"Changed {name}'s password", file=sys.stderr)
        elif command == "deluser":
            if any(s.user == name for s in store.servers()):
                print(f"{name}'s server is running: stop it first (hub home or API)", file=sys.stderr)
                return 1
            store.delete_user(name)
            print(f"Deleted user {name}", file=sys.stderr)
        elif command == "token":
            user = store.require_user(name)
            token, _ = store.add_token(
                name, kind="api", scopes=user_scopes(name, user.admin), note=args.note or "hub token command"
            )
            print(token)
        return 0
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except NBServerError as exc:
        print(f"nbserver hub {command}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()


def main(argv: Sequence[str]) -> int:
    """Entry point of ``python -m nbserver hub ...`` (``argv`` after ``hub``)."""
    argv = list(argv)
    if argv and argv[0] in COMMANDS:
        try:
            return _admin(argv)
        except ConfigError as exc:
            print(f"nbserver hub {argv[0]}: error: {exc}", file=sys.stderr)
            return 2
    args = _serve_parser().parse_args(argv)
    from ..cli import configure_logging
    from .settings import HubSettings

    try:
        settings = HubSettings(
            ip=args.ip,
            port=args.port,
            db=args.db,
            users_dir=args.users_dir,
            base_url=args.base_url,
            cull_idle_timeout=args.cull_idle_timeout,
            cull_interval=args.cull_interval,
            authenticator=args.authenticator,
            activity_interval=args.activity_interval,
            allow_remote_access=args.allow_remote_access,
            trusted_proxies=tuple(args.trusted_proxy),
            **({"spawner": args.spawner} if args.spawner else {}),
        )
    except ConfigError as exc:
        print(f"nbserver hub: error: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_level)
    from .app import run_hub

    try:
        run_hub(settings)
    except (ConfigError, RuntimeError) as exc:
        logging.getLogger("nbserver.hub").error("%s", exc)
        return 1
    return 0
