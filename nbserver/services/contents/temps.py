"""Temp files of atomic saves and chunked uploads, and what a crash leaves of them. Blocking: call
from a worker thread.

Theory of operation. A temp file is created next to its target (an atomic rename needs the same
filesystem, and the file gets the directory's group and default ACL) and is named
``.~nbserver-<pid>-<16 hex>.tmp`` (:func:`temp_name`): hidden, unmistakable, and naming the
process that made it. Before a process first puts a temp file into a directory, it appends the
directory to its :class:`Journal`, ``nbserver-temps-<host>-<pid>-<start>-<id>.log`` in a state
directory (the server's runtime directory; ``<start>`` tells the process from a later one with
the same pid). A process killed in the middle of a save leaves its temp files and its journal
behind; the next server on the same host runs :func:`sweep` at start-up: for each journal of a
process that no longer runs, it removes, in the directories listed, the temp files named with
that process's pid, then the journal.

So start-up work is proportional to the directories that crashed processes wrote in, never to
the size of the root, and nothing else is ever removed: not a user's file (the name must match
exactly, pid included), not the temp files of a server still running on the same root, not
another host's (journals name their host). A clean shutdown removes the journal.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import socket
import threading
from pathlib import Path

__all__ = ["TEMP_PREFIX", "Journal", "is_temp_name", "sweep", "temp_name"]

log = logging.getLogger("nbserver.contents")

TEMP_PREFIX = ".~nbserver-"
_TEMP = re.compile(r"\.~nbserver-(\d+)-[0-9a-f]{16}\.tmp")
_JOURNAL = re.compile(r"nbserver-temps-([0-9a-f]{8})-(\d+)-(\d+)-[0-9a-f]{8}\.log")


def temp_name() -> str:
    """A fresh temp file name for this process (64 random bits)."""
    return f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}.tmp"


def is_temp_name(name: str, pid: int | None = None) -> bool:
    """Whether ``name`` is a temp file name of :func:`temp_name` (made by process ``pid``)."""
    match = _TEMP.fullmatch(name)
    return match is not None and (pid is None or int(match[1]) == pid)


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _started(pid: int) -> str | None:
    """When process ``pid`` started, as a number that tells it from a later process with the
    same pid (Linux: clock ticks after boot); ``"0"`` when it runs but the platform does not
    say; ``None`` when no such process runs (a zombie does not; another user's process does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    except OSError:  # pragma: no cover - Windows: no such process
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()
        if fields[0] in (b"Z", b"X"):  # killed, not yet reaped
            return None
        return fields[19].decode("ascii")  # field 22, starttime
    except (OSError, IndexError, UnicodeDecodeError):
        return "0"


class Journal:
    """The directories this process may leave temp files in, appended to a file in
    ``state_dir`` before the first temp file goes into each (see the module docstring).

    The file is written without fsync: it must survive the process being killed, which the
    page cache guarantees; after a power cut a temp file may remain (hidden, harmless).
    Thread-safe.
    """

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        pid = os.getpid()
        name = f"nbserver-temps-{_host()}-{pid}-{_started(pid) or 0}-{secrets.token_hex(4)}.log"
        self.path = self.state_dir / name
        self._noted: set[str] = set()
        self._lock = threading.Lock()
        self._fd: int | None = None

    def note(self, directory: str) -> None:
        """Record ``directory`` (an OS path) before a temp file is created in it. A journal that
        cannot be written is logged, not raised: the save goes on without the safety net."""
        if directory in self._noted:
            return
        with self._lock:
            if directory in self._noted:
                return
            try:
                if self._fd is None:
                    self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
                    self._fd = os.open(self.path, flags, 0o600)
                os.write(self._fd, os.fsencode(directory).hex().encode("ascii") + b"\n")
            except OSError as exc:
                log.warning("Cannot record temp files in %s: %s", self.path, exc)
                return
            self._noted.add(directory)

    def close(self) -> None:
        """Remove the journal (a clean shutdown: no temp file of this process remains)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._noted.clear()
            with contextlib.suppress(OSError):
                self.path.unlink()


def sweep(state_dir: str | os.PathLike[str]) -> int:
    """Remove the temp files that dead nbserver processes on this host left, and their
    journals (see the module docstring). Returns how many temp files were removed."""
    try:
        names = os.listdir(state_dir)
    except OSError:
        return 0
    host, removed = _host(), 0
    for name in names:
        match = _JOURNAL.fullmatch(name)
        if match is None or match[1] != host:
            continue
        pid, started = int(match[2]), _started(int(match[2]))
        if started is not None and started in (match[3], "0"):  # it runs (or it may)
            continue
        journal = os.path.join(state_dir, name)
        try:
            with open(journal, "rb") as file:
                directories = {bytes.fromhex(line.decode("ascii")) for line in file.read().split()}
        except (OSError, ValueError) as exc:
            log.warning("Cannot read %s: %s", journal, exc)
            continue
        for directory in directories:
            removed += _remove_temps(os.fsdecode(directory), pid)
        with contextlib.suppress(OSError):
            os.unlink(journal)
    return removed


def _remove_temps(directory: str, pid: int) -> int:
    """Remove the regular files in ``directory`` named as temp files of process ``pid``."""
    removed = 0
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if is_temp_name(entry.name, pid) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed += 1
    except OSError:  # gone, or no longer readable: nothing to do there
        pass
    return removed
