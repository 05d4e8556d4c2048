"""A contents manager that keeps everything in dicts: no filesystem at all.

It implements :class:`~nbserver.services.contents.manager.ContentsManager` with the same rules as
the file manager (hidden paths, 404/409/400, ordered chunked uploads that become visible only
when complete, a notebook's first save creating its checkpoint, non-empty directories kept unless
``always_delete_dir``), built from the same pure helpers (:mod:`.models`, :mod:`.paths`). The API
tests run against it and against the file manager: the handlers must not care which it is.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from nbserver.errors import BadRequest, Conflict, NotFound
from nbserver.services.contents import models, paths
from nbserver.services.contents.manager import Checkpoints, ContentsManager, Download, EntryKind, Model
from nbserver.services.contents.uploads import Upload, Uploads

__all__ = ["InMemoryCheckpoints", "InMemoryContentsManager"]

CHECKPOINT_ID = "checkpoint"
CHUNK_SIZE = 64 * 1024
V = TypeVar("V")


@dataclass
class _File:
    data: bytes
    created: float
    modified: float


def _mimetype(path: str) -> str | None:
    """A content-less file model's MIME type: what the name says, if anything."""
    return mimetypes.guess_type(paths.split(path)[1], strict=False)[0]


def _under(table: Mapping[str, object], path: str) -> list[str]:
    """The keys of ``table`` that are ``path`` or inside it."""
    return [p for p in table if p == path or p.startswith(path + "/")]


def _move(table: dict[str, V], old_path: str, new_path: str) -> None:
    for p in _under(table, old_path):
        table[new_path + p[len(old_path) :]] = table.pop(p)


class InMemoryCheckpoints(Checkpoints):
    """One checkpoint (id ``"checkpoint"``) per file, holding a copy of its bytes."""

    def __init__(self, manager: InMemoryContentsManager) -> None:
        self._manager = manager
        self.saved: dict[str, _File] = {}

    def _get(self, path: str, checkpoint_id: str) -> _File:
        saved = self.saved.get(paths.normalize(path))
        if checkpoint_id != CHECKPOINT_ID or saved is None:
            raise NotFound(f"Checkpoint does not exist: {path}@{checkpoint_id}", reason="no such checkpoint")
        return saved

    @staticmethod
    def _model(saved: _File) -> Model:
        return {"id": CHECKPOINT_ID, "last_modified": models.timestamp(saved.modified)}

    async def create(self, path: str) -> Model:
        source = self._manager.file(paths.normalize(path))
        self.saved[paths.normalize(path)] = saved = _File(source.data, time.time(), source.modified)
        return self._model(saved)

    async def list(self, path: str) -> list[Model]:
        saved = self.saved.get(paths.normalize(path))
        return [] if saved is None else [self._model(saved)]

    async def restore(self, path: str, checkpoint_id: str) -> None:
        saved = self._get(path, checkpoint_id)
        self._manager.write(paths.normalize(path), saved.data)

    async def delete(self, path: str, checkpoint_id: str) -> None:
        self._get(path, checkpoint_id)
        del self.saved[paths.normalize(path)]

    async def rename_all(self, old_path: str, new_path: str) -> None:
        saved = self.saved.pop(paths.normalize(old_path), None)
        if saved is not None:
            self.saved[paths.normalize(new_path)] = saved

    async def delete_all(self, path: str) -> None:
        self.saved.pop(paths.normalize(path), None)


class InMemoryContentsManager(ContentsManager):
    """Files and directories in dicts. ``files`` maps API paths to bytes and times; ``dirs`` holds
    the directories (the root ``""`` always). Tests may seed both directly."""

    def __init__(self, *, allow_hidden: bool = False, always_delete_dir: bool = False) -> None:
        self.allow_hidden = allow_hidden
        self.always_delete_dir = always_delete_dir
        now = time.time()
        self.files: dict[str, _File] = {}
        self.dirs: dict[str, float] = {"": now}
        self.uploads: Uploads[bytearray] = Uploads()  # not visible at their paths until the last chunk
        self.checkpoints: InMemoryCheckpoints = InMemoryCheckpoints(self)

    # -- helpers (also used by the tests to seed content) -------------------------------------

    def seed(self, path: str, data: bytes | None) -> None:
        """Create a file (or, with ``None``, a directory) and its parents, bypassing every rule."""
        parts = paths.normalize(path).split("/")
        for i in range(1, len(parts)):
            self.dirs.setdefault("/".join(parts[:i]), time.time())
        if data is None:
            self.dirs.setdefault("/".join(parts), time.time())
        else:
            self.write("/".join(parts), data)

    def write(self, path: str, data: bytes) -> None:
        old = self.files.get(path)
        now = time.time()
        self.files[path] = _File(bytes(data), old.created if old else now, now)

    def file(self, path: str) -> _File:
        if path not in self.files:
            raise NotFound(f"No such file: {path!r}")
        return self.files[path]

    def _read_path(self, path: str) -> str:
        path = paths.normalize(path)
        if paths.is_hidden(path) and not self.allow_hidden:
            raise NotFound(f"No such file or directory: {path!r}")
        return path

    def _write_path(self, path: str, what: str = "write") -> str:
        path = paths.normalize(path)
        if paths.is_hidden(path) and not self.allow_hidden:
            raise BadRequest(f"Cannot {what} the hidden path {path!r}", reason="hidden")
        if not path:
            raise BadRequest(f"Cannot {what} the root directory", reason="root")
        return path

    def _need_parent(self, path: str) -> None:
        parent = paths.split(path)[0]
        if parent not in self.dirs:
            raise NotFound(f"No such directory: {parent!r}")

    def _children(self, directory: str) -> list[str]:
        prefix = directory + "/" if directory else ""
        return [
            p for p in (*self.dirs, *self.files) if p and p.startswith(prefix) and "/" not in p[len(prefix) :]
        ]

    def _model(self, path: str, *, content: bool, type: str | None, format: str | None, hash: bool) -> Model:
        if path in self.dirs:
            if type not in (None, "directory"):
                raise BadRequest(f"{path!r} is a directory, not a {type}", reason="bad type")
            when = models.timestamp(self.dirs[path])
            model = models.base_model(
                path, "directory", created=when, last_modified=when, size=None, writable=True
            )
            if content:
                listed = [
                    c for c in self._children(path) if paths.is_listed(paths.split(c)[1], self.allow_hidden)
                ]
                model["content"] = [
                    self._model(c, content=False, type=None, format=None, hash=False) for c in sorted(listed)
                ]
                model["format"] = "json"
            return model
        entry = self.file(path)
        notebook = path.endswith(".ipynb") and type != "file"
        if type == "directory" or (type == "notebook" and not notebook):
            raise BadRequest(f"{path!r} is not a {type}", reason="bad type")
        model = models.base_model(
            path,
            "notebook" if notebook else "file",
            created=models.timestamp(entry.created),
            last_modified=models.timestamp(entry.modified),
            size=len(entry.data),
            writable=True,
        )
        if notebook:
            if content:
                model["content"], message = models.read_notebook(entry.data)
                model["format"] = "json"
                if message:
                    model["message"] = message
        else:
            model["mimetype"] = _mimetype(path)
            if content:
                model["content"], model["format"] = models.decode_file(entry.data, format)
                model["mimetype"] = models.guess_mimetype(path, model["format"])
        if hash:
            model["hash"], model["hash_algorithm"] = models.file_hash(entry.data), models.HASH_ALGORITHM
        return model

    # -- ContentsManager ------------------------------------------------------------------------

    async def get(
        self,
        path: str,
        *,
        content: bool = True,
        type: str | None = None,
        format: str | None = None,
        hash: bool = False,
    ) -> Model:
        path = self._read_path(path)
        if path not in self.dirs and path not in self.files:
            raise NotFound(f"No such file or directory: {path!r}")
        return self._model(path, content=content, type=type, format=format, hash=hash)

    async def kind(self, path: str) -> EntryKind | None:
        try:
            path = self._read_path(path)
        except NotFound:
            return None
        return "directory" if path in self.dirs else "file" if path in self.files else None

    async def download(self, path: str) -> Download:
        entry = self.file(self._read_path(path))
        data = entry.data

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), CHUNK_SIZE):
                yield data[start : start + CHUNK_SIZE]

        return Download(paths.split(path)[1], len(data), entry.modified, chunks())

    async def names(self, directory: str) -> set[str]:
        directory = paths.normalize(directory)
        if directory not in self.dirs:
            raise NotFound(f"No such directory: {directory!r}")
        return {paths.split(c)[1] for c in self._children(directory)}

    async def save(self, path: str, request: models.SaveRequest) -> tuple[Model, bool]:
        path = self._write_path(path, "save")
        self._need_parent(path)
        existed = path in self.files or path in self.dirs
        if request.type == "directory":
            if path in self.files:
                raise BadRequest(f"A file is in the way at {path!r}", reason="bad type")
            self.dirs.setdefault(path, time.time())
            return await self.get(path, content=False), not existed
        if path in self.dirs:
            raise BadRequest(f"A directory is in the way at {path!r}", reason="bad type")
        assert request.data is not None
        if request.chunk is not None:
            return self._save_chunk(path, request.chunk, request.data, existed)
        self.write(path, request.data)
        if request.type == "notebook" and not await self.checkpoints.list(path):
            await self.checkpoints.create(path)
        model = await self.get(path, content=False)
        if request.message:
            model["message"] = request.message
        return model, not existed

    def _save_chunk(self, path: str, chunk: int, data: bytes, existed: bool) -> tuple[Model, bool]:
        """The same rules as the file manager's, through the same :class:`Uploads`."""
        now = time.monotonic()
        verdict = self.uploads.judge(path, chunk, now)
        if verdict.error is not None:
            raise verdict.error
        upload = verdict.upload
        if upload is None:
            upload = Upload(bytearray(data), existed, time.time(), now, len(data))
            self.uploads.begin(path, upload)
        elif chunk == -1:
            self.uploads.end(path)
            self.write(path, bytes(upload.store + data))
            return self._model(path, content=False, type=None, format=None, hash=False), False
        else:
            upload.store += data
            upload.stored(len(data), now)
        stamp = models.timestamp(time.time())
        model = models.base_model(
            path, "file", created=stamp, last_modified=stamp, size=len(upload.store), writable=True
        )
        model["mimetype"] = _mimetype(path)
        return model, chunk == 1 and not existed

    async def rename(self, old_path: str, new_path: str) -> Model:
        old_path, new_path = self._write_path(old_path, "rename"), self._write_path(new_path, "rename")
        if old_path not in self.files and old_path not in self.dirs:
            raise NotFound(f"No such file or directory: {old_path!r}")
        if new_path in self.files or new_path in self.dirs:
            raise Conflict(f"File already exists: {new_path!r}", reason="exists")
        self._need_parent(new_path)
        if new_path.startswith(old_path + "/"):
            raise BadRequest(f"Cannot move {old_path!r} into itself", reason="bad path")
        _move(self.files, old_path, new_path)
        _move(self.dirs, old_path, new_path)
        for p in _under(self.checkpoints.saved, old_path):
            await self.checkpoints.rename_all(p, new_path + p[len(old_path) :])
        return await self.get(new_path, content=False)

    async def delete(self, path: str) -> None:
        path = self._write_path(path, "delete")
        if path in self.files:
            del self.files[path]
            await self.checkpoints.delete_all(path)
            return
        if path not in self.dirs:
            raise NotFound(f"No such file or directory: {path!r}")
        if not self.always_delete_dir and len(_under(self.files, path) + _under(self.dirs, path)) > 1:
            raise BadRequest(f"Directory {path!r} is not empty", reason="directory not empty")
        for table in (self.files, self.dirs, self.checkpoints.saved):
            for p in _under(table, path):
                del table[p]

    async def copy(self, from_path: str, to_path: str) -> Model:
        from_path, to_path = self._write_path(from_path, "copy"), self._write_path(to_path, "copy")
        if from_path in self.dirs:
            raise BadRequest(f"Cannot copy the directory {from_path!r}", reason="bad type")
        source = self.file(from_path)
        if to_path in self.files or to_path in self.dirs:
            raise Conflict(f"File already exists: {to_path!r}", reason="exists")
        self._need_parent(to_path)
        self.write(to_path, source.data)
        return await self.get(to_path, content=False)
