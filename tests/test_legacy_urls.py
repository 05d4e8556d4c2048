"""The old notebook URLs over real HTTP: /new, /notebooks (JSON), /<path>.ipynb/copy and /print.

Bad inputs tried: a cross-site /new and /copy (Sec-Fetch-Site: cross-site), /copy and /print of
a missing notebook and of a file that is not a notebook, /notebooks without a JSON Accept, a
print view of a notebook whose outputs carry <script> (with and without nbconvert); each of
them with Notebook 7 owning /tree and /notebooks/<path>, and without it.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from nbserver.ui.legacy import notebook_id
from tests.conftest import Client
from tests.ui.conftest import layout

__all__ = ["layout"]  # fixtures

SCRIPT = "<script>alert(1)</script>"


def write(root: Path, path: str) -> None:
    cell = new_code_cell(
        "print('hi')",
        outputs=[
            new_output("stream", name="stdout", text="printed-here\n"),
            new_output("display_data", data={"text/html": SCRIPT, "text/plain": SCRIPT}),
        ],
    )
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=[cell]), str(target))


async def test_new_creates_an_untitled_notebook_and_opens_it(client: Client, root_dir: Path) -> None:
    r = await client.get("new")
    assert r.status == 302 and r.headers["Location"] == "/notebooks/Untitled.ipynb"
    r = await client.get("new", params={"kernel_name": "python3"})
    assert r.headers["Location"] == "/notebooks/Untitled1.ipynb?kernel_name=python3"
    assert nbformat.read(str(root_dir / "Untitled1.ipynb"), as_version=4).cells == []
    r = await client.get("new", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status == 302 and r.headers["Location"] == "/tree"
    assert not (root_dir / "Untitled2.ipynb").exists()
    r = await client.get("new", auth=None)
    assert r.status == 302 and "/login" in r.headers["Location"]


async def test_notebooks_json_list(client: Client, root_dir: Path) -> None:
    write(root_dir, "b.ipynb")
    write(root_dir, "sub/a.ipynb")
    (root_dir / "notes.txt").write_text("x")
    r = await client.get("notebooks", headers={"Accept": "application/json"})
    assert r.status == 200
    assert r.json == [
        {"notebook_id": notebook_id("b.ipynb"), "name": "b", "path": "b.ipynb", "kernel_id": None},
        {"notebook_id": notebook_id("sub/a.ipynb"), "name": "a", "path": "sub/a.ipynb", "kernel_id": None},
    ]
    assert notebook_id("b.ipynb") == str(uuid.uuid5(uuid.NAMESPACE_URL, "nbserver:b.ipynb"))
    session = await client.post(
        "api/sessions", json={"path": "b.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
    )
    assert session.status == 201
    listed = (await client.get("notebooks", headers={"Accept": "application/json"})).json
    assert listed[0]["kernel_id"] == session.json["kernel"]["id"]
    r = await client.get("notebooks")
    assert r.status == 302 and r.headers["Location"] == "/tree"


async def test_copy_duplicates_and_opens_the_copy(client: Client, root_dir: Path) -> None:
    write(root_dir, "sub/nb.ipynb")
    r = await client.get("sub/nb.ipynb/copy")
    assert r.status == 302 and r.headers["Location"] == "/notebooks/sub/nb-Copy1.ipynb"
    assert (root_dir / "sub" / "nb-Copy1.ipynb").read_bytes() == (root_dir / "sub" / "nb.ipynb").read_bytes()
    r = await client.get("notebooks/sub/nb.ipynb/copy")  # the link as the notebook page had it
    assert r.headers["Location"] == "/notebooks/sub/nb-Copy2.ipynb"
    r = await client.get("sub/nb.ipynb/copy", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.headers["Location"] == "/tree" and not (root_dir / "sub" / "nb-Copy3.ipynb").exists()
    (root_dir / "fake.ipynb").mkdir()
    for missing in ("missing.ipynb/copy", "fake.ipynb/copy", "missing.ipynb/print"):
        assert (await client.get(missing)).status == 404, missing


async def test_print_view_is_read_only_and_sandboxed(client: Client, root_dir: Path) -> None:
    write(root_dir, "nb.ipynb")
    r = await client.get("nb.ipynb/print")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "printed-here" in r.text
    assert "sandbox allow-scripts" in r.headers["Content-Security-Policy"]
    assert "allow-same-origin" not in r.headers["Content-Security-Policy"]
    assert "/static/js/" not in r.text  # not the notebook editor: no scripts of the UI


async def test_print_view_without_nbconvert_escapes_everything(
    make_server, make_client, monkeypatch, root_dir
) -> None:
    write(root_dir, "nb.ipynb")
    monkeypatch.setitem(sys.modules, "nbconvert", None)
    client = make_client(await make_server())
    r = await client.get("nb.ipynb/print")
    assert r.status == 200 and "printed-here" in r.text
    assert SCRIPT not in r.text and "&lt;script&gt;" in r.text
    assert "sandbox allow-scripts" in r.headers["Content-Security-Policy"]


async def test_old_urls_lead_to_the_ui_that_owns_the_root_pages(
    layout: str, make_server, make_client, root_dir: Path
) -> None:
    """In both layouts the old URLs keep their targets, ``/notebooks/<file>`` and ``/tree``:
    Notebook 7's pages when it is installed (the built-in UI is then under ``/nbserver/``),
    else the built-in ones. The JSON list at ``/notebooks`` is the same in both: Notebook 7
    owns only ``/notebooks/<path>``."""
    client = make_client(await make_server())
    notebook7 = layout == "nbserver/"
    write(root_dir, "nb.ipynb")
    for url in ("new", "nb.ipynb/copy"):
        target = (await client.get(url)).headers["Location"]
        assert target.startswith("/notebooks/"), url
        page = await client.get(target.lstrip("/"))
        assert page.status == 200 and ('"appName": "Jupyter Notebook"' in page.text) is notebook7, url
    listing = await client.get("notebooks", headers={"Accept": "application/json"})
    assert "nb.ipynb" in {n["path"] for n in listing.json}
    tree = (await client.get("notebooks")).headers["Location"]
    assert tree == "/tree"
    page = await client.get("tree")
    assert page.status == 200 and ('"appName": "Jupyter Notebook"' in page.text) is notebook7
    assert (await client.get("nb.ipynb/print")).status == 200
