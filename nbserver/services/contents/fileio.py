"""Filesystem building blocks for the file contents manager and its checkpoints. Blocking: call
them from a worker thread, never from the event loop.

- :class:`Root` confines API paths to the root directory *by realpath*, so a symlink (at any
  depth) that leads outside the root is refused exactly like ``..``.
- Writes are atomic: the bytes go to a temp file (:mod:`.temps` names it, hidden, ``O_EXCL``) in
  the target's own directory, which is fsynced and ``os.replace``-d onto the target; then the
  directory is fsynced. A failure removes the temp file and leaves the target as it was; a
  crash leaves it to the next start-up's sweep (given a :class:`.temps.Journal`).
- Stat results become content-less models (:func:`stat_model`) without further system calls,
  and :func:`list_directory` builds a listing with one stat per entry.
- :func:`translate` is the one place an ``OSError`` becomes an
  :class:`~nbserver.errors.NBServerError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import math
import mimetypes
import os
import shutil
import stat
import weakref
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

from ...errors import BadRequest, Forbidden, NBServerError, NotFound
from . import paths
from .models import Model, base_model, timestamp
from .temps import TEMP_PREFIX, Journal, temp_name

__all__ = [
    "BINARY",
    "TEMP_PREFIX",
    "FileBlocks",
    "Root",
    "append_temp",
    "atomic_copy",
    "atomic_write",
    "commit",
    "created_time",
    "entry_type",
    "fsync_dir",
    "identity",
    "list_directory",
    "mimetype",
    "move",
    "new_temp",
    "remove_quietly",
    "stat_model",
    "target_mode",
    "translate",
    "writable_by",
    "write_fully",
]

_COPY_BLOCK = 1024 * 1024
_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)
_FULL = tuple(n for n in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if n is not None)
BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


class Root:
    """The contents root and the realpath rules that keep every access inside it.

    ``path`` arguments are normalized API paths (:func:`~.paths.normalize` output).
    """

    def __init__(self, root_dir: str | os.PathLike[str]) -> None:
        self.path = os.path.realpath(os.fspath(root_dir))
        self._prefix = self.path.rstrip(os.sep) + os.sep  # "/" stays "/", "/srv" gives "/srv/"

    def contains(self, real: str) -> bool:
        """Whether the resolved OS path ``real`` is the root or below it."""
        return real == self.path or real.startswith(self._prefix)

    def relative(self, real: str) -> str:
        """The API path of a resolved OS path inside the root (``""`` for the root)."""
        return "" if real == self.path else real[len(self._prefix) :].replace(os.sep, "/")

    def os_path(self, path: str) -> str:
        """The unresolved OS path of an API path."""
        return os.path.join(self.path, *path.split("/")) if path else self.path

    def confine(self, os_path: str, path: str) -> str:
        """The realpath of ``os_path`` (the OS path of API ``path``; symlinks followed, the
        target need not exist).

        Raises:
            NotFound: (``"outside root"``) the realpath is not inside the root.
        """
        real = os.path.realpath(os_path)
        if not self.contains(real):
            raise NotFound(f"No such file or directory: {path!r} is outside the root", reason="outside root")
        return real

    def real(self, path: str) -> str:
        """The realpath of API ``path``, confined (see :meth:`confine`)."""
        return self.confine(self.os_path(path), path)

    def entry(self, path: str) -> tuple[str, str]:
        """``(entry, real)`` for a non-root API path: ``entry`` is the OS path of the directory
        entry itself (its parent resolved, its own name kept, so a symlink is the link) and
        ``real`` is where it leads. Renames and deletes act on ``entry``.

        Raises:
            NotFound: (``"outside root"``) the parent or the target is outside the root.
        """
        parent, _, name = path.rpartition("/")
        entry = os.path.join(self.real(parent), name)
        return entry, self.confine(entry, path)


# -- atomic writes -------------------------------------------------------------------------------


def _create_temp(directory: str, journal: Journal | None) -> tuple[int, str]:
    """A new, empty temp file in ``directory``: ``(fd open for writing, path)``. ``O_EXCL`` and
    mode ``0o666``, so the process umask gives a new file its usual permissions. The directory
    is noted in ``journal`` first."""
    if journal is not None:
        journal.note(directory)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | BINARY
    while True:
        temp = os.path.join(directory, temp_name())
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue


def write_fully(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fill(fd: int, temp: str, data: bytes, source: str | None) -> None:
    """Write ``data`` then the file ``source`` to ``fd`` and close it; remove ``temp`` on failure."""
    try:
        try:
            write_fully(fd, data)
            if source is not None:
                with open(source, "rb") as src:
                    while block := src.read(_COPY_BLOCK):
                        write_fully(fd, block)
        finally:
            os.close(fd)
    except BaseException:
        remove_quietly(temp)
        raise


def new_temp(
    directory: str, data: bytes = b"", source: str | None = None, *, journal: Journal | None = None
) -> str:
    """A temp file in ``directory`` holding ``data`` (or a copy of the file ``source``)."""
    fd, temp = _create_temp(directory, journal)
    _fill(fd, temp, data, source)
    return temp


def append_temp(temp: str, data: bytes) -> None:
    """Append ``data`` to a temp file; on failure the temp file is removed."""
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_APPEND | BINARY)
    except BaseException:
        remove_quietly(temp)
        raise
    _fill(fd, temp, data, None)


def remove_quietly(*temps: str) -> None:
    """Remove temp files; gone already is fine."""
    for temp in temps:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def target_mode(target: str) -> int | None:
    """The permission bits a write onto ``target`` keeps: ``None`` if nothing is there.
    Raises IsADirectoryError if a directory is."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", target)
    return stat.S_IMODE(st.st_mode)


def commit(
    temp: str, target: str, mode: int | None, times_ns: tuple[int, int] | None = None, *, replace: bool = True
) -> None:
    """Make the temp file ``target``, atomically: fsync it, give it ``mode`` (``None``: the
    umask's) and ``(atime_ns, mtime_ns)`` if given, ``os.replace`` it onto ``target``, fsync the
    directory. On failure ``temp`` is removed and ``target`` is untouched.

    ``replace=False`` makes a NEW file: FileExistsError if ``target`` exists, also when it
    appears meanwhile (a hard link is made, which the OS refuses on an existing name; where links
    are not supported, the check and the rename are two steps)."""
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_APPEND | BINARY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if mode is not None:
            os.chmod(temp, mode)
        if times_ns is not None:
            os.utime(temp, ns=times_ns)
        if replace:
            os.replace(temp, target)
        else:
            _link_new(temp, target)
    except BaseException:
        remove_quietly(temp)
        raise
    fsync_dir(os.path.dirname(target))


def _link_new(temp: str, target: str) -> None:
    try:
        os.link(temp, target)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network and FUSE filesystems)
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "File exists", target) from None
        os.rename(temp, target)
        return
    remove_quietly(temp)


def fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable. Best effort: some platforms and filesystems
    cannot fsync a directory, and by then the data itself is safely in place."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(target: str, data: bytes, mode: int | None, *, journal: Journal | None = None) -> None:
    """Replace (or create) ``target`` with ``data``, all or nothing (see :func:`commit`)."""
    commit(new_temp(os.path.dirname(target), data, journal=journal), target, mode)


def atomic_copy(
    source: str,
    target: str,
    mode: int | None,
    times_ns: tuple[int, int] | None,
    *,
    replace: bool = True,
    journal: Journal | None = None,
) -> None:
    """Copy the file ``source`` onto ``target``, all or nothing (see :func:`commit`)."""
    temp = new_temp(os.path.dirname(target), source=source, journal=journal)
    commit(temp, target, mode, times_ns, replace=replace)


def move(source: str, target: str) -> None:
    """``os.rename``, falling back to ``shutil.move`` only across filesystems (``EXDEV``)."""
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(source, target)


# -- stat results --------------------------------------------------------------------------------


def identity() -> tuple[int | None, frozenset[int]]:
    """``(effective uid, groups)`` for :func:`writable_by`; ``(None, {})`` without uids."""
    if not hasattr(os, "geteuid"):  # pragma: no cover - Windows
        return None, frozenset()
    return os.geteuid(), frozenset(os.getgroups()) | {os.getegid()}


def writable_by(st: os.stat_result, euid: int | None, groups: frozenset[int]) -> bool:
    """Whether the user ``euid`` (in ``groups``) may write the file ``st`` describes, from its
    mode bits alone (ACLs and read-only mounts are not seen): root may write anything, the owner
    bits apply to the owner, the group bits to members. ``euid=None`` (no uids: Windows) reads
    the read-only attribute."""
    if euid is None:
        return bool(st.st_mode & stat.S_IWUSR)
    if euid == 0:
        return True
    if st.st_uid == euid:
        return bool(st.st_mode & stat.S_IWUSR)
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IWGRP)
    return bool(st.st_mode & stat.S_IWOTH)


_HAS_BIRTH = hasattr(os.stat_result, "st_birthtime")  # macOS, BSD, Windows (3.12); not Linux


def created_time(st: os.stat_result) -> float:
    """Birth time where the platform reports a sane one, else ``st_ctime``."""
    birth = getattr(st, "st_birthtime", None)
    if isinstance(birth, (int, float)) and math.isfinite(birth) and birth >= 0:
        return birth
    return st.st_ctime


def entry_type(name: str, mode: int) -> str | None:
    """The model type of a directory entry: ``"directory"``, ``"notebook"`` (``*.ipynb``),
    ``"file"``; ``None`` for what is never served (fifos, sockets, devices)."""
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "notebook" if name.endswith(".ipynb") else "file"
    return None


@functools.lru_cache(maxsize=512)
def _mimetype_of_suffix(suffix: str) -> str | None:
    return mimetypes.guess_type("x" + suffix, strict=False)[0]


def mimetype(name: str) -> str | None:
    """``mimetypes``' guess for a file name (``None`` if unknown), cached: the guess depends on
    the last two suffixes only (``.tar.gz``)."""
    parts = name.rsplit(".", 2)
    return _mimetype_of_suffix("." + ".".join(parts[1:])) if len(parts) > 1 else None


def stat_model(path: str, st: os.stat_result, kind: str, writable: bool) -> Model:
    """A content-less model from a stat result; files get the MIME type their name suggests."""
    modified = timestamp(st.st_mtime)
    created = created_time(st)
    return base_model(
        path,
        kind,
        created=modified if created == st.st_mtime else timestamp(created),
        last_modified=modified,
        size=None if kind == "directory" else st.st_size,
        writable=writable,
        mimetype=mimetype(path.rpartition("/")[2]) if kind == "file" else None,
    )


def list_directory(root: Root, path: str, real: str, allow_hidden: bool) -> list[Model]:
    """Content-less models of the entries of the directory ``real`` (API ``path``) that listings
    show: one scandir pass, one stat per entry, a realpath only for symlinks (skipped when they
    lead outside the root, to a hidden target, or nowhere). Hidden names and
    :data:`~.paths.HIDE_GLOBS` are skipped (hidden ones unless ``allow_hidden``).

    The models are those of :func:`stat_model`, built inline: this loop runs once per entry of
    directories with tens of thousands of them, and function calls are most of its cost."""
    euid, groups = identity()
    root_user = euid == 0  # may write anything
    has_birth = _HAS_BIRTH
    prefix = path + "/" if path else ""
    is_listed, S_ISDIR, S_ISREG = paths.is_listed, stat.S_ISDIR, stat.S_ISREG
    children: list[Model] = []
    append = children.append
    with os.scandir(real) as entries:
        for entry in entries:
            name = entry.name
            if not is_listed(name, allow_hidden):
                continue
            if not name.isascii():
                try:
                    name.encode("utf-8")
                except UnicodeEncodeError:  # undecodable bytes in the name: unreachable by URL
                    continue
            try:
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if not root.contains(target) or (
                        not allow_hidden and paths.is_hidden(root.relative(target))
                    ):
                        continue
                    st = entry.stat()
                else:
                    st = entry.stat(follow_symlinks=False)
            except OSError:  # vanished, dangling, a loop, no permission
                continue
            mode = st.st_mode
            if S_ISREG(mode):
                if name.endswith(".ipynb"):
                    kind, size, mime = "notebook", st.st_size, None
                else:
                    kind, size, mime = "file", st.st_size, mimetype(name)
            elif S_ISDIR(mode):
                kind, size, mime = "directory", None, None
            else:  # fifos, sockets, devices: never served
                continue
            mtime = st.st_mtime
            modified = timestamp(mtime)
            created = created_time(st) if has_birth else st.st_ctime
            append(
                {
                    "name": name,
                    "path": prefix + name,
                    "type": kind,
                    "writable": root_user or writable_by(st, euid, groups),
                    "created": modified if created == mtime else timestamp(created),
                    "last_modified": modified,
                    "mimetype": mime,
                    "content": None,
                    "format": None,
                    "size": size,
                    "hash": None,
                    "hash_algorithm": None,
                }
            )
    return children


# -- running in a thread ------------------------------------------------------------------------

T = TypeVar("T")


async def run_in(executor: Executor | None, path: str, fn: Callable[[], T], owner: str) -> T:
    """Run the blocking ``fn`` in ``executor`` (``None``: the loop's default). Foreign errors
    become NBServerError about API ``path`` (:func:`translate`); a shut-down executor is 503
    naming ``owner``."""
    loop = asyncio.get_running_loop()
    try:
        future = loop.run_in_executor(executor, fn)
    except RuntimeError as exc:  # the executor is shut down
        raise NBServerError(f"The {owner} is shut down", status=503) from exc
    try:
        return await future
    except (OSError, ValueError) as exc:
        raise translate(exc, path) from exc


class FileBlocks:
    """The blocks (``size`` bytes each) of an open file descriptor, each read in ``executor``
    (errors about API ``path``, see :func:`run_in`). The descriptor is closed at the end, on
    :meth:`aclose`, or when the iterator is collected."""

    def __init__(self, executor: Executor | None, path: str, fd: int, size: int) -> None:
        self._executor = executor
        self._path = path
        self._fd = fd
        self._size = size
        self._close = weakref.finalize(self, os.close, fd)

    def __aiter__(self) -> FileBlocks:
        return self

    def _read(self) -> bytes:
        # a bound method: the pending work item keeps self (and so the fd) alive
        return os.read(self._fd, self._size)

    async def __anext__(self) -> bytes:
        if not self._close.alive:
            raise StopAsyncIteration
        try:
            block = await run_in(self._executor, self._path, self._read, "contents manager")
        except NBServerError:
            self._close()
            raise
        if not block:
            self._close()
            raise StopAsyncIteration
        return block

    async def aclose(self) -> None:
        self._close()


# -- errors ----------------------------------------------------------------------------------


def translate(exc: OSError | ValueError, path: str) -> NBServerError:
    """The error to raise (``from exc``) for a foreign exception met while working on API ``path``.

    Missing things are 404, permissions 403 (``"permission denied"``), a directory where a file
    goes 400 ``"bad type"``, names the filesystem cannot hold 400, a full disk or quota 507
    ``"disk full"``, any other ``OSError`` 500 with the OS message.
    """
    if isinstance(exc, PermissionError):
        return Forbidden(f"Permission denied: {path!r}", reason="permission denied")
    if isinstance(exc, IsADirectoryError):
        return BadRequest(f"{path!r} is a directory", reason="bad type")
    if isinstance(exc, OSError) and exc.errno in _MISSING:
        return NotFound(f"No such file or directory: {path!r}")
    if isinstance(exc, OSError) and exc.errno in _FULL:
        message = f"Cannot write {path!r}: {exc.strerror or 'no space left on the device'}"
        return NBServerError(message, reason="disk full", status=507)
    if isinstance(exc, OSError) and exc.errno != errno.ENAMETOOLONG:
        return NBServerError(f"Error on {path!r}: {exc.strerror or exc}")
    return BadRequest(f"Invalid path {path!r}: {exc}", reason="bad path")  # or an unencodable name
