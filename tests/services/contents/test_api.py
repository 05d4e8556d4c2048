"""``/api/contents``, its checkpoints and ``/api/notebooks`` over real HTTP.

Every test runs twice: against the default file manager and against
:class:`~tests.services.contents.memory.InMemoryContentsManager`, passed as
``make_server(contents=...)``. The same results from both prove that the handlers hold no
filesystem code. Tests marked ``manager_kind=["filesystem"]`` check what only a filesystem has
(symlinks, file modes). Every response is validated against api.yaml by the conftest client.

Bad inputs tried: query ``content``/``type``/``format``/``hash`` values outside their choices,
a type mismatch, unknown query parameters (tolerated); bodies that are invalid JSON, JSON that
is not an object, models without ``type`` or ``content``, an unknown type, bad base64, text
with a lone surrogate, a notebook that is not an object, ``copy_from`` on PUT, non-string
``copy_from``/``type``/``ext``/``path``; chunks out of order (1, 3) and a last chunk without a
first; paths with ``..`` (plain and percent-encoded), absolute, drive-letter, backslash and NUL
paths; hidden paths; a rename onto an existing file and of a missing one; deleting the root
and a non-empty directory; POST to a file and to a missing directory; unknown checkpoint ids;
an oversized body; symlinks out of the root (filesystem).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Client, Response
from tests.services.contents.conftest import Start, seed

NOTEBOOK: dict[str, Any] = {
    "cells": [{"cell_type": "markdown", "id": "c1", "metadata": {}, "source": "# Hi"}],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def url(path: str) -> str:
    return "api/contents/" + quote(path)


async def put(client: Client, path: str, model: Any, **kw: Any) -> Response:
    return await client.request("PUT", url(path), json=model, **kw)


async def put_text(client: Client, path: str, text: str = "hello") -> Response:
    return await put(client, path, {"type": "file", "format": "text", "content": text})


async def get(client: Client, path: str, **params: str) -> Response:
    return await client.get(url(path), params=params)


async def read(client: Client, path: str) -> Any:
    r = await get(client, path)
    assert r.status == 200, r.body
    return r.json["content"]


def assert_error(r: Response, status: int, reason: str | None = None) -> None:
    assert r.status == status, (r.status, r.body)
    if reason is not None:
        assert r.json["reason"] == reason, r.json


# -- reading -------------------------------------------------------------------------------------


async def test_root_listing(api: Client) -> None:
    r = await api.get("api/contents")
    assert r.status == 200
    assert r.json["type"] == "directory" and r.json["path"] == "" and r.json["content"] == []
    await put_text(api, "a.txt")
    seed(api, "sub", None)
    r = await api.get("api/contents")
    children = {c["name"]: c for c in r.json["content"]}
    assert set(children) == {"a.txt", "sub"}
    assert children["sub"]["type"] == "directory" and children["sub"]["content"] is None
    assert children["a.txt"]["content"] is None and children["a.txt"]["size"] == 5


async def test_text_file_round_trip(api: Client) -> None:
    r = await put_text(api, "é.txt", "héllo\n")
    assert r.status == 201
    model = (await get(api, "é.txt")).json
    assert model["content"] == "héllo\n" and model["format"] == "text"
    assert model["type"] == "file" and model["mimetype"] == "text/plain"
    assert model["size"] == len("héllo\n".encode()) and model["hash"] is None


async def test_binary_file_and_formats(api: Client) -> None:
    """Not UTF-8: base64 by default; ``format=text`` is 400 "bad format"."""
    data = bytes(range(256))
    r = await put(
        api, "b.bin", {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()}
    )
    assert r.status == 201
    model = (await get(api, "b.bin")).json
    assert model["format"] == "base64" and base64.b64decode(model["content"]) == data
    assert_error(await get(api, "b.bin", format="text"), 400, "bad format")
    await put_text(api, "t.txt", "abc")
    model = (await get(api, "t.txt", format="base64")).json
    assert model["format"] == "base64" and base64.b64decode(model["content"]) == b"abc"


async def test_content_0_and_hash_1(api: Client) -> None:
    await put_text(api, "a.txt", "abc")
    model = (await get(api, "a.txt", content="0")).json
    assert model["content"] is None and model["format"] is None
    model = (await get(api, "a.txt", hash="1")).json
    assert model["hash"] == hashlib.sha256(b"abc").hexdigest() and model["hash_algorithm"] == "sha256"
    model = (await api.get("api/contents", params={"hash": "1"})).json
    assert model["hash"] is None  # a directory has no hash (jupyter_server answers 500 here)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("content", "2"),
        ("content", "yes"),
        ("type", "bogus"),
        ("format", "json"),
        ("hash", "true"),
        ("hash", ""),
    ],
)
async def test_bad_query_values_are_400(api: Client, param: str, value: str) -> None:
    """content 0|1, type file|notebook|directory, format text|base64, hash 0|1."""
    await put_text(api, "a.txt")
    assert_error(await get(api, "a.txt", **{param: value}), 400, f"bad {param}")


async def test_type_mismatch_is_400(api: Client) -> None:
    await put_text(api, "a.txt")
    await put(api, "n.ipynb", {"type": "notebook", "content": NOTEBOOK})
    assert_error(await get(api, "a.txt", type="directory"), 400, "bad type")
    assert_error(await get(api, "a.txt", type="notebook"), 400, "bad type")
    assert_error(await api.get("api/contents", params={"type": "file"}), 400, "bad type")
    model = (await get(api, "n.ipynb", type="file")).json  # a notebook read as a plain file
    assert model["type"] == "file" and isinstance(model["content"], str)


async def test_unknown_query_parameters_are_ignored(api: Client) -> None:
    await put_text(api, "a.txt")
    r = await get(api, "a.txt", contentProviderId="rtc", _="1700000000000", type="file")
    assert r.status == 200 and r.json["content"] == "hello"


async def test_missing_is_404(api: Client) -> None:
    assert_error(await get(api, "nope.txt"), 404)
    assert_error(await get(api, "no/such/dir"), 404)


async def test_last_modified_header(api: Client) -> None:
    await put_text(api, "a.txt")
    r = await get(api, "a.txt")
    header = parsedate_to_datetime(r.headers["Last-Modified"])
    model_time = r.json["last_modified"].replace("Z", "+00:00")
    assert header == datetime.fromisoformat(model_time).replace(microsecond=0)
    assert "Location" not in r.headers  # GET sends no Location (as jupyter_server)


# -- notebooks -------------------------------------------------------------------------------------


async def test_notebook_save_and_read(api: Client) -> None:
    """A notebook's first save creates its checkpoint."""
    r = await put(api, "n.ipynb", {"type": "notebook", "format": "json", "content": NOTEBOOK})
    assert r.status == 201 and r.json["type"] == "notebook" and "message" not in r.json
    model = (await get(api, "n.ipynb")).json
    assert model["format"] == "json" and model["mimetype"] is None
    assert model["content"]["cells"][0]["source"] == "# Hi"
    checkpoints = (await api.get(url("n.ipynb") + "/checkpoints")).json
    assert [c["id"] for c in checkpoints] == ["checkpoint"]


async def test_invalid_notebook_is_saved_with_a_message(api: Client) -> None:
    cell = {**NOTEBOOK["cells"][0], "bogus": 1}
    r = await put(api, "n.ipynb", {"type": "notebook", "content": {**NOTEBOOK, "cells": [cell]}})
    assert r.status == 201
    assert "validation failed" in r.json["message"]
    assert "validation failed" in (await get(api, "n.ipynb")).json["message"]


@pytest.mark.parametrize("content", [[1, 2], "text", 3])
async def test_notebook_content_must_be_an_object(api: Client, content: Any) -> None:
    assert_error(await put(api, "n.ipynb", {"type": "notebook", "content": content}), 400, "bad notebook")


# -- saving -----------------------------------------------------------------------------------------


async def test_put_creates_201_then_replaces_200_with_location(api: Client) -> None:
    r = await put_text(api, "é.txt", "one")
    assert r.status == 201
    assert r.headers["Location"] == "/api/contents/%C3%A9.txt"
    seed(api, "a b", None)
    r = await put_text(api, "a b/c.txt", "one")
    assert r.status == 201 and r.headers["Location"] == "/api/contents/a%20b/c.txt"
    assert r.json["content"] is None and r.json["path"] == "a b/c.txt"
    r = await put_text(api, "a b/c.txt", "two")
    assert r.status == 200 and r.headers["Location"] == "/api/contents/a%20b/c.txt"
    assert await read(api, "a b/c.txt") == "two"


async def test_put_directory(api: Client) -> None:
    r = await put(api, "d", {"type": "directory"})
    assert r.status == 201 and r.json["type"] == "directory"
    assert (await put(api, "d", {"type": "directory"})).status == 201


async def test_put_into_a_missing_directory_is_404(api: Client) -> None:
    assert_error(await put_text(api, "no/such/a.txt"), 404)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[1, 2]", "bad model"),
        (b'"a string"', "bad model"),
        (b"42", "bad model"),
        (b"{not json", "bad json"),
        (b'{"format": "text", "content": "x"}', "bad model"),  # missing type
        (b'{"type": "file", "format": "text"}', "bad model"),  # missing content
        (b'{"type": "symlink", "format": "text", "content": "x"}', "bad model"),  # unknown type
        (b'{"type": "file", "format": "base64", "content": "not base64!"}', "bad format"),
        (b'{"type": "file", "format": "text", "content": "\\ud800"}', "bad format"),  # lone surrogate
        (b'{"type": "file", "format": "hex", "content": "00"}', "bad format"),
        (b'{"type": "file", "format": "text", "content": 12}', "bad format"),
        (b'{"type": "file", "format": "text", "content": "x", "copy_from": "b.txt"}', "bad model"),
        (b'{"type": "file", "format": "text", "content": "x", "chunk": 0}', "bad model"),
        (b'{"type": "notebook", "content": {}, "chunk": 1}', "bad model"),
    ],
)
async def test_bad_put_bodies_are_400_and_change_nothing(
    api: Client, body: bytes, reason: str | None
) -> None:
    await put_text(api, "a.txt", "original")
    r = await api.request("PUT", url("a.txt"), body=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400, reason)
    assert await read(api, "a.txt") == "original"


async def test_empty_put_creates_an_untitled_file_in_the_directory(api: Client) -> None:
    """jupyter_server's quirk: PUT with no body (or ``{}``) to a directory."""
    seed(api, "d", None)
    r = await api.request("PUT", url("d"))
    assert r.status == 201 and r.json["path"] == "d/untitled"
    r = await api.request("PUT", url("d"), json={})
    assert r.status == 201 and r.json["path"] == "d/untitled1"
    assert r.headers["Location"] == "/api/contents/d/untitled1"


# -- chunked uploads ------------------------------------------------------------------------------


def chunk(data: bytes, number: int) -> dict[str, Any]:
    return {"type": "file", "format": "base64", "content": base64.b64encode(data).decode(), "chunk": number}


async def test_chunks_1_2_last_make_the_exact_file(api: Client) -> None:
    parts = [os.urandom(1000), os.urandom(1001), os.urandom(7)]
    r = await put(api, "up.bin", chunk(parts[0], 1))
    assert r.status == 201 and r.json["size"] == 1000
    assert_error(await get(api, "up.bin"), 404)  # not visible before the last chunk
    r = await put(api, "up.bin", chunk(parts[1], 2))
    assert r.status == 200 and r.json["size"] == 2001
    r = await put(api, "up.bin", chunk(parts[2], -1))
    assert r.status == 200 and r.json["size"] == 2008
    assert base64.b64decode(await read(api, "up.bin")) == b"".join(parts)


async def test_chunk_out_of_order_is_400_and_leaves_the_target_untouched(api: Client) -> None:
    await put_text(api, "up.txt", "old content")
    assert (await put(api, "up.txt", chunk(b"new ", 1))).status == 200
    assert_error(await put(api, "up.txt", chunk(b"lost", 3)), 400, "bad chunk")
    model = (await get(api, "up.txt")).json
    assert model["content"] == "old content" and model["size"] == len("old content")
    # the upload was discarded: its end cannot complete a half file
    assert_error(await put(api, "up.txt", chunk(b"end", -1)), 400, "bad chunk")
    assert await read(api, "up.txt") == "old content"


async def test_last_chunk_without_a_first_is_400(api: Client) -> None:
    assert_error(await put(api, "x.bin", chunk(b"abc", -1)), 400, "bad chunk")
    assert_error(await get(api, "x.bin"), 404)


# -- POST: untitled files and copies ------------------------------------------------------------------


async def test_untitled_naming_sequence(api: Client) -> None:
    async def create(body: Any = None, directory: str = "") -> str:
        r = await api.post(url(directory) if directory else "api/contents", json=body)
        assert r.status == 201, r.body
        assert r.headers["Location"] == "/api/contents/" + quote(r.json["path"])
        return str(r.json["path"])

    assert await create() == "untitled"
    assert await create({}) == "untitled1"
    assert await create({"type": "notebook"}) == "Untitled.ipynb"
    assert await create({"type": "notebook"}) == "Untitled1.ipynb"
    assert await create({"ext": ".ipynb"}) == "Untitled2.ipynb"
    assert await create({"type": "file", "ext": ".py"}) == "untitled.py"
    assert await create({"ext": ".py"}) == "untitled1.py"
    assert await create({"type": "directory"}) == "Untitled Folder"
    assert await create({"type": "directory"}) == "Untitled Folder 1"
    assert await create({"type": "notebook"}, "Untitled Folder") == "Untitled Folder/Untitled.ipynb"
    model = (await get(api, "Untitled.ipynb")).json
    assert model["type"] == "notebook" and model["content"]["nbformat"] == 4


async def test_copy_naming(api: Client) -> None:
    await put(api, "nb.ipynb", {"type": "notebook", "content": NOTEBOOK})
    await put_text(api, "a.tar.gz", "x")
    seed(api, "sub", None)
    for expected in ("nb-Copy1.ipynb", "nb-Copy2.ipynb"):
        r = await api.post("api/contents", json={"copy_from": "nb.ipynb"})
        assert r.status == 201 and r.json["path"] == expected
        assert r.headers["Location"] == f"/api/contents/{expected}"
    r = await api.post("api/contents", json={"copy_from": "/a.tar.gz"})
    assert r.json["path"] == "a-Copy1.tar.gz"
    r = await api.post(url("sub"), json={"copy_from": "nb.ipynb"})  # a free name is kept
    assert r.status == 201 and r.json["path"] == "sub/nb.ipynb"
    assert (await read(api, "sub/nb.ipynb"))["cells"][0]["source"] == "# Hi"


async def test_bad_posts(api: Client) -> None:
    await put_text(api, "a.txt")
    seed(api, "d", None)
    r = await api.post(url("a.txt"))
    assert_error(r, 400)
    assert r.json["message"] == "Cannot POST to files, use PUT instead."
    assert_error(await api.post(url("missing")), 404)
    assert_error(await api.post(url("missing"), json={"copy_from": "a.txt"}), 404)
    assert_error(await api.post("api/contents", json={"copy_from": "nope.txt"}), 404)
    assert_error(await api.post("api/contents", json={"copy_from": "d"}), 400, "bad type")
    for body in ([1], "x", 3):
        assert_error(await api.post("api/contents", json=body), 400, "bad model")
    assert_error(await api.post("api/contents", body=b"{oops"), 400, "bad json")
    assert_error(await api.post("api/contents", json={"copy_from": 5}), 400, "bad model")
    assert_error(await api.post("api/contents", json={"type": 5}), 400, "bad model")
    assert_error(await api.post("api/contents", json={"ext": ["x"]}), 400, "bad model")
    assert_error(await api.post("api/contents", json={"type": "symlink"}), 400, "bad type")


# -- PATCH: rename ----------------------------------------------------------------------------------


async def test_rename(api: Client) -> None:
    await put_text(api, "a.txt", "A")
    seed(api, "d", None)
    r = await api.request("PATCH", url("a.txt"), json={"path": "d/b c.txt"})
    assert r.status == 200 and r.json["path"] == "d/b c.txt" and r.json["name"] == "b c.txt"
    assert r.headers["Location"] == "/api/contents/d/b%20c.txt"
    assert "Last-Modified" in r.headers
    assert_error(await get(api, "a.txt"), 404)
    assert await read(api, "d/b c.txt") == "A"
    r = await api.request("PATCH", url("d"), json={"path": "/e/"})  # directories move too
    assert r.status == 200 and r.json["path"] == "e"
    assert await read(api, "e/b c.txt") == "A"
    r = await api.request("PATCH", url("e"), json={"path": "e"})  # to itself: nothing changes
    assert r.status == 200 and r.json["path"] == "e"


async def test_rename_conflicts_and_errors(api: Client) -> None:
    await put_text(api, "a.txt", "A")
    await put_text(api, "b.txt", "B")
    assert_error(await api.request("PATCH", url("a.txt"), json={"path": "b.txt"}), 409)
    assert await read(api, "b.txt") == "B"
    assert_error(await api.request("PATCH", url("nope.txt"), json={"path": "c.txt"}), 404)
    assert_error(await api.request("PATCH", url("a.txt"), json={"path": "no/dir/c.txt"}), 404)
    for body in (None, {}, {"path": 3}, {"name": "c.txt"}, [1]):
        assert_error(await api.request("PATCH", url("a.txt"), json=body), 400, "bad model")
    assert_error(await api.request("PATCH", url("a.txt"), body=b"{"), 400, "bad json")
    assert_error(await api.request("PATCH", "api/contents", json={"path": "x"}), 400)
    assert_error(await api.request("PATCH", "api/contents", json={"path": ""}), 400)  # the root stays
    assert_error(await api.request("PATCH", url("a.txt"), json={"path": ""}), 400)
    assert await read(api, "a.txt") == "A"


# -- DELETE ------------------------------------------------------------------------------------------


async def test_delete(api: Client) -> None:
    await put_text(api, "a.txt")
    r = await api.request("DELETE", url("a.txt"))
    assert r.status == 204 and not r.body and "Location" not in r.headers
    assert_error(await get(api, "a.txt"), 404)
    assert_error(await api.request("DELETE", url("a.txt")), 404)
    assert_error(await api.request("DELETE", "api/contents"), 400)
    seed(api, "d/e.txt", b"x")
    assert_error(await api.request("DELETE", url("d")), 400, "directory not empty")
    assert await read(api, "d/e.txt") == "x"
    assert (await api.request("DELETE", url("d/e.txt"))).status == 204
    assert (await api.request("DELETE", url("d"))).status == 204


async def test_delete_non_empty_directory_with_always_delete_dir(start: Start) -> None:
    api = await start(always_delete_dir=True)
    seed(api, "d/e/f.txt", b"x")
    assert (await api.request("DELETE", url("d"))).status == 204
    assert_error(await get(api, "d"), 404)


async def test_delete_drops_checkpoints(api: Client) -> None:
    await put_text(api, "a.txt")
    assert (await api.post(url("a.txt") + "/checkpoints")).status == 201
    await api.request("DELETE", url("a.txt"))
    await put_text(api, "a.txt")
    assert (await api.get(url("a.txt") + "/checkpoints")).json == []


# -- paths and hidden files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["../outside.txt", "%2E%2E/outside.txt", "a/%2E%2E/%2E%2E/outside.txt", "C:/Windows", "a%5Cb", "a%00b"],
)
async def test_paths_outside_the_root_are_404_for_every_verb(api: Client, raw: str) -> None:
    """``..`` (plain and percent-encoded), drive letters, backslashes, NUL: 404 "outside root"."""
    await put_text(api, "a.txt")
    model = {"type": "file", "format": "text", "content": "x"}
    for method, kw in [
        ("GET", {}),
        ("PUT", {"json": model}),
        ("POST", {}),
        ("DELETE", {}),
        ("PATCH", {"json": {"path": "z.txt"}}),
    ]:
        assert_error(await api.request(method, "api/contents/" + raw, **kw), 404, "outside root")
    assert_error(await api.get("api/contents/" + raw + "/checkpoints"), 404, "outside root")
    assert_error(await api.request("PATCH", url("a.txt"), json={"path": "../z.txt"}), 404, "outside root")
    assert_error(await api.post("api/contents", json={"copy_from": "../a.txt"}), 404, "outside root")


async def test_absolute_paths_stay_inside_the_root(api: Client) -> None:
    assert_error(await api.get("api/contents//etc/passwd"), 404)
    await put_text(api, "x.txt", "inside")
    assert await read(api, "/x.txt") == "inside"


async def test_hidden_paths(api: Client) -> None:
    """Reads of hidden paths are 404, writes 400 "hidden"; listings skip them."""
    seed(api, ".secret", b"s")
    seed(api, ".dir/a.txt", b"a")
    await put_text(api, "a.txt")
    assert_error(await get(api, ".secret"), 404)
    assert_error(await get(api, ".dir/a.txt"), 404)
    assert [c["name"] for c in (await api.get("api/contents")).json["content"]] == ["a.txt"]
    assert_error(await put_text(api, ".new"), 400, "hidden")
    assert_error(await put_text(api, ".dir/b.txt"), 400, "hidden")
    assert_error(await api.request("PATCH", url("a.txt"), json={"path": ".a.txt"}), 400, "hidden")
    assert_error(await api.request("PATCH", url(".secret"), json={"path": "s.txt"}), 400, "hidden")
    assert_error(await api.request("DELETE", url(".secret")), 400, "hidden")
    assert_error(await api.post("api/contents", json={"copy_from": ".secret"}), 400, "hidden")
    assert_error(await api.post(url(".dir")), 400, "hidden")
    assert_error(await api.get(url(".secret") + "/checkpoints"), 404)


async def test_hidden_paths_when_allowed(start: Start) -> None:
    api = await start(allow_hidden=True)
    assert (await put_text(api, ".env", "A=1")).status == 201
    assert await read(api, ".env") == "A=1"
    assert [c["name"] for c in (await api.get("api/contents")).json["content"]] == [".env"]


# -- checkpoints --------------------------------------------------------------------------------------


async def test_checkpoint_lifecycle(api: Client) -> None:
    await put_text(api, "a b.txt", "v1")
    cp_url = url("a b.txt") + "/checkpoints"
    assert (await api.get(cp_url)).json == []
    r = await api.post(cp_url)
    assert r.status == 201 and r.json["id"] == "checkpoint"
    assert r.headers["Location"] == "/api/contents/a%20b.txt/checkpoints/checkpoint"
    assert [c["id"] for c in (await api.get(cp_url)).json] == ["checkpoint"]
    await put_text(api, "a b.txt", "v2")
    r = await api.post(cp_url + "/checkpoint")
    assert r.status == 204 and not r.body
    assert await read(api, "a b.txt") == "v1"
    assert (await api.request("DELETE", cp_url + "/checkpoint")).status == 204
    assert (await api.get(cp_url)).json == []
    assert_error(await api.post(cp_url + "/checkpoint"), 404, "no such checkpoint")


async def test_checkpoint_errors(api: Client) -> None:
    await put_text(api, "a.txt")
    await api.post(url("a.txt") + "/checkpoints")
    assert_error(await api.post(url("a.txt") + "/checkpoints/other-id"), 404, "no such checkpoint")
    assert_error(
        await api.request("DELETE", url("a.txt") + "/checkpoints/other_id"), 404, "no such checkpoint"
    )
    assert_error(await api.get(url("nope.txt") + "/checkpoints"), 404)
    assert_error(await api.post(url("nope.txt") + "/checkpoints"), 404)
    seed(api, "d", None)
    assert_error(await api.post(url("d") + "/checkpoints"), 404)
    assert await read(api, "a.txt") == "hello"


async def test_checkpoints_follow_a_rename(api: Client) -> None:
    await put_text(api, "a.txt", "v1")
    await api.post(url("a.txt") + "/checkpoints")
    await put_text(api, "a.txt", "v2")
    assert (await api.request("PATCH", url("a.txt"), json={"path": "b.txt"})).status == 200
    assert_error(await api.get(url("a.txt") + "/checkpoints"), 404)
    assert [c["id"] for c in (await api.get(url("b.txt") + "/checkpoints")).json] == ["checkpoint"]
    assert (await api.post(url("b.txt") + "/checkpoints/checkpoint")).status == 204
    assert await read(api, "b.txt") == "v1"


async def test_a_file_named_checkpoints_is_reached_through_its_directory(api: Client) -> None:
    """``{path}/checkpoints`` is the checkpoints route, as in jupyter_server."""
    seed(api, "d/checkpoints", b"x")
    r = await api.get(url("d") + "/checkpoints")
    assert_error(r, 404)  # "d" is a directory: it has no checkpoints
    names = [c["name"] for c in (await get(api, "d")).json["content"]]
    assert names == ["checkpoints"]


# -- redirects, auth, limits -------------------------------------------------------------------------


async def test_notebooks_redirect(api: Client) -> None:
    r = await api.get("api/notebooks/a%20b/n.ipynb", auth=None, params={"content": "0"})
    assert r.status == 301
    assert r.headers["Location"] == "/api/contents/a%20b/n.ipynb?content=0"
    r = await api.request("HEAD", "api/notebooks", auth=None)
    assert r.status == 301 and r.headers["Location"] == "/api/contents"
    for method in ("PUT", "POST", "PATCH", "DELETE"):
        r = await api.request(method, "api/notebooks/x.ipynb", auth=None)
        assert r.status == 308 and r.headers["Location"] == "/api/contents/x.ipynb", method


async def test_redirect_and_locations_under_a_base_url(start: Start) -> None:
    api = await start(base_url="/jp/")
    r = await api.get("api/notebooks/x.txt", auth=None)
    assert r.headers["Location"] == "/jp/api/contents/x.txt"
    r = await put_text(api, "x.txt")
    assert r.status == 201 and r.headers["Location"] == "/jp/api/contents/x.txt"
    r = await api.post(url("x.txt") + "/checkpoints")
    assert r.headers["Location"] == "/jp/api/contents/x.txt/checkpoints/checkpoint"


async def test_anonymous_requests_are_403(api: Client) -> None:
    await put_text(api, "a.txt")
    for method, path in [
        ("GET", "api/contents"),
        ("GET", url("a.txt")),
        ("DELETE", url("a.txt")),
        ("POST", url("a.txt") + "/checkpoints"),
    ]:
        assert_error(await api.request(method, path, auth=None), 403, "auth")
    assert await read(api, "a.txt") == "hello"


async def test_oversized_body_is_413(start: Start) -> None:
    api = await start(max_body_size=1000)
    assert_error(await put_text(api, "a.txt", "x" * 2000), 413, "too large")
    assert_error(await get(api, "a.txt"), 404)
    assert (await put_text(api, "a.txt", "x" * 100)).status == 201


async def test_simultaneous_creations_never_share_a_name(api: Client) -> None:
    """A double click on "New notebook", or two copies of same-named files into one folder:
    each gets its own name and file (they used to answer 201 for one path, one file lost)."""
    seed(api, "dst", None)
    made = await asyncio.gather(*(api.post(url("dst"), json={"type": "notebook"}) for _ in range(4)))
    assert [r.status for r in made] == [201] * 4
    assert len({r.json["path"] for r in made}) == 4
    seed(api, "x/data.bin", b"x" * 3_000_000)
    seed(api, "y/data.bin", b"y")
    copies = await asyncio.gather(
        api.post(url("dst"), json={"copy_from": "x/data.bin"}),
        api.post(url("dst"), json={"copy_from": "y/data.bin"}),
    )
    assert [r.status for r in copies] == [201, 201]
    paths = {r.json["path"] for r in copies}
    assert len(paths) == 2
    sizes = sorted([(await get(api, path)).json["size"] for path in paths])
    assert sizes == [1, 3_000_000]


# -- filesystem only -----------------------------------------------------------------------------------


@pytest.mark.parametrize("manager_kind", ["filesystem"])
async def test_symlinks_out_of_the_root_are_refused_everywhere(api: Client, tmp_path: Path) -> None:
    """Contents, checkpoints and /files agree: a symlink leading out of the root is not there."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root = Path(api.server.config.root_dir)
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "evil.txt").symlink_to(outside / "secret.txt")
    (root / "inner").mkdir()
    (root / "inner" / "ok.txt").write_text("ok")
    (root / "good.txt").symlink_to(root / "inner" / "ok.txt")  # a symlink inside the root is fine
    for path in ("link", "link/secret.txt", "evil.txt"):
        assert_error(await get(api, path), 404)
        assert_error(await api.get(url(path) + "/checkpoints"), 404)
        assert_error(await api.post(url(path) + "/checkpoints"), 404)
        assert_error(await api.get("files/" + quote(path)), 404)
    assert_error(await put_text(api, "evil.txt", "overwritten"), 404, "outside root")
    assert_error(await put_text(api, "link/new.txt"), 404, "outside root")
    assert_error(await api.post("api/contents", json={"copy_from": "evil.txt"}), 404, "outside root")
    assert (outside / "secret.txt").read_text() == "secret"
    assert not (outside / "new.txt").exists()
    listing = {c["name"] for c in (await api.get("api/contents")).json["content"]}
    assert listing == {"inner", "good.txt"}
    assert await read(api, "good.txt") == "ok"
    assert (await api.get("files/good.txt")).body == b"ok"


@pytest.mark.parametrize("manager_kind", ["filesystem"])
async def test_symlinks_into_hidden_folders_take_no_writes(api: Client) -> None:
    """A save or rename through ``pub -> .secret`` (or to the checkpoint folder) is 400 hidden: it
    would land in a hidden folder, where the API could then neither read nor delete it. Copying
    into such a folder is 404, as the folder is not there for reads."""
    root = Path(api.server.config.root_dir)
    (root / ".secret").mkdir()
    (root / "pub").symlink_to(".secret", target_is_directory=True)
    (root / "ck").symlink_to(".ipynb_checkpoints", target_is_directory=True)
    (root / ".ipynb_checkpoints").mkdir()
    seed(api, "a.txt", b"A")
    assert_error(await put_text(api, "pub/new.txt"), 400, "hidden")
    for target in ("pub/a.txt", "ck/a-checkpoint.txt"):
        assert_error(await api.request("PATCH", url("a.txt"), json={"path": target}), 400, "hidden")
    for folder in ("pub", "ck"):
        assert_error(await api.post(url(folder), json={"copy_from": "a.txt"}), 404)
    assert os.listdir(root / ".secret") == [] and os.listdir(root / ".ipynb_checkpoints") == []
    assert await read(api, "a.txt") == "A"


@pytest.mark.parametrize("manager_kind", ["filesystem"])
async def test_a_rename_whose_checkpoint_cannot_follow_still_succeeds(
    api: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """The file has moved, so the answer is its new model (it was a 500, and a retry then 404)."""
    root = Path(api.server.config.root_dir)
    (root / "dst").mkdir()
    (root / "dst" / ".ipynb_checkpoints").write_text("a file where the checkpoint folder would go")
    nb = {"type": "notebook", "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}
    assert (await api.request("PUT", url("n.ipynb"), json=nb)).status == 201
    r = await api.request("PATCH", url("n.ipynb"), json={"path": "dst/n.ipynb"})
    assert r.status == 200 and r.json["path"] == "dst/n.ipynb"
    assert (root / "dst" / "n.ipynb").exists() and not (root / "n.ipynb").exists()
    assert "but its checkpoint could not follow" in caplog.text


@pytest.mark.parametrize("manager_kind", ["filesystem"])
async def test_saving_keeps_the_file_mode(api: Client) -> None:
    seed(api, "script.sh", b"#!/bin/sh\n")
    target = Path(api.server.config.root_dir, "script.sh")
    target.chmod(0o750)
    assert (await put_text(api, "script.sh", "#!/bin/sh\necho hi\n")).status == 200
    assert target.stat().st_mode & 0o777 == 0o750
    assert target.read_text() == "#!/bin/sh\necho hi\n"


@pytest.mark.parametrize("manager_kind", ["filesystem"])
async def test_default_manager_is_the_file_manager_on_root_dir(api: Client, root_dir: Path) -> None:
    await put_text(api, "on-disk.txt", "disk")
    assert (root_dir / "on-disk.txt").read_text() == "disk"


# -- big notebooks stay off the event loop ---------------------------------------------------------


@pytest.mark.parametrize("manager_kind", ["filesystem"])
async def test_big_notebooks_are_parsed_and_encoded_off_the_event_loop(
    api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A multi-megabyte notebook is parsed, validated and serialized (PUT) and encoded (GET) in a
    worker thread, so other requests are not stalled; a small body is handled inline."""
    import threading

    from nbserver.services.contents import jsontext, models

    threads: list[str] = []
    parse, encode = models.parse_save_model, jsontext.compact_bytes

    def recording_parse(body: Any, *args: Any) -> Any:
        threads.append("parse:" + threading.current_thread().name)
        return parse(body, *args)

    def recording_encode(model: Any, *args: Any) -> bytes:
        threads.append("encode:" + threading.current_thread().name)
        return encode(model, *args)

    monkeypatch.setattr(models, "parse_save_model", recording_parse)
    monkeypatch.setattr(jsontext, "compact_bytes", recording_encode)
    big = {
        **NOTEBOOK,
        "cells": [{**NOTEBOOK["cells"][0], "id": f"c{i}", "source": "x" * 1000} for i in range(1000)],
    }
    assert (await put(api, "big.ipynb", {"type": "notebook", "content": big})).status == 201
    assert len(await read(api, "big.ipynb")) > 0
    assert (await put(api, "small.ipynb", {"type": "notebook", "content": NOTEBOOK})).status == 201
    main = threading.main_thread().name
    assert threads[0].startswith("parse:") and threads[0] != "parse:" + main
    assert threads[1].startswith("encode:") and threads[1] != "encode:" + main
    assert threads[-1] == "parse:" + main  # the small one: no thread hop


async def test_big_listings_are_encoded_off_the_event_loop_and_exactly(
    api: Client, manager_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing of 1,000+ entries is encoded in a worker thread (with orjson): the body parses to
    exactly the manager's model, names with quotes, backslashes and non-ASCII included; a small
    listing is encoded inline."""
    import json
    import threading

    from nbserver.services.contents import handlers

    threads: list[str] = []
    encode = handlers._encode

    def recording_encode(model: Any, *args: Any) -> bytes:
        threads.append(threading.current_thread().name)
        return encode(model, *args)

    monkeypatch.setattr(handlers, "_encode", recording_encode)
    odd = [
        'quo"te.txt',
        "back\\slash.txt",
        "ünï cødé.txt",
        "emoji-🎉.ipynb",
        "中文 目录",
        "<script>&amp;.html",
    ]
    if manager_kind == "memory":  # API paths cannot hold a backslash; only a disk can
        odd.remove("back\\slash.txt")
    for i in range(1000):
        seed(api, f"big/file-{i:04d}.txt", b"%d" % i)
    for name in odd:
        seed(api, f"big/{name}", None if name == "中文 目录" else b"{}")
    seed(api, "small/a.txt", b"a")
    manager = api.server.ctx.services["contents"]  # type: ignore[union-attr]

    r = await get(api, "big", content="1")
    assert r.status == 200
    assert json.loads(r.body) == await manager.get("big", content=True)
    names = {entry["name"] for entry in r.json["content"]}
    assert len(names) == 1000 + len(odd) and set(odd) <= names
    by_name = {entry["name"]: entry for entry in r.json["content"]}
    assert by_name["中文 目录"]["type"] == "directory" and by_name["emoji-🎉.ipynb"]["type"] == "notebook"
    assert len(threads) == 1 and threads[0] != threading.main_thread().name

    assert (await get(api, "small", content="1")).status == 200
    assert len(threads) == 1  # inline: no thread hop for a small listing
