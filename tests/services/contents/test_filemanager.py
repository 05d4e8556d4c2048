"""The file contents manager driven directly (no HTTP) against a real temporary directory.

Layout of every test: ``tmp_path/root`` is the contents root, ``tmp_path/outside`` a sibling
directory holding ``secret.txt`` that nothing may read or write through the manager.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import tornado.ioloop

from nbserver.errors import BadRequest, Conflict, Forbidden, NBServerError, NotFound
from nbserver.services.contents import fileio, filemanager, models
from nbserver.services.contents.checkpoints import FileCheckpoints
from nbserver.services.contents.filemanager import DOWNLOAD_BLOCK, UPLOAD_IDLE_LIMIT, FileContentsManager
from nbserver.services.contents.models import SaveRequest
from nbserver.services.contents.uploads import RIVAL_SILENCE


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_text("secret")
    return path


@pytest.fixture
def cm(io_loop: tornado.ioloop.IOLoop, root: Path) -> Iterator[FileContentsManager]:
    manager = FileContentsManager(root, delete_to_trash=False)
    yield manager
    io_loop.run_sync(manager.shutdown)


def text(data: str) -> SaveRequest:
    return SaveRequest("file", data.encode(), None, None)


def chunk(data: bytes, number: int) -> SaveRequest:
    return SaveRequest("file", data, number, None)


def nb_bytes(**overrides: Any) -> bytes:
    nb = json.loads(models.new_notebook_bytes())
    nb.update(overrides)
    return json.dumps(nb).encode()


def temps(directory: Path) -> list[str]:
    return [p.name for p in directory.rglob(f"{fileio.TEMP_PREFIX}*")]


def snapshot(directory: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(directory)): (None if p.is_dir() else p.read_bytes()) for p in directory.rglob("*")
    }


# -- listings ------------------------------------------------------------------------------------


def make_listing_tree(root: Path, outside: Path) -> None:
    (root / "a.txt").write_text("a")
    (root / "nb.ipynb").write_bytes(nb_bytes())
    (root / "sub").mkdir()
    for hidden in (".hidden", "x.pyc", "y.pyo", "notes~", ".DS_Store"):
        (root / hidden).write_text("h")
    (root / "__pycache__").mkdir()
    (root / "link_in").symlink_to(root / "a.txt")
    (root / "link_dir_in").symlink_to(root / "sub")
    (root / "link_out").symlink_to(outside / "secret.txt")
    (root / "link_dir_out").symlink_to(outside)
    (root / "dangling").symlink_to(root / "nowhere")
    (root / "link_hidden").symlink_to(root / ".hidden")
    os.mkfifo(root / "fifo")
    undecodable = os.open(os.path.join(os.fsencode(root), b"\xff.txt"), os.O_CREAT | os.O_WRONLY)
    os.close(undecodable)  # a name no URL can address


async def test_listing(cm: FileContentsManager, root: Path, outside: Path) -> None:
    """Skipped: hidden names, HIDE_GLOBS, symlinks leading outside the root (file and directory),
    a dangling symlink, a symlink to a hidden file, a fifo, a name that is not UTF-8. Listed:
    symlinks inside the root."""
    make_listing_tree(root, outside)
    model = await cm.get("")
    assert (model["type"], model["format"], model["mimetype"], model["size"]) == (
        "directory",
        "json",
        None,
        None,
    )
    children = {child["name"]: child for child in model["content"]}
    assert set(children) == {"a.txt", "nb.ipynb", "sub", "link_in", "link_dir_in"}
    for child in children.values():
        assert set(child) == set(
            models.base_model("", "file", created="", last_modified="", size=0, writable=True)
        )
        assert child["content"] is None and child["format"] is None and child["writable"] is True
    assert children["a.txt"]["type"] == "file" and children["a.txt"]["size"] == 1
    assert children["a.txt"]["mimetype"] == "text/plain"
    assert children["nb.ipynb"]["type"] == "notebook" and children["nb.ipynb"]["mimetype"] is None
    assert children["sub"]["type"] == "directory" and children["sub"]["size"] is None
    assert children["link_in"]["type"] == "file" and children["link_in"]["size"] == 1
    assert children["link_dir_in"]["type"] == "directory"
    assert children["link_dir_in"]["path"] == "link_dir_in"


async def test_listing_with_hidden_allowed(root: Path, outside: Path) -> None:
    """allow_hidden shows dot files (and symlinks to them) but never HIDE_GLOBS or outside links."""
    make_listing_tree(root, outside)
    manager = FileContentsManager(root, allow_hidden=True, delete_to_trash=False)
    try:
        names = {child["name"] for child in (await manager.get(""))["content"]}
    finally:
        await manager.shutdown()
    assert names == {"a.txt", "nb.ipynb", "sub", "link_in", "link_dir_in", ".hidden", "link_hidden"}


async def test_listing_of_a_subdirectory_has_full_paths(cm: FileContentsManager, root: Path) -> None:
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "f.txt").write_text("")
    model = await cm.get("d/")
    assert model["path"] == "d" and model["name"] == "d"
    assert sorted(child["path"] for child in model["content"]) == ["d/e", "d/f.txt"]


def test_writable_by_reads_the_mode_bits() -> None:
    def st(mode: int, uid: int = 1000, gid: int = 1000) -> os.stat_result:
        return os.stat_result((mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))

    groups = frozenset({1000, 20})
    assert fileio.writable_by(st(0o400), 0, groups)  # root writes anything
    assert fileio.writable_by(st(0o600), 1000, groups)
    assert not fileio.writable_by(st(0o466), 1000, groups)  # owner bits win for the owner
    assert fileio.writable_by(st(0o460, uid=1), 1000, groups)
    assert not fileio.writable_by(st(0o446, uid=1, gid=20), 1000, groups)
    assert fileio.writable_by(st(0o442, uid=1, gid=2), 1000, groups)
    assert not fileio.writable_by(st(0o444, uid=1, gid=2), 1000, groups)
    assert fileio.writable_by(st(0o200), None, groups) and not fileio.writable_by(st(0o444), None, groups)


# -- get -------------------------------------------------------------------------------------------


async def test_get_text_file(cm: FileContentsManager, root: Path) -> None:
    (root / "a.txt").write_text("héllo")
    model = await cm.get("a.txt")
    assert (model["type"], model["content"], model["format"]) == ("file", "héllo", "text")
    assert model["mimetype"] == "text/plain" and model["size"] == len("héllo".encode())
    assert model["hash"] is None and model["hash_algorithm"] is None
    assert model["created"].endswith("Z") and model["last_modified"].endswith("Z")
    assert (await cm.get("a.txt", format="base64"))["content"] == "aMOpbGxv"


async def test_get_binary_file(cm: FileContentsManager, root: Path) -> None:
    """Bad input: format=text on bytes that are not UTF-8 -> 400 "bad format"."""
    (root / "b.bin").write_bytes(b"\xff\x00\xfe")
    model = await cm.get("b.bin")
    assert (model["content"], model["format"]) == ("/wD+", "base64")
    assert model["mimetype"] == "application/octet-stream"
    with pytest.raises(BadRequest) as info:
        await cm.get("b.bin", format="text")
    assert info.value.reason == "bad format"


async def test_get_notebook(cm: FileContentsManager, root: Path) -> None:
    (root / "nb.ipynb").write_bytes(nb_bytes())
    model = await cm.get("nb.ipynb")
    assert (model["type"], model["format"], model["mimetype"]) == ("notebook", "json", None)
    assert model["content"]["nbformat"] == 4 and "message" not in model
    as_file = await cm.get("nb.ipynb", type="file")
    assert as_file["type"] == "file" and json.loads(as_file["content"])["nbformat"] == 4
    assert (await cm.get("nb.ipynb", content=False))["content"] is None


async def test_get_invalid_notebook_has_a_message(cm: FileContentsManager, root: Path) -> None:
    """Bad input: a readable notebook whose cell has an unknown property."""
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "x", "bogus": 1}]
    (root / "nb.ipynb").write_bytes(nb_bytes(nbformat_minor=4, cells=cells))
    model = await cm.get("nb.ipynb")
    assert model["content"]["cells"][0]["source"] == "x"
    assert "bogus" in model["message"]


async def test_get_unreadable_notebook_is_bad_notebook(cm: FileContentsManager, root: Path) -> None:
    """Bad input: ``.ipynb`` bytes that are not JSON."""
    (root / "nb.ipynb").write_text("{not json")
    with pytest.raises(BadRequest) as info:
        await cm.get("nb.ipynb")
    assert info.value.reason == "bad notebook"
    assert (await cm.get("nb.ipynb", content=False))["type"] == "notebook"


@pytest.mark.parametrize(
    ("path", "kwargs", "reason"),
    [
        ("sub", {"type": "file"}, "bad type"),  # a directory asked as a file
        ("sub", {"type": "notebook"}, "bad type"),
        ("a.txt", {"type": "directory"}, "bad type"),  # a file asked as a directory
        ("a.txt", {"type": "notebook"}, "bad type"),  # not a .ipynb
        ("a.txt", {"type": "symlink"}, "bad type"),  # unknown type
        ("a.txt", {"format": "json"}, "bad format"),  # unknown format
    ],
)
async def test_get_mismatches(
    cm: FileContentsManager, root: Path, path: str, kwargs: dict[str, Any], reason: str
) -> None:
    (root / "sub").mkdir()
    (root / "a.txt").write_text("a")
    with pytest.raises(BadRequest) as info:
        await cm.get(path, **kwargs)
    assert info.value.reason == reason


async def test_hash(cm: FileContentsManager, root: Path) -> None:
    """Files and notebooks get the sha256 of their bytes (with or without content);
    directories keep None (jupyter_server answers 500 there)."""
    (root / "a.txt").write_bytes(b"abc")
    (root / "nb.ipynb").write_bytes(nb_bytes())
    (root / "sub").mkdir()
    for kwargs in ({}, {"content": False}):
        model = await cm.get("a.txt", hash=True, **kwargs)
        assert model["hash"] == hashlib.sha256(b"abc").hexdigest() and model["hash_algorithm"] == "sha256"
    assert (await cm.get("nb.ipynb", hash=True))["hash"] == hashlib.sha256(nb_bytes()).hexdigest()
    directory = await cm.get("sub", hash=True)
    assert directory["hash"] is None and directory["hash_algorithm"] is None


async def test_missing_hidden_and_special(cm: FileContentsManager, root: Path) -> None:
    """Missing, hidden (also through a symlink) and fifo paths are 404 for reads and None for kind."""
    (root / ".secret").write_text("s")
    (root / ".dir").mkdir()
    (root / ".dir" / "f.txt").write_text("f")
    (root / "alias").symlink_to(root / ".secret")
    os.mkfifo(root / "fifo")
    for path in ("missing.txt", ".secret", ".dir/f.txt", ".dir", "alias", "fifo"):
        with pytest.raises(NotFound):
            await cm.get(path)
        with pytest.raises(NotFound):
            await cm.download(path)
        assert await cm.kind(path) is None
    assert await cm.kind("") == "directory"
    manager = FileContentsManager(root, allow_hidden=True)
    try:
        assert (await manager.get(".secret"))["content"] == "s"
        assert await manager.kind(".dir") == "directory"
    finally:
        await manager.shutdown()


async def test_unencodable_path_is_400(cm: FileContentsManager) -> None:
    """Bad input: a lone surrogate, which no filesystem encoding holds: 400, never a raw
    UnicodeEncodeError."""
    with pytest.raises(BadRequest):
        await cm.get("bad\ud800.txt")
    with pytest.raises(BadRequest):
        await cm.save("bad\ud800.txt", text("x"))
    assert await cm.kind("bad\ud800.txt") is None


async def test_after_shutdown_calls_fail_cleanly(root: Path) -> None:
    """Bad input: a call after shutdown: 503, not the executor's RuntimeError."""
    (root / "a.txt").write_text("a")
    manager = FileContentsManager(root)
    await manager.shutdown()
    for call in (manager.get("a.txt"), manager.list_checkpoints("a.txt")):
        with pytest.raises(NBServerError) as info:
            await call
        assert info.value.status == 503


async def test_kind(cm: FileContentsManager, root: Path) -> None:
    (root / "sub").mkdir()
    (root / "nb.ipynb").write_bytes(nb_bytes())
    assert await cm.kind("sub") == "directory"
    assert await cm.kind("nb.ipynb") == "file"
    assert await cm.kind("../x") is None


# -- outside the root ----------------------------------------------------------------------------

ESCAPES = [
    "..",
    "../outside/secret.txt",
    "sub/../../outside/secret.txt",
    "C:\\x",
    "C:/x",
    "a\\..\\..\\x",
    "a\x00b",
    "link_out",  # a file symlink leading outside
    "link_dir_out/secret.txt",  # through a directory symlink leading outside
    "link_dir_out",
    "sub/deep_out/secret.txt",  # a symlink deeper down
]


@pytest.fixture
def escapes(root: Path, outside: Path) -> Iterator[None]:
    """The root with escape hatches; on teardown, nothing outside has changed."""
    (root / "sub").mkdir()
    (root / "a.txt").write_text("a")
    (root / "link_out").symlink_to(outside / "secret.txt")
    (root / "link_dir_out").symlink_to(outside)
    (root / "sub" / "deep_out").symlink_to(outside)
    before = snapshot(outside)
    yield
    assert snapshot(outside) == before


async def refused(call: Any) -> NotFound:
    with pytest.raises(NotFound) as info:
        await call
    return info.value


@pytest.mark.usefixtures("escapes")
@pytest.mark.parametrize("path", ESCAPES)
async def test_reads_outside_the_root_are_refused(cm: FileContentsManager, path: str) -> None:
    """Bad inputs: ESCAPES (``..`` forms, drive letters, backslashes, NUL, symlinks out)."""
    assert (await refused(cm.get(path))).reason == "outside root"
    assert (await refused(cm.download(path))).reason == "outside root"
    assert await cm.kind(path) is None
    await refused(cm.create_checkpoint(path))
    await refused(cm.list_checkpoints(path))
    await refused(cm.restore_checkpoint(path, "checkpoint"))
    await refused(cm.delete_checkpoint(path, "checkpoint"))


@pytest.mark.usefixtures("escapes")
@pytest.mark.parametrize("path", ESCAPES)
async def test_writes_outside_the_root_are_refused(cm: FileContentsManager, path: str) -> None:
    """Bad inputs: ESCAPES as save target, new file below them, rename source and target,
    delete, copy source and target, chunked upload."""
    await refused(cm.save(path, text("overwritten")))
    await refused(cm.save(path + "/new.txt", text("new")))
    await refused(cm.save(path + "/newdir", SaveRequest("directory", None, None, None)))
    await refused(cm.save(path, chunk(b"x", 1)))
    await refused(cm.rename(path, "moved.txt"))
    await refused(cm.rename("a.txt", path))
    await refused(cm.rename("a.txt", path + "/a.txt"))
    await refused(cm.delete(path))
    await refused(cm.copy(path, "copied.txt"))
    await refused(cm.copy("a.txt", path + "/a.txt"))


async def test_absolute_paths_are_under_the_root(cm: FileContentsManager, root: Path, outside: Path) -> None:
    """Bad input: an absolute OS path: it names a path below the root, which does not exist."""
    absolute = str(outside / "secret.txt")
    with pytest.raises(NotFound):
        await cm.get(absolute)
    with pytest.raises(NotFound):  # <root>/<tmp...>/outside does not exist
        await cm.save(absolute, text("overwritten"))
    assert (outside / "secret.txt").read_text() == "secret"
    assert list(root.iterdir()) == []


async def test_checkpoints_refuse_a_checkpoint_dir_leading_outside(
    cm: FileContentsManager, root: Path, outside: Path
) -> None:
    """Bad input: ``.ipynb_checkpoints`` is a symlink to a directory outside the root."""
    (root / "nb.ipynb").write_bytes(nb_bytes())
    (root / ".ipynb_checkpoints").symlink_to(outside)
    before = snapshot(outside)
    with pytest.raises(NotFound):
        await cm.create_checkpoint("nb.ipynb")
    assert await cm.list_checkpoints("nb.ipynb") == []
    checkpoints = FileCheckpoints(root)
    with pytest.raises(NotFound):
        await checkpoints.create("nb.ipynb")
    assert snapshot(outside) == before


async def test_symlinks_inside_the_root_work(cm: FileContentsManager, root: Path) -> None:
    """Reads follow them; a save writes through to the target; rename and delete act on the link."""
    (root / "real").mkdir()
    (root / "real" / "a.txt").write_text("a")
    (root / "dirlink").symlink_to(root / "real")
    (root / "filelink").symlink_to(root / "real" / "a.txt")
    assert (await cm.get("dirlink/a.txt"))["content"] == "a"
    assert (await cm.get("filelink"))["content"] == "a"
    await cm.save("filelink", text("through"))
    assert (root / "filelink").is_symlink() and (root / "real" / "a.txt").read_text() == "through"
    await cm.save("dirlink/b.txt", text("b"))
    assert (root / "real" / "b.txt").read_text() == "b"
    await cm.rename("filelink", "renamed_link")
    assert (root / "renamed_link").is_symlink() and (root / "real" / "a.txt").exists()
    await cm.delete("renamed_link")
    assert not (root / "renamed_link").exists() and (root / "real" / "a.txt").exists()


# -- save ------------------------------------------------------------------------------------------


async def test_save_creates_and_overwrites(cm: FileContentsManager, root: Path) -> None:
    model, created = await cm.save("a.txt", text("one"))
    assert created and model["content"] is None and model["size"] == 3 and model["type"] == "file"
    model, created = await cm.save("a.txt", text("two!"))
    assert not created and model["size"] == 4
    assert (root / "a.txt").read_text() == "two!"
    assert temps(root) == []


async def test_new_file_mode_follows_the_umask(cm: FileContentsManager, root: Path) -> None:
    umask = os.umask(0o027)
    try:
        await cm.save("a.txt", text("x"))
    finally:
        os.umask(umask)
    assert stat.S_IMODE((root / "a.txt").stat().st_mode) == 0o640


async def test_overwrite_keeps_the_mode(cm: FileContentsManager, root: Path) -> None:
    (root / "run.sh").write_text("old")
    os.chmod(root / "run.sh", 0o751)
    await cm.save("run.sh", text("new"))
    assert stat.S_IMODE((root / "run.sh").stat().st_mode) == 0o751
    assert (root / "run.sh").read_text() == "new"


@pytest.mark.parametrize(
    ("error", "expected"),
    [(OSError(errno.EIO, "I/O error"), NBServerError), (PermissionError(errno.EACCES, "no"), Forbidden)],
)
async def test_failed_save_keeps_the_old_content(
    cm: FileContentsManager, root: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, expected: type
) -> None:
    """Bad input: os.replace fails (EIO -> 500, EACCES -> 403 "permission denied"): the old
    content is intact and no temp file is left."""
    (root / "a.txt").write_text("old")

    def failing_replace(*args: Any) -> None:
        raise error

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(expected) as info:
        await cm.save("a.txt", text("new"))
    assert type(info.value) is expected
    assert info.value.status == (403 if expected is Forbidden else 500)
    if expected is Forbidden:
        assert info.value.reason == "permission denied"
    assert (root / "a.txt").read_text() == "old"
    assert temps(root) == []


async def test_failed_write_leaves_no_temp(
    cm: FileContentsManager, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad input: the disk fills up mid-write (ENOSPC)."""

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio, "write_fully", full)
    with pytest.raises(NBServerError) as info:
        await cm.save("a.txt", text("x"))
    assert info.value.status == 507 and info.value.reason == "disk full"
    assert "No space left" in info.value.message
    assert list(root.iterdir()) == []


async def test_save_errors(cm: FileContentsManager, root: Path) -> None:
    """Bad inputs: a missing parent (404), a directory in the way of a file and a file in the
    way of a directory (400), hidden names (400 "hidden"), the root as a file (400)."""
    (root / "sub").mkdir()
    (root / "f.txt").write_text("f")
    with pytest.raises(NotFound):
        await cm.save("missing/a.txt", text("x"))
    with pytest.raises(NotFound):
        await cm.save("missing/d", SaveRequest("directory", None, None, None))
    with pytest.raises(BadRequest):
        await cm.save("sub", text("x"))
    with pytest.raises(BadRequest):
        await cm.save("f.txt", SaveRequest("directory", None, None, None))
    with pytest.raises(BadRequest):
        await cm.save("", text("x"))
    for hidden in (".a.txt", "sub/.b/c.txt"):
        with pytest.raises(BadRequest) as info:
            await cm.save(hidden, text("x"))
        assert info.value.reason == "hidden"
    assert sorted(p.name for p in root.iterdir()) == ["f.txt", "sub"]


async def test_save_directory(cm: FileContentsManager, root: Path) -> None:
    model, created = await cm.save("d", SaveRequest("directory", None, None, None))
    assert created and model["type"] == "directory" and (root / "d").is_dir()
    assert (await cm.save("d", SaveRequest("directory", None, None, None)))[1] is False
    assert (await cm.save("", SaveRequest("directory", None, None, None)))[1] is False


async def test_notebook_save(cm: FileContentsManager, root: Path) -> None:
    """The first save creates a checkpoint, later saves keep it; a validation message is kept."""
    model, created = await cm.save("nb.ipynb", SaveRequest("notebook", nb_bytes(), None, "invalid: x"))
    assert created and model["type"] == "notebook" and model["message"] == "invalid: x"
    checkpoints = await cm.list_checkpoints("nb.ipynb")
    assert [c["id"] for c in checkpoints] == ["checkpoint"]
    assert (root / ".ipynb_checkpoints" / "nb-checkpoint.ipynb").read_bytes() == nb_bytes()
    model, _ = await cm.save("nb.ipynb", SaveRequest("notebook", nb_bytes(metadata={"x": 1}), None, None))
    assert "message" not in model
    assert await cm.list_checkpoints("nb.ipynb") == checkpoints
    assert (root / ".ipynb_checkpoints" / "nb-checkpoint.ipynb").read_bytes() == nb_bytes()


async def test_slow_save_does_not_block_the_loop(
    cm: FileContentsManager, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that takes 0.5 s runs in a thread: another coroutine keeps ticking meanwhile."""
    write = fileio.write_fully

    def slow_write(fd: int, data: bytes) -> None:
        import time

        time.sleep(0.5)
        write(fd, data)

    monkeypatch.setattr(fileio, "write_fully", slow_write)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    try:
        await cm.save("big.bin", SaveRequest("file", b"x" * (10 * 1024 * 1024), None, None))
    finally:
        task.cancel()
    assert ticks >= 10
    assert (root / "big.bin").stat().st_size == 10 * 1024 * 1024


# -- chunked uploads -------------------------------------------------------------------------------


async def test_chunks_1_2_last(cm: FileContentsManager, root: Path) -> None:
    model, created = await cm.save("up.bin", chunk(b"ab", 1))
    assert created and model["type"] == "file" and model["size"] == 2 and model["path"] == "up.bin"
    assert not (root / "up.bin").exists()  # invisible until the last chunk
    model, created = await cm.save("up.bin", chunk(b"cd", 2))
    assert not created and model["size"] == 4
    model, created = await cm.save("up.bin", chunk(b"e", -1))
    assert not created and model["size"] == 5
    assert (root / "up.bin").read_bytes() == b"abcde"
    assert temps(root) == []


async def test_chunks_onto_an_existing_file_keep_it_until_the_end(
    cm: FileContentsManager, root: Path
) -> None:
    (root / "up.txt").write_text("old")
    os.chmod(root / "up.txt", 0o600)
    assert (await cm.save("up.txt", chunk(b"new ", 1)))[1] is False
    assert (root / "up.txt").read_text() == "old"
    await cm.save("up.txt", chunk(b"content", -1))
    assert (root / "up.txt").read_text() == "new content"
    assert stat.S_IMODE((root / "up.txt").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "sequence",
    [[1, 3], [2], [-1], [1, 2, 2], [1, 2, 4]],
    ids=["skipped", "2-first", "last-first", "repeated", "skipped-later"],
)
async def test_bad_chunk_sequences(cm: FileContentsManager, root: Path, sequence: list[int]) -> None:
    """Bad inputs: each sequence's last chunk is out of order: 400 "bad chunk", the upload is
    discarded (no temp file, the next chunk is refused too) and the target is untouched."""
    (root / "up.txt").write_text("old")
    *good, bad = sequence
    for number in good:
        await cm.save("up.txt", chunk(b"x", number))
    with pytest.raises(BadRequest) as info:
        await cm.save("up.txt", chunk(b"x", bad))
    assert info.value.reason == "bad chunk"
    with pytest.raises(BadRequest):
        await cm.save("up.txt", chunk(b"x", -1))
    assert (root / "up.txt").read_text() == "old"
    assert temps(root) == []
    await cm.save("up.txt", chunk(b"fresh", 1))  # a new upload can start
    await cm.save("up.txt", chunk(b"!", -1))
    assert (root / "up.txt").read_text() == "fresh!"


async def test_a_new_first_chunk_restarts_the_upload(cm: FileContentsManager, root: Path) -> None:
    """A client retrying an interrupted upload sends chunk 1 again: the abandoned attempt's
    bytes are discarded at once. Its last chunk (-1) could be the abandoned upload's last one,
    so it is a 409 "upload conflict" (nothing written) while that upload may still be running;
    a retry once it has been silent for RIVAL_SILENCE works. (The clock is the manager's.)"""
    clock = [1000.0]
    cm._clock = lambda: clock[0]
    (root / "up.txt").write_text("old")
    await cm.save("up.txt", chunk(b"abandoned ", 1))
    await cm.save("up.txt", chunk(b"attempt ", 2))
    await cm.save("up.txt", chunk(b"too soon ", 1))
    assert len(temps(root)) == 1  # only the new upload's
    with pytest.raises(Conflict) as info:
        await cm.save("up.txt", chunk(b"works", -1))
    assert info.value.reason == "upload conflict" and "in 30 s" in info.value.message
    assert (root / "up.txt").read_text() == "old" and temps(root) == []
    clock[0] += RIVAL_SILENCE
    await cm.save("up.txt", chunk(b"retry ", 1))
    await cm.save("up.txt", chunk(b"works", -1))
    assert (root / "up.txt").read_text() == "retry works"
    assert temps(root) == []


async def test_chunk_errors_like_saves(cm: FileContentsManager, root: Path) -> None:
    """Bad inputs: a first chunk under a missing directory, onto a directory, at a hidden path."""
    (root / "sub").mkdir()
    with pytest.raises(NotFound):
        await cm.save("missing/up.bin", chunk(b"x", 1))
    with pytest.raises(BadRequest):
        await cm.save("sub", chunk(b"x", 1))
    with pytest.raises(BadRequest) as info:
        await cm.save(".up.bin", chunk(b"x", 1))
    assert info.value.reason == "hidden"
    assert temps(root) == []


async def test_failed_chunk_discards_the_upload(
    cm: FileContentsManager, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad input: the disk fills up while appending chunk 2."""
    await cm.save("up.bin", chunk(b"a", 1))

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio, "write_fully", full)
    with pytest.raises(NBServerError):
        await cm.save("up.bin", chunk(b"b", 2))
    monkeypatch.undo()
    assert temps(root) == []
    with pytest.raises(BadRequest):
        await cm.save("up.bin", chunk(b"c", 3))
    assert not (root / "up.bin").exists()


async def test_abandoned_uploads_are_cleaned(cm: FileContentsManager, root: Path) -> None:
    """An upload idle for over an hour is dropped at the next upload call; shutdown drops all."""
    clock = [1000.0]
    cm._clock = lambda: clock[0]
    await cm.save("old.bin", chunk(b"a", 1))
    clock[0] += UPLOAD_IDLE_LIMIT + 1
    await cm.save("new.bin", chunk(b"b", 1))
    assert len(temps(root)) == 1
    with pytest.raises(BadRequest):
        await cm.save("old.bin", chunk(b"c", 2))
    await cm.shutdown()
    assert temps(root) == []
    assert list(root.iterdir()) == []


# -- rename ----------------------------------------------------------------------------------------


async def test_rename(cm: FileContentsManager, root: Path) -> None:
    (root / "a.txt").write_text("a")
    (root / "sub").mkdir()
    model = await cm.rename("a.txt", "sub/b.txt")
    assert model["path"] == "sub/b.txt" and model["content"] is None
    assert (root / "sub" / "b.txt").read_text() == "a" and not (root / "a.txt").exists()
    assert (await cm.rename("sub/b.txt", "sub/b.txt"))["path"] == "sub/b.txt"
    assert (await cm.rename("sub", "dir"))["type"] == "directory"
    assert (root / "dir" / "b.txt").exists()


async def test_rename_errors(cm: FileContentsManager, root: Path) -> None:
    """Bad inputs: an existing target (409), a missing source or target parent (404), the
    root, hidden source or target, a directory into itself (400)."""
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("b")
    (root / "d" / "e").mkdir(parents=True)
    (root / ".h").write_text("h")
    with pytest.raises(Conflict) as conflict:
        await cm.rename("a.txt", "b.txt")
    assert conflict.value.status == 409 and conflict.value.message == "File already exists: b.txt"
    with pytest.raises(NotFound):
        await cm.rename("missing.txt", "c.txt")
    with pytest.raises(NotFound):
        await cm.rename("a.txt", "missing/c.txt")
    for old, new in [("", "x"), ("a.txt", ""), ("d", "d/inside"), ("d", "d/e/f")]:
        with pytest.raises(BadRequest):
            await cm.rename(old, new)
    for old, new in [("a.txt", ".a.txt"), (".h", "h.txt")]:
        with pytest.raises(BadRequest) as info:
            await cm.rename(old, new)
        assert info.value.reason == "hidden"
    assert (root / "b.txt").read_text() == "b" and (root / "a.txt").read_text() == "a"


async def test_rename_moves_the_checkpoint(cm: FileContentsManager, root: Path) -> None:
    (root / "nb.ipynb").write_bytes(nb_bytes())
    (root / "sub").mkdir()
    await cm.create_checkpoint("nb.ipynb")
    await cm.rename("nb.ipynb", "sub/nb2.ipynb")
    assert [c["id"] for c in await cm.list_checkpoints("sub/nb2.ipynb")] == ["checkpoint"]
    assert (root / "sub" / ".ipynb_checkpoints" / "nb2-checkpoint.ipynb").exists()
    assert not (root / ".ipynb_checkpoints" / "nb-checkpoint.ipynb").exists()


async def test_rename_across_filesystems_falls_back_to_move(
    cm: FileContentsManager, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad input: os.rename reports EXDEV (another filesystem): shutil.move copies instead."""
    (root / "a.txt").write_text("a")

    def cross_device(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "rename", cross_device)
    await cm.rename("a.txt", "b.txt")
    assert (root / "b.txt").read_text() == "a" and not (root / "a.txt").exists()


# -- delete ----------------------------------------------------------------------------------------


async def test_delete_files_and_directories(cm: FileContentsManager, root: Path) -> None:
    (root / "nb.ipynb").write_bytes(nb_bytes())
    await cm.create_checkpoint("nb.ipynb")
    await cm.delete("nb.ipynb")
    assert not (root / "nb.ipynb").exists()
    assert not (root / ".ipynb_checkpoints" / "nb-checkpoint.ipynb").exists()
    (root / "empty").mkdir()
    await cm.delete("empty")
    (root / "only_checkpoints" / ".ipynb_checkpoints").mkdir(parents=True)
    (root / "only_checkpoints" / ".ipynb_checkpoints" / "x-checkpoint.txt").write_text("x")
    await cm.delete("only_checkpoints")
    assert sorted(p.name for p in root.iterdir()) == [".ipynb_checkpoints"]


async def test_delete_non_empty_directory(io_loop: tornado.ioloop.IOLoop, root: Path) -> None:
    """Bad input: a non-empty directory without trash: 400 "directory not empty" unless
    always_delete_dir."""
    (root / "d").mkdir()
    (root / "d" / "f.txt").write_text("f")
    keep = FileContentsManager(root, delete_to_trash=False)
    force = FileContentsManager(root, delete_to_trash=False, always_delete_dir=True)
    try:
        with pytest.raises(BadRequest) as info:
            await keep.delete("d")
        assert info.value.reason == "directory not empty"
        assert (root / "d" / "f.txt").exists()
        await force.delete("d")
        assert not (root / "d").exists()
    finally:
        await keep.shutdown()
        await force.shutdown()


async def test_delete_errors(cm: FileContentsManager, root: Path) -> None:
    """Bad inputs: the root (400), a missing path (404), a hidden path (400 "hidden")."""
    (root / ".h").write_text("h")
    with pytest.raises(BadRequest):
        await cm.delete("")
    with pytest.raises(NotFound):
        await cm.delete("missing")
    with pytest.raises(BadRequest) as info:
        await cm.delete(".h")
    assert info.value.reason == "hidden"
    assert (root / ".h").exists()


async def test_failing_trash_never_deletes_for_good(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad input: send2trash raises: 400 "send2trash failed: ...", the file stays."""

    def broken_trash(path: str) -> None:
        raise OSError(errno.EXDEV, "no trash here")

    monkeypatch.setattr(filemanager, "_send2trash", broken_trash)
    (root / "a.txt").write_text("a")
    manager = FileContentsManager(root, delete_to_trash=True)
    try:
        with pytest.raises(BadRequest) as info:
            await manager.delete("a.txt")
    finally:
        await manager.shutdown()
    assert info.value.message.startswith("send2trash failed: ")
    assert info.value.reason == "trash failed"
    assert (root / "a.txt").exists()


@pytest.fixture
def trash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary freedesktop trash for send2trash; its path."""
    pytest.importorskip("send2trash")
    plat_other = pytest.importorskip("send2trash.plat_other")
    if filemanager._send2trash is not plat_other.send2trash:
        pytest.skip("this platform's send2trash is not the freedesktop one")
    data_home = tmp_path / "xdg"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(data_home))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(data_home / "Trash"))
    return data_home / "Trash"


async def test_delete_to_trash(root: Path, trash: Path) -> None:
    """A non-empty directory goes to a (temporary) freedesktop trash."""
    (root / "d").mkdir()
    (root / "d" / "f.txt").write_text("f")
    manager = FileContentsManager(root)
    try:
        await manager.delete("d")
    finally:
        await manager.shutdown()
    assert not (root / "d").exists()
    assert (trash / "files" / "d" / "f.txt").read_text() == "f"


async def test_concurrent_deletes_to_trash(root: Path, trash: Path) -> None:
    """Sixteen deletes at once into a trash that does not exist yet, eight of them of files with
    the same name: send2trash alone races on creating the trash folders and on picking names
    ("File exists"); every delete must succeed and every file must be in the trash."""
    for i in range(8):
        (root / f"d{i}").mkdir()
        (root / f"d{i}" / "same.txt").write_text(str(i))
        (root / f"f{i}.txt").write_text(str(i))
    manager = FileContentsManager(root, executor=ThreadPoolExecutor(8))
    try:
        targets = [f"d{i}/same.txt" for i in range(8)] + [f"f{i}.txt" for i in range(8)]
        await asyncio.gather(*(manager.delete(path) for path in targets))
    finally:
        await manager.shutdown()
    trashed = sorted(p.read_text() for p in (trash / "files").iterdir())
    assert trashed == sorted([str(i) for i in range(8)] * 2)
    assert not any((root / f"d{i}" / "same.txt").exists() for i in range(8))


# -- copy, names -----------------------------------------------------------------------------------


async def test_copy(cm: FileContentsManager, root: Path) -> None:
    (root / "a.sh").write_text("echo")
    os.chmod(root / "a.sh", 0o750)
    (root / "sub").mkdir()
    model = await cm.copy("a.sh", "sub/b.sh")
    assert model["path"] == "sub/b.sh" and model["size"] == 4
    assert (root / "sub" / "b.sh").read_text() == "echo"
    assert stat.S_IMODE((root / "sub" / "b.sh").stat().st_mode) == 0o750
    assert temps(root) == []


async def test_copy_errors(cm: FileContentsManager, root: Path) -> None:
    """Bad inputs: an existing target (409), a directory source (400), a missing source or
    target parent (404), hidden source or target (400 "hidden")."""
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("b")
    (root / "d").mkdir()
    (root / ".h").write_text("h")
    with pytest.raises(Conflict):
        await cm.copy("a.txt", "b.txt")
    with pytest.raises(BadRequest):
        await cm.copy("d", "d2")
    with pytest.raises(NotFound):
        await cm.copy("missing.txt", "c.txt")
    with pytest.raises(NotFound):
        await cm.copy("a.txt", "missing/c.txt")
    for source, target in [(".h", "h.txt"), ("a.txt", ".a.txt")]:
        with pytest.raises(BadRequest) as info:
            await cm.copy(source, target)
        assert info.value.reason == "hidden"
    assert (root / "b.txt").read_text() == "b"


async def test_untitled_names(cm: FileContentsManager, root: Path) -> None:
    assert (await cm.new_untitled("", "notebook"))["path"] == "Untitled.ipynb"
    assert (await cm.new_untitled("", ext=".ipynb"))["path"] == "Untitled1.ipynb"
    assert (await cm.new_untitled("", "file", ".txt"))["path"] == "untitled.txt"
    assert (await cm.new_untitled("", "directory"))["path"] == "Untitled Folder"
    model = await cm.new_untitled("", "directory")
    assert model["path"] == "Untitled Folder 1" and model["type"] == "directory"
    assert json.loads((root / "Untitled.ipynb").read_text())["nbformat"] == 4
    with pytest.raises(NotFound):
        await cm.new_untitled("missing", "file")


async def test_names_include_hidden(cm: FileContentsManager, root: Path) -> None:
    (root / ".h").write_text("")
    (root / "x.pyc").write_text("")
    assert await cm.names("") == {".h", "x.pyc"}


# -- checkpoints -----------------------------------------------------------------------------------


async def test_checkpoints_create_list_restore_delete(cm: FileContentsManager, root: Path) -> None:
    """Bad inputs: an unknown checkpoint id and a deleted checkpoint (404 "no such checkpoint")."""
    (root / "a.txt").write_text("v1")
    assert await cm.list_checkpoints("a.txt") == []
    created = await cm.create_checkpoint("a.txt")
    assert created["id"] == "checkpoint" and created["last_modified"].endswith("Z")
    assert await cm.list_checkpoints("a.txt") == [created]
    await cm.save("a.txt", text("v2"))
    await cm.restore_checkpoint("a.txt", "checkpoint")
    assert (root / "a.txt").read_text() == "v1"
    for call in (cm.restore_checkpoint("a.txt", "nope"), cm.delete_checkpoint("a.txt", "nope")):
        with pytest.raises(NotFound) as info:
            await call
        assert info.value.reason == "no such checkpoint"
    await cm.delete_checkpoint("a.txt", "checkpoint")
    assert await cm.list_checkpoints("a.txt") == []
    with pytest.raises(NotFound):
        await cm.restore_checkpoint("a.txt", "checkpoint")
    assert temps(root) == []


async def test_checkpoint_layout_and_mtime(cm: FileContentsManager, root: Path) -> None:
    """jupyter_server's names (os.path.splitext) and shutil.copy2's modification time."""
    (root / "a.tar.gz").write_bytes(b"z")
    os.utime(root / "a.tar.gz", (1_000_000_000, 1_000_000_000))
    model = await cm.create_checkpoint("a.tar.gz")
    checkpoint = root / ".ipynb_checkpoints" / "a.tar-checkpoint.gz"
    assert checkpoint.read_bytes() == b"z"
    assert checkpoint.stat().st_mtime == 1_000_000_000
    assert model["last_modified"] == models.timestamp(1_000_000_000)
    (root / "Makefile").write_text("all:")
    await cm.create_checkpoint("Makefile")
    assert (root / ".ipynb_checkpoints" / "Makefile-checkpoint").exists()


# -- download --------------------------------------------------------------------------------------


async def test_download(cm: FileContentsManager, root: Path) -> None:
    data = os.urandom(2 * DOWNLOAD_BLOCK + 10)
    (root / "big.bin").write_bytes(data)
    download = await cm.download("big.bin")
    assert (download.name, download.size) == ("big.bin", len(data))
    assert download.last_modified == (root / "big.bin").stat().st_mtime
    blocks = [block async for block in download.chunks]
    assert [len(b) for b in blocks] == [DOWNLOAD_BLOCK, DOWNLOAD_BLOCK, 10]
    assert b"".join(blocks) == data


async def test_download_closes_early(cm: FileContentsManager, root: Path) -> None:
    (root / "a.txt").write_text("a")
    download = await cm.download("a.txt")
    await download.chunks.aclose()  # type: ignore[attr-defined]
    assert [block async for block in download.chunks] == []
    (root / "sub").mkdir()
    with pytest.raises(NotFound):
        await cm.download("sub")


def test_a_commit_that_must_not_replace_refuses_an_existing_target(tmp_path: Path) -> None:
    target = tmp_path / "taken.txt"
    target.write_text("first")
    temp = fileio.new_temp(str(tmp_path))
    Path(temp).write_text("second")
    with pytest.raises(FileExistsError):
        fileio.commit(temp, str(target), None, replace=False)
    assert target.read_text() == "first" and not os.path.exists(temp)
    temp = fileio.new_temp(str(tmp_path))
    Path(temp).write_text("new")
    fileio.commit(temp, str(tmp_path / "free.txt"), None, replace=False)
    assert (tmp_path / "free.txt").read_text() == "new" and not os.path.exists(temp)
