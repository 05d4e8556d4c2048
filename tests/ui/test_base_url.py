"""The UI under a base URL (``--base-url /jp/``): every page, request and websocket stays under it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import UIServer, requires_chromium, start_server
from tests.ui.test_notebook import expect, run

pytestmark = requires_chromium


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    yield from start_server(tmp_path_factory.mktemp("ui-base-url"), "--base-url", "/jp/")


def test_everything_stays_under_the_base_url(page: Any, ui_server: UIServer) -> None:
    outside: list[str] = []
    page.on(
        "request", lambda r: None if "/jp/" in r.url or r.url.startswith("data:") else outside.append(r.url)
    )
    page.goto(ui_server.url())
    expect(page).to_have_url(ui_server.url("tree"))
    page.locator("#upload-input").set_input_files(
        [{"name": "a b.txt", "mimeType": "text/plain", "buffer": b"hi"}]
    )
    page.locator("#listing .entry-name", has_text="a b.txt").click()
    expect(page).to_have_url(ui_server.url("edit/a%20b.txt"))
    expect(page.locator("#editor")).to_have_value("hi")
    page.locator("a.brand").click()
    page.click("#new-button")
    page.click('#new-notebook-items button[data-kernel="python3"]')
    expect(page).to_have_url(re.compile(r"/jp/notebooks/Untitled\.ipynb$"), timeout=60_000)
    expect(page.locator("#kernel-status")).to_have_attribute("data-state", "idle", timeout=60_000)
    cell = run(page, "print(6*7)")
    expect(cell.locator(".output-stream")).to_have_text("42\n")
    assert outside == []
    ui_server.shut_down_kernels()
