"""The contents model and the rules every contents manager shares. Pure: bytes and dicts in, bytes
and dicts out, :class:`~nbserver.errors.NBServerError` for bad input.

A model (jupyter_server's, field for field)::

    {name, path, type: "file"|"notebook"|"directory", writable, created, last_modified,
     mimetype, content, format: "text"|"base64"|"json"|None, size, hash, hash_algorithm,
     [message]}

``content`` and ``format`` are ``None`` unless content was asked for; a directory's content is a
list of child models without content; ``message`` appears only when a notebook fails validation
(the notebook is still returned).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import math
import mimetypes
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from ...errors import BadRequest
from . import notebooks
from .pacing import Tick, no_tick

__all__ = [
    "HASH_ALGORITHM",
    "SaveRequest",
    "base_model",
    "decode_file",
    "encode_file",
    "file_hash",
    "guess_mimetype",
    "increment_name",
    "new_notebook_bytes",
    "notebook_request",
    "parse_save_model",
    "read_notebook",
    "timestamp",
    "untitled_name",
]

Model = dict[str, Any]

TYPES = ("file", "notebook", "directory")
FORMATS = ("text", "base64")
HASH_ALGORITHM = "sha256"
UNTITLED = {"notebook": "Untitled", "file": "untitled", "directory": "Untitled Folder"}


def timestamp(seconds: float) -> str:
    """A POSIX time as jupyter's ISO 8601 ``...Z``, exactly as
    ``datetime.fromtimestamp(seconds, timezone.utc).isoformat()`` spells it (``+00:00`` as ``Z``);
    an impossible time becomes the epoch.

    The date and time of day are formatted once per whole second (listings call this twice per
    entry, and files made together share their seconds); the microseconds are rounded as
    ``fromtimestamp`` rounds them (half to even).
    """
    try:
        fraction, whole = math.modf(seconds)
        micro = round(fraction * 1e6)
        if micro >= 1_000_000:
            whole, micro = whole + 1, micro - 1_000_000
        elif micro < 0:
            whole, micro = whole - 1, micro + 1_000_000
        second = _SECONDS.get(whole)
        if second is None:
            if len(_SECONDS) >= 4096:
                _SECONDS.clear()
            second = _SECONDS[whole] = datetime.fromtimestamp(whole, timezone.utc).isoformat()[:19]
    except (ValueError, OverflowError, OSError):
        return "1970-01-01T00:00:00Z"
    return f"{second}.{micro:06d}Z" if micro else second + "Z"


_SECONDS: dict[float, str] = {}  # whole second -> "YYYY-MM-DDTHH:MM:SS" (a dict: lru_cache costs more)


def base_model(
    path: str,
    type: str,
    *,
    created: str,
    last_modified: str,
    size: int | None,
    writable: bool,
    mimetype: str | None = None,
) -> Model:
    return {
        "name": path.rpartition("/")[2],
        "path": path,
        "type": type,
        "writable": writable,
        "created": created,
        "last_modified": last_modified,
        "mimetype": mimetype,
        "content": None,
        "format": None,
        "size": size,
        "hash": None,
        "hash_algorithm": None,
    }


def guess_mimetype(name: str, format: str | None = None) -> str:
    """The file's MIME type from its name; unknown text is ``text/plain``, unknown binary
    ``application/octet-stream``."""
    guessed = mimetypes.guess_type(name, strict=False)[0]
    if guessed:
        return guessed
    return "application/octet-stream" if format == "base64" else "text/plain"


def file_hash(raw: bytes) -> str:
    return hashlib.new(HASH_ALGORITHM, raw).hexdigest()


# -- files -------------------------------------------------------------------------------------


def decode_file(raw: bytes, format: str | None) -> tuple[str, str]:
    """File bytes as model content: ``(content, format)``.

    ``format=None`` tries UTF-8 and falls back to base64, as jupyter_server does.

    Raises:
        BadRequest: ``reason="bad format"`` when text is asked for and the bytes are not UTF-8.
    """
    if format != "base64":
        try:
            return raw.decode("utf-8"), "text"
        except UnicodeDecodeError:
            if format == "text":
                raise BadRequest(
                    "File is not UTF-8 encoded; ask for format=base64", reason="bad format"
                ) from None
    return base64.b64encode(raw).decode("ascii"), "base64"


def encode_file(content: Any, format: Any) -> bytes:
    """Model content as the bytes to store.

    Raises:
        BadRequest: ``reason="bad format"`` for an unknown format, non-string content, or
            invalid base64.
    """
    if format not in FORMATS:
        raise BadRequest(f"format must be 'text' or 'base64' for a file, not {format!r}", reason="bad format")
    if not isinstance(content, str):
        raise BadRequest(f"File content must be a string, not {type(content).__name__}", reason="bad format")
    if format == "text":
        try:
            return content.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates
            raise BadRequest(f"File content is not valid text: {exc}", reason="bad format") from None
    try:
        # line breaks are allowed (base64.encodebytes and MIME tools emit them, and
        # jupyter_server accepts them); any other character outside the alphabet is refused
        return base64.b64decode("".join(content.split()).encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise BadRequest("File content is not valid base64", reason="bad format") from None


# -- notebooks ---------------------------------------------------------------------------------


def read_notebook(raw: bytes, tick: Tick = no_tick) -> tuple[dict[str, Any], str | None]:
    """Parse stored notebook bytes, upgraded to nbformat v4: ``(notebook, validation message)``;
    ``tick`` is called between cells (:mod:`.pacing`).

    Raises:
        BadRequest: ``reason="bad notebook"`` when the bytes are not a notebook at all.
    """
    try:
        nb = notebooks.load(raw, tick)
        return nb, notebooks.validation_message(nb, tick)
    except (notebooks.NotANotebook, RecursionError) as exc:
        raise BadRequest(f"Unreadable Notebook: {exc}", reason="bad notebook") from None


def notebook_request(content: Any, tick: Tick = no_tick) -> SaveRequest:
    """A notebook model's content as a :class:`SaveRequest`: the bytes to store, the validation
    message, and whether to sign it (see :func:`.notebooks.prepare_save`, which gets ``tick``).

    A notebook that fails schema validation is still stored (never lose a user's work) and the
    message is returned, as jupyter_server does.

    Raises:
        BadRequest: ``reason="bad notebook"`` when the content cannot be stored as a notebook
            (:func:`.notebooks.structure_problem`: the message names the first problem).
    """
    try:
        data, message, trusted, nb = notebooks.prepare_save(content, tick)
    except notebooks.NotANotebook as exc:
        raise BadRequest(f"Invalid notebook: {exc}", reason="bad notebook") from None
    return SaveRequest("notebook", data, None, message, notebook=nb if trusted else None)


def new_notebook_bytes() -> bytes:
    """An empty notebook, as ``nbformat.v4.new_notebook()`` saved by jupyter_server."""
    return notebooks.prepare_save({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})[0]


# -- save requests -----------------------------------------------------------------------------


class SaveRequest:
    """A validated PUT model: what to store at a path.

    ``data`` is the bytes for files and notebooks, ``None`` for directories; ``chunk`` is the
    chunk number of a chunked upload (1, 2, ... then -1 for the last) or ``None``; ``message``
    a notebook's validation message. ``notebook`` is set when a notebook is to be signed as
    trusted after it is stored (every code cell trusted): the notebook as stored, as a dict.
    """

    __slots__ = ("chunk", "data", "message", "notebook", "type")

    def __init__(
        self,
        type: str,
        data: bytes | None,
        chunk: int | None,
        message: str | None,
        *,
        notebook: dict[str, Any] | None = None,
    ) -> None:
        self.type = type
        self.data = data
        self.chunk = chunk
        self.message = message
        self.notebook = notebook


def parse_save_model(model: Any, tick: Tick = no_tick) -> SaveRequest:
    """Check a PUT body and turn it into a :class:`SaveRequest` (``tick``: see
    :func:`notebook_request`).

    Raises:
        BadRequest: ``reason="bad model"`` for a body that is not an object, a ``copy_from``
            (jupyter_server refuses it on PUT too), a missing or unknown ``type``, missing
            ``content``, a bad ``chunk``; ``"bad format"`` / ``"bad notebook"`` for content
            that does not decode.
    """
    if not isinstance(model, dict):
        raise BadRequest("The body must be a JSON object (a contents model)", reason="bad model")
    if "copy_from" in model:
        raise BadRequest("Cannot copy with PUT, only POST", reason="bad model")
    kind = model.get("type")
    if kind not in TYPES:
        raise BadRequest(f"type must be one of {', '.join(TYPES)}, not {kind!r}", reason="bad model")
    chunk = model.get("chunk")
    if chunk is not None:
        if kind != "file":
            raise BadRequest("Only files can be uploaded in chunks", reason="bad model")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or (chunk < 1 and chunk != -1):
            raise BadRequest(f"chunk must be 1, 2, ... or -1, not {chunk!r}", reason="bad model")
    if kind == "directory":
        return SaveRequest(kind, None, None, None)
    if "content" not in model or model["content"] is None:
        raise BadRequest("No file content provided", reason="bad model")
    if kind == "notebook":
        if model.get("format", "json") not in ("json", None):
            raise BadRequest("A notebook's format must be 'json'", reason="bad format")
        return notebook_request(model["content"], tick)
    return SaveRequest(kind, encode_file(model["content"], model.get("format")), chunk, None)


# -- names -------------------------------------------------------------------------------------


def increment_name(name: str, taken: Callable[[str], bool], insert: str = "") -> str:
    """The first of ``name``, ``<base><insert>1<ext>``, ``<base><insert>2<ext>``, ... not taken.

    The number goes before the last dot for ``.ipynb`` and before the first dot otherwise
    (``a.tar.gz`` -> ``a1.tar.gz``), as jupyter_server names untitled files and copies (a copy
    uses ``insert="-Copy"``: ``a.ipynb`` -> ``a-Copy1.ipynb`` next to the original).
    """
    base, dot, ext = name.rpartition(".")
    if ext != "ipynb":
        base, dot, ext = name.partition(".")
    if not base:  # ".bashrc"-like names: count after the whole name
        base, dot, ext = name, "", ""
    for i in itertools.count():
        candidate = f"{base}{insert}{i}{dot}{ext}" if i else f"{base}{dot}{ext}"
        if not taken(candidate):
            return candidate
    raise AssertionError("unreachable")


def untitled_name(type: str, ext: str, taken: Callable[[str], bool]) -> str:
    """``Untitled.ipynb``, ``Untitled1.ipynb``; ``untitled.txt``; ``Untitled Folder 1`` ..."""
    if type == "notebook":
        ext = ".ipynb"
    elif type == "directory":
        ext = ""
    return increment_name(UNTITLED[type] + ext, taken, insert=" " if type == "directory" else "")
