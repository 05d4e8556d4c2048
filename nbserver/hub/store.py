"""The hub's SQLite file: users, API tokens, running servers, and the hub's own secrets.

One file holds everything that must outlive the hub process, so that a hub started again on it
(after SIGTERM or SIGKILL) keeps its users logged in (the cookie secret is here) and re-adopts the
servers that are still alive (their pid, port and token are here).

Tokens are never stored: a token is found by the SHA-256 of its text (tokens are 32 random
bytes, so an unsalted hash is as good as a salted one), and only its first four characters are
kept, for listings. Passwords are argon2 hashes (:mod:`nbserver.auth.passwords`).

Every method is one short transaction on a local file; the file is opened in WAL mode with a
busy timeout, so the administration commands (``python -m nbserver hub adduser``...) may run
while the hub serves. Not thread-safe: one :class:`Store` per thread.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import BadRequest, Conflict, NotFound

__all__ = [
    "NAME_RULE",
    "ServerRecord",
    "Store",
    "TokenRecord",
    "UserRecord",
    "check_name",
    "hash_token",
    "new_token",
    "now",
    "stamp",
]

#: user names: lowercase letters, digits and ``_.@+-``, starting with a letter, digit or ``_``
#: (so never ``.`` or ``..``), at most 64 characters. They appear in URLs (``/user/<name>/``)
#: and, when the hub runs as root, name system accounts.
NAME_RULE = re.compile(r"[a-z0-9_][a-z0-9_.@+-]{0,63}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    admin INTEGER NOT NULL DEFAULT 0,
    password_hash TEXT,
    created TEXT NOT NULL,
    last_activity TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    scopes TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    client_id TEXT,
    session_id TEXT,
    created TEXT NOT NULL,
    last_activity TEXT,
    expires_at TEXT
);
CREATE TABLE IF NOT EXISTS servers (
    user TEXT PRIMARY KEY REFERENCES users(name) ON DELETE CASCADE,
    pid INTEGER NOT NULL,
    port INTEGER NOT NULL,
    token_id INTEGER NOT NULL,
    started TEXT NOT NULL,
    last_activity TEXT
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(moment: datetime) -> str:
    """ISO 8601 in UTC, always with microseconds and a ``Z`` (so that stored stamps sort as text)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _stamp(moment: datetime | None) -> str | None:
    return stamp(moment) if moment is not None else None


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def check_name(name: str) -> str:
    """``name`` if it is a valid user name (:data:`NAME_RULE`), else 400 ``"bad name"``."""
    if not NAME_RULE.fullmatch(name):
        raise BadRequest(
            f"Invalid user name {name!r}: use lowercase letters, digits and _.@+- "
            "(starting with a letter, digit or _), at most 64 characters",
            reason="bad name",
        )
    return name


def new_token() -> str:
    """A new API token: 32 random bytes, hex."""
    return secrets.token_hex(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class UserRecord:
    name: str
    admin: bool
    password_hash: str | None
    created: datetime
    last_activity: datetime | None


@dataclass(frozen=True)
class TokenRecord:
    """A token as stored. ``kind``: ``"api"`` (made by ``hub token`` or the API), ``"oauth"``
    (issued to a user server's OAuth client at login), ``"server"`` (a user server's own)."""

    id: int
    prefix: str
    user: str
    kind: str
    scopes: tuple[str, ...]
    note: str
    client_id: str | None
    session_id: str | None
    created: datetime
    last_activity: datetime | None
    expires_at: datetime | None

    @property
    def api_id(self) -> str:
        """The id JupyterHub's API shows (``a<N>``)."""
        return f"a{self.id}"

    def expired(self, moment: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= moment


@dataclass(frozen=True)
class ServerRecord:
    """A user server the hub started and believes running: enough to find it again."""

    user: str
    pid: int
    port: int
    token_id: int
    started: datetime
    last_activity: datetime | None


class Store:
    """The hub's database. ``path`` may be ``":memory:"`` (tests)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys = ON")
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
            # WAL with NORMAL: a commit is not fsynced (a checkpoint is); the database stays
            # consistent after a crash, the last commits may be lost on power failure only
            self._db.execute("PRAGMA synchronous = NORMAL")
            Path(self.path).chmod(0o600)  # password hashes and the cookie secret are in it
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- settings ------------------------------------------------------------------------------

    def secret(self, key: str, size: int = 48) -> bytes:
        """The persistent random secret ``key`` (created on first use)."""
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return str(row["value"]).encode()
        value = secrets.token_urlsafe(size)
        self._db.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, value))
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return str(row["value"]).encode()

    # -- users ---------------------------------------------------------------------------------

    @staticmethod
    def _user(row: sqlite3.Row) -> UserRecord:
        return UserRecord(
            name=row["name"],
            admin=bool(row["admin"]),
            password_hash=row["password_hash"],
            created=_parse(row["created"]) or now(),
            last_activity=_parse(row["last_activity"]),
        )

    def add_user(self, name: str, *, admin: bool = False, password_hash: str | None = None) -> UserRecord:
        """Create a user. Raises 400 ``"bad name"``, 409 ``"exists"``."""
        check_name(name)
        try:
            self._db.execute(
                "INSERT INTO users (name, admin, password_hash, created) VALUES (?, ?, ?, ?)",
                (name, int(admin), password_hash, _stamp(now())),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"User {name} already exists", reason="exists") from None
        return self.require_user(name)

    def user(self, name: str) -> UserRecord | None:
        row = self._db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return self._user(row) if row is not None else None

    def require_user(self, name: str) -> UserRecord:
        found = self.user(name)
        if found is None:
            raise NotFound(f"No such user: {name}", reason="no user")
        return found

    def users(self) -> list[UserRecord]:
        return [self._user(r) for r in self._db.execute("SELECT * FROM users ORDER BY name")]

    def set_password(self, name: str, password_hash: str) -> None:
        self.require_user(name)
        self._db.execute("UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name))

    def set_admin(self, name: str, admin: bool) -> None:
        self.require_user(name)
        self._db.execute("UPDATE users SET admin = ? WHERE name = ?", (int(admin), name))

    def delete_user(self, name: str) -> None:
        """Delete a user, their tokens and their server record. 404 for an unknown user."""
        self.require_user(name)
        self._db.execute("DELETE FROM users WHERE name = ?", (name,))

    def set_user_activity(self, name: str, moment: datetime) -> None:
        """Move the user's last activity forward to ``moment`` (never back)."""
        stamp = _stamp(moment)
        self._db.execute(
            "UPDATE users SET last_activity = ? WHERE name = ?"
            " AND (last_activity IS NULL OR last_activity < ?)",
            (stamp, name, stamp),
        )

    # -- tokens --------------------------------------------------------------------------------

    @staticmethod
    def _token(row: sqlite3.Row) -> TokenRecord:
        return TokenRecord(
            id=int(row["id"]),
            prefix=row["prefix"],
            user=row["user"],
            kind=row["kind"],
            scopes=tuple(json.loads(row["scopes"])),
            note=row["note"],
            client_id=row["client_id"],
            session_id=row["session_id"],
            created=_parse(row["created"]) or now(),
            last_activity=_parse(row["last_activity"]),
            expires_at=_parse(row["expires_at"]),
        )

    def add_token(
        self,
        user: str,
        *,
        kind: str,
        scopes: Iterable[str],
        note: str = "",
        client_id: str | None = None,
        session_id: str | None = None,
        expires_at: datetime | None = None,
        token: str | None = None,
    ) -> tuple[str, TokenRecord]:
        """Issue a token for ``user``; returns its text (shown once) and its record."""
        self.require_user(user)
        token = token or new_token()
        cursor = self._db.execute(
            "INSERT INTO tokens (hash, prefix, user, kind, scopes, note, client_id, session_id, created,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                hash_token(token),
                token[:4],
                user,
                kind,
                json.dumps(sorted(set(scopes))),
                note,
                client_id,
                session_id,
                _stamp(now()),
                _stamp(expires_at),
            ),
        )
        record = self.token_by_id(int(cursor.lastrowid or 0))
        assert record is not None
        return token, record

    def token_by_id(self, token_id: int) -> TokenRecord | None:
        row = self._db.execute("SELECT * FROM tokens WHERE id = ?", (token_id,)).fetchone()
        return self._token(row) if row is not None else None

    def find_token(self, token: str) -> TokenRecord | None:
        """The record of a token's text; None when unknown or expired."""
        if not token:
            return None
        row = self._db.execute("SELECT * FROM tokens WHERE hash = ?", (hash_token(token),)).fetchone()
        if row is None:
            return None
        record = self._token(row)
        return None if record.expired(now()) else record

    def touch_token(self, token_id: int, moment: datetime) -> None:
        self._db.execute("UPDATE tokens SET last_activity = ? WHERE id = ?", (_stamp(moment), token_id))

    def tokens_of(self, user: str) -> list[TokenRecord]:
        rows = self._db.execute("SELECT * FROM tokens WHERE user = ? ORDER BY id", (user,))
        return [self._token(r) for r in rows]

    def delete_token(self, token_id: int) -> None:
        self._db.execute("DELETE FROM tokens WHERE id = ?", (token_id,))

    def delete_session_tokens(self, session_id: str) -> int:
        """Revoke the OAuth tokens issued during one login session (logging out). Returns how many."""
        cursor = self._db.execute("DELETE FROM tokens WHERE kind = 'oauth' AND session_id = ?", (session_id,))
        return cursor.rowcount

    def delete_client_tokens(self, client_id: str) -> None:
        """Revoke every token issued to an OAuth client (its server stopped)."""
        self._db.execute("DELETE FROM tokens WHERE client_id = ?", (client_id,))

    # -- servers -------------------------------------------------------------------------------

    @staticmethod
    def _server(row: sqlite3.Row) -> ServerRecord:
        return ServerRecord(
            user=row["user"],
            pid=int(row["pid"]),
            port=int(row["port"]),
            token_id=int(row["token_id"]),
            started=_parse(row["started"]) or now(),
            last_activity=_parse(row["last_activity"]),
        )

    def save_server(self, record: ServerRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO servers (user, pid, port, token_id, started, last_activity)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                record.user,
                record.pid,
                record.port,
                record.token_id,
                _stamp(record.started),
                _stamp(record.last_activity),
            ),
        )

    def servers(self) -> list[ServerRecord]:
        return [self._server(r) for r in self._db.execute("SELECT * FROM servers ORDER BY user")]

    def set_server_activity(self, user: str, moment: datetime) -> None:
        stamp = _stamp(moment)
        self._db.execute(
            "UPDATE servers SET last_activity = ? WHERE user = ?"
            " AND (last_activity IS NULL OR last_activity < ?)",
            (stamp, user, stamp),
        )

    def forget_server(self, user: str) -> None:
        self._db.execute("DELETE FROM servers WHERE user = ?", (user,))
