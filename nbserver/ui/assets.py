"""The web UI's static assets: versioned URLs, the import map, the catalogue, ``custom.css``.

Every asset URL carries ``?v=<content hash>``, and the static handler lets such URLs be cached
for a year; a changed file gets a new URL, so an upgraded server is never served stale. ES
modules import each other by plain relative URLs (``import ... from "./api.js"``); the import
map of every page rewrites each module URL to its versioned one, so the whole module graph is
cached and invalidated file by file, without a build step.

Hashes are memoized by ``(path, mtime, size)``: a file edited in place (a development checkout)
gets a new version on the next page load.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tornado.web import RequestHandler

from ..config import ServerConfig

__all__ = [
    "LANGUAGES",
    "STATIC_DIR",
    "TEMPLATE_METHODS",
    "asset_url",
    "catalogue",
    "custom_css_path",
    "import_map",
    "script_json",
]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: the interface languages, by code; each has ``static/i18n/<code>.json``
LANGUAGES = ("en", "zh")


@functools.lru_cache(maxsize=512)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    del mtime_ns, size  # part of the cache key only
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def file_version(path: Path) -> str:
    """A short content hash of ``path``, or ``"0"`` when it does not exist."""
    try:
        st = path.stat()
    except OSError:
        return "0"
    return _digest(str(path), st.st_mtime_ns, st.st_size)


def asset_url(base_url: str, path: str) -> str:
    """The versioned URL of ``static/<path>`` under ``base_url``."""
    return f"{base_url}static/{quote(path)}?v={file_version(STATIC_DIR / path)}"


def import_map(base_url: str) -> dict[str, Any]:
    """``{"imports": {unversioned module URL: versioned URL}}`` for every module in ``static/js``."""
    js = STATIC_DIR / "js"
    modules = sorted(p.relative_to(STATIC_DIR).as_posix() for p in js.rglob("*.js"))
    return {"imports": {f"{base_url}static/{quote(m)}": asset_url(base_url, m) for m in modules}}


@functools.lru_cache(maxsize=8)
def _load_catalogue(path: str, mtime_ns: int) -> dict[str, str]:
    del mtime_ns
    with open(path, encoding="utf-8") as f:
        data: dict[str, str] = json.load(f)
    return data


def catalogue(lang: str = "en") -> dict[str, str]:
    """The message catalogue of ``lang`` (``static/i18n/<lang>.json``): key -> message."""
    if lang not in LANGUAGES:
        raise KeyError(lang)
    path = STATIC_DIR / "i18n" / f"{lang}.json"
    return _load_catalogue(str(path), path.stat().st_mtime_ns)


def custom_css_path(config: ServerConfig) -> Path:
    """``<custom_dir>/custom.css``; ``custom_dir`` defaults to ``<Jupyter config dir>/custom``."""
    directory = config.custom_dir
    if directory is None:
        from jupyter_core.paths import jupyter_config_dir

        directory = Path(jupyter_config_dir()) / "custom"
    return directory / "custom.css"


# -- template helpers (tornado ``ui_methods``: each gets the handler first) ---------------------


def _config(handler: RequestHandler) -> ServerConfig:
    config: ServerConfig = handler.ctx.config  # type: ignore[attr-defined]
    return config


def _asset(handler: RequestHandler, path: str) -> str:
    return asset_url(_config(handler).base_url, path)


def script_json(value: Any) -> str:
    """JSON to put inside a ``<script>`` element: ``<``, ``>`` and ``&`` are escaped, so no
    string in it can end the element or open a comment, whatever file names it holds."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _import_map(handler: RequestHandler) -> str:
    return script_json(import_map(_config(handler).base_url))


def _custom_css(handler: RequestHandler) -> str:
    config = _config(handler)
    return f"{config.base_url}custom/custom.css?v={file_version(custom_css_path(config))}"


def _base(handler: RequestHandler) -> str:
    return _config(handler).base_url


def _csp_nonce(handler: RequestHandler) -> str:
    """The nonce of the page's inline scripts (UI pages have one; other pages need none)."""
    return str(getattr(handler, "nonce", ""))


def _languages(handler: RequestHandler) -> list[tuple[str, str]]:
    """``(code, name)`` of each interface language, named in itself (``"中文"``)."""
    return [(lang, catalogue(lang)["language.name"]) for lang in LANGUAGES]


def _t(handler: RequestHandler, key: str) -> str:
    """The English message for ``key``: what pages show before (or without) the scripts."""
    return catalogue("en").get(key, key)


def _pages(handler: RequestHandler) -> str:
    """Where the UI's page URLs start (``pages()`` + ``"tree"``): the handler's ``pages_url``
    (``<base_url>nbserver/`` when Notebook 7 owns ``/tree``), else ``base_url``."""
    return str(getattr(handler, "pages_url", _config(handler).base_url))


def _page_config(handler: RequestHandler, page: str, **extra: Any) -> str:
    """The JSON the page's scripts read from ``<script id=page-config type=application/json>``:
    ``baseUrl`` (APIs, ``/files``, login), ``pagesUrl`` (the UI's pages: see :func:`_pages`),
    ``page``, ``languages`` (catalogue URLs) and the page's own keys."""
    base_url = _config(handler).base_url
    return script_json(
        {
            "baseUrl": base_url,
            "pagesUrl": _pages(handler),
            "page": page,
            "languages": {lang: asset_url(base_url, f"i18n/{lang}.json") for lang in LANGUAGES},
            **extra,
        }
    )


TEMPLATE_METHODS = {
    "asset": _asset,
    "base": _base,
    "pages": _pages,
    "csp_nonce": _csp_nonce,
    "languages": _languages,
    "import_map": _import_map,
    "custom_css": _custom_css,
    "t": _t,
    "page_config": _page_config,
}
