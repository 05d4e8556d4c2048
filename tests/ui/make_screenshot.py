"""The README's screenshot of the notebook page: ``python -m tests.ui.make_screenshot docs/notebook.png``.

Starts a server in a temporary directory, creates a notebook from the file browser, runs a few
cells (Markdown, ``print(6*7)``, an image, an HTML table, an error), saves it, and takes the picture.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, TOKEN, start_server
from tests.ui.images import png
from tests.ui.test_notebook import run, selected_cell

CELLS = [
    (
        "markdown",
        "## A quick look\nCells run on the **python3** kernel; outputs are saved with the notebook.",
    ),
    ("code", "print(6*7)"),
    ("code", "from IPython.display import Image\nImage(filename='bars.png')"),
    (
        "code",
        "from IPython.display import HTML\n"
        "rows = ''.join(f'<tr><td>{n}</td><td>{n**2}</td></tr>' for n in range(1, 4))\n"
        "HTML(f'<table><tr><th>n</th><th>n²</th></tr>{rows}</table>')",
    ),
    ("code", "1 / 0"),
]
BARS = (30, 55, 42, 80, 64, 95, 72)


def bar_chart_png(width: int = 280, height: int = 120) -> bytes:
    """A small bar chart as a PNG, drawn pixel by pixel (no imaging library needed)."""

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        slot = width // len(BARS)
        bar, offset = divmod(x, slot)
        top = height - BARS[min(bar, len(BARS) - 1)] * height // 100
        if 6 <= offset < slot - 6 and y >= top:
            return (37, 99, 235) if bar % 2 == 0 else (243, 119, 38)
        return (255, 255, 255) if y % 30 else (225, 229, 235)

    return png(width, height, pixel)


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as home:
        server_gen = start_server(Path(home))
        server = next(server_gen)
        try:
            (server.root / "bars.png").write_bytes(bar_chart_png())
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1100, "height": 820})
                page.goto(server.ui_url(f"tree?token={TOKEN}"))
                page.click("#new-button")
                page.click('#new-notebook-items button[data-kernel="python3"]')
                expect(page.locator("#kernel-status")).to_have_attribute("data-state", "idle", timeout=60_000)
                for kind, source in CELLS:
                    cell = selected_cell(page)
                    if kind == "markdown":
                        page.select_option("#cell-type", "markdown")
                        cell.locator("textarea").fill(source)
                        cell.locator("textarea").press("Shift+Enter")
                    else:
                        run(page, source)
                page.keyboard.press("Control+s")
                expect(page.locator("#last-saved")).to_contain_text("Last saved")
                expect(page.locator("#dirty")).to_be_hidden()
                page.locator(".cell").nth(1).locator("textarea").click()
                page.mouse.move(0, 0)
                page.screenshot(path=str(out))
                browser.close()
        finally:
            server_gen.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/notebook.png"))
