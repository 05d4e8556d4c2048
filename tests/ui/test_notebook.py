"""The notebook page in a real browser: create from /tree, run, outputs, save, reload, rename,
interrupt, input(), restart, checkpoints, reconnecting."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import pytest

from tests.ui.conftest import OTHER_KERNEL, UIServer, eventually, open_ui_page, requires_chromium
from tests.ui.images import solid_png

pytestmark = requires_chromium


PNG = base64.b64encode(solid_png(4, 4, (220, 40, 40))).decode()


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def open_notebook(page: Any, server: UIServer, path: str) -> None:
    page.goto(server.ui_url(f"notebooks/{path}"))
    expect(page.locator("#kernel-status")).to_have_attribute("data-state", "idle", timeout=60_000)


def text(value: str | list[str]) -> str:
    """nbformat's multi-line string: a string or a list of lines on disk."""
    return value if isinstance(value, str) else "".join(value)


def saved_sources(server: UIServer, path: str) -> list[str]:
    """The cell sources of the notebook as saved on disk."""
    return [text(cell["source"]) for cell in json.loads((server.root / path).read_text())["cells"]]


def selected_cell(page: Any) -> Any:
    """The cell selected now (a locator that stays on it when the selection moves)."""
    return page.locator(f'.cell[data-id="{page.locator(".cell.selected").get_attribute("data-id")}"]')


def run(page: Any, code: str) -> Any:
    """Type ``code`` into the selected cell, Shift-Enter, and return that cell when it is done."""
    cell = selected_cell(page)
    cell.locator("textarea").fill(code)
    cell.locator("textarea").press("Shift+Enter")
    expect(cell.locator(".in-prompt")).to_have_text(re.compile(r"\[\d+\]:"), timeout=30_000)
    return cell


def new_notebook(server: UIServer, name: str) -> str:
    server.api(
        "PUT",
        f"api/contents/{name}",
        {"type": "notebook", "content": {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}},
    )
    return name


@pytest.fixture(autouse=True)
def _no_kernels_left(ui_server: UIServer) -> Any:
    yield
    ui_server.shut_down_kernels()


def test_create_run_save_and_reload(page: Any, ui_server: UIServer) -> None:
    open_ui_page(page, ui_server.ui_url("tree"))  # the New menu works once the page is set up
    page.click("#new-button")
    page.click('#new-notebook-items button[data-kernel="python3"]')
    expect(page).to_have_url(
        re.compile(rf"^{re.escape(ui_server.ui_url('notebooks/'))}Untitled\d*\.ipynb$"), timeout=60_000
    )  # no ?kernel_name=
    path = page.url.rsplit("/notebooks/", 1)[1]
    expect(page.locator("#kernel-status")).to_have_attribute("data-state", "idle", timeout=60_000)
    assert ui_server.api("GET", "api/sessions")[0]["kernel"]["name"] == "python3"

    cell = run(page, "print(6*7)")
    expect(cell.locator(".output-stream")).to_have_text("42\n")
    expect(cell.locator(".in-prompt")).to_have_text("[1]:")

    cell = run(
        page, f"from IPython.display import Image\nImage(data=__import__('base64').b64decode('{PNG}'))"
    )
    image = cell.locator("img.output-image")
    expect(image).to_have_attribute("src", re.compile("^data:image/png;base64,"))
    assert image.evaluate("img => img.complete && img.naturalWidth") == 4

    cell = run(page, "1/0")
    expect(cell.locator(".output-error")).to_contain_text("ZeroDivisionError")
    expect(cell.locator(".output-error .ansi-red-fg").first).to_be_visible()  # ANSI colours

    html = "<b id=x>bold</b><script>parent.document.title='pwned'</script>"
    cell = run(page, f"from IPython.display import HTML\nHTML({html!r})")
    frame = cell.locator("iframe.output-html")
    expect(frame).to_have_attribute("sandbox", "allow-same-origin")
    expect(page.frame_locator(".output-html").locator("b#x")).to_have_text("bold")
    assert page.title() != "pwned"

    markdown = selected_cell(page)
    page.select_option("#cell-type", "markdown")
    markdown.locator("textarea").fill("# Results\n\nSome *emphasis* and <img src=x onerror=alert(1)>")
    markdown.locator("textarea").press("Shift+Enter")
    expect(markdown.locator(".rendered h1")).to_have_text("Results")
    expect(markdown.locator(".rendered em")).to_have_text("emphasis")
    expect(markdown.locator(".rendered")).to_contain_text("<img src=x onerror=alert(1)>")
    assert markdown.locator(".rendered img").count() == 0

    expect(page.locator("#dirty")).to_be_visible()
    page.keyboard.press("Control+s")
    eventually(lambda: len(json.loads((ui_server.root / path).read_text())["cells"]) == 6)
    expect(page.locator("#dirty")).to_be_hidden()
    expect(page.locator("#last-saved")).to_contain_text("Last saved")
    saved = json.loads((ui_server.root / path).read_text())
    sources = [text(c["source"]) for c in saved["cells"]]
    assert sources[0] == "print(6*7)" and sources[2] == "1/0" and sources[4].startswith("# Results")
    assert text(saved["cells"][0]["outputs"][0]["text"]) == "42\n"
    assert saved["metadata"]["kernelspec"]["name"] == "python3"
    assert saved["metadata"]["language_info"]["name"] == "python"

    page.reload()
    expect(page.locator("#kernel-status")).to_have_attribute("data-state", "idle", timeout=60_000)
    cells = page.locator(".cell")
    expect(cells.nth(0).locator(".output-stream")).to_have_text("42\n")
    expect(cells.nth(0).locator(".in-prompt")).to_have_text("[1]:")
    expect(cells.nth(1).locator("img.output-image")).to_be_visible()
    expect(cells.nth(2).locator(".output-error")).to_contain_text("ZeroDivisionError")
    expect(cells.nth(4).locator(".rendered h1")).to_have_text("Results")
    assert len(ui_server.api("GET", "api/sessions")) == 1, "the reload joined the same session"


def test_rename_from_title(page: Any, ui_server: UIServer) -> None:
    open_notebook(page, ui_server, new_notebook(ui_server, "before.ipynb"))
    page.click("#title")
    dialog = page.locator("dialog.modal")
    dialog.locator("input").fill("after")
    dialog.locator(".dialog-ok").click()
    page.wait_for_url(ui_server.ui_url("notebooks/after.ipynb"))
    expect(page.locator("#title")).to_have_text("after.ipynb")
    assert (ui_server.root / "after.ipynb").exists() and not (ui_server.root / "before.ipynb").exists()
    assert [s["path"] for s in ui_server.api("GET", "api/sessions")] == ["after.ipynb"]
    run(page, "x = 1")
    page.click("#save")
    eventually(lambda: saved_sources(ui_server, "after.ipynb") == ["x = 1", ""])


def test_interrupt_a_sleeping_cell(page: Any, ui_server: UIServer) -> None:
    open_notebook(page, ui_server, new_notebook(ui_server, "sleep.ipynb"))
    cell = selected_cell(page)
    cell.locator("textarea").fill("import time\ntime.sleep(60)")
    cell.locator("textarea").press("Control+Enter")
    expect(page.locator("#kernel-status")).to_have_attribute("data-state", "busy")
    expect(cell.locator(".in-prompt")).to_have_text("[*]:")
    started = time.monotonic()
    page.click("#interrupt")
    expect(cell.locator(".output-error")).to_contain_text("KeyboardInterrupt", timeout=15_000)
    expect(page.locator("#kernel-status")).to_have_attribute("data-state", "idle")
    expect(cell.locator(".in-prompt")).to_have_text("[1]:")
    assert time.monotonic() - started < 15


def test_input_prompt(page: Any, ui_server: UIServer) -> None:
    open_notebook(page, ui_server, new_notebook(ui_server, "input.ipynb"))
    cell = selected_cell(page)
    cell.locator("textarea").fill("name = input('Your name? ')\nprint('Hello,', name)")
    cell.locator("textarea").press("Shift+Enter")
    field = cell.locator(".stdin-input")
    expect(cell.locator(".stdin-prompt")).to_have_text("Your name? ")
    field.fill("Ada")
    field.press("Enter")
    expect(cell.locator(".output-stream")).to_have_text("Your name? Ada\nHello, Ada\n")
    expect(field).to_have_count(0)


def record_states(page: Any) -> None:
    """Make the page collect every state the kernel indicator shows (``window.statesSeen``)."""
    page.evaluate("""() => {
        window.statesSeen = [];
        const status = document.getElementById("kernel-status");
        new MutationObserver(() => window.statesSeen.push(status.dataset.state))
            .observe(status, {attributes: true, attributeFilter: ["data-state"]});
    }""")


def test_restart_and_kernel_status(page: Any, ui_server: UIServer) -> None:
    open_notebook(page, ui_server, new_notebook(ui_server, "restart.ipynb"))
    run(page, "x = 41")
    record_states(page)
    page.click("#restart")
    page.locator("dialog.modal .dialog-ok").click()
    expect(page.locator(".toast")).to_contain_text("The kernel restarted.")
    expect(page.locator("#kernel-status")).to_have_attribute("data-state", "idle", timeout=60_000)
    assert "restarting" in page.evaluate("window.statesSeen")
    cell = run(page, "x")
    expect(cell.locator(".output-error")).to_contain_text("NameError")


def test_change_kernel(page: Any, ui_server: UIServer) -> None:
    open_notebook(page, ui_server, new_notebook(ui_server, "change.ipynb"))
    run(page, "x = 1")
    expect(page.locator("#kernel-select option")).to_have_text(["Another Python", "Python 3 (ipykernel)"])
    page.select_option("#kernel-select", OTHER_KERNEL)
    eventually(lambda: ui_server.api("GET", "api/sessions")[0]["kernel"]["name"] == OTHER_KERNEL)
    kernel_id = ui_server.api("GET", "api/sessions")[0]["kernel"]["id"]
    expect(page.locator("#kernel-status")).to_have_attribute("data-kernel", kernel_id)
    expect(page.locator("#kernel-status")).to_have_attribute("data-state", "idle", timeout=60_000)
    cell = run(page, "x")
    expect(cell.locator(".output-error")).to_contain_text("NameError")  # a new kernel
    page.click("#save")
    eventually(
        lambda: (
            json.loads((ui_server.root / "change.ipynb").read_text())["metadata"]
            .get("kernelspec", {})
            .get("name")
            == OTHER_KERNEL
        )
    )


def test_run_all(page: Any, ui_server: UIServer) -> None:
    ui_server.api(
        "PUT",
        "api/contents/all.ipynb",
        {
            "type": "notebook",
            "content": {
                "nbformat": 4,
                "nbformat_minor": 5,
                "metadata": {},
                "cells": [
                    {
                        "id": "a",
                        "cell_type": "code",
                        "metadata": {},
                        "source": "a = 20",
                        "outputs": [],
                        "execution_count": None,
                    },
                    {"id": "b", "cell_type": "markdown", "metadata": {}, "source": "**between**"},
                    {
                        "id": "c",
                        "cell_type": "code",
                        "metadata": {},
                        "source": "print(a + 22)",
                        "outputs": [],
                        "execution_count": None,
                    },
                ],
            },
        },
    )
    open_notebook(page, ui_server, "all.ipynb")
    page.click("#run-all")
    expect(page.locator('.cell[data-id="c"] .output-stream')).to_have_text("42\n")
    expect(page.locator('.cell[data-id="a"] .in-prompt')).to_have_text("[1]:")
    expect(page.locator('.cell[data-id="c"] .in-prompt')).to_have_text("[2]:")
    expect(page.locator('.cell[data-id="b"] .rendered strong')).to_have_text("between")


def test_autosave(page: Any, ui_server: UIServer) -> None:
    page.clock.install()
    open_notebook(page, ui_server, new_notebook(ui_server, "auto.ipynb"))
    checkpoints = ui_server.api("GET", "api/contents/auto.ipynb/checkpoints")
    page.locator(".cell.selected textarea").fill("autosaved = True")
    expect(page.locator("#dirty")).to_be_visible()
    page.clock.fast_forward("02:01")
    eventually(lambda: saved_sources(ui_server, "auto.ipynb") == ["autosaved = True"])
    expect(page.locator("#dirty")).to_be_hidden()
    assert ui_server.api("GET", "api/contents/auto.ipynb/checkpoints") == checkpoints, (
        "only manual saves checkpoint"
    )


def test_revert_to_checkpoint(page: Any, ui_server: UIServer) -> None:
    open_notebook(page, ui_server, new_notebook(ui_server, "revert.ipynb"))
    page.locator(".cell.selected textarea").fill("kept = True")
    page.click("#save")
    eventually(lambda: saved_sources(ui_server, "revert.ipynb") == ["kept = True"])
    expect(page.locator("#dirty")).to_be_hidden()
    page.locator(".cell textarea").first.fill("lost = True")
    expect(page.locator("#dirty")).to_be_visible()
    page.click("#revert")
    page.locator("dialog.modal .dialog-ok").click()
    expect(page.locator(".cell textarea").first).to_have_value("kept = True")
    expect(page.locator("#dirty")).to_be_hidden()


def test_cell_editing_commands(page: Any, ui_server: UIServer) -> None:
    open_notebook(page, ui_server, new_notebook(ui_server, "edit.ipynb"))
    page.locator(".cell.selected textarea").fill("a")
    page.click("#add-cell")
    page.locator(".cell.selected textarea").fill("b")
    page.click("#move-up")
    sources = page.locator(".cell textarea")
    expect(sources).to_have_count(2)
    assert [sources.nth(i).input_value() for i in range(2)] == ["b", "a"]
    page.click("#delete-cell")
    expect(sources).to_have_count(1)
    expect(sources.first).to_have_value("a")


def test_reconnects_with_the_same_session(page: Any, ui_server: UIServer) -> None:
    """A dropped websocket shows "disconnected", then reconnects by itself with the same
    session_id, and the kernel keeps its state."""
    urls: list[str] = []
    sockets: list[Any] = []

    def proxy(ws: Any) -> None:
        urls.append(ws.url)
        sockets.append(ws)
        ws.connect_to_server()

    page.route_web_socket(re.compile(r"/api/kernels/.*/channels"), proxy)
    open_notebook(page, ui_server, new_notebook(ui_server, "reconnect.ipynb"))
    run(page, "y = 6 * 7")
    record_states(page)
    sockets[0].close()
    expect(page.locator("#kernel-status")).to_have_attribute("data-state", "idle", timeout=15_000)
    assert "disconnected" in page.evaluate("window.statesSeen")
    cell = run(page, "print(y)")
    expect(cell.locator(".output-stream")).to_have_text("42\n")
    session_ids = {url.split("session_id=", 1)[1] for url in urls}
    assert len(urls) >= 2 and len(session_ids) == 1, urls


def test_a_kernel_shut_down_elsewhere_shows_dead_and_restart_starts_another(
    page: Any, ui_server: UIServer
) -> None:
    open_notebook(page, ui_server, new_notebook(ui_server, "dead.ipynb"))
    ui_server.shut_down_kernels()
    cell = selected_cell(page)
    cell.locator("textarea").fill("1 + 1")
    cell.locator("textarea").press("Control+Enter")
    expect(page.locator("#kernel-status")).to_have_attribute("data-state", "dead")
    expect(page.locator("#kernel-status")).to_have_text("Dead")
    expect(cell.locator(".in-prompt")).to_have_text("[ ]:")
    page.click("#restart")
    page.locator("dialog.modal .dialog-ok").click()
    expect(page.locator("#kernel-status")).to_have_attribute("data-state", "idle", timeout=60_000)
    cell.locator("textarea").press("Control+Enter")
    expect(cell.locator("pre.output-text")).to_have_text("2")
