"""Browser tests of the web UI: a real ``python -m nbserver`` per module, one headless Chromium
per session (Debian's ``/usr/bin/chromium`` driven by Playwright; Playwright's own browser
download is not used), a fresh browser context per test.

A failed test leaves a screenshot in ``$NBSERVER_UI_ARTIFACTS`` (default
``<tmp>/nbserver-ui-artifacts``); an uncaught script error on a page fails the test that caused it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nbserver.lab.discovery import discover

CHROMIUM = Path(os.environ.get("NBSERVER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
ARTIFACTS = Path(
    os.environ.get("NBSERVER_UI_ARTIFACTS", Path(tempfile.gettempdir()) / "nbserver-ui-artifacts")
)
REPO = Path(__file__).resolve().parents[2]
TOKEN = "ui-test-token-0123456789"
CUSTOM_CSS = ".brand { color: rgb(1, 2, 3); }\n"
OTHER_KERNEL = "other-python"  # a second kernelspec, to change kernels

#: Notebook 7 is installed: it owns /tree, /notebooks, /edit, and the built-in UI's pages are
#: under /nbserver/ (``PAGES``, relative to the base URL; ``""`` without Notebook 7)
NOTEBOOK7 = discover().notebook_available
PAGES = "nbserver/" if NOTEBOOK7 else ""

requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: `apt-get install -y chromium` (or set NBSERVER_CHROMIUM) "
    "to run the browser tests",
)

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last. Playwright's sync API keeps an event loop running in this
    thread for as long as the (session-wide) browser lives, and tornado tests cannot run their
    own loop while it does."""
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait until ``check()`` is true (for effects outside the page, such as a saved file)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{check} stayed false for {timeout} s"
        time.sleep(0.05)


def open_ui_page(page: Any, url: str) -> None:
    """Go to a built-in UI page and wait until its script has set it up (``<html data-ready>``):
    its handlers exist only after the interface language's catalogue has loaded, so an upload or
    a click sent earlier is lost (the first page of a session, on a cold server, loads it late)."""
    page.goto(url)
    page.locator("html[data-ready=true]").wait_for(state="attached")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: the one origin (besides the server's) allowed to frame its pages; test_pages serves an
#: embedding page there (on loopback, as browsers keep public sites from framing local servers)
EMBEDDER_PORT = _free_port()
FRAME_ANCESTOR = f"http://127.0.0.1:{EMBEDDER_PORT}"


@dataclass
class UIServer:
    """A running ``python -m nbserver``: its URL, root directory, and a token-authenticated
    HTTP helper for arranging and checking state behind the browser's back."""

    base: str
    root: Path
    custom_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, path: str = "") -> str:
        return self.base + path.lstrip("/")

    def ui_url(self, path: str = "") -> str:
        """The URL of a page of the built-in UI (``tree``, ``notebooks/<file>``...), under
        ``/nbserver/`` when Notebook 7 owns the root's ``/tree``."""
        return self.url(PAGES + path.lstrip("/"))

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url(path), data=data, method=method, headers={"Authorization": f"token {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def shut_down_kernels(self) -> None:
        for session in self.api("GET", "api/sessions"):
            self.api("DELETE", f"api/sessions/{session['id']}")
        for kernel in self.api("GET", "api/kernels"):
            self.api("DELETE", f"api/kernels/{kernel['id']}")


def start_server(home: Path, *extra_args: str) -> Iterator[UIServer]:
    """Run ``python -m nbserver`` like a user would, serving ``home/root``, with a config file
    that points ``custom_dir`` at ``home/custom`` and a second kernelspec (``OTHER_KERNEL``);
    stop it with SIGTERM afterwards."""
    root, custom_dir, jupyter = home / "root", home / "custom", home / "jupyter-config"
    other_kernel = home / "jupyter-path" / "kernels" / OTHER_KERNEL
    for directory in (root, custom_dir, jupyter, other_kernel):
        directory.mkdir(parents=True)
    (custom_dir / "custom.css").write_text(CUSTOM_CSS)
    (other_kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Another Python",
                "language": "python",
            }
        )
    )
    config = home / "nbserver.toml"
    config.write_text(f"custom_dir = {json.dumps(str(custom_dir))}\n")
    port = _free_port()
    log = home / "server.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "JUPYTER_CONFIG_DIR": str(jupyter),
        "JUPYTER_PATH": os.pathsep.join(
            filter(None, [str(home / "jupyter-path"), os.environ.get("JUPYTER_PATH")])
        ),
    }
    argv = [
        *(sys.executable, "-m", "nbserver", "--no-browser", "--port", str(port), "--token", TOKEN),
        *("--root-dir", str(root), "--runtime-dir", str(home / "runtime"), "--config", str(config)),
        *("--frame-ancestors", FRAME_ANCESTOR, *extra_args),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=home)
    base_url = extra_args[extra_args.index("--base-url") + 1] if "--base-url" in extra_args else "/"
    server = UIServer(f"http://127.0.0.1:{port}{base_url}", root, custom_dir, process, log)
    try:
        _wait_for_status(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    """A real server for one test module."""
    yield from start_server(tmp_path_factory.mktemp("ui"))


def _wait_for_status(server: UIServer) -> None:
    deadline = time.monotonic() + 60
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"nbserver exited with {server.process.returncode}:\n{server.log.read_text()}")
        try:
            server.api("GET", "api/status")
            return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nbserver did not answer /api/status:\n{server.log.read_text()}"
                ) from None
            time.sleep(0.05)


@pytest.fixture(scope="module")
def login_state(browser: Any, ui_server: UIServer) -> dict[str, Any]:
    """Cookies of a logged-in browser (the start-up URL's ``?token=`` traded for the cookie)."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(ui_server.ui_url(f"tree?token={TOKEN}"))
    page.wait_for_url(ui_server.ui_url("tree"))
    state: dict[str, Any] = context.storage_state()
    context.close()
    return state


def new_page(browser: Any, request: pytest.FixtureRequest, **context_options: Any) -> Iterator[Any]:
    """A page in a fresh context; on failure a screenshot is saved, and script errors fail."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, **context_options)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
        reports = request.node.stash.get(_REPORTS, {})
        if "call" in reports and reports["call"].failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / f"{request.node.name}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failure: {shot}")
        assert not errors, f"uncaught script errors: {errors}"
    finally:
        context.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, login_state: dict[str, Any]) -> Iterator[Any]:
    """A logged-in page (English: the context's locale is en-US)."""
    yield from new_page(browser, request, storage_state=login_state, locale="en-US")


@pytest.fixture
def anonymous_page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from new_page(browser, request, locale="en-US")


@pytest.fixture(params=["notebook7", "builtin"])
def layout(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both URL layouts of in-process servers built after this fixture: ``"nbserver/"`` (Notebook
    7 hosted, the built-in UI under ``/nbserver/``; skipped when it is not installed) and ``""``
    (Notebook 7 hidden from the server: the built-in UI at ``/tree``). Returns ``PAGES`` of it."""
    if request.param == "builtin":
        without_notebook7(monkeypatch)
        return ""
    if not NOTEBOOK7:
        pytest.skip("Notebook 7 is not installed: pip install -e '.[lab]'")
    return "nbserver/"


def without_notebook7(monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers built from now on in this test find no Notebook 7 (the rest of the install stays)."""
    module = importlib.import_module("nbserver.lab.routes")  # the package exports a routes() too
    monkeypatch.setattr(module, "discover", lambda: dataclasses.replace(discover(), notebook_dir=None))
