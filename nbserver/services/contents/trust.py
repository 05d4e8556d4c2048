"""Notebook trust, as in Jupyter: a notebook whose outputs the user ran or explicitly trusted is
signed, and its code cells come back marked ``metadata.trusted = true`` (JupyterLab then renders
its HTML and JavaScript outputs instead of sanitizing them).

Signatures live where nbformat's ``NotebookNotary`` keeps them, in the same formats: the secret
``notebook_secret`` and the SQLite database ``nbsignatures.db`` of the Jupyter data directory, so
trust carries over between nbserver and Jupyter in both directions (tested against nbformat).
nbformat's notary is not used itself: importing it imports nbformat's whole validation stack,
which takes seconds on some systems, on the first notebook opened. SQLite connections belong to
the thread that opened them, so the store is used from one thread of its own; the signature itself
is computed by the caller (:func:`.notebooks.signature`).
"""

from __future__ import annotations

import base64
import logging
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import TypeVar

from .notebooks import Notebook, signature
from .pacing import Tick, no_tick

__all__ = ["Notary"]

log = logging.getLogger("nbserver.contents")

T = TypeVar("T")

ALGORITHM = "sha256"
CACHE_SIZE = 65535  # signatures kept; the oldest quarter goes beyond (nbformat's numbers)


class Notary:
    """The trust store. Its methods block (file and SQLite I/O): call them from a worker thread.

    Args:
        data_dir: where the secret and the database are (default: Jupyter's data directory).
            Both are created on first use.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None:
        self.data_dir = os.fspath(data_dir) if data_dir is not None else None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="nbserver-notary")
        self._db: sqlite3.Connection | None = None  # opened on the store thread
        self._secret = b""

    def _on_thread(self, fn: Callable[[], T]) -> T:
        return self._thread.submit(fn).result()

    def _open(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        from jupyter_core.paths import jupyter_data_dir

        data_dir = self.data_dir or jupyter_data_dir()
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
        secret_file = os.path.join(data_dir, "notebook_secret")
        try:
            with open(secret_file, "rb") as file:
                self._secret = file.read()
        except FileNotFoundError:
            self._secret = base64.encodebytes(os.urandom(1024))  # as nbformat makes it
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(self._secret)
        db = sqlite3.connect(os.path.join(data_dir, "nbsignatures.db"))
        db.execute(
            "CREATE TABLE IF NOT EXISTS nbsignatures (id integer PRIMARY KEY AUTOINCREMENT, "
            "algorithm text, signature text, path text, last_seen timestamp)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS algosig ON nbsignatures(algorithm, signature)")
        db.commit()
        self._db = db
        return db

    def _digest(self, nb: Notebook, tick: Tick) -> str:
        self._on_thread(self._open)
        return signature(nb, self._secret, ALGORITHM, tick)

    def is_trusted(self, nb: Notebook, tick: Tick = no_tick) -> bool:
        """Whether ``nb`` (as read: no trust marks) was signed here or by Jupyter. ``tick`` is
        called as the signature is computed (:func:`.notebooks.signature`)."""
        if nb.get("nbformat", 0) < 3:
            return False
        digest = self._digest(nb, tick)

        def check() -> bool:
            db = self._open()
            query = "SELECT id FROM nbsignatures WHERE algorithm = ? AND signature = ?"
            if db.execute(query, (ALGORITHM, digest)).fetchone() is None:
                return False
            db.execute(
                "UPDATE nbsignatures SET last_seen = ? WHERE algorithm = ? AND signature = ?",
                (_now(), ALGORITHM, digest),
            )
            db.commit()
            return True

        return self._on_thread(check)

    def sign(self, nb: Notebook, tick: Tick = no_tick) -> None:
        """Record ``nb`` (as written: no trust marks) as trusted (``tick``: as :meth:`is_trusted`)."""
        digest = self._digest(nb, tick)

        def store() -> None:
            db = self._open()
            query = "SELECT id FROM nbsignatures WHERE algorithm = ? AND signature = ?"
            if db.execute(query, (ALGORITHM, digest)).fetchone() is None:
                db.execute(
                    "INSERT INTO nbsignatures (algorithm, signature, last_seen) VALUES (?, ?, ?)",
                    (ALGORITHM, digest, _now()),
                )
            else:
                db.execute(
                    "UPDATE nbsignatures SET last_seen = ? WHERE algorithm = ? AND signature = ?",
                    (_now(), ALGORITHM, digest),
                )
            (count,) = db.execute("SELECT Count(*) FROM nbsignatures").fetchone()
            if count > CACHE_SIZE:
                db.execute(
                    "DELETE FROM nbsignatures WHERE id IN "
                    "(SELECT id FROM nbsignatures ORDER BY last_seen DESC LIMIT -1 OFFSET ?)",
                    (int(0.75 * CACHE_SIZE),),
                )
            db.commit()

        self._on_thread(store)

    def close(self) -> None:
        """Close the database; the notary can still be used afterwards (it reopens)."""

        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        self._on_thread(close)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.data_dir!r})"


def _now() -> str:
    """A timestamp as nbformat's sqlite3 adapter writes it (``str(datetime)``)."""
    return str(datetime.now(timezone.utc))
