"""``/files/{path}``: raw file bytes over real HTTP, with both contents managers.

Bad inputs tried: missing, hidden, outside-root (``..``, percent-encoded ``..``, NUL) and
directory paths; anonymous requests; a token in the query (accepted without a redirect).
The pure helpers that pick ``Content-Type`` and ``Content-Disposition`` are tested directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from nbserver import Server
from nbserver.services.contents.handlers import content_disposition, files_media_type
from tests.conftest import TOKEN, Client, Response
from tests.services.contents.conftest import Start, seed


def assert_file_headers(r: Response, size: int) -> None:
    assert r.headers["Content-Length"] == str(size)
    assert "sandbox allow-scripts" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    parsedate_to_datetime(r.headers["Last-Modified"])


async def test_get_and_head_a_text_file(api: Client) -> None:
    seed(api, "dir/a b.txt", b"hello\n")
    r = await api.get("files/dir/a%20b.txt")
    assert r.status == 200 and r.body == b"hello\n"
    assert r.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert "Content-Disposition" not in r.headers
    assert "Etag" not in r.headers
    assert_file_headers(r, 6)
    r = await api.request("HEAD", "files/dir/a%20b.txt")
    assert r.status == 200 and r.body == b""
    assert r.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert_file_headers(r, 6)


async def test_download_is_an_attachment_with_an_rfc5987_name(api: Client) -> None:
    seed(api, "résumé.txt", b"cv")
    r = await api.get("files/" + quote("résumé.txt"), params={"download": "1"})
    assert r.status == 200 and r.body == b"cv"
    assert r.headers["Content-Disposition"] == (
        "attachment; filename=\"resume.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"
    )
    r = await api.get("files/" + quote("résumé.txt"), params={"download": "0"})
    assert "Content-Disposition" not in r.headers


async def test_notebooks_are_always_attachments(api: Client) -> None:
    raw = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'
    seed(api, "n.ipynb", raw)
    r = await api.get("files/n.ipynb")
    assert r.status == 200 and r.body == raw  # the stored bytes, not a re-serialization
    assert r.headers["Content-Type"] == "application/x-ipynb+json"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="n.ipynb"')


async def test_json_files_are_sent_verbatim_even_when_invalid(api: Client) -> None:
    seed(api, "broken.json", b"{not json")
    r = await api.get("files/broken.json")
    assert r.status == 200 and r.body == b"{not json"
    assert r.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("name", "data", "media_type"),
    [
        ("page.html", b"<script>fetch('/api/contents')</script>", "text/html; charset=UTF-8"),
        ("pic.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', "image/svg+xml"),
        ("page.xhtml", b"<html/>", "application/xhtml+xml"),
    ],
)
async def test_active_content_is_served_sandboxed(
    api: Client, name: str, data: bytes, media_type: str
) -> None:
    """HTML and SVG are served as they are, but scripts in them run in a unique origin."""
    seed(api, name, data)
    r = await api.get("files/" + name)
    assert r.status == 200 and r.body == data
    assert r.headers["Content-Type"] == media_type
    assert r.headers["Content-Security-Policy"] == "frame-ancestors 'self'; sandbox allow-scripts"
    assert r.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    ["missing.txt", ".secret", ".hidden/a.txt", "d", "%2E%2E/root/a.txt", "../x", "a%00b", "d/..%5C..%5Cx"],
)
async def test_unreachable_paths_are_404(api: Client, path: str) -> None:
    seed(api, ".secret", b"s")
    seed(api, ".hidden/a.txt", b"a")
    seed(api, "d", None)
    r = await api.get("files/" + path)
    assert r.status == 404
    assert r.headers["Content-Type"].startswith("text/html")
    assert "sandbox allow-scripts" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert (await api.request("HEAD", "files/" + path)).status == 404


async def test_hidden_files_are_served_when_allowed(start: Start) -> None:
    api = await start(allow_hidden=True)
    seed(api, ".env", b"A=1")
    r = await api.get("files/.env")
    assert r.status == 200 and r.body == b"A=1"


async def test_anonymous_visitors_go_to_the_login_page(api: Client) -> None:
    seed(api, "a.txt", b"x")
    r = await api.get("files/a.txt", auth=None)
    assert r.status == 302
    assert r.headers["Location"] == "/login?next=%2Ffiles%2Fa.txt"
    r = await api.get("files/a.txt", auth=None, params={"token": "wrong"})
    assert r.status == 302 and r.headers["Location"].startswith("/login?next=")
    assert (await api.request("HEAD", "files/a.txt", auth=None)).status == 302


async def test_token_in_the_query_is_served_without_a_redirect(api: Client) -> None:
    """Scripts fetch ``/files/x?token=T``: no redirect to trade the token for a cookie."""
    seed(api, "data.csv", b"a,b\n1,2\n")
    r = await api.get("files/data.csv", auth="query")
    assert r.status == 200 and r.body == b"a,b\n1,2\n"
    assert r.headers["Content-Type"] == "text/csv; charset=UTF-8"
    assert r.headers["Referrer-Policy"] == "no-referrer"  # the token does not leak in Referer


async def test_cookie_login_works(api: Client) -> None:
    seed(api, "a.txt", b"x")
    assert (await api.get("", auth="query", use_cookies=True)).status == 302  # trade ?token= for the cookie
    r = await api.get("files/a.txt", auth=None, use_cookies=True)
    assert r.status == 200 and r.body == b"x"


async def test_a_5_mb_file_streams_intact(api: Client) -> None:
    data = os.urandom(5 * 1024 * 1024 + 3)
    seed(api, "big.bin", data)
    r = await api.get("files/big.bin")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert_file_headers(r, len(data))
    assert hashlib.sha256(r.body).hexdigest() == hashlib.sha256(data).hexdigest()
    assert "Etag" not in r.headers


async def test_files_written_through_the_api_are_served(api: Client) -> None:
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    model = {"type": "notebook", "content": notebook}
    r = await api.request("PUT", "api/contents/x.ipynb", json=model)
    assert r.status == 201
    r = await api.get("files/x.ipynb")
    assert json.loads(r.body)["nbformat"] == 4


async def test_files_under_a_base_url(start: Start) -> None:
    api = await start(base_url="/jp/")
    seed(api, "a.txt", b"x")
    assert (await api.get("files/a.txt")).body == b"x"
    r = await api.get("files/a.txt", auth=None)
    assert r.headers["Location"] == "/jp/login?next=%2Fjp%2Ffiles%2Fa.txt"


# -- pure helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("a.ipynb", b"{}", "application/x-ipynb+json"),
        ("A.IPYNB", b"{}", "application/x-ipynb+json"),
        ("a.txt", b"hi", "text/plain; charset=UTF-8"),
        ("a.txt", b"\xff\xfe", "text/plain"),  # not UTF-8: no charset claimed
        ("a.py", b"print()", "text/x-python; charset=UTF-8"),
        ("Makefile", b"all:\n", "text/plain; charset=UTF-8"),
        ("Makefile", "é".encode()[:1], "text/plain; charset=UTF-8"),  # a cut multi-byte sequence
        ("blob", b"\x00\x01\x02", "application/octet-stream"),
        ("blob", b"\xff\xfe\xfd", "application/octet-stream"),
        ("empty", b"", "text/plain; charset=UTF-8"),
        ("a.tar.gz", b"\x1f\x8b", "application/gzip"),
        ("a.tar.bz2", b"BZh", "application/octet-stream"),
        ("a.png", b"\x89PNG", "image/png"),
        ("a.html", b"<p>", "text/html; charset=UTF-8"),
        ("a.svg", b"<svg/>", "image/svg+xml"),
        ("a.json", b"{}", "application/json"),
    ],
)
def test_files_media_type(name: str, head: bytes, expected: str) -> None:
    assert files_media_type(name, head) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", "attachment; filename=\"a.txt\"; filename*=UTF-8''a.txt"),
        ("a b.txt", "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt"),
        ('q"u\\o;te.txt', "attachment; filename=\"q_u_o;te.txt\"; filename*=UTF-8''q%22u%5Co%3Bte.txt"),
        ("数据.csv", "attachment; filename=\"__.csv\"; filename*=UTF-8''%E6%95%B0%E6%8D%AE.csv"),
        ("Ångström", "attachment; filename=\"Angstrom\"; filename*=UTF-8''%C3%85ngstr%C3%B6m"),
    ],
)
def test_content_disposition(name: str, expected: str) -> None:
    assert content_disposition(name) == expected


async def test_a_client_leaving_mid_download_frees_the_file(api: Client) -> None:
    """The download stops, its file is closed, and the server goes on serving."""
    seed(api, "big.bin", os.urandom(8 * 1024 * 1024))
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    reader, writer = await asyncio.open_connection("127.0.0.1", api.server.port)
    writer.write(
        f"GET /files/big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token {TOKEN}\r\n\r\n".encode()
    )
    await writer.drain()
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    await reader.readexactly(64 * 1024)
    writer.close()
    await writer.wait_closed()
    for _ in range(100):  # the server notices the closed connection on its next write
        r = await api.get("files/big.bin", params={"n": "1"}, auth="header")
        assert r.status == 200 and len(r.body) == 8 * 1024 * 1024
        if fds is None or len(os.listdir("/proc/self/fd")) <= fds:
            break
        await asyncio.sleep(0.01)
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) <= fds


async def _get_changing_the_file_after_the_headers(
    port: int, path: str, change: Callable[[], None]
) -> tuple[int, bytes]:
    """``GET path``; once the headers are in (the server has sent at most a socket buffer's worth
    of a 32 MB file by then), ``change()`` the file, then read to the end: (Content-Length, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token {TOKEN}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    match = re.search(rb"Content-Length: (\d+)", head)
    assert head.startswith(b"HTTP/1.1 200") and match is not None, head
    change()
    body = await reader.read()
    writer.close()
    return int(match.group(1)), body


async def test_a_file_growing_while_downloaded_is_sent_as_it_was_opened(
    make_server: Callable[..., Awaitable[Server]], caplog: pytest.LogCaptureFixture
) -> None:
    """A log a kernel appends to: the body is the file's Content-Length bytes, and the server
    does not fail on the bytes beyond (it raised "more data than Content-Length")."""
    server = await make_server()
    data = os.urandom(32 * 1024 * 1024)
    target = Path(server.config.root_dir, "run.log")
    target.write_bytes(data)

    def grow() -> None:
        with target.open("ab") as f:
            f.write(b"y" * 1024 * 1024)

    length, body = await _get_changing_the_file_after_the_headers(server.port, "/files/run.log", grow)
    assert length == len(data)
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    assert "Uncaught exception" not in caplog.text


async def test_a_file_shrinking_while_downloaded_ends_the_connection_early(
    make_server: Callable[..., Awaitable[Server]], caplog: pytest.LogCaptureFixture
) -> None:
    """The client gets fewer bytes than Content-Length (an incomplete download it can tell),
    and the server logs why rather than an uncaught exception."""
    server = await make_server()
    target = Path(server.config.root_dir, "run.log")
    target.write_bytes(os.urandom(32 * 1024 * 1024))

    def shrink() -> None:
        os.truncate(target, 1024 * 1024)

    length, body = await _get_changing_the_file_after_the_headers(server.port, "/files/run.log", shrink)
    assert length == 32 * 1024 * 1024
    assert len(body) < length
    assert "/files/run.log shrank while being downloaded" in caplog.text
    assert "Uncaught exception" not in caplog.text
