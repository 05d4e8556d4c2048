"""/api/nbconvert and /nbconvert exports over real HTTP, with real nbconvert exporters.

Bad inputs tried: an unknown format, a missing notebook, a directory, a plain file (redirected to
/files), a body that is not an object, a body without content, a content that is not a
notebook, a non-string name; a notebook whose outputs carry ``<script>`` and ``onerror=``
payloads (the stored-XSS route of HTML exports); nbconvert not installed.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tests.conftest import Client

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
SCRIPT = "<script>document.title = 'origin=' + window.origin;</script>"
ONERROR = '<img src=x onerror="document.body.dataset.leak = document.cookie">'


def write_notebook(root: Path, name: str, *, xss: bool = False, image: bool = False) -> dict:
    outputs = [new_output("stream", name="stdout", text="forty-two\n")]
    if xss:
        outputs.append(new_output("display_data", data={"text/html": SCRIPT + ONERROR}))
    if image:
        outputs.append(new_output("display_data", data={"image/png": PNG, "text/plain": "<img>"}))
    nb = new_notebook(
        cells=[new_markdown_cell("# Title here"), new_code_cell("print(6*7)", outputs=outputs)],
        metadata={"language_info": {"name": "python", "file_extension": ".py", "mimetype": "text/x-python"}},
    )
    nbformat.write(nb, str(root / name))
    return json.loads(nbformat.writes(nb))


def sandboxed(csp: str) -> bool:
    directives = [d.strip() for d in csp.split(";")]
    return "sandbox allow-scripts" in directives and "allow-same-origin" not in csp


async def test_exporters_are_listed(client: Client) -> None:
    r = await client.get("api/nbconvert")
    assert r.status == 200
    assert r.json["html"] == {"output_mimetype": "text/html"}
    assert {"script", "python", "markdown", "notebook"} <= set(r.json)


async def test_html_export_of_a_stored_notebook(client: Client, root_dir: Path) -> None:
    (root_dir / "sub").mkdir()
    write_notebook(root_dir / "sub", "nb.ipynb")
    r = await client.get("nbconvert/html/sub/nb.ipynb")
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Content-Disposition" not in r.headers
    assert "forty-two" in r.text and "Title here" in r.text
    assert sandboxed(r.headers["Content-Security-Policy"])
    r = await client.get("nbconvert/html/sub/nb.ipynb", params={"download": "true"})
    assert r.headers["Content-Disposition"].startswith('attachment; filename="nb.html"')


async def test_script_markdown_and_notebook_downloads(client: Client, root_dir: Path) -> None:
    write_notebook(root_dir, "nb.ipynb")
    r = await client.get("nbconvert/script/nb.ipynb", params={"download": "true"})
    assert r.status == 200 and "print(6*7)" in r.text
    assert 'filename="nb.py"' in r.headers["Content-Disposition"]
    assert r.headers["Content-Type"].startswith("text/x-python")
    r = await client.get("nbconvert/markdown/nb.ipynb", params={"download": "true"})
    assert 'filename="nb.md"' in r.headers["Content-Disposition"] and "# Title here" in r.text
    r = await client.get("nbconvert/notebook/nb.ipynb", params={"download": "true"})
    assert nbformat.reads(r.text, as_version=4).cells[1].source == "print(6*7)"


async def test_an_export_with_files_is_a_zip(client: Client, root_dir: Path) -> None:
    write_notebook(root_dir, "pic.ipynb", image=True)
    r = await client.get("nbconvert/markdown/pic.ipynb")
    assert r.status == 200 and r.headers["Content-Type"] == "application/zip"
    assert 'filename="pic.zip"' in r.headers["Content-Disposition"]
    names = zipfile.ZipFile(io.BytesIO(r.body)).namelist()
    assert "pic.md" in names and any(n.endswith(".png") for n in names)


async def test_export_of_a_notebook_in_the_body(client: Client, root_dir: Path) -> None:
    content = write_notebook(root_dir, "ignored.ipynb")
    r = await client.post("nbconvert/html", json={"name": "sent.ipynb", "content": content})
    assert r.status == 200 and "forty-two" in r.text
    assert sandboxed(r.headers["Content-Security-Policy"])
    r = await client.post("nbconvert/script", json={"content": content})
    assert r.status == 200 and "print(6*7)" in r.text


async def test_bad_requests(client: Client, root_dir: Path) -> None:
    content = write_notebook(root_dir, "nb.ipynb")
    (root_dir / "plain.txt").write_text("hi")
    (root_dir / "dir").mkdir()
    r = await client.get("nbconvert/nope/nb.ipynb")
    assert r.status == 404
    r = await client.post("nbconvert/nope", json={"content": content})
    assert r.status == 404 and r.json["reason"] == "no such exporter"
    assert (await client.get("nbconvert/html/missing.ipynb")).status == 404
    assert (await client.get("nbconvert/html/dir")).status == 404
    r = await client.get("nbconvert/html/plain.txt")
    assert r.status == 302 and r.headers["Location"] == "/files/plain.txt"
    for body in (
        [],
        {"name": "x.ipynb"},
        {"content": "text"},
        {"content": {"cells": 3}},
        {"name": 3, "content": content},
    ):
        r = await client.post("nbconvert/html", json=body)
        assert r.status == 400, (body, r.text)
    assert (await client.get("api/nbconvert", auth=None)).status == 403
    r = await client.get("nbconvert/html/nb.ipynb", auth=None)
    assert r.status == 302 and "/login" in r.headers["Location"]


async def test_untrusted_html_export_runs_no_script_in_the_server_origin(
    client: Client, root_dir: Path
) -> None:
    """The payloads reach the export verbatim (nbconvert does not sanitize by default, as
    jupyter_server), so the response itself must sandbox them: ``sandbox allow-scripts``
    without ``allow-same-origin`` puts the document in an opaque origin. The browser test
    ``tests/ui/test_nbconvert_sandbox.py`` checks what Chromium makes of it."""
    content = write_notebook(root_dir, "evil.ipynb", xss=True)
    stored = await client.get("nbconvert/html/evil.ipynb")
    sent = await client.post("nbconvert/html", json={"name": "evil.ipynb", "content": content})
    downloaded = await client.get("nbconvert/html/evil.ipynb", params={"download": "true"})
    for r in (stored, sent, downloaded):
        assert r.status == 200
        assert SCRIPT in r.text and "onerror=" in r.text
        assert sandboxed(r.headers["Content-Security-Policy"]), r.headers["Content-Security-Policy"]
    sanitized = await client.get("nbconvert/html/evil.ipynb", params={"sanitize_html": "true"})
    assert SCRIPT not in sanitized.text and "<img src=x onerror" not in sanitized.text


async def test_without_nbconvert_the_routes_say_so(make_server, make_client, monkeypatch, root_dir) -> None:
    write_notebook(root_dir, "nb.ipynb")
    monkeypatch.setitem(sys.modules, "nbconvert", None)  # import nbconvert now fails
    client = make_client(await make_server())
    r = await client.get("api/nbconvert")
    assert r.status == 200 and r.json == {}
    for r in (
        await client.get("nbconvert/html/nb.ipynb"),
        await client.post("nbconvert/html", json={"content": {}}),
    ):
        assert r.status == 404 and r.json["reason"] == "not installed"
        assert "nbconvert is not installed" in r.json["message"]


@pytest.mark.parametrize("fmt", ["html", "script"])
async def test_exports_need_no_kernel(client: Client, root_dir: Path, fmt: str) -> None:
    write_notebook(root_dir, "nb.ipynb")
    assert (await client.get(f"nbconvert/{fmt}/nb.ipynb")).status == 200
    assert (await client.get("api/kernels")).json == []


@pytest.mark.parametrize("fmt", ["a-b", "%C2%84", "%20", "nbconvert.exporters.html.HTMLExporter"])
async def test_a_format_that_is_no_word_is_a_json_404(client: Client, root_dir: Path, fmt: str) -> None:
    """POST /nbconvert/<format> with a format that is not one word (a dash, U+0084 as the fuzzer
    sent it, a space) answered the HTML 404 of an unknown URL where api.yaml documents JSON. It
    is the JSON 404 ``"no such exporter"``, also for a dotted name, which nbconvert would import
    as a module (``nbconvert.exporters.html.HTMLExporter`` exports HTML if it gets through)."""
    content = write_notebook(root_dir, "nb.ipynb")
    r = await client.post(f"nbconvert/{fmt}", json={"name": "nb.ipynb", "content": content})
    assert (r.status, r.json["reason"]) == (404, "no such exporter"), r.text
    assert r.headers["Content-Type"].startswith("application/json")
    # the export page keeps the HTML 404 of an unknown URL (api.yaml: text/html), also with a
    # ?token= in the URL, which a page route would first redirect away
    r = await client.get(f"nbconvert/{fmt}/nb.ipynb", auth="query")
    assert r.status == 404 and r.headers["Content-Type"].startswith("text/html")


async def test_without_nbconvert_a_format_that_is_no_word_says_so_too(
    make_server, make_client, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "nbconvert", None)
    client = make_client(await make_server())
    r = await client.post("nbconvert/a-b", json={"content": {}})
    assert (r.status, r.json["reason"]) == (404, "not installed")
