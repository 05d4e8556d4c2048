"""The default contents manager: files, notebooks and directories under a root directory.

Theory of operation. Every public method normalizes its API path(s) (:func:`.paths.normalize`)
and then does *all* of its filesystem work in one function run on a small thread pool, so the
event loop never waits for a disk. That function resolves paths with :class:`.fileio.Root`
(realpath confinement: a symlink leading outside the root is as unreachable as ``..``), applies
the hidden-file policy to the API path and to where it resolves, and raises
:class:`~nbserver.errors.NBServerError`; an ``OSError``/``ValueError`` escaping it is translated
once, in :meth:`FileContentsManager._run`.

Saves are atomic (:mod:`.fileio`). A chunked upload writes into one temp file next to its
target and replaces the target only with its last chunk (-1); the upload state lives in memory,
guarded by one lock, so chunks are applied strictly in order.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import stat
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from ...errors import BadRequest, ConfigError, Conflict, Forbidden, NBServerError, NotFound
from . import fileio, notebooks, paths
from .checkpoints import CHECKPOINT_DIR, FileCheckpoints
from .manager import Checkpoints, ContentsManager, Download, EntryKind, Model
from .models import (
    HASH_ALGORITHM,
    TYPES,
    SaveRequest,
    base_model,
    decode_file,
    file_hash,
    guess_mimetype,
    read_notebook,
    timestamp,
)
from .trust import Notary

try:
    from send2trash import send2trash as _send2trash
except ImportError:  # pragma: no cover - the optional "trash" extra
    _send2trash = None

__all__ = ["DOWNLOAD_BLOCK", "UPLOAD_IDLE_LIMIT", "FileContentsManager"]

log = logging.getLogger("nbserver.contents")
_TRASH_LOCK = threading.Lock()  # send2trash is not safe to run twice at once (see _delete)

DOWNLOAD_BLOCK = 256 * 1024
UPLOAD_IDLE_LIMIT = 3600.0  # seconds without a chunk before an upload is discarded

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class _Upload:
    """A chunked upload in progress (only touched while holding the manager's upload lock)."""

    temp: str  # OS path of the temp file, next to the target
    target: str  # realpath the last chunk replaces
    existed: bool  # the target existed when chunk 1 arrived
    started: float  # time.time() of chunk 1
    touched: float  # time.monotonic() of the latest chunk
    size: int
    next_chunk: int = 2


class _FileChunks:
    """The blocks of an open file descriptor, each read in the manager's executor. The
    descriptor is closed at the end, on :meth:`aclose`, or when the iterator is collected."""

    def __init__(self, manager: FileContentsManager, path: str, fd: int) -> None:
        self._manager = manager
        self._path = path
        self._fd = fd
        self._close = weakref.finalize(self, os.close, fd)

    def __aiter__(self) -> _FileChunks:
        return self

    def _read(self) -> bytes:
        # a bound method: the pending work item keeps self (and so the fd) alive
        return os.read(self._fd, DOWNLOAD_BLOCK)

    async def __anext__(self) -> bytes:
        if not self._close.alive:
            raise StopAsyncIteration
        try:
            block = await self._manager._run(self._path, self._read)
        except NBServerError:
            self._close()
            raise
        if not block:
            self._close()
            raise StopAsyncIteration
        return block

    async def aclose(self) -> None:
        self._close()


class FileContentsManager(ContentsManager):
    """Contents on the local filesystem under ``root_dir``.

    Args:
        allow_hidden: serve paths with a component starting with ``.``. Otherwise reads of
            hidden paths are 404, writes 400 ``"hidden"``, and listings skip them.
        delete_to_trash: delete through send2trash when it is installed (a failure is 400,
            never a silent permanent delete).
        always_delete_dir: when not trashing, delete non-empty directories too (otherwise
            400 ``"directory not empty"``).
        notary: where notebook trust is kept (:class:`.Notary`). With one, notebooks read are
            marked trusted or not, and saved ones whose code cells are all trusted are signed,
            as in jupyter_server; without one (the default), notebook trust is not supported.
        checkpoints: defaults to :class:`.FileCheckpoints` on the same root and executor.
        executor: runs the blocking work; by default a small pool owned (and shut down) by
            the manager.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        *,
        allow_hidden: bool = False,
        delete_to_trash: bool = True,
        always_delete_dir: bool = False,
        notary: Notary | None = None,
        checkpoints: Checkpoints | None = None,
        executor: Executor | None = None,
    ) -> None:
        self._root = fileio.Root(root_dir)
        if not os.path.isdir(self._root.path):
            raise ConfigError(f"root_dir {self._root.path!r} is not a directory")
        self.allow_hidden = allow_hidden
        self.delete_to_trash = delete_to_trash
        self.always_delete_dir = always_delete_dir
        self.notary = notary
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(4, thread_name_prefix="nbserver-contents")
        self.checkpoints = checkpoints or FileCheckpoints(self._root.path, executor=self._executor)
        self._uploads: dict[str, _Upload] = {}
        self._upload_lock = asyncio.Lock()

    @property
    def root_dir(self) -> str:
        """The root directory's realpath."""
        return self._root.path

    async def _run(self, path: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` in the executor; foreign errors become NBServerError (about API ``path``)."""
        return await fileio.run_in(
            self._executor, path, functools.partial(fn, *args, **kwargs), "contents manager"
        )

    # -- path rules (run in the executor) ----------------------------------------------------

    def _hidden(self, *api_paths: str) -> bool:
        return not self.allow_hidden and any(paths.is_hidden(p) for p in api_paths)

    def _read_real(self, path: str) -> str:
        """The realpath to read ``path`` from. NotFound: hidden or outside the root."""
        if self._hidden(path):
            raise NotFound(f"No such file or directory: {path!r}")
        real = self._root.real(path)
        if self._hidden(self._root.relative(real)):
            raise NotFound(f"No such file or directory: {path!r}")
        return real

    def _refuse_hidden_write(self, *api_paths: str) -> None:
        for path in api_paths:
            if self._hidden(path):
                raise BadRequest(f"Cannot write hidden file or directory {path!r}", reason="hidden")

    def _entry(self, path: str) -> str:
        """The OS path of the existing entry ``path`` itself, for rename and delete.

        Raises: BadRequest for the root and hidden paths, NotFound if missing or outside.
        """
        if not path:
            raise BadRequest("The root directory cannot be renamed or deleted", reason="root")
        self._refuse_hidden_write(path)
        entry, real = self._root.entry(path)
        self._refuse_hidden_write(self._root.relative(real))
        if not os.path.lexists(entry):
            raise NotFound(f"No such file or directory: {path!r}")
        return entry

    def _new_entry(self, path: str, renamed: str | None = None) -> str:
        """The OS path for a new entry ``path`` (parent resolved). NotFound if the parent is not a
        directory or leads outside the root; Conflict if something is already there, unless it is
        ``renamed`` itself under another case (a case-only rename, case-insensitive filesystem)."""
        parent, name = paths.split(path)
        parent_real = self._root.real(parent)
        if not os.path.isdir(parent_real):
            raise NotFound(f"No such directory: {parent!r}")
        entry = os.path.join(parent_real, name)
        self._root.confine(entry, path)  # an existing symlink there may lead outside: 404 first
        # where it lands, not just its API path: a symlinked folder may lead into a hidden one
        self._refuse_hidden_write(self._root.relative(entry))
        if os.path.lexists(entry) and not (
            renamed is not None and renamed.lower() == entry.lower() and os.path.samefile(renamed, entry)
        ):
            raise Conflict(f"File already exists: {path}", reason="exists")
        return entry

    def _write_target(self, path: str) -> tuple[str, int | None]:
        """Where a file save of ``path`` lands (a symlink inside the root is written through)
        and the mode to keep (``None``: new file).

        Raises: BadRequest (hidden, the root or a directory in the way), NotFound (no parent
        directory, or outside the root).
        """
        self._refuse_hidden_write(path)
        if not path:
            raise BadRequest("The root is a directory", reason="bad type")
        entry, real = self._root.entry(path)
        self._refuse_hidden_write(self._root.relative(real))
        if not os.path.isdir(os.path.dirname(entry)):
            raise NotFound(f"No such directory: {paths.split(path)[0]!r}")
        return real, fileio.target_mode(real)

    def _model_of(self, path: str, real: str) -> Model:
        """The content-less model of ``path`` (resolved to ``real``)."""
        st = os.stat(real)
        kind = fileio.entry_type(path.rpartition("/")[2], st.st_mode)
        if kind is None:
            raise NotFound(f"{path!r} is not a regular file or directory")
        return fileio.stat_model(path, st, kind, os.access(real, os.W_OK))

    # -- reading -----------------------------------------------------------------------------

    async def get(
        self,
        path: str,
        *,
        content: bool = True,
        type: str | None = None,
        format: str | None = None,
        hash: bool = False,
    ) -> Model:
        path = paths.normalize(path)
        return await self._run(path, self._get, path, content, type, format, hash)

    def _get(self, path: str, content: bool, type: str | None, format: str | None, hash: bool) -> Model:
        if type is not None and type not in TYPES:
            raise BadRequest(f"Unknown type {type!r}", reason="bad type")
        if format not in (None, "text", "base64"):
            raise BadRequest(f"format must be 'text' or 'base64', not {format!r}", reason="bad format")
        real = self._read_real(path)
        st = os.stat(real)
        if stat.S_ISDIR(st.st_mode):
            if type not in (None, "directory"):
                raise BadRequest(f"{path!r} is a directory, not a {type}", reason="bad type")
            model = fileio.stat_model(path, st, "directory", os.access(real, os.W_OK))
            if content:
                model.update(
                    content=fileio.list_directory(self._root, path, real, self.allow_hidden), format="json"
                )
            return model
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"{path!r} is not a regular file or directory")
        if type == "directory":
            raise BadRequest(f"{path!r} is not a directory", reason="bad type")
        is_ipynb = path.endswith(".ipynb")
        if type == "notebook" and not is_ipynb:
            raise BadRequest(f"{path!r} is not a notebook", reason="bad type")
        kind = "notebook" if is_ipynb and type != "file" else "file"
        raw = None
        if content or hash:
            with open(real, "rb") as file:
                st = os.fstat(file.fileno())
                raw = file.read()
        model = fileio.stat_model(path, st, kind, os.access(real, os.W_OK))
        if raw is None:
            return model
        if hash:
            model.update(hash=file_hash(raw), hash_algorithm=HASH_ALGORITHM)
        if content and kind == "notebook":
            notebook, message = read_notebook(raw)
            self._mark_trust(path, notebook)
            model.update(content=notebook, format="json")
            if message:
                model["message"] = message
        elif content:
            text, fmt = decode_file(raw, format)
            model.update(content=text, format=fmt, mimetype=guess_mimetype(model["name"], fmt))
        return model

    # -- trust (run in the executor) --------------------------------------------------------

    def _mark_trust(self, path: str, notebook: dict[str, Any]) -> None:
        if self.notary is None:
            return
        try:
            trusted = self.notary.is_trusted(notebook)
        except Exception as exc:  # a broken trust store must not make notebooks unreadable
            log.warning("Cannot check the trust of %r: %s", path, exc)
            trusted = False
        if not trusted:
            log.info("Notebook %s is not trusted", path)
        notebooks.mark_cells(notebook, trusted)

    def _sign(self, path: str, notebook: dict[str, Any] | None) -> None:
        """Sign a saved notebook whose code cells were all trusted (``notebook``; ``None``
        when some were not). The save itself succeeded: a failure here is logged."""
        if self.notary is None:
            return
        if notebook is None:
            log.info("Notebook %s is not trusted", path)
            return
        try:
            self.notary.sign(notebook)
        except Exception as exc:
            log.warning("Cannot sign %r as trusted: %s", path, exc)

    async def trust(self, path: str) -> None:
        path = paths.normalize(path)
        if self.notary is None:
            await super().trust(path)  # refuses
        await self._run(path, self._trust, path)

    def _trust(self, path: str) -> None:
        notebook = self._get(path, True, "notebook", None, False)["content"]
        notebooks.check_cells(notebook)  # drops the marks _get put on the cells
        assert self.notary is not None
        log.warning("Trusting notebook %s", path)
        self.notary.sign(notebook)

    async def kind(self, path: str) -> EntryKind | None:
        """``None`` for what a read would call missing (404) or an invalid name (400); other
        errors (403, 500, 503) are raised."""
        try:
            path = paths.normalize(path)
            return await self._run(path, self._kind, path)
        except (NotFound, BadRequest):
            return None

    def _kind(self, path: str) -> EntryKind | None:
        mode = os.stat(self._read_real(path)).st_mode
        return "directory" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else None

    async def names(self, directory: str) -> set[str]:
        """Every name in ``directory``, hidden ones included."""
        directory = paths.normalize(directory)
        return await self._run(directory, lambda: set(os.listdir(self._read_real(directory))))

    async def download(self, path: str) -> Download:
        """The file's metadata and blocks of :data:`DOWNLOAD_BLOCK` bytes; the caller must
        exhaust ``chunks`` or ``aclose()`` it (collection closes it too)."""
        path = paths.normalize(path)
        fd, st = await self._run(path, self._open, path)
        return Download(path.rpartition("/")[2], st.st_size, st.st_mtime, _FileChunks(self, path, fd))

    def _open(self, path: str) -> tuple[int, os.stat_result]:
        # O_NONBLOCK: opening a fifo must not hang; it is refused right after like a directory
        fd = os.open(self._read_real(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | fileio.BINARY)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotFound(f"No such file: {path!r}")
            if hasattr(os, "set_blocking"):
                os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd, st

    # -- writing -----------------------------------------------------------------------------

    async def save(self, path: str, request: SaveRequest) -> tuple[Model, bool]:
        path = paths.normalize(path)
        if request.chunk is not None:
            return await self._save_chunk(path, request.chunk, request.data or b"")
        model, created = await self._run(path, self._save, path, request)
        if request.type == "notebook":
            await self._ensure_checkpoint(path)
        return model, created

    def _save(self, path: str, request: SaveRequest) -> tuple[Model, bool]:
        if request.type == "directory":
            return self._mkdir(path)
        real, mode = self._write_target(path)
        fileio.atomic_write(real, request.data or b"", mode)
        if request.type == "notebook":
            self._sign(path, request.notebook)
        model = self._model_of(path, real)
        if request.message:
            model["message"] = request.message
        return model, mode is None

    def _mkdir(self, path: str) -> tuple[Model, bool]:
        self._refuse_hidden_write(path)
        if path:
            _, real = self._root.entry(path)
            self._refuse_hidden_write(self._root.relative(real))
        else:
            real = self._root.path
        try:
            os.mkdir(real)
        except FileExistsError:
            if not os.path.isdir(real):
                raise BadRequest(f"{path!r} exists and is not a directory", reason="bad type") from None
            return self._model_of(path, real), False
        except FileNotFoundError:
            raise NotFound(f"No such directory: {paths.split(path)[0]!r}") from None
        return self._model_of(path, real), True

    async def _ensure_checkpoint(self, path: str) -> None:
        """A notebook always has a checkpoint after its first save (as jupyter_server). The save
        itself succeeded, so a failure here is logged, not raised."""
        try:
            if not await self.checkpoints.list(path):
                await self.checkpoints.create(path)
        except NBServerError as exc:
            log.warning("Could not create the first checkpoint of %r: %s", path, exc.message)

    # -- chunked uploads ---------------------------------------------------------------------

    async def _save_chunk(self, path: str, chunk: int, data: bytes) -> tuple[Model, bool]:
        """Chunks go 1, 2, 3, ..., -1. A chunk 1 always starts afresh (a client retrying an
        upload discards its abandoned attempt); any other chunk out of order (missing or
        repeated) discards the upload with 400 "bad chunk"."""
        async with self._upload_lock:
            now = time.monotonic()
            dropped = [
                self._uploads.pop(key)
                for key, upload in list(self._uploads.items())
                if now - upload.touched > UPLOAD_IDLE_LIMIT
            ]
            current = self._uploads.pop(path, None)
            if chunk == 1 and current is not None:
                dropped.append(current)
                current = None
            expected = 1 if current is None else current.next_chunk
            if chunk != expected and (chunk != -1 or current is None):
                dropped += [current] if current else []
                await self._run(path, fileio.remove_quietly, *[u.temp for u in dropped])
                raise BadRequest(
                    f"Chunk {chunk} of {path!r} is out of order: expected {expected}"
                    + (" or -1" if current else ""),
                    reason="bad chunk",
                )
            stale = [u.temp for u in dropped]
            if current is None:
                current = await self._run(path, self._upload_start, path, data, stale)
                self._uploads[path] = current
                return self._upload_model(path, current), not current.existed
            if chunk == -1:
                return await self._run(path, self._upload_finish, path, current, data, stale), False
            await self._run(path, self._upload_append, current, data, stale)
            current.touched = now
            self._uploads[path] = current
            return self._upload_model(path, current), False

    def _upload_start(self, path: str, data: bytes, stale: list[str]) -> _Upload:
        fileio.remove_quietly(*stale)
        real, mode = self._write_target(path)
        temp = fileio.new_temp(os.path.dirname(real), data)
        return _Upload(temp, real, mode is not None, time.time(), time.monotonic(), len(data))

    def _upload_append(self, upload: _Upload, data: bytes, stale: list[str]) -> None:
        fileio.remove_quietly(*stale)
        fileio.append_temp(upload.temp, data)
        upload.size += len(data)
        upload.next_chunk += 1

    def _upload_finish(self, path: str, upload: _Upload, data: bytes, stale: list[str]) -> Model:
        fileio.remove_quietly(*stale)
        fileio.append_temp(upload.temp, data)
        try:
            self._root.confine(upload.target, path)  # a directory may have been swapped for a symlink
            mode = fileio.target_mode(upload.target)
        except BaseException:
            fileio.remove_quietly(upload.temp)
            raise
        fileio.commit(upload.temp, upload.target, mode)
        return self._model_of(path, upload.target)

    def _upload_model(self, path: str, upload: _Upload) -> Model:
        """The model of an unfinished upload: the target as a file of the bytes received."""
        return base_model(
            path,
            "file",
            created=timestamp(upload.started),
            last_modified=timestamp(time.time()),
            size=upload.size,
            writable=True,
            mimetype=fileio.mimetype(path.rpartition("/")[2]),
        )

    # -- rename, delete, copy ----------------------------------------------------------------

    async def rename(self, old_path: str, new_path: str) -> Model:
        old_path, new_path = paths.normalize(old_path), paths.normalize(new_path)
        model = await self._run(old_path, self._rename, old_path, new_path)
        if old_path != new_path:
            try:
                await self.checkpoints.rename_all(old_path, new_path)
            except NBServerError as exc:  # the file has moved: that is the answer, not an error
                log.warning(
                    "Renamed %r to %r, but its checkpoint could not follow: %s",
                    old_path,
                    new_path,
                    exc.message,
                )
        return model

    def _rename(self, old_path: str, new_path: str) -> Model:
        old = self._entry(old_path)
        if new_path == old_path:
            return self._model_of(new_path, os.path.realpath(old))
        if not new_path:
            raise BadRequest("The root directory cannot be replaced", reason="root")
        self._refuse_hidden_write(new_path)
        new = self._new_entry(new_path, renamed=old)
        if stat.S_ISDIR(os.lstat(old).st_mode) and new.startswith(old + os.sep):
            raise BadRequest(f"Cannot move {old_path!r} into itself", reason="bad path")
        fileio.move(old, new)
        return self._model_of(new_path, os.path.realpath(new))

    async def delete(self, path: str) -> None:
        path = paths.normalize(path)
        await self._run(path, self._delete, path)
        await self.checkpoints.delete_all(path)

    def _delete(self, path: str) -> None:
        entry = self._entry(path)
        if self.delete_to_trash and _send2trash is not None:
            if not os.access(os.path.dirname(entry), os.W_OK):
                raise Forbidden(f"Permission denied: {path!r}", reason="permission denied")
            try:
                # send2trash creates the trash folders and picks names in them without locking:
                # two deletes at once race ("File exists"), so they go one at a time.
                with _TRASH_LOCK:
                    _send2trash(entry)
            except OSError as exc:
                raise BadRequest(f"send2trash failed: {exc}", reason="trash failed") from exc
            return
        if not stat.S_ISDIR(os.lstat(entry).st_mode):
            os.unlink(entry)
            return
        if set(os.listdir(entry)) - {CHECKPOINT_DIR} and not self.always_delete_dir:
            raise BadRequest(f"Directory {path!r} is not empty", reason="directory not empty")
        shutil.rmtree(entry)

    async def copy(self, from_path: str, to_path: str) -> Model:
        from_path, to_path = paths.normalize(from_path), paths.normalize(to_path)
        return await self._run(from_path, self._copy, from_path, to_path)

    def _copy(self, from_path: str, to_path: str) -> Model:
        self._refuse_hidden_write(from_path, to_path)
        source = self._root.real(from_path)
        self._refuse_hidden_write(self._root.relative(source))
        st = os.stat(source)
        if stat.S_ISDIR(st.st_mode):
            raise BadRequest(f"{from_path!r} is a directory; only files can be copied", reason="bad type")
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"No such file: {from_path!r}")
        if not to_path:
            raise Conflict(f"File already exists: {to_path}", reason="exists")
        target = self._new_entry(to_path)
        try:  # a copy never replaces: another request may have taken the name since the check
            fileio.atomic_copy(source, target, stat.S_IMODE(st.st_mode), None, replace=False)
        except FileExistsError:
            raise Conflict(f"File already exists: {to_path}", reason="exists") from None
        return self._model_of(to_path, target)

    # -- life cycle --------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Discard unfinished uploads (their temp files) and stop the owned executor."""
        async with self._upload_lock:
            temps = [upload.temp for upload in self._uploads.values()]
            self._uploads.clear()
            if temps:
                await self._run("", fileio.remove_quietly, *temps)
        if self.notary is not None:
            await self._run("", self.notary.close)
        if self._owns_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._root.path!r})"
