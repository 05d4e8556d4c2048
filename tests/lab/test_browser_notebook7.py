"""Notebook 7 in headless Chromium, served by ``python -m nbserver`` from the installed wheel: it
owns ``/tree``, ``/notebooks`` and ``/edit`` (the built-in UI is under ``/nbserver/``).

Every response the pages receive is recorded; a 4xx/5xx not allowed by
:data:`tests.lab.browsing.ALLOWED` fails the test, and so does any error dialog or uncaught
script error (but Notebook 7's own, :data:`tests.lab.browsing.NOTEBOOK7_OWN_ERRORS`).
"""

from __future__ import annotations

from typing import Any

from tests.lab.browsing import (
    NOTEBOOK,
    Recorder,
    lab_page,
    lab_server,
    no_error_dialog,
    no_script_error,
    notebook7_page,
    output_saved,
    watch,
)
from tests.lab.conftest import requires_notebook
from tests.ui.conftest import TOKEN, UIServer, eventually, requires_chromium

__all__ = ["lab_page", "lab_server"]  # fixtures

pytestmark = [requires_notebook, requires_chromium]


def test_notebook7_tree_opens_runs_saves_and_reloads_a_notebook(
    lab_server: UIServer, lab_page: tuple[Any, Recorder]
) -> None:
    """``/tree?token=``: Notebook 7's file browser lists the notebook; opening it (a new tab, as
    Notebook 7 does) shows ``/notebooks/<path>``, where ``print(6*7)`` prints 42; Ctrl+S saves
    the output (seen through the contents API) and a reload shows it again."""
    from playwright.sync_api import expect

    fixture_page, recorder = lab_page
    page, errors = notebook7_page(fixture_page, recorder)
    lab_server.api("PUT", "api/contents/seven.ipynb", {"type": "notebook", "content": NOTEBOOK})
    page.goto(lab_server.url(f"tree?token={TOKEN}"))
    expect(page).to_have_url(lab_server.url("tree"))  # the token was traded for the cookie
    entry = page.locator(".jp-DirListing-item", has_text="seven.ipynb")
    expect(entry).to_be_visible(timeout=60_000)
    with page.context.expect_page() as opened:
        entry.dblclick()
    notebook = opened.value
    watch(notebook, recorder, errors)
    expect(notebook).to_have_url(lab_server.url("notebooks/seven.ipynb"), timeout=30_000)
    # the page's session has its kernel (the toolbar shows the kernel's logo; a run before that
    # is silently dropped, as Notebook 7 does with any server) and the kernel is idle
    expect(notebook.get_by_role("img", name="Python 3 (ipykernel)")).to_be_visible(timeout=60_000)
    idle = notebook.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    expect(idle).to_have_count(1, timeout=60_000)
    editor = notebook.locator(".jp-NotebookPanel .jp-Cell .cm-content").first
    editor.click()
    notebook.keyboard.type("print(6*7)")
    expect(editor).to_have_text("print(6*7)")
    notebook.keyboard.press("Shift+Enter")
    output = notebook.locator(".jp-NotebookPanel .jp-OutputArea-output").first
    expect(output).to_contain_text("42", timeout=60_000)
    notebook.keyboard.press("Control+s")

    eventually(lambda: output_saved(lab_server, "seven.ipynb", "42"), timeout=30)
    notebook.reload()
    expect(notebook.locator(".jp-NotebookPanel .jp-OutputArea-output").first).to_contain_text(
        "42", timeout=60_000
    )
    no_error_dialog(page)
    no_error_dialog(notebook)
    no_script_error(errors)
    assert any("/static/notebook/" in url for _, _, url in recorder.responses)
    lab_server.shut_down_kernels()
