"""Keep-alive after every kind of early answer, over one raw HTTP/1.1 connection.

Bodies are streamed, so ``prepare`` runs before tornado has read them; a response sent from there
made tornado drop the connection without ``Connection: close`` and the client's next request on it
met a reset (issue 15). Each test sends several requests in a row on one socket: the answer that is
decided before the handler runs, the same again, then an authenticated ``GET /api/status``. Every
answer must be the proper one; a response that cannot leave the connection usable must say
``Connection: close``, and the server must then close it.

Early answers tried: anonymous API GET (403), anonymous POST and PUT with a body, fixed-length and
chunked (403), anonymous page GET (302 to login) and POST (403), a page with ``?token=`` (302 that
trades it for a cookie), unknown routes GET and POST with a body (404, HTML and JSON), a foreign
Host (403), a CORS preflight (204), a verb the route does not have (405), a websocket route without
an upgrade, and ``Expect: 100-continue``. Bodies that cannot be drained: a declared length over
``max_body_size`` (413, and 403 when anonymous) and a method tornado does not know (405): those say
``Connection: close``. Each body is itself a complete HTTP request, so a body left unread would be
answered as one and shift every answer after it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest
from tornado.httputil import HTTPHeaders

from nbserver import Server
from tests.conftest import TOKEN, Response, validate_response

LIMIT = 4096
#: a request body that is also a request: if it were not read as a body, it would get an answer
SMUGGLED = b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
BODY = json.dumps({"type": "file", "padding": "x" * 200}).encode() + b"\n" + SMUGGLED
WAIT = 30  # seconds: a bound on each read, for a loaded machine; never reached when all is well


@dataclass
class Answer:
    status: int
    headers: HTTPHeaders
    body: bytes

    @property
    def closes(self) -> bool:
        return self.headers.get("Connection", "").lower() == "close"


class RawConnection:
    """One HTTP/1.1 connection: requests written as bytes, responses parsed one at a time."""

    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.host = f"127.0.0.1:{server.port}"
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, server: Server) -> RawConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        return cls(server, reader, writer)

    def close(self) -> None:
        self.writer.close()

    def send(
        self,
        method: str,
        target: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        chunked: bool = False,
        send_body: bool = True,
    ) -> bytes:
        """Write one request; returns its body (to send later when ``send_body`` is False)."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        payload = b""
        if body is not None and chunked:
            lines.append("Transfer-Encoding: chunked")
            half = len(body) // 2
            for part in (body[:half], body[half:]):
                payload += b"%x\r\n%s\r\n" % (len(part), part)
            payload += b"0\r\n\r\n"
        elif body is not None:
            lines.append(f"Content-Length: {len(body)}")
            payload = body
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        if send_body:
            self.writer.write(payload)
        return payload

    async def answer(self, method: str, target: str, *, validate: bool = True) -> Answer:
        """Read one response; held against api.yaml (as every test's) unless ``validate`` is off."""
        start = await asyncio.wait_for(self.reader.readline(), WAIT)
        assert start.startswith(b"HTTP/1.1 "), f"no response to {method} {target}: {start!r}"
        status = int(start.split()[1])
        head = b""
        while (line := await asyncio.wait_for(self.reader.readline(), WAIT)) not in (b"\r\n", b""):
            head += line
        headers = HTTPHeaders.parse(head.decode("latin1"))
        if headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while size := int((await asyncio.wait_for(self.reader.readline(), WAIT)).strip(), 16):
                body += await asyncio.wait_for(self.reader.readexactly(size + 2), WAIT)
                body = body[:-2]
            await asyncio.wait_for(self.reader.readline(), WAIT)
        elif method == "HEAD" or status in (100, 204, 304):
            body = b""
        else:
            length = int(headers.get("Content-Length", "0"))
            body = await asyncio.wait_for(self.reader.readexactly(length), WAIT)
        answer = Answer(status, headers, body)
        if validate and status != 100:
            validate_response(self.server, method, target.partition("?")[0], Response(status, headers, body))
        return answer

    async def assert_closed(self) -> None:
        """The server closed the connection: end of stream (or a reset, when bytes the client
        sent were still unread as it closed), within the bound."""
        try:
            rest = await asyncio.wait_for(self.reader.read(), WAIT)
        except ConnectionResetError:
            return
        assert rest == b"", rest

    async def status_is_usable(self) -> None:
        """An authenticated request on this connection still gets its proper answer."""
        self.send("GET", "/api/status", headers={"Authorization": f"token {TOKEN}"})
        answer = await self.answer("GET", "/api/status")
        assert answer.status == 200, answer
        assert set(json.loads(answer.body)) >= {"started", "kernels"}


@pytest.fixture
def server(io_loop, make_server) -> Server:
    return io_loop.run_sync(lambda: make_server(max_body_size=LIMIT))


@dataclass(frozen=True)
class Case:
    method: str
    target: str
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    chunked: bool = False
    validate: bool = True


AUTH = (("Authorization", f"token {TOKEN}"),)
EARLY_ANSWERS = {
    "anonymous API GET": Case("GET", "/api/contents", 403),
    "anonymous API POST with a body": Case("POST", "/api/contents", 403, body=BODY),
    "anonymous API PUT with a body": Case("PUT", "/api/contents/a.txt", 403, body=BODY),
    "anonymous API PUT with a chunked body": Case("PUT", "/api/contents/a.txt", 403, body=BODY, chunked=True),
    "anonymous page GET": Case("GET", "/tree", 302),
    "anonymous page POST with a body": Case("POST", "/tree", 403, body=BODY, validate=False),
    "page with ?token=": Case("GET", f"/tree?token={TOKEN}", 302),
    "unknown route GET": Case("GET", "/nope", 404),
    "unknown route POST with a body": Case("POST", "/nope", 404, body=BODY),
    "unknown API route POST with a body": Case("POST", "/api/nope", 404, body=BODY),
    "unknown API route PUT chunked": Case("PUT", "/api/nope", 404, body=BODY, chunked=True),
    "foreign Host": Case("GET", "/api/status", 403, headers=(("Host", "evil.example"),), validate=False),
    "CORS preflight": Case(
        "OPTIONS",
        "/api/contents",
        204,
        headers=(("Origin", "http://elsewhere.example"), ("Access-Control-Request-Method", "PUT")),
    ),
    "verb the route lacks, with a body": Case("DELETE", "/api/status", 405, AUTH, body=BODY, validate=False),
    "websocket route without upgrade": Case(
        "GET", "/api/kernels/00000000-0000-0000-0000-000000000000/channels", 404, AUTH, validate=False
    ),
    "anonymous websocket route without upgrade": Case(
        "GET", "/api/kernels/00000000-0000-0000-0000-000000000000/channels", 403, validate=False
    ),
}


async def _send_case(conn: RawConnection, case: Case) -> Answer:
    headers = dict(case.headers)
    if "Host" in headers:  # replaces the connection's own
        conn.host, saved = headers.pop("Host"), conn.host
        conn.send(case.method, case.target, headers=headers, body=case.body, chunked=case.chunked)
        conn.host = saved
    else:
        conn.send(case.method, case.target, headers=headers, body=case.body, chunked=case.chunked)
    return await conn.answer(case.method, case.target, validate=case.validate)


@pytest.mark.parametrize("case", EARLY_ANSWERS.values(), ids=EARLY_ANSWERS.keys())
async def test_early_answers_leave_the_connection_usable(server: Server, case: Case) -> None:
    conn = await RawConnection.open(server)
    try:
        for _ in range(2):  # the same early answer twice in a row, then an ordinary request
            answer = await _send_case(conn, case)
            assert answer.status == case.status, answer
            assert not answer.closes, answer
        await conn.status_is_usable()
        await conn.status_is_usable()
    finally:
        conn.close()


async def test_page_token_trade_keeps_its_cookie_and_connection(server: Server) -> None:
    """The ?token= redirect, now sent after the body, still sets the login cookie."""
    conn = await RawConnection.open(server)
    try:
        conn.send("GET", f"/tree?token={TOKEN}&x=1")
        answer = await conn.answer("GET", "/tree")
        assert answer.status == 302 and answer.headers["Location"] == "/tree?x=1"
        assert server.ctx is not None
        cookies = answer.headers.get_list("Set-Cookie")
        assert any(c.startswith(server.ctx.cookie_name + "=") for c in cookies), cookies
        conn.send("GET", "/nope")
        assert (await conn.answer("GET", "/nope")).status == 404
        await conn.status_is_usable()
    finally:
        conn.close()


async def test_expect_100_continue_on_a_refused_request(server: Server) -> None:
    """An anonymous PUT that waits for ``100 Continue``: the body is asked for, drained, then
    refused, and the connection serves the next request."""
    conn = await RawConnection.open(server)
    try:
        payload = conn.send(
            "PUT", "/api/contents/a.txt", headers={"Expect": "100-continue"}, body=BODY, send_body=False
        )
        assert (await conn.answer("PUT", "/api/contents/a.txt")).status == 100
        conn.writer.write(payload)
        answer = await conn.answer("PUT", "/api/contents/a.txt")
        assert answer.status == 403 and not answer.closes
        await conn.status_is_usable()
    finally:
        conn.close()


CLOSING_ANSWERS = {
    "declared body over the limit": Case("PUT", "/api/contents/a.txt", 413, AUTH, body=b"x" * (LIMIT + 1)),
    "anonymous, declared body over the limit": Case(
        "PUT", "/api/contents/a.txt", 403, body=b"x" * (LIMIT + 1)
    ),
    "unknown route, declared body over the limit": Case("POST", "/nope", 404, body=b"x" * (LIMIT + 1)),
    "method tornado does not know, with a body": Case(
        "PROPFIND", "/api/status", 405, AUTH, body=BODY, validate=False
    ),
}


@pytest.mark.parametrize("case", CLOSING_ANSWERS.values(), ids=CLOSING_ANSWERS.keys())
async def test_answers_before_an_undrainable_body_say_connection_close(server: Server, case: Case) -> None:
    conn = await RawConnection.open(server)
    try:
        answer = await _send_case(conn, case)
        assert answer.status == case.status, answer
        assert answer.closes, answer.headers
        await conn.assert_closed()
    finally:
        conn.close()
    conn = await RawConnection.open(server)  # and the server serves new connections
    try:
        await conn.status_is_usable()
    finally:
        conn.close()


async def test_a_request_within_the_limit_is_served_after_refusals(server: Server) -> None:
    """Refused bodies are discarded, not kept: the next request's body is its own."""
    conn = await RawConnection.open(server)
    try:
        conn.send("PUT", "/api/contents/a.txt", body=BODY)
        assert (await conn.answer("PUT", "/api/contents/a.txt")).status == 403
        model = json.dumps({"type": "file", "format": "text", "content": "hello"}).encode()
        conn.send("PUT", "/api/contents/a.txt", headers=dict(AUTH), body=model)
        answer = await conn.answer("PUT", "/api/contents/a.txt")
        assert answer.status == 201, answer
        conn.send("GET", "/api/contents/a.txt", headers=dict(AUTH))
        assert json.loads((await conn.answer("GET", "/api/contents/a.txt")).body)["content"] == "hello"
    finally:
        conn.close()
