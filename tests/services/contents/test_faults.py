"""Contents under faults, with real processes and a real full disk.

- A real ``python -m nbserver`` is killed with SIGKILL in the middle of 5 MB saves, small saves
  and chunked uploads, 20 times: every file is then exactly its old or its new content (the new
  one whenever the save was answered), and once the server is started again no temp file or
  partial upload is left anywhere under the root, while a user's files that look like them are
  kept.
- A small tmpfs is mounted as the root of a real server (this needs root, as in CI; the tests
  are skipped, saying why, where mounting is not allowed): a save that does not fit, a chunked
  upload that runs out of room, a save over an existing file and a copy are 507 ``"disk full"``
  and leave the old file and no temp file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

from nbserver.services.contents import temps
from tests.conftest import TOKEN, Client
from tests.test_cli import ServerProcess

READY_TIMEOUT = 60.0  # the machine's two cores are shared with other test runs
BIG = 5 * 1024 * 1024
KILLS = 20


def leftovers(root: Path, decoys: Any = ()) -> list[Path]:
    """nbserver's temp files (atomic saves and partial uploads) anywhere under ``root``, but
    for the ``decoys`` (a user's files named like them)."""
    found = [p for p in root.rglob(f"{temps.TEMP_PREFIX}*") if temps.is_temp_name(p.name)]
    return [p for p in found if p not in decoys]


def body(data: bytes, chunk: int | None = None) -> bytes:
    model: dict[str, Any] = {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()}
    if chunk is not None:
        model["chunk"] = chunk
    return json.dumps(model).encode()


class Saver:
    """PUTs to one server process over real HTTP."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.http = AsyncHTTPClient(force_instance=True, max_clients=50)

    def put(self, path: str, payload: bytes) -> asyncio.Future[HTTPResponse]:
        request = HTTPRequest(
            self.server.url(f"api/contents/{path}"),
            method="PUT",
            body=payload,
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
            request_timeout=60,
        )
        return asyncio.ensure_future(self.http.fetch(request, raise_error=False))

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def start(tmp_path: Path, root: Path, servers: list[ServerProcess]) -> ServerProcess:
    server = ServerProcess(tmp_path, "--port", "0", "--token", TOKEN, "--root-dir", str(root))
    servers.append(server)
    return server.start().wait_ready(READY_TIMEOUT)


async def test_sigkill_during_saves_leaves_old_or_new_content_and_no_temp_files(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    rng = random.Random(20)
    root = tmp_path / "root"
    (root / "big").mkdir(parents=True)
    (root / "small" / "deep").mkdir(parents=True)
    files: dict[str, bytes] = {f"big/b{i}.bin": rng.randbytes(BIG) for i in range(2)}
    files.update({f"small/{'deep/' if i % 2 else ''}s{i}.txt": b"v0 %d" % i for i in range(10)})
    for path, data in files.items():
        (root / path).write_bytes(data)
    decoys = {  # a user's files that look like temp files: never removed
        root / ".~nbserver-notes.tmp": b"mine",
        root / "small" / ".~nbserver-1-0123456789abcdef.tmp": b"pid 1 runs",
    }
    for path, data in decoys.items():
        path.write_bytes(data)
    server = start(tmp_path, root, servers)
    saver = Saver(server)
    began = time.monotonic()  # how long a 5 MB save takes here: kills land anywhere in one
    answer = await saver.put("big/b0.bin", body(files["big/b0.bin"]))
    window = 1.5 * (time.monotonic() - began)
    saver.close()
    assert answer.code == 200, answer.body
    small_saves = killed_mid_write = 0
    for round_ in range(KILLS):
        saver = Saver(server)
        try:
            upload = f"small/up{round_}.bin"
            first = await saver.put(upload, body(b"first chunk", 1))
            assert first.code in (200, 201), first.body
            new: dict[str, bytes] = {}
            big = f"big/b{round_ % 2}.bin"
            new[big] = rng.randbytes(BIG)
            for i in rng.sample(range(10), 5):
                path = f"small/{'deep/' if i % 2 else ''}s{i}.txt"
                new[path] = b"v%d %d" % (round_ + 1, i)
            small_saves += 5
            answers = {path: saver.put(path, body(data)) for path, data in new.items()}
            answers[upload] = saver.put(upload, body(b"second chunk", 2))
            if round_ % 2:  # the moment to kill: anywhere in the saves
                await asyncio.sleep(rng.uniform(0.0, window))
            else:  # or as soon as the 5 MB save is being written to its temp file
                deadline = time.monotonic() + 2 * window
                while not leftovers(root / "big") and not answers[big].done() and time.monotonic() < deadline:
                    await asyncio.sleep(0.001)
            server.proc.kill()  # type: ignore[union-attr]
            server.proc.wait(timeout=30)  # type: ignore[union-attr]
            done = {path: future.result().code for path, future in answers.items() if future.done()}
        finally:
            saver.close()
        for path, old in files.items():
            on_disk = (root / path).read_bytes()
            if path in new and done.get(path) in (200, 201):
                assert on_disk == new[path], (round_, path, "answered but not saved")
            else:
                assert on_disk in (old, new.get(path)), (round_, path, len(on_disk))
            files[path] = on_disk
        assert not (root / upload).exists()  # an upload never finished is never visible
        assert leftovers(root, decoys), "the killed server left its partial upload"
        killed_mid_write += bool(leftovers(root / "big"))
        server = start(tmp_path, root, servers)
        assert leftovers(root, decoys) == [], round_
        assert [p.name for p in (tmp_path / "runtime").glob("nbserver-temps-*")] == []
    assert small_saves == 100
    assert killed_mid_write > 0, "no kill landed while a 5 MB save was being written"
    for path, data in decoys.items():
        assert path.read_bytes() == data


# -- a full disk ---------------------------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: skipped where mounting is not allowed."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs for the full-disk tests ({exc}); they need root")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the full-disk tests: {done.stderr.strip()} (they need root)")
    try:
        yield mount
    finally:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30, check=False)


async def full_disk_server(tmpfs: Path, make_server: Any, make_client: Any) -> Client:
    return make_client(await make_server(root_dir=tmpfs, delete_to_trash=False))  # type: ignore[no-any-return]


def assert_disk_full(r: Any) -> None:
    assert r.status == 507 and r.json["reason"] == "disk full", (r.status, r.body)
    assert "No space left" in r.json["message"]


async def test_a_save_that_does_not_fit_is_507_and_leaves_nothing(
    tmpfs: Path, make_server: Any, make_client: Any
) -> None:
    api = await full_disk_server(tmpfs, make_server, make_client)
    r = await api.request("PUT", "api/contents/big.bin", json=json.loads(body(bytes(2 * 1024 * 1024))))
    assert_disk_full(r)
    assert sorted(p.name for p in tmpfs.iterdir()) == []


async def test_a_save_over_an_existing_file_keeps_it_when_the_disk_fills(
    tmpfs: Path, make_server: Any, make_client: Any
) -> None:
    api = await full_disk_server(tmpfs, make_server, make_client)
    old = bytes(range(256)) * 1600  # 400 KiB
    (tmpfs / "f.bin").write_bytes(old)
    r = await api.request("PUT", "api/contents/f.bin", json=json.loads(body(b"n" * (700 * 1024))))
    assert_disk_full(r)
    assert (tmpfs / "f.bin").read_bytes() == old
    assert sorted(p.name for p in tmpfs.iterdir()) == ["f.bin"]
    small = await api.request("PUT", "api/contents/f.bin", json=json.loads(body(b"fits")))
    assert small.status == 200 and (tmpfs / "f.bin").read_bytes() == b"fits"


async def test_a_chunked_upload_that_runs_out_of_room_is_507_and_discarded(
    tmpfs: Path, make_server: Any, make_client: Any
) -> None:
    api = await full_disk_server(tmpfs, make_server, make_client)
    (tmpfs / "up.bin").write_bytes(b"old")
    part = b"p" * (300 * 1024)
    statuses = []
    for number in (1, 2, 3, 4):
        r = await api.request("PUT", "api/contents/up.bin", json=json.loads(body(part, number)))
        statuses.append(r.status)
        if r.status != 200:
            break
    assert statuses[-1] == 507 and set(statuses[:-1]) == {200}, statuses
    assert_disk_full(r)
    assert sorted(p.name for p in tmpfs.iterdir()) == ["up.bin"]  # no partial left
    assert (tmpfs / "up.bin").read_bytes() == b"old"
    r = await api.request("PUT", "api/contents/up.bin", json=json.loads(body(b"end", -1)))
    assert r.status == 400 and r.json["reason"] == "bad chunk"  # the upload was given up
    assert (tmpfs / "up.bin").read_bytes() == b"old"


async def test_a_copy_that_does_not_fit_is_507(tmpfs: Path, make_server: Any, make_client: Any) -> None:
    api = await full_disk_server(tmpfs, make_server, make_client)
    (tmpfs / "a.bin").write_bytes(b"a" * (600 * 1024))
    (tmpfs / "sub").mkdir()
    r = await api.request("POST", "api/contents/sub", json={"copy_from": "a.bin"})
    assert_disk_full(r)
    assert sorted(p.name for p in tmpfs.iterdir()) == ["a.bin", "sub"]
    assert list((tmpfs / "sub").iterdir()) == []
