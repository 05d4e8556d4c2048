"""Which upload a chunk belongs to (:mod:`nbserver.services.contents.uploads`): the pure table,
then real interleaved chunked uploads over HTTP against both contents managers.

Bad inputs tried: the next chunk of a superseded upload (409 "superseded"); a chunk number both
the current and a superseded upload may send next, and the superseded upload's last chunk (-1)
(409 "upload conflict", both given up, file unchanged); chunks out of order (400 "bad chunk");
uploads idle past the limit; simulated clients interleaved at random, some of them dying
mid-upload, some of them sending their chunk 1 again.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbserver.errors import BadRequest, Conflict
from nbserver.services.contents.uploads import RIVAL_SILENCE, UPLOAD_IDLE_LIMIT, Upload, Uploads, Verdict
from tests.conftest import Client, Response
from tests.services.contents.conftest import seed

# -- the table, driven by a fake client -------------------------------------------------------


class Table:
    """An :class:`Uploads` whose stores are bytearrays, with the manager's steps around it."""

    def __init__(self) -> None:
        self.uploads: Uploads[bytearray] = Uploads()
        self.files: dict[str, bytes] = {}
        self.discarded: list[bytearray] = []

    def send(self, path: str, chunk: int, data: bytes, now: float = 0.0) -> Verdict[bytearray]:
        """One chunk, as a manager applies it; raises the verdict's error."""
        verdict = self.uploads.judge(path, chunk, now)
        self.discarded += verdict.discard
        if verdict.error is not None:
            raise verdict.error
        if verdict.upload is None:
            self.uploads.begin(path, Upload(bytearray(data), False, 0.0, now, len(data)))
        elif chunk == -1:
            self.files[path] = bytes(verdict.upload.store + data)
            self.uploads.end(path)
        else:
            verdict.upload.store += data
            verdict.upload.stored(len(data), now)
        return verdict


def refused(table: Table, chunk: int, data: bytes = b"x", now: float = 0.0, path: str = "f") -> Any:
    with pytest.raises((Conflict, BadRequest)) as info:
        table.send(path, chunk, data, now)
    return info.value


def test_one_upload_in_order() -> None:
    t = Table()
    for number, data in [(1, b"a"), (2, b"b"), (3, b"c"), (-1, b"d")]:
        t.send("f", number, data)
    assert t.files == {"f": b"abcd"}


def test_the_superseded_uploads_next_chunk_is_409_superseded() -> None:
    """A sends 1, 2, 3; B's chunk 1 supersedes it (A's bytes are dropped at once); A's chunk 4
    cannot be B's (B expects 2): 409 "superseded", and B finishes with exactly its bytes."""
    t = Table()
    for number in (1, 2, 3):
        t.send("f", number, b"A")
    t.send("f", 1, b"B1")
    assert t.discarded == [bytearray(b"AAA")]
    error = refused(t, 4, b"A4")
    assert isinstance(error, Conflict) and error.reason == "superseded" and "superseded" in error.message
    t.send("f", 2, b"B2")
    t.send("f", -1, b"B3")
    assert t.files == {"f": b"B1B2B3"}


def test_a_number_both_may_send_next_gives_both_up() -> None:
    """A sent chunk 1 only, then B's chunk 1: a chunk 2 fits both. Taking it could mix them, so
    it is refused, B is given up too, and so is the other client's chunk 2 (a rival's)."""
    t = Table()
    t.send("f", 1, b"A1")
    t.send("f", 1, b"B1")
    error = refused(t, 2)
    assert isinstance(error, Conflict) and error.reason == "upload conflict"
    assert "neither is kept" in error.message and "in 30 s" in error.message
    assert t.discarded[-1] == bytearray(b"B1")
    assert refused(t, 2).reason == "superseded"
    assert refused(t, -1).reason == "superseded"  # the last one counting is gone
    assert refused(t, 2).reason == "bad chunk"
    assert t.files == {}


def test_the_superseded_uploads_last_chunk_is_a_conflict() -> None:
    """-1 fits every upload: while A may still be running, B cannot finish (it could be A's)."""
    t = Table()
    t.send("f", 1, b"A")
    t.send("f", 2, b"A")
    t.send("f", 1, b"B")
    t.send("f", 2, b"B")  # A expects 3: this one is B's
    assert refused(t, -1).reason == "upload conflict"
    assert t.files == {}


def test_a_silent_rival_stops_counting() -> None:
    """A rival silent for RIVAL_SILENCE (or 4 times its longest gap between chunks, if longer)
    has given up: the retry finishes."""
    t = Table()
    t.send("f", 1, b"A", now=0.0)
    t.send("f", 2, b"A", now=20.0)  # a slow client: 20 s between chunks
    t.send("f", 1, b"B", now=25.0)
    assert refused(t, -1, now=25.0 + RIVAL_SILENCE).reason == "upload conflict"  # 4 x 20 s > 30 s
    t.send("f", 1, b"C", now=100.0)
    t.send("f", -1, b"!", now=100.1)
    assert t.files == {"f": b"C!"}


def test_out_of_order_and_idle_uploads() -> None:
    t = Table()
    assert refused(t, 2).reason == "bad chunk"
    assert refused(t, -1).reason == "bad chunk"
    t.send("f", 1, b"a")
    assert refused(t, 3).reason == "bad chunk"
    assert t.discarded == [bytearray(b"a")] and refused(t, 2).reason == "bad chunk"
    t.send("f", 1, b"a", now=0.0)
    t.send("g", 1, b"b", now=UPLOAD_IDLE_LIMIT + 1)  # any call expires what idled too long
    assert t.discarded[-1] == bytearray(b"a")
    assert refused(t, 2, now=UPLOAD_IDLE_LIMIT + 1).reason == "bad chunk"
    assert t.uploads.clear() == [bytearray(b"b")]


@st.composite
def schedules(draw: st.DrawFn) -> tuple[list[list[bytes]], list[int]]:
    """2 or 3 clients, each uploading 2 to 4 chunks (1, ..., -1); the order they send in (a client
    missing from the tail of the order died mid-upload)."""
    clients = [
        [bytes([65 + c]) * (i + 1) for i in range(draw(st.integers(2, 4)))]
        for c in range(draw(st.integers(2, 3)))
    ]
    turns = draw(st.lists(st.integers(0, len(clients) - 1), max_size=20))
    return clients, turns


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(), st.booleans())
def test_interleaved_clients_never_mix(schedule: tuple[list[list[bytes]], list[int]], retry: bool) -> None:
    """Whatever the interleaving (all within RIVAL_SILENCE), the file is only ever exactly one
    client's bytes; a client that is refused stops (or, with ``retry``, starts over with chunk
    1). A client alone at a path always finishes."""
    clients, turns = schedule
    t = Table()
    position = [0] * len(clients)  # next chunk index; -1: stopped
    finished: list[int] = []
    refusals = 0
    for turn in turns:
        i = position[turn]
        if i < 0:
            continue
        chunks = clients[turn]
        number = -1 if i == len(chunks) - 1 else i + 1
        try:
            t.send("f", number, chunks[i])
        except (Conflict, BadRequest):
            position[turn] = 0 if retry else -1
            refusals += 1
            continue
        if number == -1:
            finished.append(turn)
            position[turn] = -1
        else:
            position[turn] += 1
        if number == -1:
            assert t.files["f"] == b"".join(chunks)
    assert t.files.get("f") in {None, *(b"".join(c) for c in clients)}
    if finished:
        assert t.files["f"] == b"".join(clients[finished[-1]])
    if len(set(turns)) <= 1:  # a client alone is never refused
        assert refusals == 0


# -- over HTTP, both managers -----------------------------------------------------------------------


def chunk(data: bytes, number: int) -> dict[str, Any]:
    return {"type": "file", "format": "base64", "content": base64.b64encode(data).decode(), "chunk": number}


async def put_chunk(client: Client, path: str, data: bytes, number: int) -> Response:
    return await client.request("PUT", f"api/contents/{path}", json=chunk(data, number))


async def content(client: Client, path: str) -> bytes | None:
    r = await client.get(f"api/contents/{path}", params={"format": "base64"})
    return None if r.status == 404 else base64.b64decode(r.json["content"])


async def test_http_superseded_upload_gets_409_and_the_file_is_the_newer_one(api: Client) -> None:
    seed(api, "up.bin", b"old")
    for number in (1, 2, 3):
        assert (await put_chunk(api, "up.bin", b"A", number)).status == 200
    assert (await put_chunk(api, "up.bin", b"B1", 1)).status == 200
    r = await put_chunk(api, "up.bin", b"A4", 4)
    assert r.status == 409 and r.json["reason"] == "superseded" and "superseded" in r.json["message"]
    assert await content(api, "up.bin") == b"old"
    assert (await put_chunk(api, "up.bin", b"B2", 2)).status == 200
    assert (await put_chunk(api, "up.bin", b"B3", -1)).status == 200
    assert await content(api, "up.bin") == b"B1B2B3"


async def test_http_lock_step_uploads_keep_the_old_file(api: Client) -> None:
    """A1 B1 A2 B2 ...: no chunk after B1 can be attributed, so both are refused (409) and the
    file keeps its old bytes; the next upload alone works once the two are over."""
    seed(api, "up.bin", b"old")
    assert (await put_chunk(api, "up.bin", b"A1", 1)).status == 200
    assert (await put_chunk(api, "up.bin", b"B1", 1)).status == 200
    r = await put_chunk(api, "up.bin", b"A2", 2)
    assert r.status == 409 and r.json["reason"] == "upload conflict", r.json
    r = await put_chunk(api, "up.bin", b"B2", 2)
    assert r.status == 409 and r.json["reason"] == "superseded"
    r = await put_chunk(api, "up.bin", b"B3", -1)
    assert r.status == 409 and r.json["reason"] == "superseded"
    assert await content(api, "up.bin") == b"old"
    assert (await put_chunk(api, "up.bin", b"C1", 1)).status == 200
    assert (await put_chunk(api, "up.bin", b"C2", -1)).status == 200
    assert await content(api, "up.bin") == b"C1C2"


@pytest.mark.parametrize("manager_kind", ["filesystem"])
async def test_http_concurrent_uploads_are_one_or_the_other(api: Client) -> None:
    """Two clients upload 6 chunks each to one path at the same time, 8 rounds: each time the
    file is the old content or exactly one upload's bytes, the one that got its last chunk
    accepted (when one did); no temp file remains."""
    root = api.server.config.root_dir
    for round_ in range(8):
        seed(api, "up.bin", b"old")
        bodies = {name: [f"{name}{round_}-{i};".encode() * 1000 for i in range(6)] for name in "AB"}

        completed: list[str] = []

        async def upload(name: str, parts: list[bytes], completed: list[str]) -> None:
            for i, data in enumerate(parts):
                r = await put_chunk(api, "up.bin", data, -1 if i == len(parts) - 1 else i + 1)
                if r.status == 409:
                    return
                assert r.status in (200, 201), r.body
            completed.append(name)

        await asyncio.gather(*(upload(name, bodies[name], completed) for name in "AB"))
        final = await content(api, "up.bin")
        expected = b"".join(bodies[completed[-1]]) if completed else b"old"
        assert final == expected, (round_, completed, final[:20] if final else None)
        assert not [p for p in root.rglob("*") if p.name.startswith(".~nbserver")]
