"""The JupyterLab and Notebook 7 pages, and the static files they load.

Pages (need a user; ``?token=`` is traded for the login cookie by :class:`~nbserver.web.PageHandler`
before the page renders, so the frontend works on the cookie and ``X-XSRFToken``):

- ``/lab``, ``/lab/tree/<path>``, ``/lab/workspaces/<ws>[/tree/<path>]``, and the same under
  ``/doc`` (single-document mode): JupyterLab's ``index.html`` with its page config.
- ``/tree[/<dir>]``, ``/notebooks/<path>``, ``/edit/<path>``, ``/consoles/<path>``,
  ``/terminals/<name>``: Notebook 7's templates. ``/tree/<file>`` redirects to
  ``/notebooks/<file>`` for a notebook and ``/files/<file>`` for anything else, as Notebook 7.

Both UIs' page configs say ``terminalsAvailable`` exactly when the server mounts its terminal
routes (the ``terminals`` flag the routes pass in).

When the UI is not installed, its pages are 404 naming the missing package.

Static files (public, as jupyter_server's): ``/static/lab/*`` (JupyterLab's bundle),
``/static/notebook/*`` (Notebook 7's), ``/lab/extensions/<pkg>/*`` (prebuilt extensions, the
first ``labextensions`` directory holding the file wins), ``/lab/api/themes/<pkg>/*`` (the
application's themes, then extensions'), ``/static/favicons/*`` (nbserver's icon for every name
the UIs ask for).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tornado.web import HTTPError, StaticFileHandler

from ..context import ServerContext
from ..errors import NotFound
from ..services.contents import paths
from ..services.contents.manager import ContentsManager
from ..web import Access, PageHandler, allowed_methods
from .discovery import Extension, LabInstall, federated_extensions
from .page_config import ServerFacts, Templates, lab_page_config, notebook_page_config, static_page_config

__all__ = ["FaviconHandler", "LabHost", "LabPage", "NotebookPage", "StaticFilesHandler"]

#: ``/lab`` and ``/doc`` sub-paths (after the first ``/``): ``workspaces/<ws>[/tree/<path>]``,
#: ``tree[/<path>]``
LAB_PAGE = r"(?:workspaces/[A-Za-z0-9\-_]+(?:/tree(?:/.*)?)?|tree(?:/.*)?)"
_WORKSPACE = re.compile(r"workspaces/([A-Za-z0-9\-_]+)(?:/(.*))?")
NOTEBOOK_PAGES = ("tree", "notebooks", "edit", "consoles", "terminals")


@dataclass
class LabHost:
    """What the pages need: the installed files (:class:`LabInstall`), the prebuilt extensions
    found on the ``labextensions`` path, and the templates of each installed UI."""

    install: LabInstall
    extensions: dict[str, Extension] = field(default_factory=dict)
    lab: Templates | None = None
    notebook: Templates | None = None

    @classmethod
    def load(cls, install: LabInstall) -> LabHost:
        """Scan the extensions and prepare the templates of the UIs that are installed (the
        pages of a UI whose templates cannot be prepared, jinja2 missing, are 404)."""
        host = cls(install, federated_extensions(install.labextensions_path))
        try:
            if install.lab_available and install.lab_app_dir is not None:
                host.lab = Templates(install.lab_app_dir / "static")
            if install.notebook_available and install.notebook_dir is not None:
                host.notebook = Templates(install.notebook_dir / "templates")
        except LookupError:
            pass
        return host

    def static_config(self) -> dict[str, Any]:
        """``labconfig/page_config.json`` of every config directory, merged (read per page, as
        ``jupyter labextension disable`` edits it while the server runs)."""
        documents = []
        for directory in reversed(self.install.config_path or (self.install.config_dir,)):
            path = directory / "labconfig" / "page_config.json"
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                documents.append(data)
        return static_page_config(documents)


class _UIPage(PageHandler):
    access = Access.USER

    def initialize(  # type: ignore[override]
        self, ctx: ServerContext, host: LabHost, contents: ContentsManager, terminals: bool
    ) -> None:
        super().initialize(ctx)
        self.host = host
        self.contents = contents
        self.terminals = terminals

    def server_facts(self) -> ServerFacts:
        config = self.ctx.config
        return ServerFacts(
            base_url=config.base_url,
            root_dir=config.root_dir,
            extensions=self.host.extensions,
            static_config=self.host.static_config(),
            terminals_available=self.terminals,
            hub=config.hub,
            allow_hidden=config.allow_hidden,
            delete_to_trash=config.delete_to_trash,
        )

    def send_page(self, templates: Templates, name: str, page_config: dict[str, Any]) -> None:
        self.xsrf_token  # noqa: B018 -- sets the _xsrf cookie the frontend echoes in X-XSRFToken
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(templates.render(name, page_config, self.ctx.config.base_url))


class LabPage(_UIPage):
    """JupyterLab: ``/lab[/...]`` (multiple-document) and ``/doc[/...]`` (single-document)."""

    def initialize(  # type: ignore[override]
        self, ctx: ServerContext, host: LabHost, contents: ContentsManager, terminals: bool, mode: str
    ) -> None:
        super().initialize(ctx, host, contents, terminals)
        self.mode = mode

    def get(self, page: str = "") -> None:
        if self.host.lab is None:
            raise NotFound("JupyterLab is not installed: pip install 'nbserver[lab]'", reason="not installed")
        workspace, tree = "default", ""
        match = _WORKSPACE.fullmatch(page)
        if match:
            workspace, page = match.group(1), match.group(2) or ""
        if page == "tree" or page.startswith("tree/"):
            tree = page[5:]
        config = lab_page_config(
            self.server_facts(),
            app_version=self.host.install.lab_version,
            mode=self.mode,
            workspace=workspace,
            tree_path=tree,
        )
        self.send_page(self.host.lab, "index.html", config)


class NotebookPage(_UIPage):
    """Notebook 7's pages (``page`` is one of :data:`NOTEBOOK_PAGES`); the route gives a
    contents ``path``, or a terminal ``name`` for ``/terminals/<name>`` (which the page's
    script reads from its own URL)."""

    def initialize(  # type: ignore[override]
        self, ctx: ServerContext, host: LabHost, contents: ContentsManager, terminals: bool, page: str
    ) -> None:
        super().initialize(ctx, host, contents, terminals)
        self.page = page

    def _url(self, page: str, path: str) -> str:
        return f"{self.ctx.config.base_url}{page}/{quote(path)}"

    async def get(self, path: str = "", name: str = "") -> None:
        if self.host.notebook is None:
            raise NotFound("Notebook 7 is not installed: pip install 'nbserver[lab]'", reason="not installed")
        if self.page in ("tree", "notebooks", "edit"):
            path = paths.normalize(path)
            kind = await self.contents.kind(path)
            if kind is None:
                raise NotFound(f"No such file or directory: {path!r}")
            if self.page == "tree" and kind == "file":
                self.redirect(self._url("notebooks" if path.endswith(".ipynb") else "files", path))
                return
            if self.page == "notebooks" and kind == "directory":
                self.redirect(self._url("tree", path))
                return
        config = notebook_page_config(
            self.server_facts(),
            app_version=self.host.install.notebook_version,
            notebook_page=self.page,
            tree_path=path if self.page == "tree" else "",
            config_dir=str(self.host.install.config_dir),
        )
        self.send_page(self.host.notebook, f"{self.page}.html", config)


class _PublicFiles(StaticFileHandler):
    """Public files, without a ``Server`` header; a 405 (``TRACE``...) names the methods in
    ``Allow``, as RFC 9110 requires."""

    access = Access.PUBLIC
    ctx: ServerContext

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.set_header("X-Content-Type-Options", "nosniff")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 405:
            self.set_header("Allow", allowed_methods(self))
        super().write_error(status_code, **kwargs)


class StaticFilesHandler(_PublicFiles):
    """Files from the first of ``roots`` that has them; public. ``?v=`` URLs are immutable."""

    def initialize(self, ctx: ServerContext, roots: Sequence[Path]) -> None:  # type: ignore[override]
        self.ctx = ctx
        self.roots = [str(r) for r in roots]
        super().initialize(self.roots[0] if self.roots else "/nonexistent")

    async def get(self, path: str, include_body: bool = True) -> None:
        for root in self.roots:
            if (Path(root) / path).is_file():
                self.root = root
                break
        await super().get(path, include_body)

    def set_extra_headers(self, path: str) -> None:
        immutable = "v" in self.request.arguments
        self.set_header("Cache-Control", "public, max-age=31536000, immutable" if immutable else "no-cache")

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        if not self.roots:
            raise HTTPError(404)
        return super().validate_absolute_path(root, absolute_path)


class FaviconHandler(_PublicFiles):
    """``/static/favicons/<name>``: the UIs link ``favicon.ico``, ``favicon-busy-1.ico``,
    ``favicon-notebook.ico``... (jupyter_server's files); nbserver answers each with its icon."""

    def initialize(self, ctx: ServerContext, icon: Path) -> None:  # type: ignore[override]
        self.ctx = ctx
        self.icon = icon
        super().initialize(str(icon.parent))

    async def get(self, name: str, include_body: bool = True) -> None:
        if not re.fullmatch(r"favicon(?:-[a-z0-9-]+)?\.(?:ico|svg)", name):
            raise HTTPError(404)
        await super().get(self.icon.name, include_body)

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")
