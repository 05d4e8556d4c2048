"""The file browser in a real browser: listing, new entries, upload, rename, duplicate, download,
delete, and the running sessions and kernels."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import PAGES, UIServer, eventually, requires_chromium

pytestmark = requires_chromium


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def row(page: Any, name: str) -> Any:
    return page.locator("#listing tbody tr").filter(
        has=page.locator(".entry-name", has_text=re.compile(f"^{re.escape(name)}$"))
    )


@pytest.fixture
def tree(page: Any, ui_server: UIServer) -> Path:
    """The browser at /tree/work, an empty directory of its own for each test."""
    work = ui_server.root / "work"
    if work.exists():
        for entry in sorted(work.rglob("*"), reverse=True):
            entry.rmdir() if entry.is_dir() else entry.unlink()
    work.mkdir(exist_ok=True)
    page.goto(ui_server.ui_url("tree/work"))
    expect(page.locator("#empty")).to_be_visible()
    return work


def test_listing_with_breadcrumbs(page: Any, ui_server: UIServer, tree: Path) -> None:
    (tree / "sub dir").mkdir()
    (tree / "a <b> & c.txt").write_text("x" * 2048)
    (tree / "sub dir" / "deep.ipynb").write_text("{}")
    page.click("#refresh")
    expect(row(page, "a <b> & c.txt").locator(".col-size")).to_have_text("2 KB")
    expect(row(page, "a <b> & c.txt").locator(".col-modified")).not_to_be_empty()
    names = page.locator("#listing .entry-name")
    expect(names).to_have_text(["sub dir", "a <b> & c.txt"])  # folders first; names as text
    expect(row(page, "a <b> & c.txt").locator("a.entry-name")).to_have_attribute(
        "href", f"/{PAGES}edit/work/a%20%3Cb%3E%20%26%20c.txt"
    )
    row(page, "sub dir").locator("a.entry-name").click()
    page.wait_for_url(ui_server.ui_url("tree/work/sub%20dir"))
    expect(page.locator("#breadcrumbs a")).to_have_text(["", "work", "sub dir"])
    expect(row(page, "deep.ipynb").locator("a.entry-name")).to_have_attribute(
        "href", f"/{PAGES}notebooks/work/sub%20dir/deep.ipynb"
    )
    page.locator("#breadcrumbs a", has_text="work").click()
    page.wait_for_url(ui_server.ui_url("tree/work"))


def test_new_text_file_and_folder(page: Any, ui_server: UIServer, tree: Path) -> None:
    page.click("#new-button")
    page.click("#new-folder")
    expect(row(page, "Untitled Folder")).to_be_visible()
    assert (tree / "Untitled Folder").is_dir()
    page.click("#new-button")
    expect(page.locator("#new-notebook-items .new-notebook", has_text="Python 3")).to_be_visible()
    expect(page.locator("#new-notebook-items img.kernel-logo")).to_have_attribute(
        "src", re.compile("/kernelspecs/python3/logo-64x64.png$")
    )
    page.click("#new-file")
    page.wait_for_url(ui_server.ui_url("edit/work/untitled.txt"))
    assert (tree / "untitled.txt").read_text() == ""


def test_upload_in_chunks_with_progress(page: Any, ui_server: UIServer, tree: Path) -> None:
    big = os.urandom(2 * 1024 * 1024 + 12345)  # three chunks of 1 MiB
    small = "héllo\n".encode()
    page.locator("#upload-input").set_input_files(
        [
            {"name": "big.bin", "mimeType": "application/octet-stream", "buffer": big},
            {"name": "small.txt", "mimeType": "text/plain", "buffer": small},
        ]
    )
    expect(page.locator('.upload[data-name="big.bin"] progress')).to_be_attached()
    expect(row(page, "small.txt")).to_be_visible()
    expect(row(page, "big.bin")).to_be_visible()
    assert (tree / "big.bin").read_bytes() == big
    assert (tree / "small.txt").read_bytes() == small
    expect(page.locator(".upload")).to_have_count(0)  # progress rows go away when done

    page.locator("#upload-input").set_input_files(
        [{"name": "small.txt", "mimeType": "text/plain", "buffer": b"new"}]
    )
    dialog = page.locator("dialog.modal")
    expect(dialog).to_contain_text("“small.txt” already exists")
    dialog.locator(".dialog-ok").click()
    eventually(lambda: (tree / "small.txt").read_bytes() == b"new")  # no upload row yet is no proof
    expect(page.locator(".upload")).to_have_count(0)


def test_rename_duplicate_download(page: Any, ui_server: UIServer, tree: Path) -> None:
    (tree / "data.csv").write_text("a,b\n1,2\n")
    page.click("#refresh")
    row(page, "data.csv").locator(".action-rename").click()
    page.locator("dialog.modal input").fill("renamed.csv")
    page.locator("dialog.modal .dialog-ok").click()
    expect(row(page, "renamed.csv")).to_be_visible()
    assert (tree / "renamed.csv").exists() and not (tree / "data.csv").exists()

    row(page, "renamed.csv").locator(".action-duplicate").click()
    expect(row(page, "renamed-Copy1.csv")).to_be_visible()

    with page.expect_download() as info:
        row(page, "renamed.csv").locator(".action-download").click()
    download = info.value
    assert download.suggested_filename == "renamed.csv"
    assert Path(download.path()).read_bytes() == b"a,b\n1,2\n"


def test_delete_asks_first(page: Any, ui_server: UIServer, tree: Path) -> None:
    (tree / "doomed.txt").write_text("bye")
    page.click("#refresh")
    row(page, "doomed.txt").locator(".action-delete").click()
    dialog = page.locator("dialog.modal")
    expect(dialog).to_contain_text("Delete “doomed.txt”?")
    dialog.locator(".dialog-cancel").click()
    expect(dialog).to_have_count(0)
    assert (tree / "doomed.txt").exists()
    row(page, "doomed.txt").locator(".action-delete").click()
    page.locator("dialog.modal .dialog-ok").click()
    expect(row(page, "doomed.txt")).to_have_count(0)
    assert not (tree / "doomed.txt").exists()


def test_running_sessions_and_kernels_shut_down(page: Any, ui_server: UIServer, tree: Path) -> None:
    session = ui_server.api(
        "POST",
        "api/sessions",
        {"path": "work/running.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
    )
    lone = ui_server.api("POST", "api/kernels", {"name": "python3"})
    try:
        page.click("#tab-running")
        sessions = page.locator("#sessions tbody tr")
        expect(sessions).to_have_count(1)
        expect(sessions.first).to_contain_text("work/running.ipynb")
        kernels = page.locator("#kernels tbody tr")
        expect(kernels).to_have_count(2)
        sessions.first.locator(".action-shutdown").click()
        page.locator("dialog.modal .dialog-ok").click()
        expect(sessions).to_have_count(0)
        expect(page.locator("#no-sessions")).to_be_visible()
        expect(kernels).to_have_count(1)
        expect(kernels.first).to_have_attribute("data-kernel", lone["id"])
        kernels.first.locator(".action-shutdown").click()
        page.locator("dialog.modal .dialog-ok").click()
        expect(page.locator("#no-kernels")).to_be_visible()
        assert ui_server.api("GET", "api/kernels") == []
        assert session["id"] not in {s["id"] for s in ui_server.api("GET", "api/sessions")}
    finally:
        ui_server.shut_down_kernels()
