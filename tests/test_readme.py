"""README's promises, checked: the embedding example runs as written and serves contents and
kernels next to the host application's own handler."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_embedding_example_runs(tmp_path: Path) -> None:
    embedding = README.read_text().partition("\n## Embedding\n")[2]
    code = re.search(r"```python\n(.*?)```", embedding, re.S)
    assert code is not None, "README's Embedding section has no python example"
    port = _free_port()
    script = tmp_path / "embed.py"
    script.write_text(code.group(1).replace("app.listen(8000)", f"app.listen({port})"))
    log = (tmp_path / "log").open("w")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stderr=log, stdout=log)
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "token s3cret"}
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert urllib.request.urlopen(base + "/", timeout=2).read() == b"my app"
                break
            except OSError:
                assert time.monotonic() < deadline, "the example did not start"
                time.sleep(0.05)
        listing = urllib.request.urlopen(urllib.request.Request(base + "/jupyter/api/contents", headers=auth))
        assert json.loads(listing.read())["type"] == "directory"
        url = base + "/jupyter/api/kernels"
        request = urllib.request.Request(url, data=b"{}", method="POST", headers=auth)
        kernel = json.loads(urllib.request.urlopen(request, timeout=60).read())
        assert kernel["execution_state"] == "idle"
        assert len(_kernels_in(tmp_path)) == 1
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert _kernels_in(tmp_path) == [], "a kernel outlived the embedding application"


def _kernels_in(directory: Path) -> list[int]:
    """ipykernel processes whose working directory is ``directory`` (the example's root)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if b"ipykernel_launcher" in cmdline and Path(cwd) == directory:
            found.append(int(entry.name))
    return found
