"""``/api/nbconvert``, ``GET /nbconvert/{format}/{path}``, ``POST /nbconvert/{format}``.

Every export is served with ``Content-Security-Policy: sandbox allow-scripts`` (as
jupyter_server since 2.20): an HTML export carries the notebook's outputs verbatim, so a
``<script>`` or an ``onerror=`` in an untrusted notebook's output runs, but in an opaque
origin: it cannot read the server's cookies or storage, nor call its API as the user.
"""

from __future__ import annotations

from urllib.parse import quote

from ...context import ServerContext
from ...errors import BadRequest
from ...routing import Route
from ...web import Access, APIHandler, BaseHandler, PageHandler
from ..contents import paths
from ..contents.handlers import content_disposition
from .manager import Export, NbconvertManager
from .service import FORMAT_PARAM, PAGE_FORMAT_PARAM

__all__ = ["routes"]

SANDBOX = "; sandbox allow-scripts"


class ExportersHandler(APIHandler):
    access = Access.USER

    def initialize(self, ctx: ServerContext, nbconvert: NbconvertManager) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.nbconvert = nbconvert

    async def get(self) -> None:
        self.write_json(await self.nbconvert.exporters())


def write_export(handler: BaseHandler, export: Export, download: bool) -> None:
    """Send ``export``: a zip is always an attachment, other outputs only when asked."""
    if export.zipped or download:
        handler.set_header("Content-Disposition", content_disposition(export.filename))
    if export.mimetype:
        charset = "" if export.zipped else "; charset=utf-8"
        handler.set_header("Content-Type", export.mimetype + charset)
    else:
        handler.set_header("Content-Type", "application/octet-stream")
    handler.set_header("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0")
    handler.finish(export.body)


class ExportFileHandler(PageHandler):
    """A stored notebook, exported; ``?download=true`` makes it an attachment,
    ``?sanitize_html=true|false`` sets the HTML exporter's ``sanitize_html``. A file that is
    not a notebook redirects to ``/files``."""

    access = Access.USER
    content_security_policy = PageHandler.content_security_policy + SANDBOX

    def initialize(self, ctx: ServerContext, nbconvert: NbconvertManager) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.nbconvert = nbconvert

    async def get(self, format: str, path: str) -> None:
        path = paths.normalize(path)
        sanitize = self.get_query_argument("sanitize_html", None)
        export = await self.nbconvert.export_path(
            format, path, sanitize_html=None if sanitize is None else sanitize.lower() == "true"
        )
        if export is None:
            self.redirect(f"{self.ctx.config.base_url}files/{quote(path)}")
            return
        download = self.get_query_argument("download", "false").lower() in ("true", "1")
        write_export(self, export, download)


class ExportBodyHandler(APIHandler):
    """A notebook sent as ``{"name", "content"}`` (jupyter_server's body), exported."""

    access = Access.USER
    content_security_policy = APIHandler.content_security_policy + SANDBOX

    def initialize(self, ctx: ServerContext, nbconvert: NbconvertManager) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.nbconvert = nbconvert

    async def post(self, format: str) -> None:
        body = self.json_body()
        if not isinstance(body, dict) or "content" not in body:
            raise BadRequest('The body must be {"name": ..., "content": <notebook>}', reason="bad model")
        name = body.get("name") or "notebook.ipynb"
        if not isinstance(name, str):
            raise BadRequest("name must be a string", reason="bad model")
        write_export(self, await self.nbconvert.export_model(format, name, body["content"]), download=False)


def routes(ctx: ServerContext, nbconvert: NbconvertManager) -> list[Route]:
    kw = {"ctx": ctx, "nbconvert": nbconvert}
    return [
        Route("/api/nbconvert", ExportersHandler, kw),
        Route("/nbconvert/{format}", ExportBodyHandler, kw, params=FORMAT_PARAM),
        Route(
            "/nbconvert/{format}/{path}", ExportFileHandler, kw, params={**PAGE_FORMAT_PARAM, "path": r".+"}
        ),
    ]
