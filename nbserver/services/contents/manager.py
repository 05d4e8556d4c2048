"""The contents interfaces: :class:`ContentsManager` and :class:`Checkpoints`.

Handlers call only these methods, so any storage (the local filesystem by default; S3, a
database, memory in the tests) plugs in by implementing them. Rules every implementation keeps:

- Methods are async and never block the event loop (blocking I/O goes to a thread).
- Every path argument is an API path; implementations pass it through
  :func:`~nbserver.services.contents.paths.normalize` first and refuse hidden paths unless
  ``allow_hidden`` (reads: 404, writes: 400, as jupyter_server).
- Errors are :class:`~nbserver.errors.NBServerError` subclasses with jupyter_server's statuses:
  404 missing, 409 rename target exists, 400 bad input (``reason`` says which), 403 permission
  denied. Foreign exceptions (``OSError``...) are translated at this boundary.
- Writes are all-or-nothing: a failed or interrupted save leaves the old content or the new,
  never a mix; a chunked upload becomes visible only when its last chunk arrives.

Events: with ``events`` set (the server's bus, connected when the events routes are mounted),
every implementation emits jupyter_server's ``contents_service/v1`` events, after an action
succeeds, without doing anything itself: the ABC wraps the subclass's ``get`` (``get``),
``save`` (``save``; a chunked upload at its last chunk only), ``new_untitled`` (``save``),
``rename`` and ``copy`` (``path`` the new path, ``source_path`` the old), ``delete``. Only the
outermost call emits: a ``get`` made inside a ``save`` (or a ``super().save``) is part of it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from ...errors import BadRequest, NBServerError, NotFound
from ..events.bus import EventSink
from ..events.schemas import CONTENTS
from . import paths
from .models import SaveRequest, new_notebook_bytes, untitled_name

__all__ = ["Checkpoints", "ContentsManager", "Download", "EntryKind", "Model"]

Model = dict[str, Any]
EntryKind = Literal["file", "directory"]

log = logging.getLogger("nbserver.app")

# -- events (see the module docstring) ---------------------------------------------------------

#: True while an emitting method runs: the calls it makes are part of its action
_EMITTING: ContextVar[bool] = ContextVar("nbserver_contents_emitting", default=False)
_Describe = Callable[[tuple[Any, ...], dict[str, Any], Any], "dict[str, Any] | None"]


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return kwargs[name] if name in kwargs else args[index]


def _saved(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> dict[str, Any] | None:
    if _arg(args, kwargs, 1, "request").chunk not in (None, -1):
        return None  # an upload is saved when its last chunk is
    return {"action": "save", "path": result[0]["path"]}


#: the event of each emitting method, from its arguments and result (None: no event)
_EVENTS: dict[str, _Describe] = {
    "get": lambda args, kwargs, model: {"action": "get", "path": model["path"]},
    "save": _saved,
    "new_untitled": lambda args, kwargs, model: {"action": "save", "path": model["path"]},
    "rename": lambda args, kwargs, model: {
        "action": "rename",
        "path": model["path"],
        "source_path": paths.normalize(_arg(args, kwargs, 0, "old_path")),
    },
    "copy": lambda args, kwargs, model: {
        "action": "copy",
        "path": model["path"],
        "source_path": paths.normalize(_arg(args, kwargs, 0, "from_path")),
    },
    "delete": lambda args, kwargs, _: {
        "action": "delete",
        "path": paths.normalize(_arg(args, kwargs, 0, "path")),
    },
}


def _emitting(method: Callable[..., Awaitable[Any]], describe: _Describe) -> Callable[..., Awaitable[Any]]:
    """``method``, emitting its event once it succeeded when it is the outermost emitting call."""

    @functools.wraps(method)
    async def emitting(self: ContentsManager, *args: Any, **kwargs: Any) -> Any:
        if _EMITTING.get():
            return await method(self, *args, **kwargs)
        token = _EMITTING.set(True)
        try:
            result = await method(self, *args, **kwargs)
        finally:
            _EMITTING.reset(token)
        data = describe(args, kwargs, result) if self.events is not None else None
        if data is not None:
            self._emit(data)
        return result

    emitting.__dict__["_emits_event"] = True
    return emitting


@dataclass(frozen=True)
class Download:
    """A file opened for ``/files``: metadata and its bytes as an async iterator of chunks."""

    name: str
    size: int
    last_modified: float  # POSIX time
    chunks: AsyncIterator[bytes]


class Checkpoints(ABC):
    """Saved copies of files, by API path. A checkpoint model is ``{"id", "last_modified"}``."""

    @abstractmethod
    async def create(self, path: str) -> Model:
        """Copy the current content of ``path`` into a checkpoint (replacing one with the same id)."""

    @abstractmethod
    async def list(self, path: str) -> list[Model]: ...

    @abstractmethod
    async def restore(self, path: str, checkpoint_id: str) -> None:
        """Put the checkpoint's content back at ``path`` (atomically). NotFound if no such id."""

    @abstractmethod
    async def delete(self, path: str, checkpoint_id: str) -> None:
        """NotFound if no such id."""

    @abstractmethod
    async def rename_all(self, old_path: str, new_path: str) -> None:
        """Move every checkpoint of ``old_path`` to ``new_path`` (after a rename)."""

    @abstractmethod
    async def delete_all(self, path: str) -> None:
        """Drop every checkpoint of ``path`` (after a delete)."""


class ContentsManager(ABC):
    """Async contents store. See the module docstring for the rules all methods follow."""

    allow_hidden: bool = False
    checkpoints: Checkpoints
    #: where the contents events go (None: nowhere); see the module docstring
    events: EventSink | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, describe in _EVENTS.items():
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_emits_event", False):
                setattr(cls, name, _emitting(method, describe))

    def _emit(self, data: dict[str, Any]) -> None:
        """Emit a contents event; the action already succeeded, so a failure is only logged."""
        assert self.events is not None
        try:
            self.events.emit(CONTENTS, data)
        except Exception:
            log.exception("Could not emit the contents event %s", data)

    # -- reading -----------------------------------------------------------------------------

    @abstractmethod
    async def get(
        self,
        path: str,
        *,
        content: bool = True,
        type: str | None = None,
        format: str | None = None,
        hash: bool = False,
    ) -> Model:
        """The model of ``path``.

        Args:
            content: include content (a directory's listing, a file's text/base64, a
                notebook's JSON).
            type: the expected type; a mismatch is 400 ``"bad type"``. ``"file"`` also
                reads a notebook as a plain file.
            format: ``"text"`` or ``"base64"`` for files (``None``: text if UTF-8, else base64).
            hash: add ``hash`` and ``hash_algorithm`` (files and notebooks; directories keep
                ``None``).

        Raises:
            NotFound: missing, hidden (unless allowed) or outside the root.
            BadRequest: ``"bad type"``, ``"bad format"`` (not UTF-8 but text asked),
                ``"bad notebook"`` (unreadable notebook).
        """

    @abstractmethod
    async def kind(self, path: str) -> EntryKind | None:
        """``"directory"``, ``"file"`` (notebooks included) or ``None`` if nothing is there.
        Hidden and outside-root paths are ``None``."""

    @abstractmethod
    async def download(self, path: str) -> Download:
        """Open a file for streaming. NotFound for missing, hidden, outside root or directories."""

    # -- writing -----------------------------------------------------------------------------

    @abstractmethod
    async def save(self, path: str, request: SaveRequest) -> tuple[Model, bool]:
        """Store ``request`` at ``path``: ``(model without content, created)``.

        A notebook save also creates the first checkpoint when there is none. A chunked upload
        (``request.chunk``: 1, 2, ..., then -1) must arrive in order; a missing or repeated chunk
        is 400 ``"bad chunk"`` and discards the upload, leaving ``path`` untouched. A chunk 1
        starts a new upload that supersedes the one in progress; which upload a later chunk
        belongs to is :class:`~.uploads.Uploads`' decision (409 ``"superseded"`` or ``"upload
        conflict"``; the file is never a mix of two uploads). Until the last chunk, ``path``
        keeps its old content (or does not exist) and the returned model describes the upload
        so far. A notebook whose content fails validation is saved and the model carries
        ``message`` (one that cannot be stored at all is refused when the request is parsed).

        Raises:
            NotFound: the parent directory does not exist.
            BadRequest: hidden path (unless allowed), ``"bad chunk"``, a directory in the way.
            Conflict: a chunk of a superseded or indistinguishable upload.
            Forbidden: permission denied.
            NBServerError: 507 ``"disk full"``: no space or quota left (nothing changed).
        """

    @abstractmethod
    async def rename(self, old_path: str, new_path: str) -> Model:
        """Move a file or directory, with its checkpoints.

        Raises:
            NotFound: ``old_path`` missing, or ``new_path``'s parent missing.
            Conflict: ``new_path`` exists.
            BadRequest: hidden path, the root, or moving a directory into itself.
        """

    @abstractmethod
    async def delete(self, path: str) -> None:
        """Delete a file or directory (and its checkpoints).

        Raises:
            NotFound: missing.
            BadRequest: the root, a hidden path, or a non-empty directory when the
                implementation's policy refuses it.
        """

    @abstractmethod
    async def copy(self, from_path: str, to_path: str) -> Model:
        """Copy a file to the new, not yet existing, file ``to_path``.

        Raises:
            NotFound: source missing. BadRequest: source is a directory, hidden path.
            Conflict: ``to_path`` exists.
        """

    async def new_untitled(self, directory: str, type: str = "", ext: str = "") -> Model:
        """Create ``Untitled.ipynb`` / ``untitled<ext>`` / ``Untitled Folder`` (numbered when
        taken) in ``directory``; the type defaults from ``ext`` as in jupyter_server."""
        directory = paths.normalize(directory)
        if type not in ("", "file", "notebook", "directory"):
            raise BadRequest(f"Unexpected model type: {type!r}", reason="bad type")
        type = type or ("notebook" if ext == ".ipynb" else "file")
        if await self.kind(directory) != "directory":
            raise NotFound(f"No such directory: {directory!r}")
        data = new_notebook_bytes() if type == "notebook" else b"" if type == "file" else None
        async with self._untitled_lock:  # two at once (a double click) must not pick one name
            names = await self.names(directory)
            name = untitled_name(type, ext, names.__contains__)
            model, _ = await self.save(paths.join(directory, name), SaveRequest(type, data, None, None))
        return model

    new_untitled = _emitting(new_untitled, _EVENTS["new_untitled"])  # type: ignore[assignment]

    @functools.cached_property
    def _untitled_lock(self) -> asyncio.Lock:
        return asyncio.Lock()

    async def names(self, directory: str) -> set[str]:
        """Every name in ``directory`` (for choosing a free name). This default reads the listing;
        implementations override it to include the names listings hide."""
        listing = await self.get(directory, content=True, type="directory")
        return {child["name"] for child in listing["content"]}

    # -- trust ---------------------------------------------------------------------------------

    async def trust(self, path: str) -> None:
        """Sign the notebook at ``path`` as trusted (``POST /api/contents/<path>/trust``): its
        code cells read back with ``metadata.trusted = true`` until its outputs change.

        This default refuses (501): implementations that keep trust override it, and mark the
        cells of the notebooks they read.

        Raises:
            NotFound: missing. BadRequest: not a notebook (``"bad type"``).
        """
        raise NBServerError(f"{type(self).__name__} does not keep notebook trust", status=501)

    # -- checkpoints ---------------------------------------------------------------------------

    async def _checkpointable(self, path: str) -> str:
        path = paths.normalize(path)
        if await self.kind(path) != "file":
            raise NotFound(f"No such file: {path!r}")
        return path

    async def create_checkpoint(self, path: str) -> Model:
        return await self.checkpoints.create(await self._checkpointable(path))

    async def list_checkpoints(self, path: str) -> list[Model]:
        return await self.checkpoints.list(await self._checkpointable(path))

    async def restore_checkpoint(self, path: str, checkpoint_id: str) -> None:
        await self.checkpoints.restore(await self._checkpointable(path), checkpoint_id)

    async def delete_checkpoint(self, path: str, checkpoint_id: str) -> None:
        await self.checkpoints.delete(await self._checkpointable(path), checkpoint_id)

    # -- life cycle ----------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Release resources (abandoned chunked uploads ...). Called when the server stops."""
        return None
