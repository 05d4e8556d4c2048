"""``/api/contents``, its checkpoints, ``/files`` and the ``/api/notebooks`` redirect.

The handlers parse the request, call one :class:`~.manager.ContentsManager` method and write one
model; they contain no storage code, so any manager (the filesystem, memory, S3...) serves the
same API. Every API path goes through :func:`.paths.normalize` first: ``..``, absolute, backslash
and control-character paths are 404 ``"outside root"`` before a manager sees them.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import json
import mimetypes
import unicodedata
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import orjson
from tornado.iostream import StreamClosedError

from ...context import ServerContext
from ...errors import BadRequest, Conflict, NotFound
from ...routing import Route
from ...web import Access, APIHandler, BaseHandler, PageHandler, parse_json
from . import jsontext, models, pacing, paths
from .manager import ContentsManager, Model

__all__ = ["content_disposition", "files_media_type", "routes"]

_QUERY_CHOICES = {
    "content": ("0", "1"),
    "type": ("file", "notebook", "directory"),
    "format": ("text", "base64"),
    "hash": ("0", "1"),
}


_BIG_LISTING = 1000  # entries; a listing's JSON is about 270 bytes an entry


def _big(model: Model) -> bool:
    content = model["content"]
    if model["type"] == "notebook":
        return content is not None
    return model["type"] == "directory" and isinstance(content, list) and len(content) >= _BIG_LISTING


def _encode(model: Model, tick: pacing.Tick = pacing.no_tick) -> bytes:
    """A big model as a response body, made in a worker thread.

    A directory listing holds only strings, integers, booleans and ``None``, which orjson
    encodes exactly as the stdlib does (bar the escaping of non-ASCII, equal once parsed) and
    8 times faster: 4 ms instead of 29 for 10,000 entries. Notebooks keep the stdlib, as their
    content may hold what orjson changes (NaN becomes null) or refuses (integers over 64 bits),
    encoded cell by cell with ``tick`` between cells (:func:`.jsontext.compact_bytes`).
    """
    if model["type"] == "directory":
        try:
            return orjson.dumps(model)
        except orjson.JSONEncodeError:  # pragma: no cover - a listing is plain data
            pass
    return jsontext.compact_bytes(model, tick)


def _posix_time(iso: str) -> datetime:
    """A model's ``...Z`` timestamp as an aware datetime (tornado formats it as an HTTP date)."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


#: request bodies larger than this are parsed in a worker thread, paced (:mod:`.pacing`)
_OFF_LOOP_BYTES = 256 * 1024
_NAME_ATTEMPTS = 10  # a copy's name is chosen again this often when another copy took it


def _object(body: Any) -> dict[str, Any] | None:
    """A JSON body that must be an object (400 ``"bad model"``), or ``None`` when empty."""
    if body is not None and not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object", reason="bad model")
    return body


def _parse_put(raw: bytes, tick: pacing.Tick = pacing.no_tick) -> models.SaveRequest | None:
    """A PUT body as a save request; ``None`` for an empty body or ``{}`` (an untitled file).
    ``tick`` is called between the cells (and other items) of the body, as it is parsed and as
    the notebook in it is checked and written (:mod:`.pacing`)."""
    loads = json.loads if tick is pacing.no_tick else functools.partial(pacing.loads, tick=tick)
    body = _object(parse_json(raw, loads))
    return models.parse_save_model(body, tick) if body else None


class _ContentsAPIHandler(APIHandler):
    """Shared by the contents and checkpoints handlers: the manager and URL building."""

    access = Access.USER
    manager: ContentsManager

    def initialize(self, ctx: ServerContext, manager: ContentsManager) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.manager = manager

    def contents_url(self, path: str, *more: str) -> str:
        """The URL-escaped ``/api/contents[/<path>][/more...]`` under ``base_url`` (the root is
        ``/api/contents``, as jupyter_server's ``Location``)."""
        tail = "".join("/" + quote(part, safe="") for part in more)
        return f"{self.ctx.config.base_url}api/contents{'/' + quote(path) if path else ''}{tail}"

    def write_model(
        self, model: Model, status: int = 200, *, location: bool = True, encoded: bytes | None = None
    ) -> None:
        """Send a contents model with ``Last-Modified`` and (unless told not to) ``Location``."""
        if location:
            self.set_header("Location", self.contents_url(model["path"]))
        self.set_header("Last-Modified", _posix_time(model["last_modified"]))
        self.write_json(model, status, encoded=encoded)

    def query_choice(self, name: str) -> str | None:
        """A query argument that must be one of :data:`_QUERY_CHOICES`; 400 ``"bad <name>"``."""
        value = self.get_query_argument(name, None)
        if value is not None and value not in _QUERY_CHOICES[name]:
            allowed = ", ".join(_QUERY_CHOICES[name])
            raise BadRequest(f"{name}={value!r} is invalid: use one of {allowed}", reason=f"bad {name}")
        return value

    def object_body(self) -> dict[str, Any] | None:
        """The JSON body: ``None`` when empty, else it must be an object (400 ``"bad model"``)."""
        return _object(self.json_body())


class ContentsHandler(_ContentsAPIHandler):
    """``/api/contents`` and ``/api/contents/{path}``: read, save, create, rename, delete.

    Unknown query parameters (``contentProviderId``, cache busters) are ignored.

    Trailing slashes, as jupyter_server: ``/api/contents/`` is the root, like ``/api/contents``;
    any other path ending in ``/`` (``dir/``, ``a.txt/``, ``dir//``, ``dir/checkpoints/``) is
    redirected to the same URL without its trailing slashes, query kept, once the request is
    authenticated: 302 for GET and HEAD, 308 for the other methods (their method and body kept;
    jupyter_server's 302 makes clients drop them).
    """

    async def prepare(self) -> None:
        await super().prepare()
        raw = self.request.path  # as sent, still percent-encoded; it starts with base_url
        if self.answered or not raw.endswith("/") or raw == self.contents_url("") + "/":
            return
        query = self.request.query
        target = raw.rstrip("/") + ("?" + query if query else "")
        status = 302 if self.request.method in ("GET", "HEAD") else 308
        self.answer_after_body(lambda: self.redirect(target, status=status))

    async def get(self, path: str = "") -> None:
        """200 model + ``Last-Modified``. Query ``content`` 0|1, ``type``, ``format``, ``hash``
        0|1; any other value is 400 ``"bad <param>"``; a type mismatch is 400 ``"bad type"``."""
        content, type_, format_, hash_ = (self.query_choice(n) for n in _QUERY_CHOICES)
        model = await self.manager.get(
            paths.normalize(path), content=content != "0", type=type_, format=format_, hash=hash_ == "1"
        )
        encoded = None
        if _big(model):  # megabytes of JSON would stall every other request: in a thread, paced
            encoded = await pacing.run_paced(lambda tick: _encode(model, tick))
        self.write_model(model, location=False, encoded=encoded)

    async def put(self, path: str = "") -> None:
        """Save the body's model at ``path``: 201 when created, 200 when a file or notebook is
        replaced (``Location``); a directory model is 201 whether or not it existed.

        An empty body (or ``{}``) creates an untitled file in the directory ``path``, 201, as
        jupyter_server does. Body errors are 400 (:func:`.models.parse_save_model`).
        """
        path = paths.normalize(path)
        if self.body_length < _OFF_LOOP_BYTES:
            request = _parse_put(self.body)
        else:  # megabytes of notebook to parse, check and write: in a thread, paced
            request = await pacing.run_paced(lambda tick: _parse_put(self.body, tick))
        if request is None:
            self.write_model(await self.manager.new_untitled(path), 201)
            return
        model, created = await self.manager.save(path, request)
        if request.message and "message" not in model:
            model["message"] = request.message
        self.write_model(model, 201 if created or request.type == "directory" else 200)

    async def post(self, path: str = "") -> None:
        """Create in the directory ``path`` (201 + ``Location``): with no body, ``{}`` or
        ``{type?, ext?}`` an untitled file, notebook or folder; with ``{copy_from}`` a copy named
        ``name-Copy<n>.ext`` if ``name`` is taken. 400 if ``path`` is a file, 404 if missing."""
        path = paths.normalize(path)
        body = self.object_body() or {}
        if not self.manager.allow_hidden and paths.is_hidden(path):
            raise BadRequest(f"Cannot create anything in the hidden directory {path!r}", reason="hidden")
        kind = await self.manager.kind(path)
        if kind == "file":
            raise BadRequest("Cannot POST to files, use PUT instead.", reason="not a directory")
        if kind is None:
            raise NotFound(f"No such directory: {path!r}")
        type_, ext = body.get("type"), body.get("ext")  # checked even for a copy, which ignores them
        if not all(value is None or isinstance(value, str) for value in (type_, ext)):
            raise BadRequest("type and ext must be strings", reason="bad model")
        type_, ext = type_ or "", ext or ""
        if type_ not in ("", *models.TYPES):
            raise BadRequest(f"Unexpected model type: {type_!r}", reason="bad type")
        if "copy_from" in body:
            model = await self._copy(body["copy_from"], path)
        else:
            model = await self.manager.new_untitled(path, type_, ext)
        self.write_model(model, 201)

    async def _copy(self, copy_from: Any, directory: str) -> Model:
        if not isinstance(copy_from, str) or not copy_from:
            raise BadRequest("copy_from must be a path", reason="bad model")
        source = paths.normalize(copy_from)
        for _ in range(_NAME_ATTEMPTS - 1):
            with contextlib.suppress(Conflict):  # a copy at the same moment took the name: pick the next
                return await self._copy_to_a_free_name(source, directory)
        return await self._copy_to_a_free_name(source, directory)

    async def _copy_to_a_free_name(self, source: str, directory: str) -> Model:
        taken = await self.manager.names(directory)
        name = models.increment_name(paths.split(source)[1], taken.__contains__, insert="-Copy")
        return await self.manager.copy(source, paths.join(directory, name))

    async def patch(self, path: str = "") -> None:
        """Rename to the body's ``{"path": new}``: 200 + ``Location``; 400 without a string
        ``path``; 404 source missing; 409 target exists. Renaming to itself changes nothing."""
        path = paths.normalize(path)
        new_path = (self.object_body() or {}).get("path")
        if not isinstance(new_path, str):
            raise BadRequest('The body must be {"path": "<new path>"}', reason="bad model")
        new_path = paths.normalize(new_path)
        if path and new_path == path:
            model = await self.manager.get(path, content=False)
        else:
            model = await self.manager.rename(path, new_path)
        self.write_model(model)

    async def delete(self, path: str = "") -> None:
        """204 (no ``Location``). 400 for the root, a hidden path, a refused non-empty directory;
        404 when missing."""
        await self.manager.delete(paths.normalize(path))
        self.set_status(204)
        self.finish()


class CheckpointsHandler(_ContentsAPIHandler):
    """``/api/contents/{path}/checkpoints``: list (200) and create (201 + ``Location``)."""

    async def get(self, path: str) -> None:
        self.write_json(await self.manager.list_checkpoints(paths.normalize(path)))

    async def post(self, path: str) -> None:
        path = paths.normalize(path)
        checkpoint = await self.manager.create_checkpoint(path)
        self.set_header("Location", self.contents_url(path, "checkpoints", checkpoint["id"]))
        self.write_json(checkpoint, 201)


class CheckpointHandler(_ContentsAPIHandler):
    """``/api/contents/{path}/checkpoints/{checkpoint_id}``: restore (POST) or delete, 204;
    404 for an unknown file or id."""

    async def post(self, path: str, checkpoint_id: str) -> None:
        await self.manager.restore_checkpoint(paths.normalize(path), checkpoint_id)
        self.set_status(204)
        self.finish()

    async def delete(self, path: str, checkpoint_id: str) -> None:
        await self.manager.delete_checkpoint(paths.normalize(path), checkpoint_id)
        self.set_status(204)
        self.finish()


class TrustHandler(ContentsHandler):
    """``POST /api/contents/{path}/trust``: sign the notebook as trusted, 201 without a body (as
    jupyter_server). Other methods reach the file or directory literally named ``trust``."""

    async def post(self, path: str = "") -> None:
        await self.manager.trust(paths.normalize(path))
        self.set_status(201)
        self.finish()

    async def get(self, path: str = "") -> None:
        await super().get(path + "/trust")

    async def put(self, path: str = "") -> None:
        await super().put(path + "/trust")

    async def patch(self, path: str = "") -> None:
        await super().patch(path + "/trust")

    async def delete(self, path: str = "") -> None:
        await super().delete(path + "/trust")


# -- /files ------------------------------------------------------------------------------------


def _looks_like_text(head: bytes) -> bool:
    """Whether the first bytes of a file decode as UTF-8 (a sequence cut at the end is fine)."""
    if b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def files_media_type(name: str, head: bytes) -> str:
    """The ``Content-Type`` for ``/files``: ``.ipynb`` is ``application/x-ipynb+json``;
    compressed files are ``application/gzip`` (RFC 6713) or ``application/octet-stream``;
    otherwise :func:`.models.guess_mimetype`, deciding text or binary from ``head`` (the first
    bytes) when the name says nothing. UTF-8 text gets ``charset=UTF-8``."""
    if name.lower().endswith(".ipynb"):
        return "application/x-ipynb+json"
    encoding = mimetypes.guess_type(name, strict=False)[1]
    if encoding is not None:
        return "application/gzip" if encoding == "gzip" else "application/octet-stream"
    text = _looks_like_text(head)
    media_type = models.guess_mimetype(name, "text" if text else "base64")
    return media_type + "; charset=UTF-8" if text and media_type.startswith("text/") else media_type


def content_disposition(name: str) -> str:
    """``attachment`` with the exact name as RFC 5987 ``filename*`` and an ASCII ``filename``
    fallback for old clients (accents dropped, other characters replaced by ``_``)."""
    fallback = "".join(
        c if c.isascii() and (c.isalnum() or c in " ._-()[]+,;=@") else "_"
        for c in unicodedata.normalize("NFKD", name)
        if not unicodedata.combining(c)
    )
    return f"attachment; filename=\"{fallback or 'download'}\"; filename*=UTF-8''{quote(name, safe='')}"


class FilesHandler(PageHandler):
    """``/files/{path}``: a file's raw bytes, streamed from ``manager.download``.

    Every response carries ``Content-Security-Policy: sandbox allow-scripts`` (HTML and SVG run,
    if at all, in a unique origin that cannot reach the API) and ``nosniff``. ``.ipynb`` and
    ``?download=1`` are attachments. Missing, hidden, outside-root paths and directories are
    404. Anonymous visitors are sent to the login page; a ``?token=`` is accepted as is (scripts
    fetch ``/files/x?token=T``), without the page redirect that trades it for a cookie.
    """

    access = Access.USER
    content_security_policy = "frame-ancestors 'self'; sandbox allow-scripts"
    manager: ContentsManager

    def initialize(self, ctx: ServerContext, manager: ContentsManager) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.manager = manager

    async def prepare(self) -> None:
        await BaseHandler.prepare(self)  # not PageHandler.prepare: no ?token= redirect here

    def compute_etag(self) -> None:
        return None  # the body is flushed in chunks: tornado would hash only the last one

    async def get(self, path: str, include_body: bool = True) -> None:
        download = await self.manager.download(paths.normalize(path))
        chunks = download.chunks
        try:
            head = await anext(chunks, b"")
            self.set_header("Content-Type", files_media_type(download.name, head))
            if self.get_query_argument("download", "0") not in ("", "0") or download.name.endswith(".ipynb"):
                self.set_header("Content-Disposition", content_disposition(download.name))
            self.set_header("Content-Length", download.size)
            self.set_header("Last-Modified", datetime.fromtimestamp(download.last_modified, timezone.utc))
            self.set_header("Referrer-Policy", "no-referrer")  # keeps a ?token= out of Referer
            if include_body:
                await self._stream(head, chunks, download.size)
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _stream(self, head: bytes, chunks: Any, size: int) -> None:
        """Send exactly the ``size`` bytes that Content-Length promised. A file that grows
        meanwhile (a log being written) is cut at its size when opened; one that shrinks ends
        the connection early, so the client sees an incomplete body, never a complete-looking one."""
        sent = 0
        try:
            block: bytes | None = head
            while block is not None and sent < size:
                block = block[: size - sent]
                if block:
                    self.write(block)
                    await self.flush()
                    sent += len(block)
                block = await anext(chunks, None)
        except StreamClosedError:
            self.ctx.log.info("Client went away while downloading %s", self.request.path)
            return
        if sent < size:
            self.ctx.log.warning(
                "%s shrank while being downloaded: %d of %d bytes sent", self.request.path, sent, size
            )
            self.request.connection.close()  # type: ignore[union-attr]

    async def head(self, path: str) -> None:
        await self.get(path, include_body=False)


class NotebooksRedirectHandler(APIHandler):
    """``/api/notebooks[/{path}]``, the deprecated name of ``/api/contents``: 301 for GET and
    HEAD, 308 (method and body kept) for the others; public, query kept."""

    access = Access.PUBLIC
    track_activity = False

    def get(self, path: str = "") -> None:
        target = self.ctx.config.base_url + "api/contents" + ("/" + quote(path) if path else "")
        query = self.request.query
        status = 301 if self.request.method in ("GET", "HEAD") else 308
        self.redirect(target + ("?" + query if query else ""), status=status)

    head = put = post = patch = delete = get


def routes(ctx: ServerContext, manager: ContentsManager) -> list[Route]:
    """The contents routes; the checkpoints routes come first, since ``{path}`` (``.+``)
    would otherwise swallow ``/checkpoints``."""
    kw = {"ctx": ctx, "manager": manager}
    path = {"path": r".+"}
    return [
        Route("/api/contents/{path}/checkpoints", CheckpointsHandler, kw, params=path),
        Route(
            "/api/contents/{path}/checkpoints/{checkpoint_id}",
            CheckpointHandler,
            kw,
            params={**path, "checkpoint_id": r"[\w-]+"},
        ),
        Route("/api/contents/{path}/trust", TrustHandler, kw, params=path),
        Route("/api/contents", ContentsHandler, kw),
        # ".*": "/api/contents/" is the root; other trailing slashes redirect (ContentsHandler)
        Route("/api/contents/{path}", ContentsHandler, kw, params={"path": r".*"}),
        Route("/api/notebooks", NotebooksRedirectHandler, {"ctx": ctx}),
        Route("/api/notebooks/{path}", NotebooksRedirectHandler, {"ctx": ctx}, params=path),
        Route("/files/{path}", FilesHandler, kw, params=path),
    ]
