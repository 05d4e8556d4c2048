"""JupyterLab in headless Chromium, served by ``python -m nbserver`` from the installed wheels.

Every response the page receives is recorded; a 4xx/5xx that is not in :data:`ALLOWED` fails
the test, and so does any error dialog. ``ALLOWED`` lists what nbserver deliberately does not
serve: the server parts of third-party extensions that happen to be installed next to
JupyterLab (jupyter-lsp's ``/lsp/status``, which JupyterLab's LSP plugin polls; ipyparallel's
``/ipyparallel/...``, whose lab extension is disabled here to keep its error dialog away).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.lab.conftest import requires_lab
from tests.ui.conftest import TOKEN, UIServer, eventually, new_page, requires_chromium, start_server

ALLOWED = [
    re.compile(r"/lsp/status$"),  # jupyter-lsp's server extension: not part of nbserver
    re.compile(r"/ipyparallel/"),  # ipyparallel's server extension: not part of nbserver
]

pytestmark = [requires_lab, requires_chromium]

NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "c1",
            "metadata": {},
            "outputs": [],
            "source": "",
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    home = tmp_path_factory.mktemp("lab")
    for server in start_server(home):
        labconfig = home / "jupyter-config" / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {"ipyparallel-labextension": True}})
        )
        yield server


class Recorder:
    """Every response's status and URL; the failures not allowed."""

    def __init__(self) -> None:
        self.responses: list[tuple[int, str, str]] = []

    def __call__(self, response: Any) -> None:
        self.responses.append((response.status, response.request.method, response.url))

    def failures(self) -> list[tuple[int, str, str]]:
        return [
            r
            for r in self.responses
            if r[0] >= 400 and not any(p.search(r[2].split("?")[0]) for p in ALLOWED)
        ]


@pytest.fixture
def lab_page(browser: Any, request: pytest.FixtureRequest) -> Iterator[tuple[Any, Recorder]]:
    recorder = Recorder()
    for page in new_page(browser, request, locale="en-US"):
        page.on("response", recorder)
        yield page, recorder
        assert not recorder.failures(), f"unexpected HTTP errors: {recorder.failures()}"


def no_error_dialog(page: Any) -> None:
    dialogs = page.locator(".jp-Dialog")
    assert dialogs.count() == 0, f"dialog shown: {dialogs.first.inner_text()}"


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

    def saved() -> bool:
        model = lab_server.api("GET", "api/contents/six.ipynb")
        return any(
            "42" in "".join(o.get("text", ""))
            for c in model["content"]["cells"]
            for o in c.get("outputs", [])
        )

    eventually(saved, timeout=30)
    page.reload()
    expect(page.locator(".jp-NotebookPanel .jp-OutputArea-output").first).to_contain_text(
        "42", timeout=60_000
    )
    no_error_dialog(page)
    assert any("/lab/api/settings" in url for _, _, url in recorder.responses)
    assert any("/lab/api/workspaces" in url for _, _, url in recorder.responses)
    lab_server.shut_down_kernels()
