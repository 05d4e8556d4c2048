"""The old notebook URLs, so that links people saved still work.

- ``/new``: creates ``Untitled.ipynb`` (numbered when taken) in the root and opens it
  (``?kernel_name=`` is passed on to the notebook page).
- ``/notebooks`` with ``Accept: application/json``: the IPython 1.x list of notebooks,
  ``[{"notebook_id", "name", "path", "kernel_id"}]`` (``name`` without ``.ipynb``, as then;
  ``path`` added), every notebook under the root, sorted by path. Without that Accept header it
  is the file browser (``/tree``).
- ``/<path>.ipynb/copy``: duplicates the notebook next to it (``nb-Copy1.ipynb``, as the
  contents API names copies) and opens the copy.
- ``/<path>.ipynb/print``: a read-only print view of the notebook, without toolbar: the HTML
  export when nbconvert is installed, else a plain rendering of sources and text/image outputs.
  Either is served with ``sandbox allow-scripts``, so outputs cannot act in the server's origin.

``/new`` and ``/copy`` change files on a GET, as they always did. A browser that says the
request comes from another site (``Sec-Fetch-Site: cross-site``) is sent to ``/tree`` instead,
so another web page cannot make files appear by linking there.

Notebook ids: IPython 1.x gave each notebook a random UUID per server process, so no saved id
outlived its server. Here ``notebook_id`` is ``uuid5(NAMESPACE_URL, "nbserver:" + path)``:
stable for as long as the notebook keeps its path, the same on every server.
"""

from __future__ import annotations

import base64
import html
import uuid
from typing import Any
from urllib.parse import quote

from ..context import ServerContext
from ..errors import BadRequest, NotFound
from ..routing import Route
from ..services.contents import models, paths
from ..services.contents.manager import ContentsManager
from ..services.sessions.manager import SessionManager
from ..web import Access, PageHandler

__all__ = ["notebook_id", "routes"]

MAX_LISTED = 10_000  # notebooks listed by /notebooks, at most
SANDBOX = "; sandbox allow-scripts"


def notebook_id(path: str) -> str:
    """The stable id of the notebook at API path ``path`` (see the module docstring)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "nbserver:" + path))


class LegacyPage(PageHandler):
    access = Access.USER

    def initialize(  # type: ignore[override]
        self, ctx: ServerContext, contents: ContentsManager, sessions: SessionManager | None = None
    ) -> None:
        super().initialize(ctx)
        self.contents = contents
        self.sessions = sessions

    def open_notebook(self, path: str, query: str = "") -> None:
        self.redirect(f"{self.ctx.config.base_url}notebooks/{quote(path)}{query}")

    def cross_site(self) -> bool:
        """The browser says another site sent it here: do not change files (go to ``/tree``)."""
        if self.request.headers.get("Sec-Fetch-Site", "") == "cross-site":
            self.redirect(f"{self.ctx.config.base_url}tree")
            return True
        return False

    async def notebook(self, path: str) -> str:
        """The API path of the notebook in URL path ``path``; a link saved as
        ``/notebooks/<path>/copy`` works too. Raises NotFound."""
        path = paths.normalize(path)
        for candidate in (path, path.removeprefix("notebooks/")):
            if candidate.endswith(".ipynb") and await self.contents.kind(candidate) == "file":
                return candidate
        raise NotFound(f"No such notebook: {path!r}")


class NewHandler(LegacyPage):
    """``/new``: a new untitled notebook in the root, opened."""

    async def get(self) -> None:
        if self.cross_site():
            return
        model = await self.contents.new_untitled("", type="notebook")
        kernel = self.get_query_argument("kernel_name", "")
        self.open_notebook(model["path"], f"?kernel_name={quote(kernel)}" if kernel else "")


class NotebookListHandler(LegacyPage):
    """``/notebooks``: the old JSON list for ``Accept: application/json``, else ``/tree``."""

    async def get(self) -> None:
        if "application/json" not in self.request.headers.get("Accept", ""):
            self.redirect(f"{self.ctx.config.base_url}tree")
            return
        kernels: dict[str, str | None] = {}
        if self.sessions is not None:
            for session in await self.sessions.list():
                kernel = session.get("kernel") or {}
                kernels.setdefault(session.get("path", ""), kernel.get("id"))
        listed = []
        for path in sorted(await self.all_notebooks()):
            name = paths.split(path)[1]
            listed.append(
                {
                    "notebook_id": notebook_id(path),
                    "name": name[: -len(".ipynb")],
                    "path": path,
                    "kernel_id": kernels.get(path),
                }
            )
        self.set_header("Cache-Control", "no-cache")
        self.write_json(listed)

    async def all_notebooks(self) -> list[str]:
        """The API paths of the notebooks under the root (hidden entries follow
        ``allow_hidden``), at most :data:`MAX_LISTED`."""
        found: list[str] = []
        pending = [""]
        while pending and len(found) < MAX_LISTED:
            directory = pending.pop()
            try:
                listing = await self.contents.get(directory, content=True, type="directory")
            except (NotFound, BadRequest):
                continue  # removed meanwhile, or unreadable
            for child in listing["content"]:
                if child["type"] == "directory":
                    pending.append(child["path"])
                elif child["type"] == "notebook":
                    found.append(child["path"])
        return found[:MAX_LISTED]


class CopyHandler(LegacyPage):
    """``/<path>.ipynb/copy``: a copy next to the notebook, opened."""

    async def get(self, path: str) -> None:
        if self.cross_site():
            return
        source = await self.notebook(path)
        directory, name = paths.split(source)
        taken = await self.contents.names(directory)
        copy_name = models.increment_name(name, taken.__contains__, insert="-Copy")
        model = await self.contents.copy(source, paths.join(directory, copy_name))
        self.open_notebook(model["path"])


class PrintHandler(LegacyPage):
    """``/<path>.ipynb/print``: the notebook, read-only, for printing."""

    content_security_policy = PageHandler.content_security_policy + SANDBOX

    async def get(self, path: str) -> None:
        source = await self.notebook(path)
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        nbconvert = self.ctx.services.get("nbconvert")
        if nbconvert is not None:
            export = await nbconvert.export_path("html", source)
            if export is not None:
                self.finish(export.body)
                return
        model = await self.contents.get(source)
        self.finish(plain_print_view(model["name"], model["content"]))


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def plain_print_view(name: str, notebook: dict[str, Any]) -> str:
    """A notebook as static HTML with everything escaped: markdown and code sources as text,
    stream and ``text/plain`` outputs as text, PNG and JPEG outputs as images."""
    parts = [
        f"<!doctype html><meta charset=utf-8><title>{html.escape(name)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
        "pre{white-space:pre-wrap;background:#f7f7f7;padding:.5em}.out{background:none}</style>",
        f"<h1>{html.escape(name)}</h1>",
    ]
    for cell in notebook.get("cells", []):
        source = html.escape(_text(cell.get("source")))
        parts.append(f'<pre class="{html.escape(str(cell.get("cell_type", "")))}">{source}</pre>')
        for output in cell.get("outputs", []) or []:
            data = output.get("data") or {}
            if output.get("output_type") == "stream":
                parts.append(f"<pre class=out>{html.escape(_text(output.get('text')))}</pre>")
            elif "image/png" in data or "image/jpeg" in data:
                kind = "image/png" if "image/png" in data else "image/jpeg"
                raw = _text(data[kind]).replace("\n", "")
                try:
                    base64.b64decode(raw, validate=True)
                except ValueError:
                    continue
                parts.append(f'<img alt="" src="data:{kind};base64,{raw}">')
            elif "text/plain" in data:
                parts.append(f"<pre class=out>{html.escape(_text(data['text/plain']))}</pre>")
            elif output.get("output_type") == "error":
                parts.append(f"<pre class=out>{html.escape(_text(output.get('ename')))}</pre>")
    return "\n".join(parts)


def routes(
    ctx: ServerContext, contents: ContentsManager, sessions: SessionManager | None = None
) -> list[Route]:
    """The old URLs over ``contents`` (``sessions``, when given, fills ``kernel_id``)."""
    kw = {"ctx": ctx, "contents": contents, "sessions": sessions}
    notebook = {"path": r".+\.ipynb"}
    return [
        Route("/new", NewHandler, kw),
        Route("/notebooks", NotebookListHandler, kw),
        Route("/{path}/copy", CopyHandler, kw, params=notebook),
        Route("/{path}/print", PrintHandler, kw, params=notebook),
    ]
