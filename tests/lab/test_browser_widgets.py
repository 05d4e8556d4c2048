"""ipywidgets in the hosted UIs, in headless Chromium: an ``IntSlider`` displays as a widget
(its DOM, not the text repr ``IntSlider(value=3, max=10)``), the keyboard (JupyterLab) or the
mouse (Notebook 7) moves it, and a later cell sees the new value in the kernel. That is comm
traffic both ways over nbserver's kernel websocket bridge: ``comm_open``/``comm_msg`` state from
the kernel to the page, ``comm_msg`` updates from the page to the kernel, each seen in the
page's websocket frames.

Every response the page receives is recorded; a 4xx/5xx not allowed by
:data:`tests.lab.browsing.ALLOWED` fails the test, and so does any error dialog.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.lab.browsing import (
    NOTEBOOK,
    Recorder,
    lab_page,
    lab_server,
    no_error_dialog,
    no_script_error,
    notebook7_page,
)
from tests.lab.conftest import requires_lab, requires_notebook
from tests.ui.conftest import TOKEN, UIServer, requires_chromium

__all__ = ["lab_page", "lab_server"]  # fixtures

requires_ipywidgets = pytest.mark.skipif(
    importlib.util.find_spec("ipywidgets") is None or importlib.util.find_spec("jupyterlab_widgets") is None,
    reason="ipywidgets is not installed: pip install ipywidgets (it brings jupyterlab_widgets)",
)

pytestmark = [requires_lab, requires_chromium, requires_ipywidgets]

SLIDER = "import ipywidgets as w; s = w.IntSlider(value=3, max=10); s"
TARGET = 7  # where the slider is moved: 3 -> 7


def _widget_notebook() -> dict[str, Any]:
    """A notebook with two cells: the slider, then ``print(s.value)``."""
    first = {**NOTEBOOK["cells"][0], "id": "slider", "source": SLIDER}
    second = {**NOTEBOOK["cells"][0], "id": "value", "source": "print(s.value)"}
    return {**NOTEBOOK, "cells": [first, second]}


class Frames:
    """The message types seen on the page's kernel websockets (``/api/kernels/<id>/channels``),
    by direction: ``sent`` (page -> server) and ``received`` (server -> page)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.received: list[str] = []

    def __call__(self, websocket: Any) -> None:
        if "/channels" not in websocket.url:
            return
        websocket.on("framesent", lambda payload: self.sent.extend(_msg_types(payload)))
        websocket.on("framereceived", lambda payload: self.received.extend(_msg_types(payload)))

    def assert_comm_both_ways(self) -> None:
        """The widget's comm went over the bridge in both directions: opened and updated from
        the kernel, updated from the page."""
        assert "comm_open" in self.received and "comm_msg" in self.received, self.received
        assert "comm_msg" in self.sent, self.sent


_MSG_TYPE = re.compile(rb'"msg_type":\s*"([a-z_]+)"')


def _msg_types(payload: str | bytes) -> list[str]:
    """The message's own ``msg_type`` in a frame (JSON text or the v1 binary framing: both
    carry the header as JSON text, before the parent header)."""
    raw = payload.encode() if isinstance(payload, str) else payload
    return [m.decode() for m in _MSG_TYPE.findall(raw)[:1]]


def _press_right(page: Any, handle: Any) -> None:
    """Move the slider with the keyboard: focus its handle, ArrowRight once per step."""
    handle.focus()
    for _ in range(TARGET - 3):
        handle.press("ArrowRight")


def _drag(page: Any, handle: Any) -> None:
    """Move the slider with the mouse: drag its handle to ``TARGET``/10 of the track (the
    widget rounds to the nearest step)."""
    track = handle.locator("xpath=ancestor::*[contains(@class, 'noUi-base')]").bounding_box()
    box = handle.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * TARGET / 10, y, steps=10)
    page.mouse.up()


def _run_slider_and_read_value(page: Any, move: Callable[[Any, Any], None]) -> None:
    """With the notebook open and its kernel idle: run the slider cell, see the widget (not its
    text repr), ``move`` it to ``TARGET``, run the value cell and see the kernel print it."""
    from playwright.sync_api import expect

    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    slider_output, value_output = (cells.nth(i).locator(".jp-OutputArea-output") for i in (0, 1))
    cells.nth(0).locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    expect(slider_output.locator(".widget-slider")).to_be_visible(timeout=60_000)
    expect(slider_output).not_to_contain_text("IntSlider(")
    readout = slider_output.locator(".widget-readout")
    expect(readout).to_have_text("3")
    move(page, slider_output.locator(".noUi-handle"))
    expect(readout).to_have_text(str(TARGET))
    cells.nth(1).locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    expect(value_output).to_have_text(str(TARGET), timeout=60_000)


def _open_notebook(page: Any, url: str) -> None:
    """Open the widget notebook and wait until both cells are there."""
    from playwright.sync_api import expect

    page.goto(url)
    second = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(1).locator(".cm-content")
    expect(second).to_have_text("print(s.value)", timeout=60_000)


def test_lab_slider_moves_and_kernel_sees_new_value(
    lab_server: UIServer, lab_page: tuple[Any, Recorder]
) -> None:
    """JupyterLab: the slider renders (not its repr), ArrowRight x4 moves 3 -> 7, and
    ``print(s.value)`` prints 7 (the page's comm updates reached the kernel)."""
    from playwright.sync_api import expect

    page, _ = lab_page
    frames = Frames()
    page.on("websocket", frames)
    lab_server.api("PUT", "api/contents/slider.ipynb", {"type": "notebook", "content": _widget_notebook()})
    _open_notebook(page, lab_server.url(f"lab/tree/slider.ipynb?token={TOKEN}"))
    # the kernel is started and connected (status bar), so the run reaches it
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=60_000)
    _run_slider_and_read_value(page, _press_right)
    no_error_dialog(page)
    frames.assert_comm_both_ways()
    lab_server.shut_down_kernels()


@requires_notebook
def test_notebook7_slider_moves_and_kernel_sees_new_value(
    lab_server: UIServer, lab_page: tuple[Any, Recorder]
) -> None:
    """Notebook 7 at ``/notebooks/<path>?token=...``: the same slider, dragged 3 -> 7 (in
    Notebook 7.6 the focused handle ignores ArrowRight, with jupyter_server too), and 7 printed.

    The page is a second one in the fixture's context (:func:`tests.lab.browsing.notebook7_page`):
    Notebook 7 throws :data:`tests.lab.browsing.NOTEBOOK7_OWN_ERRORS` itself.
    """
    from playwright.sync_api import expect

    fixture_page, recorder = lab_page
    page, errors = notebook7_page(fixture_page, recorder)
    frames = Frames()
    page.on("websocket", frames)
    lab_server.api("PUT", "api/contents/slider7.ipynb", {"type": "notebook", "content": _widget_notebook()})
    _open_notebook(page, lab_server.url(f"notebooks/slider7.ipynb?token={TOKEN}"))
    # the kernel is connected and idle (Notebook 7's toolbar indicator), so the run reaches it
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    expect(idle).to_have_count(1, timeout=60_000)
    _run_slider_and_read_value(page, _drag)
    no_error_dialog(page)
    frames.assert_comm_both_ways()
    no_script_error(errors)
    lab_server.shut_down_kernels()
