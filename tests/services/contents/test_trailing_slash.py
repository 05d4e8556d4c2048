"""``/api/contents`` paths that end in ``/``, over real HTTP, against both contents managers.

As jupyter_server 2.21 (checked live): ``/api/contents/`` is the root, exactly like
``/api/contents``; any other path ending in ``/`` is redirected to the same URL without its
trailing slashes, query kept: 302 for GET (and HEAD). jupyter_server answers the other methods
there with a 403 HTML page (its redirect handler fails the XSRF check); nbserver redirects them
with 308, so that the method and body are kept.

Bad inputs tried: ``dir/``, ``a.txt/``, a missing ``nosuch/``, ``dir//``, ``//``,
``dir/checkpoints/``, ``a.txt/trust/``, a query string, every method, a base URL, no token.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests import openapi
from tests.conftest import Client, Response
from tests.services.contents.conftest import Start, seed

DIR_MODEL = {"type": "directory"}


async def root_alias(api: Client, method: str, json: Any = None) -> Response:
    """``METHOD /api/contents/``: not a path of api.yaml (an alias of ``/api/contents``), so the
    response is held against the ``/api/contents`` operation instead."""
    r = await api.request(method, "api/contents/", json=json, validate=False)
    openapi.validate_response(method, "/api/contents", r.status, r.headers.get("Content-Type"), r.body)
    return r


async def test_root_with_a_trailing_slash_is_the_root(api: Client) -> None:
    seed(api, "a.txt", b"a")
    plain = await api.get("api/contents")
    r = await root_alias(api, "GET")
    assert r.status == 200 and r.json["path"] == "" and r.json["type"] == "directory"
    assert [c["name"] for c in r.json["content"]] == [c["name"] for c in plain.json["content"]] == ["a.txt"]
    r = await api.request(
        "GET", "api/contents/", params={"type": "directory", "content": "0"}, validate=False
    )
    assert r.status == 200 and r.json["content"] is None


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("POST", None),
        ("POST", {"type": "directory"}),
        ("PUT", None),
        ("PUT", DIR_MODEL),
        ("PUT", {"type": "file", "format": "text", "content": "x"}),
        ("PATCH", {"path": "renamed"}),
        ("DELETE", None),
    ],
)
async def test_root_with_a_trailing_slash_answers_every_method_as_the_root(
    api: Client, method: str, body: Any
) -> None:
    """The same status (and model type) as the same request on ``/api/contents``."""
    plain = await api.request(method, "api/contents", json=body)
    alias = await root_alias(api, method, body)
    assert alias.status == plain.status, (alias.status, alias.body, plain.body)
    if plain.body:
        assert set(alias.json) == set(plain.json)


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("dir/", "dir"),
        ("dir/a.txt/", "dir/a.txt"),
        ("a.txt/", "a.txt"),
        ("nosuch/", "nosuch"),
        ("dir//", "dir"),
        ("dir/checkpoints/", "dir/checkpoints"),
        ("a.txt/checkpoints/", "a.txt/checkpoints"),
        ("a.txt/trust/", "a.txt/trust"),
        ("a%20b/", "a%20b"),
    ],
)
async def test_other_trailing_slashes_redirect_get_and_head_with_302(
    api: Client, path: str, target: str
) -> None:
    seed(api, "dir/a.txt", b"a")
    seed(api, "a.txt", b"a")
    for method in ("GET", "HEAD"):
        r = await api.request(method, "api/contents/" + path)
        assert r.status == 302 and r.headers["Location"] == "/api/contents/" + target, (method, r.status)
    r = await api.get("api/contents/" + path, params={"content": "0", "type": "directory"})
    assert r.status == 302 and r.headers["Location"] == f"/api/contents/{target}?content=0&type=directory"


async def test_double_slash_after_the_root_redirects_to_the_root(api: Client) -> None:
    r = await api.request("GET", "api/contents//")
    assert r.status == 302 and r.headers["Location"] == "/api/contents"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "new.txt/", {"type": "file", "format": "text", "content": "x"}),
        ("PUT", "newdir/", DIR_MODEL),
        ("POST", "dir/", {}),
        ("PATCH", "a.txt/", {"path": "b.txt"}),
        ("DELETE", "a.txt/", None),
        ("DELETE", "empty/", None),
        ("POST", "a.txt/checkpoints/", None),
    ],
)
async def test_other_trailing_slashes_redirect_writes_with_308_and_change_nothing(
    api: Client, method: str, path: str, body: Any
) -> None:
    """308 keeps the method and body; the request itself changes nothing. Repeated at the
    ``Location``, it does what it asked for."""
    seed(api, "dir/x.txt", b"x")
    seed(api, "a.txt", b"a")
    seed(api, "empty", None)
    before = (await api.get("api/contents", params={"content": "1"})).json["content"]
    r = await api.request(method, "api/contents/" + path, json=body)
    assert r.status == 308 and r.headers["Location"] == "/api/contents/" + path.rstrip("/")
    after = (await api.get("api/contents", params={"content": "1"})).json["content"]
    assert sorted(c["name"] for c in after) == sorted(c["name"] for c in before)
    assert (await api.get("api/contents/dir")).json["content"] is not None
    target = r.headers["Location"].removeprefix("/")
    followed = await api.request(method, target, json=body)
    assert 200 <= followed.status < 300, (followed.status, followed.body)


async def test_trailing_slash_redirects_need_the_token_and_keep_the_base_url(start: Start) -> None:
    api = await start(base_url="/jp/")
    r = await api.get("api/contents/dir/", auth=None)
    assert r.status == 403 and r.json["reason"] == "auth"
    r = await api.get("api/contents/dir/")
    assert r.status == 302 and r.headers["Location"] == "/jp/api/contents/dir"
    r = await api.request("DELETE", "api/contents/dir/")
    assert r.status == 308 and r.headers["Location"] == "/jp/api/contents/dir"
    r = await api.request("GET", "api/contents/", validate=False)
    assert r.status == 200 and r.json["path"] == ""


@pytest.mark.parametrize("manager_kind", ["filesystem"])  # the memory manager refuses to save the root
async def test_the_roots_location_has_no_trailing_slash(api: Client) -> None:
    """As jupyter_server: a model of the root is at ``/api/contents``."""
    r = await api.request("PUT", "api/contents", json=DIR_MODEL)
    assert r.status == 201 and r.headers["Location"] == "/api/contents"
