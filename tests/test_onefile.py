"""The one-file build (``packaging/onefile.py``, a shiv zipapp) starts, serves contents and runs
a kernel found on the machine.

The zipapp is built once per session into a temporary directory (about a minute, with a warm
pip cache), or taken from ``$NBSERVER_ONEFILE`` when CI has built it already. Without shiv the
test is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.services.kernels.wsclient import KernelSocket, stream_text

REPO = Path(__file__).resolve().parents[1]
TOKEN = "onefile-smoke-token"

try:
    import shiv  # noqa: F401

    HAVE_SHIV = True
except ImportError:
    HAVE_SHIV = False


@pytest.fixture(scope="session")
def onefile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prebuilt = os.environ.get("NBSERVER_ONEFILE")
    if prebuilt:
        return Path(prebuilt)
    if not HAVE_SHIV:
        pytest.skip("shiv is not installed (pip install shiv): cannot build the one-file server")
    sys.path.insert(0, str(REPO / "packaging"))
    try:
        import onefile as recipe  # packaging/onefile.py
    finally:
        sys.path.pop(0)
    return recipe.build(tmp_path_factory.mktemp("onefile") / "nbserver.pyz")


@pytest.fixture
def running(onefile: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The zipapp serving ``tmp_path/root`` on a free port: ``(base URL, root)``."""
    root, runtime = tmp_path / "root", tmp_path / "runtime"
    root.mkdir()
    (root / "hello.txt").write_text("hello from the root\n")
    env = {**os.environ, "SHIV_ROOT": str(tmp_path / "shiv")}
    process = subprocess.Popen(
        [
            *(sys.executable, str(onefile), "--port", "0", "--token", TOKEN, "--root-dir", str(root)),
            *("--runtime-dir", str(runtime), "--no-browser"),
        ],
        env=env,
    )
    try:
        deadline = time.monotonic() + 180  # the first run unpacks the compiled parts
        info = runtime / f"nbserver-{process.pid}.json"
        while not info.exists():
            assert process.poll() is None, f"the one-file server exited with {process.returncode}"
            assert time.monotonic() < deadline, "the one-file server did not start"
            time.sleep(0.2)
        port = json.loads(info.read_text())["port"]
        yield f"http://127.0.0.1:{port}/", root
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_onefile_serves_contents_and_runs_a_kernel(running: tuple[str, Path]) -> None:
    base, _ = running
    http = AsyncHTTPClient(force_instance=True)
    headers = {"Authorization": f"token {TOKEN}"}
    try:
        r = await http.fetch(HTTPRequest(base + "api/contents/hello.txt", headers=headers))
        assert json.loads(r.body)["content"] == "hello from the root\n"
        start = HTTPRequest(
            base + "api/kernels", method="POST", body="{}", headers=headers, request_timeout=120
        )
        r = await http.fetch(start)
        kernel = json.loads(r.body)
        ws = await KernelSocket.connect(base.replace("http://", "ws://"), kernel["id"], TOKEN)
        outputs, reply = await ws.run("print(6 * 7)", timeout=120)
        assert reply.content["status"] == "ok" and stream_text(outputs) == "42\n"
        ws.close()
        r = await http.fetch(
            HTTPRequest(base + f"api/kernels/{kernel['id']}", method="DELETE", headers=headers)
        )
        assert r.code == 204
    finally:
        http.close()
