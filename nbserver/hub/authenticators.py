"""Who may log in to the hub: a name and a password checked against the hub's own users (argon2
hashes in the SQLite file) or against the system's accounts (PAM), and the rate limit on failures.

An authenticator answers one question, off the event loop (argon2 and PAM take tens of
milliseconds on purpose): does this password open this account? Either way a person must also be
a user of the hub (``python -m nbserver hub adduser``) to log in: PAM proves the password, the
hub's user list says who is let in.

:class:`LoginLimiter` counts failed logins per remote address and per user name in a sliding
window; past the limit the login form answers 429 (with ``Retry-After``) without checking the
password at all, so guessing costs the attacker the window, not the hub an argon2 hash.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from ..auth.passwords import hash_password, verify_password
from .store import Store

__all__ = ["Authenticator", "DBAuthenticator", "LoginLimiter", "PAMAuthenticator", "make_authenticator"]


class Authenticator(Protocol):
    """Checks a password for a hub user name."""

    name: str

    async def check(self, username: str, password: str) -> bool:
        """True when ``password`` opens ``username``'s account. Never raises for a bad password."""
        ...


class DBAuthenticator:
    """Passwords are the argon2 hashes that ``hub adduser`` / ``hub passwd`` store."""

    name = "db"

    def __init__(self, store: Store) -> None:
        self.store = store

    async def check(self, username: str, password: str) -> bool:
        user = self.store.user(username)
        if user is None or not user.password_hash or not password:
            # the same work as a real check, so that timing does not tell who exists
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: verify_password(_dummy_hash(), password or "x")
            )
            return False
        return await asyncio.get_running_loop().run_in_executor(
            None, verify_password, user.password_hash, password
        )


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


class PAMAuthenticator:
    """System accounts, through PAM (the optional ``pamela`` package).

    Raises:
        RuntimeError: at construction, when pamela is not installed.
    """

    name = "pam"

    def __init__(self, service: str = "login") -> None:
        try:
            import pamela  # type: ignore[import-untyped]  # noqa: F401
        except ImportError as exc:
            raise RuntimeError("--authenticator pam needs the pamela package: pip install pamela") from exc
        self.service = service

    async def check(self, username: str, password: str) -> bool:
        import pamela

        def attempt() -> bool:
            try:
                pamela.authenticate(username, password, service=self.service)
            except pamela.PAMError:
                return False
            return True

        if not password:
            return False
        return await asyncio.get_running_loop().run_in_executor(None, attempt)


def make_authenticator(kind: str, store: Store) -> Authenticator:
    """``"db"`` or ``"pam"``."""
    if kind == "pam":
        return PAMAuthenticator()
    if kind == "db":
        return DBAuthenticator(store)
    raise ValueError(f"unknown authenticator {kind!r} (db or pam)")


class LoginLimiter:
    """At most ``limit`` failed logins per address and per user name in ``window`` seconds.

    Args:
        limit: failures allowed in the window (the next attempt is refused).
        window: seconds a failure counts.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self, limit: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        horizon = self._clock() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, address: str, username: str) -> float:
        """Seconds until an attempt from ``address`` for ``username`` is allowed; 0: now."""
        wait = 0.0
        for key in ("ip:" + address, "user:" + username):
            times = self._recent(key)
            if len(times) >= self.limit:
                wait = max(wait, times[0] + self.window - self._clock())
        return max(wait, 0.0)

    def failed(self, address: str, username: str) -> None:
        moment = self._clock()
        for key in ("ip:" + address, "user:" + username):
            self._recent(key)
            self._failures.setdefault(key, deque()).append(moment)

    def succeeded(self, username: str) -> None:
        """A good password clears the name's count (not the address's)."""
        self._failures.pop("user:" + username, None)
