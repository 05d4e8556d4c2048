"""JupyterLab in headless Chromium, served by ``python -m nbserver`` from the installed wheels.

Every response the page receives is recorded; a 4xx/5xx not allowed by
:data:`tests.lab.browsing.ALLOWED` fails the test, and so does any error dialog.
"""

from __future__ import annotations

from typing import Any

from tests.lab.browsing import NOTEBOOK, Recorder, lab_page, lab_server, no_error_dialog, output_saved
from tests.lab.conftest import requires_lab
from tests.ui.conftest import TOKEN, UIServer, eventually, requires_chromium

__all__ = ["lab_page", "lab_server"]  # fixtures

pytestmark = [requires_lab, requires_chromium]


def test_lab_runs_saves_and_reloads_a_notebook(lab_server: UIServer, lab_page: tuple[Any, Recorder]) -> None:
    from playwright.sync_api import expect

    page, recorder = lab_page
    lab_server.api("PUT", "api/contents/six.ipynb", {"type": "notebook", "content": NOTEBOOK})
    page.goto(lab_server.url(f"lab?token={TOKEN}"))
    expect(page.locator("#jp-MainMenu")).to_be_visible(timeout=60_000)
    expect(page.locator(".jp-DirListing-item", has_text="six.ipynb")).to_be_visible(timeout=30_000)
    page.locator(".jp-DirListing-item", has_text="six.ipynb").dblclick()
    editor = page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first
    expect(editor).to_be_visible(timeout=30_000)
    # the kernel is started and connected (status bar), so the run below reaches it
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=60_000)
    editor.click()
    page.keyboard.type("print(6*7)")
    expect(editor).to_have_text("print(6*7)")
    page.keyboard.press("Shift+Enter")
    expect(page.locator(".jp-NotebookPanel .jp-OutputArea-output").first).to_contain_text(
        "42", timeout=60_000
    )
    page.locator(".jp-NotebookPanel").first.click()
    page.keyboard.press("Control+s")

    eventually(lambda: output_saved(lab_server, "six.ipynb", "42"), timeout=30)
    page.reload()
    expect(page.locator(".jp-NotebookPanel .jp-OutputArea-output").first).to_contain_text(
        "42", timeout=60_000
    )
    no_error_dialog(page)
    assert any("/lab/api/settings" in url for _, _, url in recorder.responses)
    assert any("/lab/api/workspaces" in url for _, _, url in recorder.responses)
    lab_server.shut_down_kernels()
