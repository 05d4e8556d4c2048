"""The session table: SQLite through the standard library, one small table.

Queries run inline on the event loop. That is fine for the default ``":memory:"`` database: each
query touches a handful of rows in memory, takes microseconds and does no I/O. A file database
does disk I/O (and may wait on a lock), so :class:`~.manager.SessionManager` runs the store's
methods through ``asyncio.to_thread`` when :attr:`SessionStore.in_memory` is false; the
connection is opened with ``check_same_thread=False`` for that, and every method is one
statement in autocommit mode, so the threads never share a transaction.
"""

from __future__ import annotations

import os
import sqlite3
from typing import NamedTuple

from ...errors import ConfigError

__all__ = ["SCHEMA_VERSION", "SessionRow", "SessionStore"]

#: the schema :meth:`SessionStore.migrate` brings a database to (``PRAGMA user_version``)
SCHEMA_VERSION = 1

_COLUMNS = "session_id, path, name, type, kernel_id"


class SessionRow(NamedTuple):
    """One row of table ``session``."""

    session_id: str
    path: str
    name: str
    type: str
    kernel_id: str


class SessionStore:
    """Table ``session(session_id, path, name, type, kernel_id)`` in an SQLite database.

    Args:
        path: the database file, or ``":memory:"`` (the default: sessions do not outlive the
            server, like jupyter_server's default).

    Raises:
        ConfigError: the database has a newer schema than this code knows.
    """

    def __init__(self, path: str | os.PathLike[str] = ":memory:") -> None:
        self.path = os.fspath(path)
        self.in_memory = self.path == ":memory:" or self.path.startswith("file::memory:")
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self.migrate()
        except BaseException:
            self._db.close()
            raise

    @property
    def version(self) -> int:
        """The schema version of the database (``PRAGMA user_version``; 0 for a new one)."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        """Bring the database to :data:`SCHEMA_VERSION`; a no-op when it is there already."""
        version = self.version
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"session database {self.path!r} has schema version {version}; "
                f"this nbserver knows up to {SCHEMA_VERSION}"
            )
        if version < 1:
            self._db.executescript(
                """
                BEGIN;
                CREATE TABLE IF NOT EXISTS session (
                    session_id TEXT PRIMARY KEY, path TEXT, name TEXT, type TEXT, kernel_id TEXT
                );
                CREATE INDEX IF NOT EXISTS session_path ON session (path);
                PRAGMA user_version = 1;
                COMMIT;
                """
            )

    def insert(self, row: SessionRow) -> None:
        self._db.execute(f"INSERT INTO session ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)", row)

    def get(self, session_id: str) -> SessionRow | None:
        found = self._db.execute(
            f"SELECT {_COLUMNS} FROM session WHERE session_id = ?", (session_id,)
        ).fetchone()
        return SessionRow(*found) if found else None

    def find_path(self, path: str) -> list[SessionRow]:
        """The rows for ``path`` (normally at most one)."""
        cursor = self._db.execute(f"SELECT {_COLUMNS} FROM session WHERE path = ?", (path,))
        return [SessionRow(*r) for r in cursor.fetchall()]

    def all(self) -> list[SessionRow]:
        cursor = self._db.execute(f"SELECT {_COLUMNS} FROM session ORDER BY rowid")
        return [SessionRow(*r) for r in cursor.fetchall()]

    def replace(self, row: SessionRow) -> None:
        """Write every column of the row with ``row.session_id``."""
        self._db.execute(
            "UPDATE session SET path = ?, name = ?, type = ?, kernel_id = ? WHERE session_id = ?",
            (row.path, row.name, row.type, row.kernel_id, row.session_id),
        )

    def delete(self, session_id: str) -> bool:
        """Remove a row; False if there was none."""
        return self._db.execute("DELETE FROM session WHERE session_id = ?", (session_id,)).rowcount > 0

    def close(self) -> None:
        self._db.close()
