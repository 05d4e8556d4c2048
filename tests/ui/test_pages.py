"""The other pages in a real browser: login and logout, languages, /edit, /view, custom.css and
frame embedding."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.ui.conftest import (
    EMBEDDER_PORT,
    FRAME_ANCESTOR,
    PAGES,
    TOKEN,
    UIServer,
    eventually,
    new_page,
    requires_chromium,
)
from tests.ui.images import solid_png

pytestmark = requires_chromium


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def test_login_with_the_token_and_log_out(anonymous_page: Any, ui_server: UIServer) -> None:
    page = anonymous_page
    page.goto(ui_server.ui_url("tree"))
    expect(page).to_have_url(ui_server.url("login?" + urlencode({"next": "/" + PAGES + "tree"})))
    expect(page.locator("label[for=password]")).to_have_text("Token")
    page.fill("#password", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_have_text("Invalid credentials")
    page.fill("#password", TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(ui_server.ui_url("tree"))
    expect(page.locator("#new-button")).to_have_text("New")
    page.click("a.logout")
    expect(page.locator("h1")).to_have_text("You have logged out")
    page.goto(ui_server.ui_url("tree"))
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_home_is_the_file_browser(page: Any, ui_server: UIServer) -> None:
    """/nbserver leads to the built-in file browser, wherever it lives; the brand link too."""
    page.goto(ui_server.url("nbserver"))
    expect(page).to_have_url(ui_server.ui_url("tree"))
    expect(page).to_have_title("Files")
    (ui_server.root / "home.txt").write_text("x")
    page.goto(ui_server.ui_url("edit/home.txt"))
    page.click("a.brand")
    expect(page).to_have_url(ui_server.ui_url("tree"))
    expect(page).to_have_title("Files")


def test_switch_to_chinese_and_back(page: Any, ui_server: UIServer) -> None:
    page.goto(ui_server.ui_url("tree"))
    expect(page.locator("#new-button")).to_have_text("New")
    page.select_option("#lang-select", "zh")
    expect(page.locator("#new-button")).to_have_text("新建")
    expect(page.locator("#tab-running")).to_have_text("运行中")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.reload()  # the choice is remembered
    expect(page.locator("#new-button")).to_have_text("新建")
    expect(page.locator("#lang-select")).to_have_value("zh")
    page.select_option("#lang-select", "en")
    expect(page.locator("#new-button")).to_have_text("New")


@pytest.fixture
def chinese_page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """An anonymous page in a browser whose language is Simplified Chinese."""
    yield from new_page(browser, request, locale="zh-CN")


def test_the_browser_language_picks_chinese(chinese_page: Any, ui_server: UIServer) -> None:
    page = chinese_page
    page.goto(ui_server.ui_url("tree"))  # anonymous: the login page
    expect(page.locator("h1")).to_have_text("登录")
    expect(page.locator("label[for=password]")).to_have_text("令牌")
    page.fill("#password", TOKEN)
    page.click("button[type=submit]")
    expect(page.locator("#new-button")).to_have_text("新建")
    expect(page.locator("#listing th.col-name")).to_have_text("名称")


def test_edit_a_text_file(page: Any, ui_server: UIServer) -> None:
    (ui_server.root / "notes.txt").write_text("first line\n")
    page.goto(ui_server.ui_url("edit/notes.txt"))
    editor = page.locator("#editor")
    expect(editor).to_have_value("first line\n")
    expect(page.locator("#last-saved")).to_contain_text("Last saved")
    editor.press("End")
    editor.press_sequentially("second line")
    expect(page.locator("#dirty")).to_be_visible()
    page.keyboard.press("Control+s")
    eventually(lambda: (ui_server.root / "notes.txt").read_text() == "first line\nsecond line")
    expect(page.locator("#dirty")).to_be_hidden()
    editor.press_sequentially("!")
    page.click("#save")
    eventually(lambda: (ui_server.root / "notes.txt").read_text() == "first line\nsecond line!")
    expect(page.locator("#dirty")).to_be_hidden()


def test_edit_refuses_binary_files(page: Any, ui_server: UIServer) -> None:
    (ui_server.root / "blob.bin").write_bytes(b"\xff\xfe\x00binary")
    page.goto(ui_server.ui_url("edit/blob.bin"))
    expect(page.locator("#not-text")).to_be_visible()
    expect(page.locator("#editor")).to_be_disabled()
    expect(page.locator("#view")).to_have_attribute("href", f"/{PAGES}view/blob.bin")


def test_view_an_image_and_an_html_file(page: Any, ui_server: UIServer) -> None:
    (ui_server.root / "pic.png").write_bytes(solid_png(3, 2, (0, 128, 0)))
    page.goto(ui_server.ui_url("view/pic.png"))
    image = page.locator("#viewer img")
    expect(image).to_have_attribute("src", "/files/pic.png")
    page.wait_for_function("() => document.querySelector('#viewer img').naturalWidth === 3")
    expect(page.locator("#download")).to_have_attribute("href", "/files/pic.png?download=1")

    (ui_server.root / "page.html").write_text(
        "<h1>Hello</h1><script>try { parent.document.title = 'pwned' }"
        " catch (e) { document.body.dataset.blocked = 'yes' }</script>"
    )
    page.goto(ui_server.ui_url("view/page.html"))
    expect(page.frame_locator("#viewer iframe").locator("h1")).to_have_text("Hello")
    # the file's script runs, sandboxed in its own origin: it cannot reach the page
    expect(page.frame_locator("#viewer iframe").locator("body")).to_have_attribute("data-blocked", "yes")
    expect(page).to_have_title("page.html")


def test_custom_css_is_loaded_last(page: Any, ui_server: UIServer) -> None:
    response = page.goto(ui_server.ui_url("tree"))
    assert response is not None
    links = page.locator("link[rel=stylesheet]")
    expect(links.last).to_have_attribute("href", re.compile(r"^/custom/custom\.css\?v=\w+$"))
    color = page.locator(".brand").evaluate("el => getComputedStyle(el).color")
    assert color == "rgb(1, 2, 3)"


@pytest.fixture
def embedder(ui_server: UIServer) -> Iterator[str]:
    """A page that shows the server's login page in a frame, served at FRAME_ANCESTOR and at a
    second loopback port: an origin not allowed. Yields that second origin.

    Both are on 127.0.0.1, the server's host, so the frame is same-site: Chromium keeps it in
    the page's process and Playwright follows its navigation. A cross-site frame (a page on
    ``localhost``) runs in a process of its own, and under CPU load Playwright sometimes never
    learns that it committed the browser's error page (its URL stays empty)."""
    body = f'<iframe id="ui" src="{ui_server.url("login")}" width="600" height="400"></iframe>'.encode()

    class Embedder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    servers = [ThreadingHTTPServer(("127.0.0.1", port), Embedder) for port in (EMBEDDER_PORT, 0)]
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    yield f"http://127.0.0.1:{servers[1].server_address[1]}"
    for server, thread in zip(servers, threads, strict=True):
        server.shutdown()
        server.server_close()
        thread.join()


def test_frame_embedding_only_from_configured_origins(
    anonymous_page: Any, ui_server: UIServer, embedder: str
) -> None:
    page = anonymous_page
    response = page.goto(ui_server.url("login"))
    assert response is not None
    assert f"frame-ancestors 'self' {FRAME_ANCESTOR}" in response.headers["content-security-policy"]
    page.goto(FRAME_ANCESTOR + "/")
    expect(page.frame_locator("#ui").locator("#password")).to_be_visible()
    page.goto(embedder + "/")  # another port: another origin
    # a blocked frame shows the browser's error page, never the form
    form = page.frame_locator("#ui").locator("#password")

    def blocked() -> bool:
        return any(frame.url.startswith("chrome-error:") for frame in page.frames)

    eventually(lambda: blocked() or form.count() > 0)
    assert form.count() == 0, f"{embedder} framed the login page"
    assert blocked()
