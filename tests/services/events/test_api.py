"""``/api/events`` and ``/api/events/subscribe`` on a real server: contents and kernel events as
jupyter_server emits them, POSTed events, authentication, and a subscriber that never reads.

Every frame is held against jupyter_server's own schema files (:mod:`.schema_check`).
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from nbserver import Server
from tests.conftest import TOKEN, Client
from tests.services.events.schema_check import CONTENTS, KERNEL_ACTIONS, check_frame

TIMEOUT = 60  # seconds: a bound on each wait, never a timing assertion


class Events:
    """A subscriber: reads frames as they come, checks each against jupyter_server's schemas."""

    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, server: Server, headers: dict[str, str] | None = None) -> Events:
        url = f"ws://127.0.0.1:{server.port}{server.config.base_url}api/events/subscribe"
        request = HTTPRequest(
            url, headers=headers if headers is not None else {"Authorization": f"token {TOKEN}"}
        )
        return cls(await websocket_connect(request))

    async def next(self) -> dict[str, Any]:
        """The next frame's data (the frame without ``schema_id`` and the record metadata),
        with ``schema_id`` under ``"schema"``."""
        message = await asyncio.wait_for(self.conn.read_message(), TIMEOUT)
        assert isinstance(message, str), message
        frame = json.loads(message)
        return {"schema": frame["schema_id"], **check_frame(frame)}

    async def take(self, count: int) -> list[dict[str, Any]]:
        return [await self.next() for _ in range(count)]

    def close(self) -> None:
        self.conn.close()


def contents(action: str, path: str, source: str | None = None) -> dict[str, Any]:
    event = {"schema": CONTENTS, "action": action, "path": path}
    return event if source is None else {**event, "source_path": source}


async def test_contents_actions_arrive_in_order_one_event_each(client: Client, server: Server) -> None:
    """Saves (a file twice, a directory, a new untitled notebook, a chunked upload at its last
    chunk only), a rename, a copy, a read and a delete: each is one event, in order, as
    jupyter_server's contents_service/v1 (no ``get`` for the reads a save makes inside)."""
    events = await Events.connect(server)
    text = {"type": "file", "format": "text", "content": "hi"}
    assert (await client.request("PUT", "api/contents/a.txt", json=text)).status == 201
    assert (await client.request("PUT", "api/contents/a.txt", json=text)).status == 200
    assert (await client.request("PUT", "api/contents/d", json={"type": "directory"})).status == 201
    assert (await client.post("api/contents/d", json={"type": "notebook"})).status == 201
    assert (await client.request("PATCH", "api/contents/a.txt", json={"path": "d/b.txt"})).status == 200
    assert (await client.post("api/contents/d", json={"copy_from": "d/b.txt"})).status == 201
    assert (await client.get("api/contents/d/b-Copy1.txt")).status == 200
    for chunk, data in ((1, "x"), (2, "y"), (-1, "z")):
        r = await client.request("PUT", "api/contents/up.txt", json={**text, "content": data, "chunk": chunk})
        assert r.status in (200, 201)
    assert (await client.request("DELETE", "api/contents/d/b.txt")).status == 204
    assert await events.take(9) == [
        contents("save", "a.txt"),
        contents("save", "a.txt"),
        contents("save", "d"),
        contents("save", "d/Untitled.ipynb"),
        contents("rename", "d/b.txt", "a.txt"),
        contents("copy", "d/b-Copy1.txt", "d/b.txt"),
        contents("get", "d/b-Copy1.txt"),
        contents("save", "up.txt"),
        contents("delete", "d/b.txt"),
    ]
    events.close()


async def test_failed_contents_actions_emit_nothing(client: Client, server: Server) -> None:
    """Bad inputs: a rename of a missing file (404), a delete of a missing file (404), a save
    into a missing directory (404): no event; the next successful action is the next event."""
    events = await Events.connect(server)
    assert (await client.request("PATCH", "api/contents/nope.txt", json={"path": "x.txt"})).status == 404
    assert (await client.request("DELETE", "api/contents/nope.txt")).status == 404
    text = {"type": "file", "format": "text", "content": "hi"}
    assert (await client.request("PUT", "api/contents/no/dir.txt", json=text)).status == 404
    assert (await client.request("PUT", "api/contents/ok.txt", json=text)).status == 201
    assert await events.next() == contents("save", "ok.txt")
    events.close()


async def test_kernel_actions_start_interrupt_restart_shutdown(client: Client, server: Server) -> None:
    """Success events for each action of a real kernel; an unknown kernelspec is a failed
    start (status_code 404, no kernel id); an unknown kernel id, and a start naming a kernel
    that runs (which returns it), are no action (no event)."""
    events = await Events.connect(server)
    r = await client.post("api/kernels", json={"name": "python3"})
    assert r.status == 201
    kernel_id = r.json["id"]
    assert (await client.post("api/kernels", json={"kernel_id": kernel_id})).json[
        "id"
    ] == kernel_id  # no action
    assert (await client.post(f"api/kernels/{kernel_id}/interrupt")).status == 204
    assert (await client.post(f"api/kernels/{kernel_id}/restart")).status == 200
    assert (await client.post("api/kernels/00000000-0000-0000-0000-000000000000/interrupt")).status == 404
    assert (await client.request("DELETE", f"api/kernels/{kernel_id}")).status == 204
    assert (await client.post("api/kernels", json={"name": "no-such-kernelspec"})).status == 404
    got = await events.take(5)
    done = {"start": "started", "interrupt": "interrupted", "restart": "restarted", "shutdown": "shutdown"}
    for event, action in zip(got[:4], ("start", "interrupt", "restart", "shutdown"), strict=True):
        assert event == {
            "schema": KERNEL_ACTIONS,
            "action": action,
            "status": "success",
            "kernel_id": kernel_id,
            "kernel_name": "python3",
            "msg": f"Kernel {kernel_id} was {done[action]}.",
        }
    failed = got[4]
    assert failed["action"] == "start" and failed["status"] == "error" and failed["status_code"] == 404
    assert failed["kernel_name"] == "no-such-kernelspec" and "kernel_id" not in failed
    events.close()


async def test_posted_events_reach_subscribers(client: Client, server: Server) -> None:
    """A good event is 204 and arrives with its timestamp (jupyter_server's ``+05:00Z`` form,
    in UTC); the version may be the number 1, also written ``1.0`` (was 400 "bad version")."""
    events = await Events.connect(server)
    body = {
        "schema_id": CONTENTS,
        "version": "1",
        "data": {"action": "upload", "path": "x"},
        "timestamp": "2022-05-26T13:50:00+05:00Z",
    }
    r = await client.post("api/events", json=body)
    assert r.status == 204 and not r.body
    message = json.loads(await asyncio.wait_for(events.conn.read_message(), TIMEOUT))  # type: ignore[arg-type]
    assert message["__timestamp__"] == "2022-05-26T08:50:00Z"
    kernel = {"action": "start", "status": "error", "msg": "m"}
    assert (
        await client.post("api/events", json={"schema_id": KERNEL_ACTIONS, "version": 1, "data": kernel})
    ).status == 204
    assert await events.next() == {"schema": KERNEL_ACTIONS, **kernel}
    raw = f'{{"schema_id": "{CONTENTS}", "version": 1.0, "data": {{"action": "get", "path": "y"}}}}'
    assert (
        await client.post("api/events", body=raw, headers={"Content-Type": "application/json"})
    ).status == 204
    assert await events.next() == contents("get", "y")  # 1.0 is the number 1 (a JSON Schema enum says so)
    events.close()


BAD_EVENTS = [
    ([1], "bad model"),  # not an object
    ("x", "bad model"),
    ({"schema_id": CONTENTS, "version": "1"}, "bad model"),  # no data
    ({"schema_id": CONTENTS, "data": {"action": "save", "path": "a"}}, "bad model"),  # no version
    ({"version": "1", "data": {"action": "save", "path": "a"}}, "bad model"),  # no schema_id
    ({"schema_id": CONTENTS, "version": "1", "data": [1]}, "bad model"),  # data not an object
    ({"schema_id": 5, "version": "1", "data": {}}, "bad model"),
    ({"schema_id": CONTENTS, "version": None, "data": {}}, "bad model"),
    ({"schema_id": "https://example.org/nope/v1", "version": "1", "data": {}}, "no such schema"),
    ({"schema_id": CONTENTS, "version": "2", "data": {"action": "save", "path": "a"}}, "bad version"),
    ({"schema_id": CONTENTS, "version": 1.5, "data": {"action": "save", "path": "a"}}, "bad version"),
    ({"schema_id": CONTENTS, "version": "1", "data": {"action": "bad", "path": "a"}}, "bad event"),
    ({"schema_id": CONTENTS, "version": "1", "data": {"action": "save"}}, "bad event"),
    (
        {"schema_id": CONTENTS, "version": "1", "data": {"action": "save", "path": "a", "schema_id": "x"}},
        "bad event",
    ),
    (
        {"schema_id": KERNEL_ACTIONS, "version": "1", "data": {"action": "restart", "msg": "no kernel id"}},
        "bad event",
    ),
    (
        {
            "schema_id": CONTENTS,
            "version": "1",
            "data": {"action": "save", "path": "a"},
            "timestamp": "2022-05-26",
        },
        "bad timestamp",
    ),
    (
        {"schema_id": CONTENTS, "version": "1", "data": {"action": "save", "path": "a"}, "timestamp": 1},
        "bad timestamp",
    ),
    (
        {
            "schema_id": CONTENTS,
            "version": "1",
            "data": {"action": "save", "path": "a"},
            "timestamp": "9999-12-31T23:00:00-05:00",
        },
        "bad timestamp",  # past year 9999 in UTC: was an OverflowError
    ),
]


@pytest.mark.parametrize(("body", "reason"), BAD_EVENTS)
async def test_bad_posted_events_are_400_and_reach_nobody(
    client: Client, server: Server, body: Any, reason: str
) -> None:
    events = await Events.connect(server)
    r = await client.post("api/events", json=body)
    assert (r.status, r.json["reason"]) == (400, reason)
    good = {"schema_id": CONTENTS, "version": "1", "data": {"action": "save", "path": "after"}}
    assert (await client.post("api/events", json=good)).status == 204
    assert await events.next() == contents("save", "after")  # nothing before it
    events.close()


async def test_subscribing_needs_credentials_and_cookies_an_allowed_origin(
    client: Client, server: Server
) -> None:
    """Bad inputs: no credential, a wrong token, the login cookie from a foreign Origin: 403 before
    the handshake. The cookie from the server's own origin and a token from any origin open it."""
    host = f"127.0.0.1:{server.port}"
    cookie = f"{server.ctx.cookie_name}={server.ctx.auth.login_cookie(server.ctx.cookie_name).decode()}"
    for headers in (
        {},
        {"Authorization": "token wrong"},
        {"Cookie": cookie, "Origin": "http://evil.example"},
    ):
        with pytest.raises(HTTPClientError) as refused:
            await Events.connect(server, headers)
        assert refused.value.code == 403
    for headers in (
        {"Cookie": cookie, "Origin": f"http://{host}"},
        {"Authorization": f"token {TOKEN}", "Origin": "http://evil.example"},
    ):
        events = await Events.connect(server, headers)
        assert (await client.request("DELETE", "api/contents/missing")).status == 404  # no event
        good = {"schema_id": CONTENTS, "version": "1", "data": {"action": "get", "path": "p"}}
        assert (await client.post("api/events", json=good)).status == 204
        assert await events.next() == contents("get", "p")
        events.close()
    anonymous = await client.post("api/events", json={}, auth=None)
    assert anonymous.status == 403


def raw_subscriber(server: Server) -> socket.socket:
    """A websocket client that completes the handshake and then never reads (a 4 KiB receive
    buffer, so the server's writes back up at once)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(
        (
            f"GET {server.config.base_url}api/events/subscribe HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: token {TOKEN}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_subscriber_that_never_reads_is_dropped_and_stalls_nothing(
    client: Client, server: Server
) -> None:
    """The bus holds a never-reading subscriber's backlog to its limit (here 16 events), then
    drops it and closes its connection; saves and a reading subscriber carry on, in order."""
    bus = server.ctx.events
    bus.limit = 16
    loop = asyncio.get_running_loop()
    slow = await loop.run_in_executor(None, raw_subscriber, server)
    reader = await Events.connect(server)
    seen: list[dict[str, Any]] = []

    async def read() -> None:
        while True:
            seen.append(await reader.next())

    reading = asyncio.ensure_future(read())
    big = "p" * 32768
    posted = 0
    while bus.subscribers == 2:  # until the bus dropped the slow one
        assert posted < 1000, "a subscriber that never reads was never dropped (unbounded?)"
        event = {"schema_id": CONTENTS, "version": "1", "data": {"action": "get", "path": f"{posted}{big}"}}
        assert (await client.post("api/events", json=event)).status == 204
        posted += 1
    text = {"type": "file", "format": "text", "content": "x"}
    for i in range(20):
        assert (await client.request("PUT", f"api/contents/f{i}.txt", json=text)).status == 201

    async def all_seen() -> None:
        while len(seen) < posted + 20:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(all_seen(), TIMEOUT)
    reading.cancel()
    assert [e["path"][: len(str(i))] for i, e in enumerate(seen[:posted])] == [str(i) for i in range(posted)]
    assert seen[posted:] == [contents("save", f"f{i}.txt") for i in range(20)]
    assert bus.subscribers == 1

    def until_closed() -> None:  # the server ends the connection (close frame, then it drops it)
        try:
            while slow.recv(1 << 16):
                pass
        except ConnectionResetError:
            pass  # dropped rather than closed: closed all the same

    await loop.run_in_executor(None, until_closed)
    slow.close()
    reader.close()


async def test_an_overflowing_subscriber_is_closed_with_1013(client: Client, server: Server) -> None:
    """Events emitted faster than the socket's writer runs (here: without yielding to the loop)
    overflow the subscription at its limit: the client is closed with 1013 ("try again later"),
    and gets no partial backlog."""
    bus = server.ctx.events
    bus.limit = 4
    events = await Events.connect(server)
    for i in range(5):  # no await: the writer cannot take any
        bus.emit(CONTENTS, {"action": "save", "path": str(i)})
    assert await asyncio.wait_for(events.conn.read_message(), TIMEOUT) is None
    assert events.conn.close_code == 1013 and bus.subscribers == 0
    events.close()
