"""The default contents manager: files, notebooks and directories under a root directory.

Theory of operation. Every public method normalizes its API path(s) (:func:`.paths.normalize`)
and then does *all* of its filesystem work in one function run on a small thread pool, so the
event loop never waits for a disk. That function resolves paths with :class:`.fileio.Root`
(realpath confinement: a symlink leading outside the root is as unreachable as ``..``), applies
the hidden-file policy to the API path and to where it resolves, and raises
:class:`~nbserver.errors.NBServerError`; an ``OSError``/``ValueError`` escaping it is translated
once, in :meth:`FileContentsManager._run`.

Reading, checking and signing a notebook is Python that walks every cell: that work takes
turns with the event loop (:mod:`.pacing`), so a 10 MB notebook does not stall it.

Saves are atomic (:mod:`.fileio`). A chunked upload writes into one temp file next to its
target and replaces the target only with its last chunk (-1); which upload a chunk belongs to is
:mod:`.uploads`' decision, made under one lock, so chunks are applied strictly in order.
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
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from ...errors import BadRequest, ConfigError, Conflict, Forbidden, NBServerError, NotFound
from . import fileio, notebooks, paths, temps
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
from .pacing import Tick, no_tick, run_paced
from .trust import Notary
from .uploads import UPLOAD_IDLE_LIMIT, Upload, Uploads

try:
    from send2trash import send2trash as _send2trash
except ImportError:  # pragma: no cover - the optional "trash" extra
    _send2trash = None

__all__ = ["DOWNLOAD_BLOCK", "UPLOAD_IDLE_LIMIT", "FileContentsManager"]

log = logging.getLogger("nbserver.contents")
_TRASH_LOCK = threading.Lock()  # send2trash is not safe to run twice at once (see _delete)

DOWNLOAD_BLOCK = 256 * 1024

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class _Partial:
    """Where a chunked upload's bytes are: a temp file next to the realpath it will replace."""

    temp: str
    target: str


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
        state_dir: where to journal the directories that temp files go into (the server's
            runtime directory), so that :meth:`startup` removes what a crashed server left
            (:mod:`.temps`). ``None``: no journal, no sweep.
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
        state_dir: str | os.PathLike[str] | None = None,
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
        self._state_dir = state_dir
        self._journal = temps.Journal(state_dir) if state_dir is not None else None
        self.checkpoints = checkpoints or FileCheckpoints(
            self._root.path, executor=self._executor, journal=self._journal
        )
        self._uploads: Uploads[_Partial] = Uploads()
        self._upload_lock = asyncio.Lock()
        self._clock = time.monotonic  # of the uploads' bookkeeping

    @property
    def root_dir(self) -> str:
        """The root directory's realpath."""
        return self._root.path

    async def _run(self, path: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` in the executor; foreign errors become NBServerError (about API ``path``)."""
        return await fileio.run_in(
            self._executor, path, functools.partial(fn, *args, **kwargs), "contents manager"
        )

    async def _run_paced(self, path: str, fn: Callable[..., T], /, *args: Any) -> T:
        """:meth:`_run` of ``fn(*args, tick)``, taking turns with the event loop
        (:func:`.pacing.run_paced`): for work that may walk a big notebook in Python."""
        return await run_paced(
            lambda tick: fn(*args, tick),
            lambda job: fileio.run_in(self._executor, path, job, "contents manager"),
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
        if not content:  # no notebook to walk: no pacing either
            return await self._run(path, self._get, path, content, type, format, hash)
        return await self._run_paced(path, self._get, path, content, type, format, hash)

    def _get(
        self,
        path: str,
        content: bool,
        type: str | None,
        format: str | None,
        hash: bool,
        tick: Tick = no_tick,
    ) -> Model:
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
            notebook, message = read_notebook(raw, tick)
            self._mark_trust(path, notebook, tick)
            model.update(content=notebook, format="json")
            if message:
                model["message"] = message
        elif content:
            text, fmt = decode_file(raw, format)
            model.update(content=text, format=fmt, mimetype=guess_mimetype(model["name"], fmt))
        return model

    # -- trust (run in the executor) --------------------------------------------------------

    def _mark_trust(self, path: str, notebook: dict[str, Any], tick: Tick) -> None:
        if self.notary is None:
            return
        try:
            trusted = self.notary.is_trusted(notebook, tick)
        except Exception as exc:  # a broken trust store must not make notebooks unreadable
            log.warning("Cannot check the trust of %r: %s", path, exc)
            trusted = False
        if not trusted:
            log.info("Notebook %s is not trusted", path)
        notebooks.mark_cells(notebook, trusted)

    def _sign(self, path: str, notebook: dict[str, Any] | None, tick: Tick) -> None:
        """Sign a saved notebook whose code cells were all trusted (``notebook``; ``None``
        when some were not). The save itself succeeded: a failure here is logged."""
        if self.notary is None:
            return
        if notebook is None:
            log.info("Notebook %s is not trusted", path)
            return
        try:
            self.notary.sign(notebook, tick)
        except Exception as exc:
            log.warning("Cannot sign %r as trusted: %s", path, exc)

    async def trust(self, path: str) -> None:
        path = paths.normalize(path)
        if self.notary is None:
            await super().trust(path)  # refuses
        await self._run_paced(path, self._trust, path)

    def _trust(self, path: str, tick: Tick) -> None:
        notebook = self._get(path, True, "notebook", None, False, tick)["content"]
        notebooks.check_cells(notebook, tick)  # drops the marks _get put on the cells
        assert self.notary is not None
        log.warning("Trusting notebook %s", path)
        self.notary.sign(notebook, tick)

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
        return Download(
            path.rpartition("/")[2],
            st.st_size,
            st.st_mtime,
            fileio.FileBlocks(self._executor, path, fd, DOWNLOAD_BLOCK),
        )

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
        if request.notebook is None:  # no notebook to sign
            model, created = await self._run(path, self._save, path, request, no_tick)
        else:
            model, created = await self._run_paced(path, self._save, path, request)
        if request.type == "notebook":
            await self._ensure_checkpoint(path)
        return model, created

    def _save(self, path: str, request: SaveRequest, tick: Tick) -> tuple[Model, bool]:
        if request.type == "directory":
            return self._mkdir(path)
        real, mode = self._write_target(path)
        fileio.atomic_write(real, request.data or b"", mode, journal=self._journal)
        if request.type == "notebook":
            self._sign(path, request.notebook, tick)
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
        """Chunks go 1, 2, 3, ..., -1; :class:`.Uploads` decides which upload each continues
        (a chunk 1 supersedes the upload in progress; 409 for a superseded upload's chunks and
        for chunks that could be either's; 400 ``"bad chunk"`` out of order)."""
        async with self._upload_lock:
            now = self._clock()
            verdict = self._uploads.judge(path, chunk, now)
            if verdict.discard:
                await self._run(path, fileio.remove_quietly, *[p.temp for p in verdict.discard])
            if verdict.error is not None:
                raise verdict.error
            upload = verdict.upload
            if upload is None:  # chunk 1
                upload = await self._run(path, self._upload_start, path, data, now)
                self._uploads.begin(path, upload)
                return self._upload_model(path, upload), not upload.existed
            try:
                if chunk == -1:
                    model = await self._run(path, self._upload_finish, path, upload.store, data)
                else:
                    await self._run(path, fileio.append_temp, upload.store.temp, data)
            except BaseException:  # the temp file is gone (fileio removes it on failure)
                self._uploads.end(path)
                raise
            if chunk == -1:
                self._uploads.end(path)
                return model, False
            upload.stored(len(data), now)
            return self._upload_model(path, upload), False

    def _upload_start(self, path: str, data: bytes, now: float) -> Upload[_Partial]:
        real, mode = self._write_target(path)
        temp = fileio.new_temp(os.path.dirname(real), data, journal=self._journal)
        return Upload(_Partial(temp, real), mode is not None, time.time(), now, len(data))

    def _upload_finish(self, path: str, partial: _Partial, data: bytes) -> Model:
        fileio.append_temp(partial.temp, data)
        try:
            self._root.confine(partial.target, path)  # a directory may have been swapped for a symlink
            mode = fileio.target_mode(partial.target)
        except BaseException:
            fileio.remove_quietly(partial.temp)
            raise
        fileio.commit(partial.temp, partial.target, mode)
        return self._model_of(path, partial.target)

    def _upload_model(self, path: str, upload: Upload[_Partial]) -> Model:
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
            fileio.atomic_copy(
                source, target, stat.S_IMODE(st.st_mode), None, replace=False, journal=self._journal
            )
        except FileExistsError:
            raise Conflict(f"File already exists: {to_path}", reason="exists") from None
        return self._model_of(to_path, target)

    # -- life cycle --------------------------------------------------------------------------

    async def startup(self) -> None:
        """Remove the temp files that crashed servers left (:func:`.temps.sweep`; only with a
        ``state_dir``). Called by the server before it serves."""
        if self._state_dir is not None:
            removed = await self._run("", temps.sweep, self._state_dir)
            if removed:
                log.info("Removed %d temp file(s) left by a server that stopped mid-save", removed)

    async def shutdown(self) -> None:
        """Discard unfinished uploads (their temp files), remove the temp-file journal and stop
        the owned executor."""
        async with self._upload_lock:
            leftover = [partial.temp for partial in self._uploads.clear()]
            if leftover:
                await self._run("", fileio.remove_quietly, *leftover)
        if self.notary is not None:
            await self._run("", self.notary.close)
        if self._journal is not None:
            await self._run("", self._journal.close)
        if self._owns_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._root.path!r})"
