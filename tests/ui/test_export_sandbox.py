"""An HTML export of an untrusted notebook, opened in Chromium from /nbconvert/html/<path>, runs
in an opaque origin: its outputs' ``<script>`` and ``<img onerror=...>`` payloads run (the
export's ``Content-Security-Policy: sandbox allow-scripts`` lets them), but ``self.origin`` is
``"null"``, the server's cookies cannot be read, and neither ``fetch('/api/contents')`` nor a PUT
of a marker file through the API works with them.

The control test strips that header from the same response (a Playwright route) and shows the
same payloads then do read the cookies and write the marker: the first test can fail.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.ui.conftest import UIServer, requires_chromium

pytestmark = requires_chromium

# the payloads record what they could do on <html data-*>; each tries to write its own marker
SCRIPT = """<script>
(async () => {
  const root = document.documentElement;
  root.dataset.scriptOrigin = String(self.origin);
  let cookie = "unreadable";
  try { cookie = document.cookie; } catch (error) {}
  root.dataset.cookie = cookie;
  const xsrf = decodeURIComponent((cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || "");
  const put = (name) => fetch("/api/contents/" + name, {
    method: "PUT", credentials: "include",
    headers: { "Content-Type": "application/json", "X-XSRFToken": xsrf },
    body: JSON.stringify({ type: "file", format: "text", content: "written by the payload" }),
  }).then((r) => String(r.status));
  const [listing, written] = await Promise.allSettled([
    fetch("/api/contents", { credentials: "include" }).then((r) => r.ok ? r.text() : "status " + r.status),
    put("MARKER-script.txt"),
  ]);
  root.dataset.listing = listing.status === "fulfilled" ? listing.value : "blocked";
  root.dataset.put = written.status === "fulfilled" ? written.value : "blocked";
  root.dataset.scriptDone = "true";
})();
</script>"""
IMG = (
    '<img src="missing-image.png" onerror="'
    "const root = document.documentElement; root.dataset.imgOrigin = String(self.origin);"
    "fetch('/api/contents/MARKER-img.txt', {method: 'PUT', credentials: 'include',"
    " headers: {'Content-Type': 'application/json'},"
    " body: JSON.stringify({type: 'file', format: 'text', content: 'x'})})"
    ".then((r) => { root.dataset.imgDone = String(r.status); },"
    " () => { root.dataset.imgDone = 'blocked'; });"
    '">'
)


def notebook(marker: str) -> dict[str, Any]:
    """A notebook whose outputs carry the payloads, their markers renamed ``marker``."""
    outputs = [
        {"output_type": "display_data", "metadata": {}, "data": {"text/html": html.replace("MARKER", marker)}}
        for html in (SCRIPT, IMG)
    ]
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {
                "cell_type": "code",
                "id": "x",
                "metadata": {},
                "execution_count": 1,
                "source": "",
                "outputs": outputs,
            }
        ],
    }


def open_export(page: Any, server: UIServer, marker: str) -> Any:
    """Store the notebook, open its HTML export, wait for both payloads to finish; the
    document's ``data-*`` record."""
    (server.root / f"{marker}.ipynb").write_text(json.dumps(notebook(marker)))
    page.goto(server.url(f"nbconvert/html/{marker}.ipynb"))
    page.locator("html[data-script-done][data-img-done]").wait_for(state="attached")
    return page.evaluate("() => ({ ...document.documentElement.dataset })")


def test_payloads_run_in_an_opaque_origin(page: Any, ui_server: UIServer) -> None:
    seen = open_export(page, ui_server, "xss")
    assert seen["scriptOrigin"] == "null" and seen["imgOrigin"] == "null"
    assert seen["cookie"] == "unreadable", "the server's cookies are readable"
    assert seen["listing"] == "blocked", "the payload read /api/contents"
    assert seen["put"] == "blocked" and seen["imgDone"] == "blocked", "a PUT reached the API"
    assert not (ui_server.root / "xss-script.txt").exists()
    assert not (ui_server.root / "xss-img.txt").exists()
    names = [m["name"] for m in ui_server.api("GET", "api/contents")["content"]]
    assert "xss-script.txt" not in names and "xss-img.txt" not in names


def test_the_payloads_are_potent_without_the_sandbox(page: Any, ui_server: UIServer) -> None:
    """The control: the same response minus its Content-Security-Policy, and the payloads read
    the cookies, list the contents and write their markers."""

    def strip_policy(route: Any) -> None:
        response = route.fetch()
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-security-policy"}
        route.fulfill(response=response, headers=headers)

    page.route("**/nbconvert/html/**", strip_policy)
    seen = open_export(page, ui_server, "control")
    assert seen["scriptOrigin"] == ui_server.url("").rstrip("/")
    assert "_xsrf=" in seen["cookie"]
    assert "control.ipynb" in seen["listing"]
    assert seen["put"] == "201"
    assert (ui_server.root / "control-script.txt").read_text() == "written by the payload"


@pytest.fixture(autouse=True)
def _remove_markers(ui_server: UIServer) -> Any:
    yield
    for name in ("xss-script.txt", "xss-img.txt", "control-script.txt", "control-img.txt"):
        (ui_server.root / name).unlink(missing_ok=True)
