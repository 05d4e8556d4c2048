"""Files in the Jupyter runtime directory: the cookie secret and one info file per running server.

``nbserver-<pid>.json`` holds ``{url, hostname, port, base_url, token, root_dir, pid, version,
password, secure}`` and is written with mode 0600 (it contains the token), like jupyter's
``jpserver-<pid>.json``; ``python -m nbserver list`` reads these files and removes those whose
process is gone.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

__all__ = [
    "default_runtime_dir",
    "info_path",
    "list_servers",
    "load_cookie_secret",
    "open_page_path",
    "remove_info",
    "write_info",
    "write_private",
]


def default_runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_cookie_secret(runtime_dir: Path) -> bytes:
    """The persisted cookie secret (created on first use), so logins survive a restart."""
    path = runtime_dir / "nbserver_cookie_secret"
    try:
        secret = path.read_bytes().strip()
        if len(secret) >= 32:
            return secret
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(48).encode()
    write_private(path, secret)
    return secret


def info_path(runtime_dir: Path, pid: int | None = None) -> Path:
    return runtime_dir / f"nbserver-{os.getpid() if pid is None else pid}.json"


def write_info(runtime_dir: Path, info: dict[str, Any]) -> Path:
    path = info_path(runtime_dir)
    write_private(path, json.dumps(info, indent=2).encode())
    return path


def open_page_path(runtime_dir: Path) -> Path:
    """The 0600 redirect page a browser is pointed at, so the token is not on a command line."""
    return runtime_dir / f"nbserver-{os.getpid()}-open.html"


def remove_info(runtime_dir: Path) -> None:
    """Remove this process's info file and browser redirect page (both hold the token)."""
    info_path(runtime_dir).unlink(missing_ok=True)
    open_page_path(runtime_dir).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_servers(runtime_dir: Path) -> list[dict[str, Any]]:
    """Info of every running server; files of dead processes are removed on the way."""
    servers = []
    for path in sorted(runtime_dir.glob("nbserver-*.json")):
        try:
            info = json.loads(path.read_text())
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _alive(pid):
            servers.append(info)
        else:
            path.unlink(missing_ok=True)
    return servers
