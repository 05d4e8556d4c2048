"""Notebook trust over real HTTP, as jupyter_server does it: cells read back marked
``metadata.trusted``; a save whose code cells are all trusted signs the notebook; ``POST
.../trust`` signs it; signatures are nbformat's (a notebook trusted by Jupyter is trusted here).

Bad inputs tried: trusting a missing path (404), a text file and a directory (400), on a manager
without trust (501); a notebook whose ``nbformat_minor`` is not an integer (saved and read with a
message, never a 500).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.sign import NotebookNotary

from tests.conftest import Client
from tests.services.contents.conftest import Start, seed
from tests.services.contents.test_api import assert_error, put, read, url

HTML = {"output_type": "display_data", "data": {"text/html": "<b>hi</b>", "text/plain": "hi"}, "metadata": {}}


def notebook(*, trusted: bool | None, outputs: list[Any] | None = None) -> dict[str, Any]:
    metadata = {} if trusted is None else {"trusted": trusted}
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {
                "cell_type": "code",
                "id": "c1",
                "metadata": metadata,
                "source": "display(HTML('<b>hi</b>'))",
                "outputs": [HTML] if outputs is None else outputs,
                "execution_count": 1,
            },
            {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": "text"},
        ],
    }


def code_trust(content: dict[str, Any]) -> list[Any]:
    return [c["metadata"].get("trusted") for c in content["cells"] if c["cell_type"] == "code"]


@pytest.fixture
def fs_api(start: Start, io_loop: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Client:
    """A server whose trust store is this test's own (signatures are by content: a notebook
    signed by another test would be trusted here)."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    return io_loop.run_sync(start)


FILESYSTEM = pytest.mark.parametrize("manager_kind", ["filesystem"])


@FILESYSTEM
async def test_a_notebook_saved_with_trusted_cells_reads_back_trusted(fs_api: Client) -> None:
    r = await put(fs_api, "t.ipynb", {"type": "notebook", "content": notebook(trusted=True)})
    assert r.status == 201, r.body
    content = await read(fs_api, "t.ipynb")
    assert code_trust(content) == [True]
    assert "trusted" not in content["cells"][1]["metadata"]  # only code cells are marked
    stored = Path(fs_api.server.config.root_dir, "t.ipynb").read_text()
    assert "trusted" not in stored  # a mark, never written


@FILESYSTEM
async def test_untrusted_rich_output_reads_back_untrusted(fs_api: Client) -> None:
    await put(fs_api, "u.ipynb", {"type": "notebook", "content": notebook(trusted=False)})
    assert code_trust(await read(fs_api, "u.ipynb")) == [False]
    await put(fs_api, "n.ipynb", {"type": "notebook", "content": notebook(trusted=None)})
    assert code_trust(await read(fs_api, "n.ipynb")) == [False]


@FILESYSTEM
async def test_only_safe_output_is_trusted_without_marks(fs_api: Client) -> None:
    stream = {"output_type": "stream", "name": "stdout", "text": "42\n"}
    await put(fs_api, "s.ipynb", {"type": "notebook", "content": notebook(trusted=None, outputs=[stream])})
    assert code_trust(await read(fs_api, "s.ipynb")) == [True]


@FILESYSTEM
async def test_changed_outputs_lose_trust(fs_api: Client) -> None:
    """A file changed behind the server's back (a new output) is no longer the signed one."""
    await put(fs_api, "t.ipynb", {"type": "notebook", "content": notebook(trusted=True)})
    path = Path(fs_api.server.config.root_dir, "t.ipynb")
    data = json.loads(path.read_text())
    data["cells"][0]["outputs"][0]["data"]["text/html"] = ["<script>evil()</script>"]
    path.write_text(json.dumps(data))
    assert code_trust(await read(fs_api, "t.ipynb")) == [False]


@FILESYSTEM
async def test_post_trust_signs_the_notebook(fs_api: Client) -> None:
    await put(fs_api, "u.ipynb", {"type": "notebook", "content": notebook(trusted=False)})
    r = await fs_api.request("POST", url("u.ipynb") + "/trust")
    assert r.status == 201 and r.body == b""
    assert code_trust(await read(fs_api, "u.ipynb")) == [True]


@FILESYSTEM
async def test_trust_bad_targets(fs_api: Client) -> None:
    """Bad inputs: a missing notebook (404), a text file and a directory (400 "bad type")."""
    assert_error(await fs_api.request("POST", url("missing.ipynb") + "/trust"), 404)
    seed(fs_api, "a.txt", b"text")
    assert_error(await fs_api.request("POST", url("a.txt") + "/trust"), 400, "bad type")
    seed(fs_api, "d", None)
    assert_error(await fs_api.request("POST", url("d") + "/trust"), 400, "bad type")


@FILESYSTEM
async def test_a_file_named_trust_is_still_a_file(fs_api: Client) -> None:
    """Only POST means "trust": GET, PUT, PATCH and DELETE reach a file literally named trust."""
    seed(fs_api, "d", None)
    r = await put(fs_api, "d/trust", {"type": "file", "format": "text", "content": "x"})
    assert r.status == 201 and r.json["path"] == "d/trust"
    assert await read(fs_api, "d/trust") == "x"
    r = await fs_api.request("PATCH", url("d/trust"), json={"path": "d/trust2"})
    assert r.status == 200 and r.json["path"] == "d/trust2"
    await put(fs_api, "d/trust", {"type": "file", "format": "text", "content": "y"})
    assert (await fs_api.request("DELETE", url("d/trust"))).status == 204


@FILESYSTEM
async def test_trust_is_shared_with_jupyter(fs_api: Client) -> None:
    """A notebook signed by nbformat's own notary in the same data directory (as Jupyter does)
    is trusted here, and one signed here is trusted by nbformat."""
    nb = notebook(trusted=None)
    os.makedirs(os.environ["JUPYTER_DATA_DIR"])
    with NotebookNotary(data_dir=os.environ["JUPYTER_DATA_DIR"]) as notary:
        node = nbformat.from_dict(nb)
        notary.sign(node)
        seed(fs_api, "j.ipynb", nbformat.writes(node).encode())
    assert code_trust(await read(fs_api, "j.ipynb")) == [True]

    await put(fs_api, "ours.ipynb", {"type": "notebook", "content": notebook(trusted=True)})
    stored = nbformat.reads(Path(fs_api.server.config.root_dir, "ours.ipynb").read_text(), as_version=4)
    with NotebookNotary(data_dir=os.environ["JUPYTER_DATA_DIR"]) as notary:
        assert notary.check_signature(stored)


@pytest.mark.parametrize("manager_kind", ["memory"])
async def test_trust_on_a_manager_without_trust_is_501(fs_api: Client) -> None:
    await put(fs_api, "u.ipynb", {"type": "notebook", "content": notebook(trusted=False)})
    assert_error(await fs_api.request("POST", url("u.ipynb") + "/trust"), 501)


@FILESYSTEM
async def test_a_notebook_with_a_non_integer_minor_version(fs_api: Client) -> None:
    """Bad input: ``nbformat_minor: "x"`` (nbformat's validator asserts on it): saved (never lose
    work) with a validation message, and read back with one, never a 500."""
    content = notebook(trusted=None)
    content["nbformat_minor"] = "x"
    r = await put(fs_api, "odd.ipynb", {"type": "notebook", "content": content})
    assert r.status == 201 and r.json["message"].startswith("Notebook validation failed")
    r = await fs_api.get(url("odd.ipynb"))
    assert r.status == 200 and r.json["message"].startswith("Notebook validation failed")
