"""The whole hub flow in a real browser (Playwright driving Debian's Chromium, as tests/ui does):
alice logs in at /hub/login, her server starts behind the progress page, she lands on her
server's built-in UI at /user/alice/tree through the proxy, creates a notebook, runs
``print(6*7)`` and sees 42; with two users, her session opening /user/bob/tree is refused.

The hub runs as its own process (``python -m nbserver hub``): Playwright's sync API keeps an
event loop running in the test's thread, so no tornado loop can run there. A failed test leaves
a screenshot in ``$NBSERVER_UI_ARTIFACTS`` (see tests/ui/conftest.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hub.hubproc import RunningHub, running_hub
from tests.ui.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PAGES, requires_chromium

pytestmark = requires_chromium

USERS = {"alice": "alice-browser-pw-1", "bob": "bob-browser-pw-2"}


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[RunningHub]:
    with running_hub(tmp_path, USERS) as running:
        yield running


@pytest.fixture
def page(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh headless Chromium page; its last state is saved as a screenshot (kept for a
    failure's post-mortem); uncaught script errors fail the test."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
            context.set_default_timeout(60_000)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            try:
                yield page
            finally:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                shot = ARTIFACTS / f"{request.node.name}.png"
                page.screenshot(path=str(shot), full_page=True)
                print(f"last screen: {shot}")
        finally:
            browser.close()
        assert not errors, f"uncaught script errors: {errors}"


def test_login_spawn_run_a_cell_and_no_way_into_bobs_server(page: Any, hub: RunningHub) -> None:
    from playwright.sync_api import expect

    hub.start_server("bob")  # two users with servers: bob's is running while alice tries it
    # nbserver's built-in UI (under /nbserver/ where Notebook 7, installed beside it, owns /tree)
    page.goto(hub.base + f"/user/alice/{PAGES}tree")
    expect(page).to_have_url(re.compile(r"/hub/login\?next="))
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", USERS["alice"])
    page.click("button[type=submit]")
    # the progress page, then (through OAuth with the hub) alice's own server's file browser
    page.wait_for_url(re.compile(r"/hub/spawn-pending/alice"))
    page.wait_for_url(re.compile(rf"/user/alice/{PAGES}tree$"), timeout=120_000)
    expect(page.locator("#new-button")).to_be_visible()

    page.click("#new-button")
    page.click('#new-notebook-items button[data-kernel="python3"]')
    expect(page).to_have_url(re.compile(rf"/user/alice/{PAGES}notebooks/Untitled\d*\.ipynb$"), timeout=60_000)
    expect(page.locator("#kernel-status")).to_have_attribute("data-state", "idle", timeout=90_000)
    cell = page.locator(".cell.selected")
    cell_id = cell.get_attribute("data-id")
    cell = page.locator(f'.cell[data-id="{cell_id}"]')
    cell.locator("textarea").fill("print(6*7)")
    cell.locator("textarea").press("Shift+Enter")
    expect(cell.locator(".output-stream")).to_have_text("42\n", timeout=60_000)
    expect(cell.locator(".in-prompt")).to_have_text("[1]:")
    assert list((hub.log.parent / "users" / "alice").glob("Untitled*.ipynb"))

    # alice's session, logged in to the hub, opening bob's server: the hub's OAuth step
    # answers for alice, and bob's server refuses her
    response = page.goto(hub.base + "/user/bob/tree")
    assert response is not None and response.status == 403, (response and response.status, page.url)
    expect(page.locator("body")).to_contain_text("You do not have permission to access bob's server")
    expect(page.locator("#new-button")).to_have_count(0)
    api = page.request.get(hub.base + "/user/bob/api/contents")
    assert api.status == 403
    assert not list((hub.log.parent / "users" / "bob").glob("*.ipynb"))
