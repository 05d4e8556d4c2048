"""The UI under a base URL (``--base-url /jp/``): every page, request and websocket stays under it.

The built-in UI's home is ``/jp/nbserver/`` when Notebook 7 owns ``/jp/tree``, else ``/jp/``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import PAGES, UIServer, open_ui_page, requires_chromium, start_server
from tests.ui.test_notebook import expect, run

pytestmark = requires_chromium


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    yield from start_server(tmp_path_factory.mktemp("ui-base-url"), "--base-url", "/jp/")


def test_everything_stays_under_the_base_url(page: Any, ui_server: UIServer) -> None:
    """Upload, open, go home by the brand link, create a notebook and run a cell, all under
    /jp/. This test was flaky as the session's first browser test: the listing after the upload
    could come from Chromium's HTTP cache (next test), and an upload sent before the page's
    script had set up its handler (the catalogue loads first) was lost: pages are now used only
    once set up (``open_ui_page``, ``data-ready``)."""
    outside: list[str] = []
    page.on(
        "request", lambda r: None if "/jp/" in r.url or r.url.startswith("data:") else outside.append(r.url)
    )
    open_ui_page(page, ui_server.url("nbserver"))  # the built-in UI's home, wherever it lives
    expect(page).to_have_url(ui_server.ui_url("tree"))
    page.locator("#upload-input").set_input_files(
        [{"name": "a b.txt", "mimeType": "text/plain", "buffer": b"hi"}]
    )
    page.locator("#listing .entry-name", has_text="a b.txt").click()
    expect(page).to_have_url(ui_server.ui_url("edit/a%20b.txt"))
    expect(page.locator("#editor")).to_have_value("hi")
    page.locator("a.brand").click()
    expect(page).to_have_url(ui_server.ui_url("tree"))
    page.locator("html[data-ready=true]").wait_for(state="attached")
    page.click("#new-button")
    page.click('#new-notebook-items button[data-kernel="python3"]')
    expect(page).to_have_url(re.compile(rf"/jp/{PAGES}notebooks/Untitled\.ipynb$"), timeout=60_000)
    expect(page.locator("#kernel-status")).to_have_attribute("data-state", "idle", timeout=60_000)
    cell = run(page, "print(6*7)")
    expect(cell.locator(".output-stream")).to_have_text("42\n")
    assert outside == []
    ui_server.shut_down_kernels()


def test_the_listing_after_an_upload_is_fetched_anew(page: Any, ui_server: UIServer) -> None:
    """The flaky test's cause: API responses carry ``Last-Modified`` and no ``Cache-Control``
    (as jupyter_server's), so Chromium may reuse a directory listing for a tenth of the
    directory's age. A server root created seconds before the first listing (the first test
    of a fresh server) made the listing after the upload come from the cache, without the new
    file, until the UI asked for API responses with ``cache: "no-store"``. Here the directory
    is 100 s old: a 10 s window."""
    directory = ui_server.root / "aged"
    directory.mkdir()
    then = time.time() - 100
    os.utime(directory, (then, then))
    open_ui_page(page, ui_server.ui_url("tree/aged"))
    page.locator("#upload-input").set_input_files(
        [{"name": "new.txt", "mimeType": "text/plain", "buffer": b"x"}]
    )
    expect(page.locator("#listing .entry-name", has_text="new.txt")).to_be_visible()
