"""The built-in web UI's server side: thin page handlers, static files and ``custom.css``.

Each page handler checks that its path exists (404 otherwise, redirecting when it names the
other kind of entry) and renders one template; everything else happens in the browser, through
the public REST and websocket API. The classic notebook URL layout is kept: ``/tree/<dir>``,
``/notebooks/<file.ipynb>``, ``/edit/<file>``, ``/view/<file>``; ``/`` goes to ``/tree``.

Pages get a strict ``Content-Security-Policy``: scripts only from this server (the inline
import map carries a per-response nonce), no plugins, frames from this server only, and
``frame-ancestors`` from the configuration. ``text/html`` outputs rendered in sandboxed
``srcdoc`` frames inherit it, so even a sanitizer slip could not run a script.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from tornado.web import HTTPError, StaticFileHandler

from ..context import ServerContext
from ..errors import NotFound
from ..routing import Route
from ..services.contents import paths
from ..services.contents.manager import ContentsManager
from ..web import Access, BaseHandler, PageHandler, allowed_methods
from .assets import STATIC_DIR, custom_css_path, file_version

__all__ = ["routes"]

PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src * data: blob:; media-src * data: blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)
NO_CUSTOM_CSS = b"/* no custom.css */\n"
#: ``Cache-Control`` of versioned (``?v=``) assets: their URL changes with their content
IMMUTABLE = "public, max-age=31536000, immutable"


class UIPage(PageHandler):
    """A page of the web UI: needs a user, renders ``<page>.html`` for one contents path."""

    access = Access.USER
    page: ClassVar[str]
    contents: ContentsManager
    nonce: str

    def initialize(self, ctx: ServerContext, contents: ContentsManager) -> None:  # type: ignore[override]
        self.nonce = secrets.token_urlsafe(18)
        self.contents = contents
        super().initialize(ctx)

    def csp(self) -> str:
        nonce = getattr(self, "nonce", None)
        if nonce is None:  # tornado's __init__ sets default headers before initialize()
            return super().csp()
        policy = PAGE_POLICY.format(nonce=nonce)
        origins = self.ctx.config.frame_ancestors
        return policy.replace("frame-ancestors 'self'", " ".join(("frame-ancestors 'self'", *origins)))

    def url(self, page: str, path: str) -> str:
        """``<base_url><page>/<path>``, each segment URL-escaped."""
        return f"{self.ctx.config.base_url}{page}" + (f"/{quote(path)}" if path else "")

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
    """The UI's routes: the pages over ``contents``, ``/static`` and ``/custom/custom.css``."""
    kw = {"ctx": ctx, "contents": contents}
    path = {"path": r".+"}
    return [
        Route("/", RootHandler, {"ctx": ctx}),
        Route("/tree", TreeHandler, kw),
        Route("/tree/{path}", TreeHandler, kw, params=path),
        Route("/notebooks/{path}", NotebookHandler, kw, params=path),
        Route("/edit/{path}", EditHandler, kw, params=path),
        Route("/view/{path}", ViewHandler, kw, params=path),
        Route("/static/{path}", StaticHandler, {"ctx": ctx, "root": str(STATIC_DIR)}, params=path),
        Route("/custom/custom.css", CustomCSSHandler, {"ctx": ctx}),
    ]
