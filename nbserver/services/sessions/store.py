"""The session store: SQLite through the standard library, two small tables.

- ``session(session_id, path, name, type, kernel_id)``: one row per session.
- ``kernel(kernel_id, name, connection, pid, cwd, env, interrupt_mode, last_activity)``: one row
  per running kernel (schema version 2), written by the kernel manager through
  :meth:`SessionStore.kernel_records`, so that a server started again on the same file finds
  its kernels (see :mod:`nbserver.services.kernels.adopted`). An in-memory store keeps none.

Queries run through :meth:`SessionStore.run`: inline for the default ``":memory:"`` database
(each query touches a handful of rows in memory, takes microseconds and does no I/O), and on one
worker thread of the store's own for a file, which does disk I/O and may wait on a lock. One
thread keeps the statements in the order they were issued; every method is one statement (or
one explicit transaction) in autocommit mode. The connection is opened with
``check_same_thread=False`` for that thread.

A file store is used by one server at a time: it is locked (``flock`` on ``<file>.lock``) while
open, and a second server on it is refused. The lock goes with the process, so a killed server
does not leave it behind. The file is readable by its owner only (0600): kernel records hold
the keys that sign messages to the kernels.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from ...errors import ConfigError
from ..kernels.records import KernelRecord

__all__ = ["SCHEMA_VERSION", "SessionRow", "SessionStore", "StoredKernels"]

log = logging.getLogger("nbserver.sessions")

T = TypeVar("T")

#: the schema :meth:`SessionStore.migrate` brings a database to (``PRAGMA user_version``)
SCHEMA_VERSION = 2

_SQLITE_HEADER = b"SQLite format 3\x00"
_COLUMNS = "session_id, path, name, type, kernel_id"
_KERNEL_COLUMNS = "kernel_id, name, connection, pid, cwd, env, interrupt_mode, last_activity"

#: migration ``n`` brings a database from version ``n - 1`` to ``n``
_MIGRATIONS = {
    1: """
        CREATE TABLE IF NOT EXISTS session (
            session_id TEXT PRIMARY KEY, path TEXT, name TEXT, type TEXT, kernel_id TEXT
        );
        CREATE INDEX IF NOT EXISTS session_path ON session (path);
    """,
    2: """
        CREATE TABLE IF NOT EXISTS kernel (
            kernel_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            connection TEXT NOT NULL,           -- JSON: transport, ip, *_port, key, signature_scheme
            pid INTEGER,                        -- NULL when the kernel is not a local process
            cwd TEXT NOT NULL,
            env TEXT NOT NULL DEFAULT '{}',     -- JSON: the variables the server added
            interrupt_mode TEXT NOT NULL DEFAULT 'signal',
            last_activity TEXT NOT NULL         -- ISO 8601, UTC
        );
    """,
}


class SessionRow(NamedTuple):
    """One row of table ``session``."""

    session_id: str
    path: str
    name: str
    type: str
    kernel_id: str


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def _record(row: tuple[Any, ...]) -> KernelRecord:
    kernel_id, name, connection, pid, cwd, env, interrupt_mode, last_activity = row
    moment = datetime.fromisoformat(last_activity)
    return KernelRecord(
        kernel_id=kernel_id,
        name=name,
        connection=json.loads(connection),
        pid=pid,
        cwd=cwd,
        env=json.loads(env),
        interrupt_mode=interrupt_mode,
        last_activity=moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc),
    )


class SessionStore:
    """Tables ``session`` and ``kernel`` in an SQLite database.

    Args:
        path: the database file, or ``":memory:"`` (the default: sessions do not outlive the
            server, like jupyter_server's default).

    Raises:
        ConfigError: the file is not an SQLite database, cannot be opened, is in use by another
            server, or has a newer schema than this code knows.
    """

    def __init__(self, path: str | os.PathLike[str] = ":memory:") -> None:
        self.path = os.fspath(path)
        self.in_memory = self.path == ":memory:" or self.path.startswith("file::memory:")
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock_fd: int | None = None
        if not self.in_memory:
            self._lock()
            try:
                self._make_private()
            except BaseException:
                self._unlock()
                raise
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            self._unlock()
            raise ConfigError(f"cannot open the session store {self.path!r}: {exc}") from exc
        try:
            self.migrate()
        except sqlite3.Error as exc:
            self._close_files()
            raise ConfigError(f"session store {self.path!r} is not usable: {exc}") from exc
        except BaseException:
            self._close_files()
            raise

    @property
    def kernels_dir(self) -> Path | None:
        """``<file>.kernels``: where the kernels of a file store keep their ipc sockets and
        connection files (None for an in-memory store)."""
        return None if self.in_memory else Path(self.path + ".kernels")

    # -- file lock ---------------------------------------------------------------------------------

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock
            return
        lock_path = self.path + ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot open the session store {self.path!r}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise ConfigError(
                f"session store {self.path!r} is in use by another nbserver"
                + (f" (pid {holder})" if holder else "")
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _make_private(self) -> None:
        """Create the file 0600, or check that an existing one is an SQLite database (as
        jupyter_server's validator does) and take group and other access away from it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                header = os.read(fd, len(_SQLITE_HEADER))
                if header and header != _SQLITE_HEADER:
                    raise ConfigError(f"session store {self.path!r} is not usable: not an SQLite database")
                if os.fstat(fd).st_mode & 0o077:
                    os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
        except OSError as exc:
            raise ConfigError(f"cannot open the session store {self.path!r}: {exc.strerror}") from exc

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    # -- schema ------------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The schema version of the database (``PRAGMA user_version``; 0 for a new one)."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        """Bring the database to :data:`SCHEMA_VERSION`, one version per transaction; a no-op
        when it is there already."""
        version = self.version
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"session database {self.path!r} has schema version {version}; "
                f"this nbserver knows up to {SCHEMA_VERSION}"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            self._db.executescript(f"BEGIN; {_MIGRATIONS[target]} PRAGMA user_version = {target}; COMMIT;")

    # -- running queries -----------------------------------------------------------------------------

    async def run(self, query: Callable[..., T], *args: Any) -> T:
        """Run ``query(*args)`` (a method of this store): inline for an in-memory database, on
        the store's own thread for a file (in the order the calls were made)."""
        if self.in_memory:
            return query(*args)
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="nbserver-store")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(query, *args))

    # -- sessions ----------------------------------------------------------------------------------

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

    # -- kernels -----------------------------------------------------------------------------------

    def save_kernel(self, record: KernelRecord) -> None:
        """Insert ``record``, or replace the one with its ``kernel_id``."""
        self._db.execute(
            f"INSERT OR REPLACE INTO kernel ({_KERNEL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.kernel_id,
                record.name,
                json.dumps(record.connection),
                record.pid,
                record.cwd,
                json.dumps(record.env),
                record.interrupt_mode,
                _utc(record.last_activity),
            ),
        )

    def kernels(self) -> list[KernelRecord]:
        """Every kernel record, oldest write first; unreadable rows are logged and skipped."""
        records = []
        for row in self._db.execute(f"SELECT {_KERNEL_COLUMNS} FROM kernel ORDER BY rowid").fetchall():
            try:
                records.append(_record(row))
            except (ValueError, TypeError) as exc:
                log.warning("Skipping the unreadable record of kernel %s: %s", row[0], exc)
        return records

    def touch_kernels(self, activity: Mapping[str, datetime]) -> None:
        """Set ``last_activity`` of the given kernels."""
        self._db.executemany(
            "UPDATE kernel SET last_activity = ? WHERE kernel_id = ?",
            [(_utc(moment), kernel_id) for kernel_id, moment in activity.items()],
        )

    def delete_kernel(self, kernel_id: str) -> bool:
        """Remove a kernel record; False if there was none."""
        return self._db.execute("DELETE FROM kernel WHERE kernel_id = ?", (kernel_id,)).rowcount > 0

    def forget_kernel(self, kernel_id: str) -> None:
        """Remove a kernel record and the sessions on that kernel, in one transaction."""
        self._db.execute("BEGIN")
        try:
            self._db.execute("DELETE FROM kernel WHERE kernel_id = ?", (kernel_id,))
            self._db.execute("DELETE FROM session WHERE kernel_id = ?", (kernel_id,))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def kernel_records(self) -> StoredKernels:
        """The ``kernel`` table as the kernel manager's
        :class:`~nbserver.services.kernels.records.KernelRecords`."""
        return StoredKernels(self)

    # -- closing -----------------------------------------------------------------------------------

    def _close_files(self) -> None:
        self._db.close()
        self._unlock()

    def close(self) -> None:
        """Wait for queries under way, close the database and release the lock. Idempotent."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._close_files()


class StoredKernels:
    """The kernel records of a :class:`SessionStore`
    (:class:`~nbserver.services.kernels.records.KernelRecords`)."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def load(self) -> list[KernelRecord]:
        return await self.store.run(self.store.kernels)

    async def save(self, record: KernelRecord) -> None:
        await self.store.run(self.store.save_kernel, record)

    async def touch(self, activity: Mapping[str, datetime]) -> None:
        await self.store.run(self.store.touch_kernels, dict(activity))

    async def delete(self, kernel_id: str) -> None:
        await self.store.run(self.store.delete_kernel, kernel_id)

    async def forget(self, kernel_id: str) -> None:
        await self.store.run(self.store.forget_kernel, kernel_id)
