"""The terminal page in a real browser: New ▸ Terminal, a command's output, resizing, the recent
output after a reload, the terminal exiting under the page, and the Running tab's terminals with
their shut-down button. Without terminals (``terminals_enabled`` off) the page configuration says
so, and the terminal page is a 404 with the reason.

Bad inputs tried: a terminal name that does not exist, a name the API does not allow (``a-b``),
a server with terminals disabled.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.conftest import Client
from tests.ui.conftest import UIServer, eventually, requires_chromium

BUILTIN = "nbserver/"  # the built-in UI's own prefix: its pages are always mounted there


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def page_config(html: str) -> Any:
    match = re.search(r'<script id="page-config" type="application/json">(.*?)</script>', html, re.S)
    assert match is not None
    return json.loads(match.group(1))


def terminal_names(server: UIServer) -> list[str]:
    return [t["name"] for t in server.api("GET", "api/terminals")]


def open_terminal(page: Any, server: UIServer, name: str) -> None:
    page.goto(server.ui_url(f"terminals/{name}"))
    expect(page.locator("#terminal-status")).to_have_attribute("data-state", "connected")
    page.locator("#terminal .xterm").click()


def run(page: Any, command: str) -> None:
    page.keyboard.type(command)
    page.keyboard.press("Enter")


def screen(page: Any) -> Any:
    return page.locator("#terminal .xterm-rows")


# -- without a browser ---------------------------------------------------------------------------


async def test_page_config_says_whether_terminals_exist(make_server: Any, make_client: Any) -> None:
    """The tree page's configuration carries ``services.terminals``: true by default here (a pty
    and terminado), false with ``terminals_enabled`` off, where the terminal page is a 404."""
    on: Client = make_client(await make_server())
    assert page_config((await on.get(f"{BUILTIN}tree")).text)["services"]["terminals"] is True
    off: Client = make_client(await make_server(terminals_enabled=False))
    assert page_config((await off.get(f"{BUILTIN}tree")).text)["services"]["terminals"] is False
    r = await off.get(f"{BUILTIN}terminals/1")
    assert r.status == 404 and "terminals_enabled is off" in r.text


async def test_terminal_page_of_an_unknown_or_malformed_name(make_server: Any, make_client: Any) -> None:
    client: Client = make_client(await make_server())
    created = (await client.post("api/terminals", json={})).json
    r = await client.get(f"{BUILTIN}terminals/{created['name']}")
    assert r.status == 200
    config = page_config(r.text)
    assert config["terminal"] == created["name"] and config["page"] == "terminal"
    assert re.search(r"/static/vendor/xterm/xterm\.mjs\?v=[0-9a-f]{12}$", config["xterm"])
    assert (await client.get(f"{BUILTIN}terminals/nosuch")).status == 404
    assert (await client.get(f"{BUILTIN}terminals/a-b")).status == 404
    await client.request("DELETE", f"api/terminals/{created['name']}")


# -- in the browser ------------------------------------------------------------------------------


@requires_chromium
def test_new_terminal_runs_a_command_and_a_reload_shows_it(page: Any, ui_server: UIServer) -> None:
    before = set(terminal_names(ui_server))
    page.goto(ui_server.ui_url("tree"))
    page.click("#new-button")
    page.click("#new-terminal")
    page.wait_for_url(re.compile(r"/terminals/\w+$"))
    name = page.url.rsplit("/", 1)[1]
    assert set(terminal_names(ui_server)) == before | {name}
    expect(page.locator("#terminal-status")).to_have_attribute("data-state", "connected")
    page.locator("#terminal .xterm").click()
    run(page, "echo answer-$((6*7))")
    expect(screen(page)).to_contain_text("answer-42")  # the command line itself says 6*7

    page.reload()  # a new websocket: the server replays the recent output
    expect(page.locator("#terminal-status")).to_have_attribute("data-state", "connected")
    expect(screen(page)).to_contain_text("answer-42")
    ui_server.api("DELETE", f"api/terminals/{name}")


@requires_chromium
def test_resizing_the_window_resizes_the_pty(page: Any, ui_server: UIServer) -> None:
    name = ui_server.api("POST", "api/terminals", {})["name"]
    page.set_viewport_size({"width": 1200, "height": 800})
    open_terminal(page, ui_server, name)
    terminal = page.locator("#terminal")
    sizes = []
    for width, height in ((1200, 800), (700, 420)):
        page.set_viewport_size({"width": width, "height": height})
        if sizes:
            expect(terminal).not_to_have_attribute("data-size", sizes[-1])
        size = terminal.get_attribute("data-size")
        assert size is not None and re.fullmatch(r"\d+x\d+", size), size
        sizes.append(size)
        rows, cols = size.split("x")
        page.locator("#terminal .xterm").click()
        run(page, "clear; stty size | sed 's/ /-by-/'")
        expect(screen(page)).to_contain_text(f"{rows}-by-{cols}")  # what the pty says
    ui_server.api("DELETE", f"api/terminals/{name}")


@requires_chromium
def test_a_deleted_terminal_shows_as_exited(page: Any, ui_server: UIServer) -> None:
    name = ui_server.api("POST", "api/terminals", {})["name"]
    open_terminal(page, ui_server, name)
    ui_server.api("DELETE", f"api/terminals/{name}")
    expect(page.locator("#terminal-status")).to_have_attribute("data-state", "exited")
    expect(page.locator("#terminal-status")).to_have_text("Exited")


@requires_chromium
def test_running_tab_lists_terminals_and_shuts_one_down(page: Any, ui_server: UIServer) -> None:
    name = ui_server.api("POST", "api/terminals", {})["name"]
    page.goto(ui_server.ui_url("tree"))
    page.click("#tab-running")
    row = page.locator(f"#terminals tbody tr[data-terminal='{name}']")
    expect(row.locator("a")).to_have_attribute("href", re.compile(f"/terminals/{name}$"))
    row.locator(".action-shutdown").click()
    expect(page.locator("dialog.modal p")).to_contain_text(name)
    page.click("dialog.modal .dialog-ok")
    expect(row).to_have_count(0)
    eventually(lambda: name not in terminal_names(ui_server))
