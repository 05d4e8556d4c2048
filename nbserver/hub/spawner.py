"""Starting a user's server as a local process with JupyterHub's single-user environment.

The process is ``python -m nbserver --hub`` (any server that speaks JupyterHub's single-user
contract works: the command is configurable), started in a session of its own so that it
outlives the hub: a hub stopped by SIGTERM or killed leaves the servers running, and the next hub
on the same database re-adopts them (:mod:`nbserver.hub.servers`).

Two ways to run it (``--spawner``):

- ``system`` (the default when the hub runs as root): as the user's system account (uid, gid,
  supplementary groups), in their home directory, with ``HOME``, ``USER``, ``SHELL`` set. The
  account must exist (``useradd``).
- ``users-dir`` (the default otherwise): under the hub's own account, in ``<users-dir>/<name>``.
  Every server then runs as the same system user, so users can read each other's files through
  their kernels: this mode is for a team whose members trust each other.

The environment is JupyterHub 6's ``Spawner.get_env()``: ``JUPYTERHUB_API_TOKEN``,
``JUPYTERHUB_CLIENT_ID``, ``JUPYTERHUB_API_URL``, ``JUPYTERHUB_ACTIVITY_URL``,
``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_SERVICE_PREFIX``, ``JUPYTERHUB_OAUTH_CALLBACK_URL``,
``JUPYTERHUB_OAUTH_ACCESS_SCOPES``, ``JUPYTERHUB_USER``, ``JUPYTERHUB_SERVER_NAME``,
``JUPYTERHUB_BASE_URL``... plus ``JUPYTERHUB_ACTIVITY_INTERVAL`` (short, so that the hub's
idle culler sees busy kernels within seconds). Each server's output goes to
``<logs-dir>/<name>.log``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, NBServerError

__all__ = ["LaunchSpec", "LocalSpawner", "SpawnFailed", "pid_alive", "single_user_env"]

DEFAULT_COMMAND = (sys.executable, "-m", "nbserver", "--hub")
#: environment variables passed through from the hub's own (JupyterHub's ``env_keep``)
ENV_KEEP = (
    "PATH",
    "PYTHONPATH",
    "CONDA_ROOT",
    "CONDA_DEFAULT_ENV",
    "VIRTUAL_ENV",
    "LANG",
    "LC_ALL",
    "JUPYTERHUB_SINGLEUSER_APP",
)


class SpawnFailed(NBServerError):
    status = 500


@dataclass(frozen=True)
class LaunchSpec:
    """What one server needs to start: whose, where, and its hub credentials."""

    user: str
    port: int
    api_token: str = field(repr=False)
    hub_api_url: str  # http://127.0.0.1:8000/hub/api
    base_url: str  # the hub's public prefix, "/"
    activity_interval: float = 10.0
    debug: bool = False


def single_user_env(spec: LaunchSpec) -> dict[str, str]:
    """The ``JUPYTERHUB_*`` variables of JupyterHub 6.1's ``Spawner.get_env()`` for ``spec``."""
    prefix = f"{spec.base_url}user/{spec.user}/"
    scopes = json.dumps([f"access:servers!server={spec.user}/", f"access:servers!user={spec.user}"])
    env = {
        "JUPYTERHUB_API_TOKEN": spec.api_token,
        "JPY_API_TOKEN": spec.api_token,
        "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{spec.user}",
        "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED": "0",
        "JUPYTERHUB_HOST": "",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": prefix + "oauth_callback",
        "JUPYTERHUB_OAUTH_SCOPES": scopes,
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": scopes,
        "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": "[]",
        "JUPYTERHUB_USER": spec.user,
        "JUPYTERHUB_SERVER_NAME": "",
        "JUPYTERHUB_API_URL": spec.hub_api_url,
        "JUPYTERHUB_ACTIVITY_URL": f"{spec.hub_api_url}/users/{spec.user}/activity",
        "JUPYTERHUB_ACTIVITY_INTERVAL": f"{spec.activity_interval:g}",
        "JUPYTERHUB_BASE_URL": spec.base_url,
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{spec.port}{prefix}",
        "JUPYTERHUB_PUBLIC_URL": "",
        "JUPYTERHUB_PUBLIC_HUB_URL": "",
    }
    if spec.debug:
        env["JUPYTERHUB_DEBUG"] = "1"
    return env


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: kill(0) is all we know
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class LocalSpawner:
    """Starts and stops user servers as local processes (see the module docstring).

    Args:
        mode: ``"system"`` or ``"users-dir"``.
        users_dir: the parent of the users' directories (``users-dir`` mode).
        logs_dir: where each server's output goes.
        command: the single-user command (default: ``python -m nbserver --hub``).
        extra_env: more environment for every server.
    """

    def __init__(
        self,
        *,
        mode: str,
        users_dir: Path,
        logs_dir: Path,
        command: Sequence[str] = DEFAULT_COMMAND,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        if mode not in ("system", "users-dir"):
            raise ConfigError(f"spawner mode must be system or users-dir, not {mode!r}")
        self.mode = mode
        self.users_dir = Path(users_dir).absolute()
        self.logs_dir = Path(logs_dir).absolute()
        self.command = tuple(command)
        self.extra_env = dict(extra_env or {})
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._exits: dict[int, int] = {}

    def launch(self, spec: LaunchSpec) -> int:
        """Start ``spec.user``'s server; its pid. Blocking but quick (fork and exec).

        Raises:
            SpawnFailed: no such system account (``system`` mode), or the command cannot run.
        """
        env = {k: os.environ[k] for k in ENV_KEEP if k in os.environ}
        env.update(self.extra_env)
        env.update(single_user_env(spec))
        kwargs: dict[str, object] = {}
        if self.mode == "system":
            import pwd

            try:
                account = pwd.getpwnam(spec.user)
            except KeyError:
                raise SpawnFailed(
                    f"No system account {spec.user!r} to run the server as", reason="spawn"
                ) from None
            cwd = Path(account.pw_dir)
            env.update(HOME=account.pw_dir, USER=spec.user, LOGNAME=spec.user, SHELL=account.pw_shell)
            kwargs.update(
                user=account.pw_uid, group=account.pw_gid, extra_groups=_groups_of(spec.user, account.pw_gid)
            )
        else:
            cwd = self.users_dir / spec.user
            cwd.mkdir(parents=True, exist_ok=True, mode=0o700)
            env.update(HOME=str(cwd), USER=spec.user)
        env["JUPYTERHUB_ROOT_DIR"] = str(cwd)
        self.logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_path = self.logs_dir / f"{spec.user}.log"
        try:
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    list(self.command),
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # the server outlives the hub (re-adoption)
                    **kwargs,  # type: ignore[call-overload]
                )
        except OSError as exc:
            raise SpawnFailed(f"Could not start {spec.user}'s server: {exc}", reason="spawn") from exc
        self._children[proc.pid] = proc
        return int(proc.pid)

    def alive(self, pid: int) -> bool:
        """Whether the server process ``pid`` (started here, or adopted) still runs."""
        proc = self._children.get(pid)
        if proc is not None:
            if proc.poll() is None:
                return True
            del self._children[pid]
            self._exits[pid] = proc.returncode
            return False
        return pid_alive(pid)

    def exit_code(self, pid: int) -> int | None:
        """The exit status of a server started here that has exited (None: unknown)."""
        return self._exits.get(pid)

    def signal(self, pid: int, signum: int = signal.SIGTERM) -> None:
        """Send ``signum`` to the server's process group (its kernels too on SIGKILL)."""
        try:
            if signum == signal.SIGKILL:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def log_path(self, user: str) -> Path:
        return self.logs_dir / f"{user}.log"


def _groups_of(user: str, primary: int) -> list[int]:
    import grp

    return [g.gr_gid for g in grp.getgrall() if user in g.gr_mem and g.gr_gid != primary]
