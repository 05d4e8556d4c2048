"""SessionStore on its own: schema version, migrations, session and kernel queries, the file
lock; no server needed."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from nbserver.errors import ConfigError
from nbserver.services.kernels.records import KernelRecord
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


# -- schema version 2: kernel records --------------------------------------------------------------

V1_SCHEMA = """
BEGIN;
CREATE TABLE IF NOT EXISTS session (
    session_id TEXT PRIMARY KEY, path TEXT, name TEXT, type TEXT, kernel_id TEXT
);
CREATE INDEX IF NOT EXISTS session_path ON session (path);
PRAGMA user_version = 1;
COMMIT;
"""


def _record(kernel_id: str, pid: int | None = 123, **changes: Any) -> KernelRecord:
    record = KernelRecord(
        kernel_id=kernel_id,
        name="python3",
        connection={"transport": "ipc", "ip": "/x/k", "shell_port": 1, "key": "abc"},
        pid=pid,
        cwd="/root/dir",
        env={"JPY_SESSION_NAME": "/root/dir/a.ipynb"},
        interrupt_mode="signal",
        last_activity=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc),
    )
    return dataclasses.replace(record, **changes)


def test_version_1_database_is_migrated_and_keeps_its_sessions(tmp_path: Path) -> None:
    """A store written by the previous release (schema 1: sessions only) gains the kernel
    table; its sessions are kept."""
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.execute("INSERT INTO session VALUES ('s1', 'a.ipynb', 'a', 'notebook', 'k1')")
    db.commit()
    db.close()
    store = SessionStore(path)
    assert store.version == SCHEMA_VERSION == 2
    assert store.all() == [SessionRow("s1", "a.ipynb", "a", "notebook", "k1")]
    assert store.kernels() == []
    store.save_kernel(_record("k1"))
    assert store.kernels() == [_record("k1")]
    store.close()


def test_kernel_records_save_touch_delete_forget(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "k.db")
    store.save_kernel(_record("k1"))
    store.save_kernel(_record("k2", pid=None, interrupt_mode="message"))
    store.save_kernel(_record("k1", pid=456))  # a restart: replaced, not duplicated
    assert {r.kernel_id: r.pid for r in store.kernels()} == {"k1": 456, "k2": None}
    later = datetime(2026, 2, 1, tzinfo=timezone.utc)
    store.touch_kernels({"k2": later, "nope": later})
    assert [r.last_activity for r in store.kernels() if r.kernel_id == "k2"] == [later]
    assert store.kernels()[0].env == {"JPY_SESSION_NAME": "/root/dir/a.ipynb"}
    store.insert(SessionRow("s1", "a.ipynb", "a", "notebook", "k1"))
    store.insert(SessionRow("s2", "b.ipynb", "b", "notebook", "k2"))
    assert store.delete_kernel("k1") and not store.delete_kernel("k1")
    assert [r.session_id for r in store.all()] == ["s1", "s2"]  # dropped when next read, not here
    store.forget_kernel("k2")
    assert store.kernels() == [] and [r.session_id for r in store.all()] == ["s1"]
    store.close()


async def test_stored_kernels_run_off_the_event_loop_in_order(tmp_path: Path) -> None:
    """The async face the kernel manager uses: a file store's queries run on one thread of its
    own, in the order they were issued."""
    store = SessionStore(tmp_path / "k.db")
    records = store.kernel_records()
    threads: list[str] = []
    real = store.save_kernel

    def save(record: KernelRecord) -> None:
        threads.append(threading.current_thread().name)
        real(record)

    store.save_kernel = save  # type: ignore[method-assign]
    await asyncio.gather(*(records.save(_record("k", pid=n)) for n in range(1, 30)))
    assert [r.pid for r in await records.load()] == [29]
    assert len(set(threads)) == 1 and threads[0] != threading.current_thread().name
    await records.forget("k")
    assert await records.load() == []
    store.close()


def test_a_file_store_is_used_by_one_server_at_a_time_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = SessionStore(path)
    assert path.stat().st_mode & 0o777 == 0o600  # kernel records hold the kernels' keys
    with pytest.raises(ConfigError, match=rf"in use by another nbserver \(pid {os.getpid()}\)"):
        SessionStore(path)
    store.close()
    path.chmod(0o644)
    SessionStore(path).close()  # released on close (and by the kernel when a process dies)
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_file_that_is_not_a_database_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, but a long enough text file to have a header " * 4)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="not usable"):
        SessionStore(path)
    with pytest.raises(ConfigError, match="not usable"):  # not "in use": the failed open unlocked
        SessionStore(path)
    assert path.stat().st_mode & 0o777 == 0o644  # someone else's file: left as it was
