"""The web UI's server side over real HTTP: page routes, login redirects, 404s, the
Content-Security-Policy, the page configuration, versioned static assets, custom.css, cookies."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import Client
from tests.ui.conftest import PAGES, without_notebook7

NOTEBOOK = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []})


class PageParts(HTMLParser):
    """What a test needs from a page: its scripts, stylesheets and URLs."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.urls: list[str] = []
        self._script: dict[str, str | None] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self._script = attributes
        for name in ("href", "src"):
            value = attributes.get(name)
            if value and tag in ("link", "script", "img"):
                self.urls.append(value)

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self.scripts.append((self._script, data))
            self._script = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, ""))
            self._script = None

    def script(self, **wanted: str) -> tuple[dict[str, str | None], str]:
        return next((a, body) for a, body in self.scripts if all(a.get(k) == v for k, v in wanted.items()))

    @property
    def config(self) -> Any:
        return json.loads(self.script(id="page-config")[1])

    @property
    def import_map(self) -> Any:
        return json.loads(self.script(type="importmap")[1])


@pytest.fixture
def tree(root_dir: Path) -> Path:
    (root_dir / "sub").mkdir()
    (root_dir / "nb.ipynb").write_text(NOTEBOOK)
    (root_dir / "a.txt").write_text("x")
    (root_dir / ".hidden.txt").write_text("x")
    return root_dir


@pytest.fixture
def ui_client(layout: str, io_loop: Any, make_server: Any, make_client: Any) -> Client:
    """A client of a server built in ``layout`` (the built-in UI under ``/nbserver/`` or at the root)."""
    client: Client = make_client(io_loop.run_sync(make_server))
    return client


@pytest.mark.parametrize("path", ["", "tree", "tree/sub", "notebooks/nb.ipynb", "edit/a.txt", "view/a.txt"])
async def test_anonymous_visits_go_to_the_login_page(
    ui_client: Client, layout: str, tree: Path, path: str
) -> None:
    url = layout + path if path else ""
    r = await ui_client.get(url, auth=None)
    assert r.status == 302
    assert r.headers["Location"] == "/login?" + urlencode({"next": "/" + url})


@pytest.mark.parametrize(
    ("path", "status", "location"),
    [
        ("tree", 200, None),
        ("tree/sub", 200, None),
        ("tree/nb.ipynb", 302, "/notebooks/nb.ipynb"),
        ("tree/a.txt", 302, "/view/a.txt"),
        ("tree/missing", 404, None),
        ("tree/.hidden.txt", 404, None),
        ("tree/%2E%2E", 404, None),
        ("tree/sub%2F..%2F..", 404, None),
        ("notebooks/nb.ipynb", 200, None),
        ("notebooks/sub", 302, "/tree/sub"),
        ("notebooks/a.txt", 302, "/edit/a.txt"),
        ("notebooks/missing.ipynb", 404, None),
        ("edit/a.txt", 200, None),
        ("edit/nb.ipynb", 200, None),
        ("edit/sub", 302, "/tree/sub"),
        ("edit/missing.txt", 404, None),
        ("view/a.txt", 200, None),
        ("view/sub", 302, "/tree/sub"),
        ("view/missing.png", 404, None),
    ],
)
async def test_page_routes(
    ui_client: Client, layout: str, tree: Path, path: str, status: int, location: str | None
) -> None:
    """The built-in pages, in both layouts, redirect only within the layout's pages."""
    r = await ui_client.get(layout + path)
    assert r.status == status, r.text
    if location is not None:
        assert r.headers["Location"] == "/" + layout + location.lstrip("/")
    if status == 404:
        assert r.headers["Content-Type"].startswith("text/html")
        assert "<h1>404 Not Found</h1>" in r.text


async def test_notebook7_owns_tree_notebooks_edit_and_the_built_in_ui_moves(
    make_server: Any, make_client: Any, tree: Path
) -> None:
    """With Notebook 7 hosted, /tree, /notebooks/<file>, /edit/<file> are its pages (its page
    config), / still goes to default_url (/tree), /view/<file> stays the built-in viewer, and
    the built-in pages' configuration points at /nbserver/."""
    if not PAGES:
        pytest.skip("Notebook 7 is not installed")
    client = make_client(await make_server())
    assert (await client.get("")).headers["Location"] == "/tree"
    for path in ("tree", "tree/sub", "notebooks/nb.ipynb", "edit/a.txt"):
        r = await client.get(path)
        assert r.status == 200, path
        assert '"appName": "Jupyter Notebook"' in r.text, path
    assert (await client.get("tree/a.txt")).headers["Location"] == "/files/a.txt"  # as Notebook 7
    for path in ("view/a.txt", "nbserver/view/a.txt", "nbserver/tree"):
        assert PageParts((await client.get(path)).text).config["pagesUrl"] == "/nbserver/", path


async def test_without_notebook7_the_built_in_ui_keeps_the_root(
    make_server: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch, tree: Path
) -> None:
    """Without Notebook 7 the root pages are the built-in ones (pagesUrl "/"); the /nbserver/
    pages exist too and lead to the root's."""
    without_notebook7(monkeypatch)
    client = make_client(await make_server())
    assert (await client.get("")).headers["Location"] == "/tree"
    for path in ("tree", "nbserver/tree", "view/a.txt"):
        assert PageParts((await client.get(path)).text).config["pagesUrl"] == "/", path
    assert (await client.get("nbserver/tree/nb.ipynb")).headers["Location"] == "/notebooks/nb.ipynb"
    assert (await client.get("consoles/x")).status == 404  # Notebook 7's page: "not installed"


async def test_page_has_a_strict_policy_with_the_nonce_of_its_import_map(client: Client, tree: Path) -> None:
    r = await client.get(PAGES + "notebooks/nb.ipynb", params={"kernel_name": "python3"})
    policy = r.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([\w-]+)'", policy)
    assert nonce is not None
    assert "default-src 'self'" in policy and "object-src 'none'" in policy and "base-uri 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert policy.endswith("frame-ancestors 'self'")
    parts = PageParts(r.text)
    assert parts.script(type="importmap")[0]["nonce"] == nonce.group(1)
    config = dict(parts.config)
    config.pop("services", None)  # the optional services' flags, tested with the pages using them
    assert config == {
        "baseUrl": "/",
        "pagesUrl": "/" + PAGES,
        "page": "notebook",
        "path": "nb.ipynb",
        "kernelName": "python3",
        "languages": {"en": parts.config["languages"]["en"], "zh": parts.config["languages"]["zh"]},
    }
    other = await client.get(PAGES + "notebooks/nb.ipynb")
    assert other.headers["Content-Security-Policy"] != policy, "a fresh nonce per response"
    assert r.headers["Cache-Control"] == "no-cache"
    assert "_xsrf" in r.cookies()


async def test_frame_ancestors_reach_every_page(make_server: Any, make_client: Any, tree: Path) -> None:
    origins = ("https://a.example", "https://*.b.example")
    client = make_client(await make_server(frame_ancestors=origins))
    for path in (PAGES + "tree", PAGES + "notebooks/nb.ipynb", "login", "files/a.txt"):
        r = await client.get(path)
        assert (
            "frame-ancestors 'self' https://a.example https://*.b.example"
            in r.headers["Content-Security-Policy"]
        ), path
    assert "frame-ancestors 'none'" in (await client.get("api/status")).headers["Content-Security-Policy"]
    missing = await client.get(PAGES + "tree/missing")
    assert "frame-ancestors 'self' https://a.example" in missing.headers["Content-Security-Policy"]


async def test_names_are_escaped_in_the_page(client: Client, root_dir: Path) -> None:
    name = "a<b>&\"c'<!--<script>"
    (root_dir / name).mkdir()
    r = await client.get(PAGES + "tree/" + re.sub(r"[^\w]", lambda m: f"%{ord(m.group()):02X}", name))
    assert r.status == 200
    assert "<b>" not in r.text and "<!--" not in r.text and "<script>&" not in r.text
    assert PageParts(r.text).config["path"] == name


async def test_every_asset_of_a_page_is_versioned_public_and_cacheable(client: Client, tree: Path) -> None:
    page = PageParts((await client.get(PAGES + "notebooks/nb.ipynb")).text)
    modules = page.import_map["imports"]
    assert "/static/js/pages/notebook.js" in modules and "/static/js/notebook/kernel.js" in modules
    urls = [u for u in page.urls if u.startswith("/static/")] + list(modules.values())
    urls += list(page.config["languages"].values())
    for url in urls:
        assert re.search(r"\?v=[0-9a-f]{12}$", url), url
        r = await client.get(url.lstrip("/").split("?")[0], params={"v": url.split("?v=")[1]}, auth=None)
        assert r.status == 200, url
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable", url
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    for key, url in modules.items():
        assert url.startswith(key + "?v="), "the import map maps each module to its versioned URL"


async def test_static_files_without_a_version_are_revalidated(client: Client) -> None:
    r = await client.get("static/css/nbserver.css", auth=None)
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/css"
    assert r.headers["Cache-Control"] == "no-cache"
    etag = r.headers["Etag"]
    again = await client.get("static/css/nbserver.css", auth=None, headers={"If-None-Match": etag})
    assert again.status == 304
    assert (
        (await client.get("static/js/api.js", auth=None))
        .headers["Content-Type"]
        .startswith(("application/javascript", "text/javascript"))
    )


@pytest.mark.parametrize(
    "path", ["static/templates/base.html", "static/nope.js", "static/css/%2E%2E/%2E%2E/app.py"]
)
async def test_static_serves_only_assets(client: Client, path: str) -> None:
    assert (await client.get(path, auth=None)).status in (403, 404)


async def test_custom_css(make_server: Any, make_client: Any, tmp_path: Path) -> None:
    custom = tmp_path / "custom"
    client = make_client(await make_server(custom_dir=custom))
    empty = await client.get("custom/custom.css", auth=None)
    assert (empty.status, empty.headers["Content-Type"]) == (200, "text/css; charset=UTF-8")
    assert empty.text == "/* no custom.css */\n"
    link = PageParts((await client.get(PAGES + "tree")).text).urls
    assert "/custom/custom.css?v=0" in link
    custom.mkdir()
    (custom / "custom.css").write_text("body { color: red }")
    r = await client.get("custom/custom.css", auth=None, params={"v": "1"})
    assert r.body == b"body { color: red }"
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    stylesheets = [u for u in PageParts((await client.get(PAGES + "tree")).text).urls if ".css" in u]
    assert re.fullmatch(r"/custom/custom\.css\?v=[0-9a-f]{12}", stylesheets[-1]), "loaded last, versioned"


async def test_base_url_prefixes_every_url(make_server: Any, make_client: Any, tree: Path) -> None:
    client = make_client(await make_server(base_url="/jp/"))
    assert (await client.get("")).headers["Location"] == "/jp/tree"
    login = "/jp/login?" + urlencode({"next": f"/jp/{PAGES}tree"})
    assert (await client.get(PAGES + "tree", auth=None)).headers["Location"] == login
    assert (await client.get(PAGES + "tree/nb.ipynb")).headers["Location"] == f"/jp/{PAGES}notebooks/nb.ipynb"
    page = PageParts((await client.get(PAGES + "notebooks/nb.ipynb")).text)
    assert page.config["baseUrl"] == "/jp/" and page.config["pagesUrl"] == f"/jp/{PAGES}"
    assert all(u.startswith("/jp/") for u in page.urls), page.urls
    assert all(k.startswith("/jp/static/js/") for k in page.import_map["imports"])
    assert (await client.get("static/js/api.js", auth=None)).status == 200


async def test_samesite_none_cookies_are_secure(make_server: Any, make_client: Any) -> None:
    client = make_client(await make_server(cookie_samesite="None"))
    r = await client.get(PAGES + "tree", auth="query")
    assert r.status == 302
    cookies = r.headers.get_list("Set-Cookie")
    assert len(cookies) == 2
    for cookie in cookies:
        assert "SameSite=None" in cookie and "Secure" in cookie, cookie


async def test_login_page_is_a_translated_ui_page(client: Client) -> None:
    r = await client.get("login", auth=None)
    assert 'data-i18n="login.token">Token</label>' in r.text
    assert 'data-i18n="login.title">Log in</h1>' in r.text
    page = PageParts(r.text)
    assert page.config["page"] == "login"
    assert any(u.startswith("/static/js/pages/login.js?v=") for u in page.urls)
    assert "/custom/custom.css" in " ".join(page.urls)
