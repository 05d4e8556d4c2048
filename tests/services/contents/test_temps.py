"""Temp-file names, the journal and the start-up sweep (:mod:`nbserver.services.contents.temps`),
on real directories; the processes are this one, init (pid 1, always running) and pids that no
process has.

Bad inputs tried: user files that look like temp files (no pid, a running process's pid, a
wrong suffix, upper-case hex, a directory, a symlink); journals of another host, of a running
process, of an earlier process with this pid, unreadable and garbage journals; directories that
vanished; a state directory that does not exist or cannot be written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from nbserver.services.contents import fileio, temps


def dead_pid() -> int:
    """A pid no process has: above the kernel's maximum."""
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    except OSError:  # pragma: no cover - not Linux
        return 2**22 + 1


def journal_of(
    state: Path, pid: int, directories: list[Path], *, host: str | None = None, start: str = "7"
) -> Path:
    """A journal as process ``pid`` (started at ``start``) would have left it."""
    host = host or temps._host()
    path = state / f"nbserver-temps-{host}-{pid}-{start}-0123abcd.log"
    state.mkdir(exist_ok=True)
    path.write_bytes(b"".join(os.fsencode(str(d)).hex().encode() + b"\n" for d in directories))
    return path


def temp_of(directory: Path, pid: int, data: bytes = b"partial") -> Path:
    path = directory / f"{temps.TEMP_PREFIX}{pid}-0123456789abcdef.tmp"
    path.write_bytes(data)
    return path


def test_temp_names_carry_the_pid_and_are_recognized() -> None:
    name = temps.temp_name()
    assert re.fullmatch(rf"\.~nbserver-{os.getpid()}-[0-9a-f]{{16}}\.tmp", name)
    assert temps.is_temp_name(name) and temps.is_temp_name(name, os.getpid())
    assert not temps.is_temp_name(name, os.getpid() + 1)
    for lookalike in (
        ".~nbserver-notes.tmp",
        ".~nbserver-0123456789abcdef.tmp",  # the old unnamed form: whose is it?
        ".~nbserver-12-0123456789ABCDEF.tmp",
        ".~nbserver-12-0123456789abcdef.tmp.bak",
        "x.~nbserver-12-0123456789abcdef.tmp",
        ".~nbserver-12-0123456789abcde.tmp",
    ):
        assert not temps.is_temp_name(lookalike), lookalike


def test_sweep_removes_exactly_the_dead_processes_temp_files(tmp_path: Path) -> None:
    state, root = tmp_path / "state", tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "unlisted").mkdir()
    dead = dead_pid()
    leftovers = [temp_of(root, dead), temp_of(root / "a" / "b", dead)]
    kept = [
        temp_of(root / "unlisted", dead),  # a directory the journal does not name
        temp_of(root, 1),  # a running process's (init)
        root / ".~nbserver-notes.tmp",  # a user's files
        root / "notes.txt",
        root / f".~nbserver-{dead}-0123456789ABCDEF.tmp",
    ]
    for path in kept[2:]:
        path.write_text("mine")
    (root / "a" / f".~nbserver-{dead}-fedcba9876543210.tmp").mkdir()  # a directory by that name
    (root / "a" / f".~nbserver-{dead}-aaaaaaaaaaaaaaaa.tmp").symlink_to(root / "notes.txt")
    journal = journal_of(state, dead, [root, root / "a" / "b", root / "a", tmp_path / "gone"])
    assert temps.sweep(state) == 2
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in kept)
    assert (root / "a" / f".~nbserver-{dead}-fedcba9876543210.tmp").is_dir()
    assert (root / "a" / f".~nbserver-{dead}-aaaaaaaaaaaaaaaa.tmp").is_symlink()
    assert not journal.exists()
    assert temps.sweep(state) == 0


def test_sweep_leaves_running_processes_and_other_hosts_alone(tmp_path: Path) -> None:
    state, root = tmp_path / "state", tmp_path / "root"
    root.mkdir()
    mine = temp_of(root, os.getpid())
    live = journal_of(state, os.getpid(), [root], start=temps._started(os.getpid()) or "0")
    other_host = journal_of(state, dead_pid(), [root], host="ffffffff")
    foreign = temp_of(root, dead_pid())
    assert temps.sweep(state) == 0
    assert mine.exists() and foreign.exists() and live.exists() and other_host.exists()


def test_an_earlier_process_with_this_pid_is_dead(tmp_path: Path) -> None:
    """pid reuse: a journal with this process's pid but another start time is a predecessor's."""
    state, root = tmp_path / "state", tmp_path / "root"
    root.mkdir()
    leftover = temp_of(root, os.getpid())
    journal = journal_of(state, os.getpid(), [root], start="1")
    if temps._started(os.getpid()) in ("1", "0"):  # pragma: no cover - no start times here
        pytest.skip("this platform does not tell processes with the same pid apart")
    assert temps.sweep(state) == 1 and not leftover.exists() and not journal.exists()


def test_garbage_journals_and_missing_state_dirs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert temps.sweep(state) == 0  # no such directory
    state.mkdir()
    garbage = state / f"nbserver-temps-{temps._host()}-{dead_pid()}-7-0123abcd.log"
    garbage.write_bytes(b"not hex\n")
    unrelated = state / "nbserver-1234.json"
    unrelated.write_text("{}")
    assert temps.sweep(state) == 0
    assert garbage.exists() and unrelated.exists()  # kept: it could not be read


def test_the_journal_notes_each_directory_once_and_close_removes_it(tmp_path: Path) -> None:
    journal = temps.Journal(tmp_path / "state")
    assert not journal.path.exists()  # nothing written until a temp file is made
    target = tmp_path / "dir"
    target.mkdir()
    for _ in range(3):
        fileio.atomic_write(str(target / "f.txt"), b"x", None, journal=journal)
    fileio.new_temp(str(tmp_path), b"y", journal=journal)
    lines = journal.path.read_bytes().split()
    assert [os.fsdecode(bytes.fromhex(line.decode())) for line in lines] == [str(target), str(tmp_path)]
    assert journal.path.stat().st_mode & 0o777 == 0o600
    journal.close()
    assert not journal.path.exists()


def test_an_unwritable_journal_does_not_stop_a_save(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    journal = temps.Journal(blocker)
    fileio.atomic_write(str(tmp_path / "f.txt"), b"saved", None, journal=journal)
    assert (tmp_path / "f.txt").read_bytes() == b"saved"
    assert "Cannot record temp files" in caplog.text


def test_sweep_only_looks_where_the_journals_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Start-up cost: one directory scan per journaled directory, whatever the size of the root."""
    state, root = tmp_path / "state", tmp_path / "root"
    for i in range(50):
        (root / f"d{i}").mkdir(parents=True)
    journal_of(state, dead_pid(), [root / "d3"])
    scanned: list[str] = []
    real_scandir = os.scandir

    def counting(path: str) -> object:
        scanned.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(temps.os, "scandir", counting)
    temps.sweep(state)
    assert scanned == [str(root / "d3")]
