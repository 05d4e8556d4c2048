"""File ▸ Download as on the notebook page, in a real browser: each format downloads the bytes
nbconvert (or /files) serves, a notebook with unsaved changes is saved first, and only the
formats /api/nbconvert lists are offered.

Bad inputs tried: unsaved edits at download time; a server whose /api/nbconvert lists only
``html`` (the script and Markdown entries must go); one that lists no exporter at all.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import TOKEN, UIServer, requires_chromium

pytestmark = requires_chromium

NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python", "file_extension": ".py", "mimetype": "text/x-python"},
    },
    "cells": [
        {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": "# Download title"},
        {
            "cell_type": "code",
            "id": "c1",
            "metadata": {},
            "execution_count": 1,
            "source": "print('six times seven')",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "six times seven\n"}],
        },
    ],
}
LABELS = ["HTML (.html)", "Python script (.py)", "Markdown (.md)", "Notebook (.ipynb)"]


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture(autouse=True)
def _no_kernels_left(ui_server: UIServer) -> Any:
    yield
    ui_server.shut_down_kernels()


def open_notebook(page: Any, server: UIServer, name: str) -> None:
    (server.root / name).write_text(json.dumps(NOTEBOOK))
    page.goto(server.ui_url(f"notebooks/{name}"))
    expect(page.locator("#kernel-status")).to_have_attribute("data-state", "idle", timeout=60_000)


def exported(server: UIServer, format: str, path: str) -> bytes:
    """The export as the server sends it to a token-authenticated client."""
    request = urllib.request.Request(
        server.url(f"nbconvert/{format}/{path}?download=true"), headers={"Authorization": f"token {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        body: bytes = response.read()
    return body


def download(page: Any, format: str) -> tuple[str, bytes]:
    """Pick File ▸ Download as ▸ ``format``; the suggested file name and the bytes."""
    page.click("#file-button")
    with page.expect_download() as info:
        page.click(f"#download-items button[data-format={format}]")
    done = info.value
    assert done.failure() is None
    return done.suggested_filename, Path(done.path()).read_bytes()


def test_each_format_downloads_its_export(page: Any, ui_server: UIServer) -> None:
    open_notebook(page, ui_server, "formats.ipynb")
    page.click("#file-button")
    expect(page.locator("#download-items button")).to_have_text(LABELS)
    page.keyboard.press("Escape")

    name, body = download(page, "html")
    assert name == "formats.html"
    html = body.decode()
    assert html.lstrip().lower().startswith("<!doctype html>") and "Download title" in html
    assert "six times seven" in html

    name, body = download(page, "script")
    assert name == "formats.py"
    assert body == exported(ui_server, "script", "formats.ipynb")
    assert "print('six times seven')" in body.decode()

    name, body = download(page, "markdown")
    assert name == "formats.md"
    assert body == exported(ui_server, "markdown", "formats.ipynb")
    assert (
        body.decode().startswith("# Download title")
        and "```python\nprint('six times seven')" in body.decode()
    )

    name, body = download(page, "notebook")
    assert name == "formats.ipynb"
    assert body == (ui_server.root / "formats.ipynb").read_bytes()
    assert json.loads(body)["cells"][1]["source"] == "print('six times seven')"


def test_unsaved_changes_are_saved_before_the_download(page: Any, ui_server: UIServer) -> None:
    open_notebook(page, ui_server, "dirty.ipynb")
    source = page.locator('.cell[data-id="c1"] textarea')
    source.fill("print('edited before download')")
    expect(page.locator("#dirty")).to_be_visible()
    name, body = download(page, "script")
    assert name == "dirty.py" and "print('edited before download')" in body.decode()
    expect(page.locator("#dirty")).to_be_hidden()
    saved = json.loads((ui_server.root / "dirty.ipynb").read_text())
    assert "edited before download" in "".join(saved["cells"][1]["source"])

    source.fill("print('edited again')")
    _, body = download(page, "notebook")
    assert "edited again" in "".join(json.loads(body)["cells"][1]["source"])


@pytest.mark.parametrize(
    ("listed", "labels"),
    [({"html": {"output_mimetype": "text/html"}}, [LABELS[0], LABELS[3]]), ({}, [LABELS[3]])],
    ids=["html only", "no exporter"],
)
def test_only_listed_formats_are_offered(
    page: Any, ui_server: UIServer, listed: Any, labels: list[str]
) -> None:
    page.route(
        re.compile(r"/api/nbconvert$"),
        lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(listed)),
    )
    open_notebook(page, ui_server, "listed.ipynb")
    page.click("#file-button")
    expect(page.locator("#download-items button")).to_have_text(labels)
