"""The Clusters tab of the file browser in a real browser, on a real IPython Parallel cluster:
start the ``work`` profile's cluster with 2 engines, see it running, stop it, see it stopped,
and no controller or engine process is left. Without ipyparallel the page configuration says
so and the tab stays hidden.

Bad inputs tried: an engine count of 0 (refused in the page, nothing starts); ipyparallel not
installed.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.conftest import Client
from tests.ui.conftest import TOKEN, UIServer, eventually, requires_chromium, start_server


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def page_config(html: str) -> Any:
    match = re.search(r'<script id="page-config" type="application/json">(.*?)</script>', html, re.S)
    assert match is not None
    return json.loads(match.group(1))


def cluster_processes(server: UIServer) -> list[str]:
    """The command lines of the ipyparallel controllers and engines under the server."""
    found = []
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if "ipyparallel.controller" in cmdline or "ipyparallel.engine" in cmdline:
            found.append(cmdline)
    return found


@pytest.fixture(scope="module")
def cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    """A server whose IPython directory (``IPYTHONDIR``, its own) has the profiles ``default``
    and ``work``."""
    home = tmp_path_factory.mktemp("clusters")
    ipython = home / "ipython"
    (ipython / "profile_work").mkdir(parents=True)
    servers = start_server(home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IPYTHONDIR", str(ipython))
        server = next(servers)  # the server process inherits IPYTHONDIR
    yield server
    next(servers, None)  # stops it


async def test_page_config_says_whether_clusters_exist(
    make_server: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_parallel: Client = make_client(await make_server())
    assert page_config((await with_parallel.get("nbserver/tree")).text)["services"]["clusters"] is True
    monkeypatch.setitem(sys.modules, "ipyparallel", None)  # import ipyparallel now fails
    without: Client = make_client(await make_server())
    html = (await without.get("nbserver/tree")).text
    assert page_config(html)["services"]["clusters"] is False
    assert re.search(r'<button[^>]*id="tab-clusters"[^>]*\bhidden\b', html)


@requires_chromium
def test_start_and_stop_a_two_engine_cluster(anonymous_page: Any, cluster_server: UIServer) -> None:
    page = anonymous_page
    page.goto(cluster_server.ui_url(f"tree?token={TOKEN}"))
    page.wait_for_url(cluster_server.ui_url("tree"))
    expect(page.locator("#tab-clusters")).to_be_visible()
    page.click("#tab-clusters")
    expect(page.locator("#clusters tbody tr")).to_have_count(2)  # default and work
    row = page.locator("#clusters tbody tr[data-cluster=work]")
    expect(row.locator(".cluster-state")).to_have_text("Stopped")

    starts: list[Any] = []
    page.on("request", lambda r: starts.append(r.post_data) if r.url.endswith("/start") else None)
    row.locator(".engine-count").fill("0")  # refused in the page: nothing is sent
    row.locator(".action-start").click()
    assert row.locator(".engine-count").evaluate("input => input.validity.rangeUnderflow")
    expect(row.locator(".action-start")).to_be_enabled()
    assert cluster_server.api("GET", "api/clusters/work")["status"] == "stopped"

    row.locator(".engine-count").fill("2")
    with page.expect_request(lambda r: r.url.endswith("/api/clusters/work/start")):
        row.locator(".action-start").click()
    assert [json.loads(body) for body in starts] == [{"n": 2}], "one start, with n = 2"
    expect(row).to_have_attribute("data-status", "running", timeout=180_000)
    expect(row.locator(".cluster-state")).to_have_text("Running")
    expect(row.locator(".cluster-engines")).to_have_text("2")
    model = cluster_server.api("GET", "api/clusters/work")
    assert model["status"] == "running" and model["n"] == 2
    assert cluster_processes(cluster_server), "a controller and engines run"

    row.locator(".action-stop").click()
    expect(row).to_have_attribute("data-status", "stopped", timeout=120_000)
    expect(row.locator(".cluster-state")).to_have_text("Stopped")
    expect(row.locator(".cluster-engines")).to_have_text("")
    eventually(lambda: not cluster_processes(cluster_server), timeout=60)
