"""The built-in web UI's server side: thin page handlers, static files and ``custom.css``.

Each page handler checks that its path exists (404 otherwise, redirecting when it names the
other kind of entry) and renders one template; everything else happens in the browser, through
the public REST and websocket API. The classic notebook URL layout is kept: ``/tree/<dir>``,
``/notebooks/<file.ipynb>``, ``/edit/<file>``, ``/view/<file>``; ``/`` goes to ``default_url``
(``/tree``).

Where the pages live (:func:`pages_url`): the same pages are always mounted under
:data:`PREFIX` (``/nbserver/tree``, ``/nbserver/notebooks/<file>``...). When Notebook 7 is
hosted (:func:`nbserver.lab.notebook_installed`) it owns ``/tree``, ``/notebooks`` and ``/edit``
(and ``/terminals``), and the built-in UI's home is ``/nbserver/``: its pages link and redirect
only there (``/view/<file>`` stays at the root too, as Notebook 7 has no such page). Without
Notebook 7 the pages are also at the root and the home is the root, as always. Every page URL
the browser side builds comes from ``pagesUrl`` in the page configuration.

Pages get a strict ``Content-Security-Policy``: scripts only from this server (the inline
import map carries a per-response nonce), no plugins, frames from this server only, and
``frame-ancestors`` from the configuration. ``text/html`` outputs rendered in sandboxed
``srcdoc`` frames inherit it, so even a sanitizer slip could not run a script.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from tornado.web import HTTPError, StaticFileHandler

from ..context import ServerContext
from ..errors import NotFound
from ..lab import notebook_installed
from ..routing import Route
from ..services.contents import paths
from ..services.contents.manager import ContentsManager
from ..web import Access, BaseHandler, PageHandler, allowed_methods
from .assets import STATIC_DIR, custom_css_path, file_version

__all__ = ["PREFIX", "pages_url", "routes"]

#: the built-in UI's own prefix (under ``base_url``), where its pages are always mounted
PREFIX = "/nbserver"

PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src * data: blob:; media-src * data: blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)
NO_CUSTOM_CSS = b"/* no custom.css */\n"
#: ``Cache-Control`` of versioned (``?v=``) assets: their URL changes with their content
IMMUTABLE = "public, max-age=31536000, immutable"


def pages_url(ctx: ServerContext) -> str:
    """The URL path the built-in UI's page URLs start with (``<page>/<path>`` follows):
    ``<base_url>nbserver/`` when Notebook 7 owns ``/tree``, ``/notebooks`` and ``/edit``, else
    ``<base_url>``."""
    return ctx.config.base_url + (PREFIX.lstrip("/") + "/" if notebook_installed(ctx) else "")


class UIPage(PageHandler):
    """A page of the web UI: needs a user, renders ``<page>.html`` for one contents path.
    ``pages_url`` (see :func:`pages_url`) is where its links and redirects lead, whichever
    mount the request came through."""

    access = Access.USER
    page: ClassVar[str]
    contents: ContentsManager
    nonce: str
    pages_url: str

    def initialize(self, ctx: ServerContext, contents: ContentsManager) -> None:  # type: ignore[override]
        self.nonce = secrets.token_urlsafe(18)
        self.contents = contents
        self.pages_url = pages_url(ctx)
        super().initialize(ctx)

    def csp(self) -> str:
        nonce = getattr(self, "nonce", None)
        if nonce is None:  # tornado's __init__ sets default headers before initialize()
            return super().csp()
        policy = PAGE_POLICY.format(nonce=nonce)
        origins = self.ctx.config.frame_ancestors
        return policy.replace("frame-ancestors 'self'", " ".join(("frame-ancestors 'self'", *origins)))

    def url(self, page: str, path: str) -> str:
        """``<pages_url><page>/<path>``, each segment URL-escaped."""
        return f"{self.pages_url}{page}" + (f"/{quote(path)}" if path else "")

    async def entry(self, path: str) -> tuple[str, str | None]:
        """``(normalized path, "file" | "directory" | None)``; 404 for paths outside the root."""
        path = paths.normalize(path)
        return path, await self.contents.kind(path)

    def render_page(self, path: str, **config_extra: Any) -> None:
        """Render ``<page>.html``; ``config_extra`` goes into the page's JSON configuration."""
        self.set_header("Cache-Control", "no-cache")
        self.xsrf_token  # noqa: B018 -- sets the _xsrf cookie the scripts echo in X-XSRFToken
        self.render(
            f"{self.page}.html",
            page=self.page,
            path=path,
            name=path.rsplit("/", 1)[-1],
            config_extra=config_extra,
            show_logout=self.ctx.auth.enabled,
        )


class RootHandler(PageHandler):
    """``/``: ``default_url`` (the file browser, ``/tree``, unless the Hub or the config says
    otherwise)."""

    access = Access.USER

    def get(self) -> None:
        self.redirect(self.ctx.config.base_url + self.ctx.config.default_url.lstrip("/"))


class HomeHandler(PageHandler):
    """:data:`PREFIX` alone: the built-in file browser, wherever it lives (:func:`pages_url`)."""

    access = Access.USER

    def get(self) -> None:
        self.redirect(pages_url(self.ctx) + "tree")


class TreeHandler(UIPage):
    """``/tree[/<dir>]``: the file browser. A notebook redirects to ``/notebooks``, any other
    file to ``/view``."""

    page = "tree"

    async def get(self, path: str = "") -> None:
        path, kind = await self.entry(path)
        if kind is None:
            raise NotFound(f"No such directory: {path!r}")
        if kind == "file":
            self.redirect(self.url("notebooks" if path.endswith(".ipynb") else "view", path))
            return
        self.render_page(path)


class NotebookHandler(UIPage):
    """``/notebooks/<file.ipynb>``; ``?kernel_name=`` picks the kernel of a new session."""

    page = "notebook"

    async def get(self, path: str) -> None:
        path, kind = await self.entry(path)
        if kind == "directory":
            self.redirect(self.url("tree", path))
        elif kind is None:
            raise NotFound(f"No such notebook: {path!r}")
        elif not path.endswith(".ipynb"):
            self.redirect(self.url("edit", path))
        else:
            self.render_page(path, kernelName=self.get_query_argument("kernel_name", ""))


class FilePage(UIPage):
    """A page about one file; a directory redirects to ``/tree``."""

    async def get(self, path: str) -> None:
        path, kind = await self.entry(path)
        if kind == "directory":
            self.redirect(self.url("tree", path))
        elif kind is None:
            raise NotFound(f"No such file: {path!r}")
        else:
            self.render_page(path)


class EditHandler(FilePage):
    """``/edit/<file>``: a plain text editor."""

    page = "edit"


class ViewHandler(FilePage):
    """``/view/<file>``: the file as the browser shows it (from ``/files``)."""

    page = "view"


class StaticHandler(StaticFileHandler):
    """``/static/<path>``: the UI's public assets. Versioned URLs (``?v=``) are cached for a
    year; others must be revalidated (``no-cache``, with ``ETag`` / ``Last-Modified``).
    Templates are not assets."""

    access = Access.PUBLIC

    def initialize(self, ctx: ServerContext, root: str) -> None:  # type: ignore[override]
        self.ctx = ctx
        super().initialize(root)

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.set_header("X-Content-Type-Options", "nosniff")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 405:
            self.set_header("Allow", allowed_methods(self))
        super().write_error(status_code, **kwargs)

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        if path.split("/", 1)[0] == "templates":
            raise HTTPError(404)
        return super().get_absolute_path(root, path)

    def compute_etag(self) -> str | None:
        if self.absolute_path is None:
            return None
        return f'"{file_version(Path(self.absolute_path))}"'  # follows edits, unlike tornado's cache

    def set_extra_headers(self, path: str) -> None:
        if "v" in self.request.arguments:
            self.set_header("Cache-Control", IMMUTABLE)
        else:
            self.set_header("Cache-Control", "no-cache")


class CustomCSSHandler(BaseHandler):
    """``/custom/custom.css``: the user's stylesheet (``ServerConfig.custom_dir``), loaded by
    every page after the UI's own. Public, as jupyter_server's; a CSS comment when there is none."""

    access = Access.PUBLIC
    track_activity = False

    async def get(self) -> None:
        path = custom_css_path(self.ctx.config)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            if not isinstance(exc, FileNotFoundError):
                self.ctx.log.warning("Cannot read %s: %s", path, exc.strerror)
            data = NO_CUSTOM_CSS
        self.set_header("Content-Type", "text/css; charset=UTF-8")
        self.set_header("Cache-Control", IMMUTABLE if "v" in self.request.arguments else "no-cache")
        self.finish(data)


def routes(ctx: ServerContext, contents: ContentsManager) -> list[Route]:
    """The UI's routes: ``/``, the pages over ``contents`` under :data:`PREFIX` and, unless
    Notebook 7 owns them, at the root (``/view`` always), ``/static`` and ``/custom/custom.css``.
    Mount them after Notebook 7's pages."""
    from . import terminal  # here: it imports UIPage from this module

    kw = {"ctx": ctx, "contents": contents}
    path = {"path": r".+"}
    pages = [
        Route("/tree", TreeHandler, kw),
        Route("/tree/{path}", TreeHandler, kw, params=path),
        Route("/notebooks/{path}", NotebookHandler, kw, params=path),
        Route("/edit/{path}", EditHandler, kw, params=path),
        Route("/view/{path}", ViewHandler, kw, params=path),
        *terminal.routes(ctx),
    ]
    at_root = [r for r in pages if r.handler is ViewHandler] if notebook_installed(ctx) else pages
    return [
        Route("/", RootHandler, {"ctx": ctx}),
        Route(PREFIX, HomeHandler, {"ctx": ctx}),
        *(replace(r, template=PREFIX + r.template) for r in pages),
        *at_root,
        Route("/static/{path}", StaticHandler, {"ctx": ctx, "root": str(STATIC_DIR)}, params=path),
        Route("/custom/custom.css", CustomCSSHandler, {"ctx": ctx}),
    ]
