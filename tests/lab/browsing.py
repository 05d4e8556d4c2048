"""What every hosted-UI browser test shares: a JupyterLab/Notebook 7 server, a response
recorder that fails the test on any 4xx/5xx not in :data:`ALLOWED`, and the error-dialog check.

``ALLOWED`` lists what nbserver deliberately does not serve: the server parts of third-party
extensions that happen to be installed next to JupyterLab (jupyter-lsp's ``/lsp/status``, which
JupyterLab's LSP plugin polls; ipyparallel's ``/ipyparallel/...``, whose lab extension nbserver
turns off by default, see ``nbserver.lab.page_config.NEED_SERVER_EXTENSIONS``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import UIServer, new_page, start_server

ALLOWED = [
    re.compile(r"/lsp/status$"),  # jupyter-lsp's server extension: not part of nbserver
    re.compile(r"/ipyparallel/"),  # ipyparallel's server extension: not part of nbserver
]

#: Uncaught script errors that Notebook 7.6 throws by itself, under jupyter_server 2.21 just the
#: same (checked side by side on its /tree and /notebooks pages): its shortcuts extension reads
#: ``plugins[id].schema`` of a plugin the settings registry does not hold yet. Any other fails.
NOTEBOOK7_OWN_ERRORS = [re.compile(r"Cannot read properties of undefined \(reading 'schema'\)")]

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
    yield from start_server(home)  # ipyparallel's lab extension is off by nbserver's default


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


def notebook7_page(context_page: Any, recorder: Recorder) -> tuple[Any, list[str]]:
    """A new page in ``context_page``'s context for Notebook 7, recorded by ``recorder``, and the
    list its uncaught script errors go to (check it with :func:`no_script_error`: Notebook 7
    throws :data:`NOTEBOOK7_OWN_ERRORS` itself, which would fail the fixture's own page)."""
    page = context_page.context.new_page()
    errors: list[str] = []
    watch(page, recorder, errors)
    return page, errors


def watch(page: Any, recorder: Recorder, errors: list[str]) -> None:
    """Record ``page``'s responses and collect its uncaught script errors in ``errors``."""
    page.on("response", recorder)
    page.on("pageerror", lambda error: errors.append(str(error)))


def no_script_error(errors: list[str]) -> None:
    unexpected = [e for e in errors if not any(p.search(e) for p in NOTEBOOK7_OWN_ERRORS)]
    assert not unexpected, f"uncaught script errors: {unexpected}"


def output_saved(server: UIServer, path: str, text: str) -> bool:
    """Whether the notebook at ``path``, as the contents API returns it, has an output with
    ``text`` (the UI saved it)."""
    model = server.api("GET", f"api/contents/{path}")
    return any(
        text in "".join(o.get("text", "")) for c in model["content"]["cells"] for o in c.get("outputs", [])
    )


def no_error_dialog(page: Any) -> None:
    dialogs = page.locator(".jp-Dialog")
    assert dialogs.count() == 0, f"dialog shown: {dialogs.first.inner_text()}"
