"""SessionStore on its own: schema version, migration, queries; no server needed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from nbserver.errors import ConfigError
from nbserver.services.sessions.store import SCHEMA_VERSION, SessionRow, SessionStore


def test_new_database_is_migrated_and_queries_work() -> None:
    store = SessionStore()
    assert store.in_memory and store.version == SCHEMA_VERSION
    row = SessionRow("s1", "a.ipynb", "a", "notebook", "k1")
    store.insert(row)
    store.insert(SessionRow("s2", "b.ipynb", "b", "notebook", "k2"))
    assert store.get("s1") == row and store.get("nope") is None
    assert store.find_path("a.ipynb") == [row]
    store.replace(row._replace(path="c.ipynb", kernel_id="k3"))
    assert store.get("s1") == ("s1", "c.ipynb", "a", "notebook", "k3")
    assert [r.session_id for r in store.all()] == ["s1", "s2"]
    assert store.delete("s1") and not store.delete("s1")
    store.close()


def test_file_database_keeps_rows_and_migrate_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SessionStore(path)
    assert not store.in_memory
    store.insert(SessionRow("s1", "a.ipynb", "a", "notebook", "k1"))
    store.close()
    again = SessionStore(path)
    again.migrate()
    assert [r.session_id for r in again.all()] == ["s1"]
    indexes = {r[1] for r in again._db.execute("PRAGMA index_list(session)")}
    assert "session_path" in indexes
    again.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(ConfigError, match="schema version"):
        SessionStore(path)
