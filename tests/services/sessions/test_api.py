"""/api/sessions over real HTTP with real ipykernel kernels.

Bad inputs tried: missing path, missing type, a body that is not an object, invalid JSON, no
body, ``kernel`` that is not an object, non-string fields, an unknown kernel name, a kernel id
that is not a UUID, a path outside the root, unknown session ids on GET, PATCH and DELETE, an
unknown ``kernel.id`` on PATCH, an unknown ``kernel.name`` on POST and PATCH (404 with
``short_message``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TOKEN, Client
from tests.services.kernels.wsclient import KernelSocket, stream_text

MISSING = "00000000-0000-0000-0000-000000000000"


async def create(client: Client, **body: Any) -> dict[str, Any]:
    r = await client.post("api/sessions", json=body)
    assert r.status == 201, r.text
    assert r.headers["Location"] == f"/api/sessions/{r.json['id']}"
    return r.json  # type: ignore[no-any-return]


def stable(model: dict[str, Any]) -> dict[str, Any]:
    """A session model without the kernel fields that change on their own (state, activity)."""
    return {**model, "kernel": {"id": model["kernel"]["id"], "name": model["kernel"]["name"]}}


async def kernel_ids(client: Client) -> list[str]:
    return [k["id"] for k in (await client.get("api/kernels")).json]


async def test_create_list_get_patch_delete(client: Client) -> None:
    assert (await client.get("api/sessions")).json == []
    session = await create(
        client, path="a.ipynb", type="notebook", name="a.ipynb", kernel={"name": "python3"}
    )
    assert session["path"] == "a.ipynb" and session["type"] == "notebook"
    assert session["notebook"] == {"path": "a.ipynb", "name": "a.ipynb"}
    assert session["kernel"]["name"] == "python3"
    assert await kernel_ids(client) == [session["kernel"]["id"]]
    sid = session["id"]
    assert [s["id"] for s in (await client.get("api/sessions")).json] == [sid]
    assert stable((await client.get(f"api/sessions/{sid}")).json) == stable(session)

    r = await client.request(
        "PATCH", f"api/sessions/{sid}", json={"path": "b.txt", "name": "b", "type": "file"}
    )
    assert r.status == 200, r.text
    assert (r.json["path"], r.json["name"], r.json["type"]) == ("b.txt", "b", "file")
    assert "notebook" not in r.json
    assert r.json["kernel"]["id"] == session["kernel"]["id"]
    assert stable((await client.get(f"api/sessions/{sid}")).json) == stable(r.json)
    assert stable((await client.request("PATCH", f"api/sessions/{sid}", json={})).json) == stable(r.json)

    assert (await client.request("DELETE", f"api/sessions/{sid}")).status == 204
    assert (await client.get(f"api/sessions/{sid}")).status == 404
    assert (await client.get("api/sessions")).json == []
    assert await kernel_ids(client) == []


async def test_same_path_twice_is_one_session(client: Client) -> None:
    first = await create(client, path="nb.ipynb", type="notebook")
    again = await create(client, path="./nb.ipynb", type="console", name="other", kernel={"name": "nope"})
    assert again["id"] == first["id"] and again["type"] == "notebook"
    assert await kernel_ids(client) == [first["kernel"]["id"]]


async def test_concurrent_creates_share_one_session_and_kernel(client: Client) -> None:
    body = {"path": "race.ipynb", "type": "notebook", "name": "race.ipynb"}
    responses = await asyncio.gather(*(client.post("api/sessions", json=body) for _ in range(3)))
    assert {r.status for r in responses} == {201}
    assert len({r.json["id"] for r in responses}) == 1
    assert len({r.json["kernel"]["id"] for r in responses}) == 1
    assert await kernel_ids(client) == [responses[0].json["kernel"]["id"]]
    assert len((await client.get("api/sessions")).json) == 1


async def test_legacy_notebook_body(client: Client) -> None:
    session = await create(client, notebook={"path": "old.ipynb", "name": "old"})
    assert session["type"] == "notebook" and session["path"] == "old.ipynb"
    assert session["notebook"] == {"path": "old.ipynb", "name": "old"}


async def test_attach_to_a_kernel_by_id(client: Client) -> None:
    kernel = (await client.post("api/kernels", json={})).json
    session = await create(client, path="x.ipynb", type="notebook", kernel={"id": kernel["id"]})
    assert session["kernel"]["id"] == kernel["id"]
    assert await kernel_ids(client) == [kernel["id"]]
    wanted = "12345678-1234-1234-1234-123456789abc"  # no such kernel: started with that id
    other = await create(client, path="y.ipynb", type="notebook", kernel={"id": wanted})
    assert other["kernel"]["id"] == wanted
    assert sorted(await kernel_ids(client)) == sorted([kernel["id"], wanted])


async def test_patch_kernel_name_starts_a_new_kernel_and_stops_the_old(client: Client) -> None:
    session = await create(client, path="k.ipynb", type="notebook")
    old = session["kernel"]["id"]
    r = await client.request("PATCH", f"api/sessions/{session['id']}", json={"kernel": {"name": "python3"}})
    assert r.status == 200, r.text
    new = r.json["kernel"]["id"]
    assert new != old
    assert await kernel_ids(client) == [new]


async def test_kernel_changes_racing_each_other_or_a_delete_leave_no_kernel_behind(client: Client) -> None:
    """Each kernel a PATCH starts ends up in the session or shut down: two kernel changes at
    once, and a kernel change beside a DELETE, used to leave a kernel no session named."""
    session = await create(client, path="race.ipynb", type="notebook")
    path = f"api/sessions/{session['id']}"
    change = {"kernel": {"name": "python3"}}
    first, second = await asyncio.gather(*(client.request("PATCH", path, json=change) for _ in range(2)))
    assert (first.status, second.status) == (200, 200)
    assert first.json["kernel"]["id"] != second.json["kernel"]["id"]
    assert await kernel_ids(client) == [(await client.get(path)).json["kernel"]["id"]]
    patched, deleted = await asyncio.gather(
        client.request("PATCH", path, json=change), client.request("DELETE", path)
    )
    assert deleted.status == 204 and patched.status in (200, 404)  # 404: the DELETE came first
    assert await kernel_ids(client) == []
    assert (await client.get("api/sessions")).json == []


async def test_patch_kernel_id_switches_kernel(client: Client) -> None:
    session = await create(client, path="k.ipynb", type="notebook")
    kernel = (await client.post("api/kernels", json={})).json
    path = f"api/sessions/{session['id']}"
    r = await client.request("PATCH", path, json={"kernel": {"id": kernel["id"]}})
    assert r.status == 200 and r.json["kernel"]["id"] == kernel["id"]
    assert await kernel_ids(client) == [kernel["id"]]  # the previous kernel is shut down
    r = await client.request("PATCH", path, json={"kernel": {"id": MISSING}})
    assert r.status == 400 and r.json["reason"] == "no such kernel"
    assert (await client.get(path)).json["kernel"]["id"] == kernel["id"]


async def test_kernel_gone_drops_the_session(client: Client) -> None:
    kept = await create(client, path="keep.ipynb", type="notebook")
    session = await create(client, path="gone.ipynb", type="notebook")
    assert (await client.request("DELETE", f"api/kernels/{session['kernel']['id']}")).status == 204
    assert [s["id"] for s in (await client.get("api/sessions")).json] == [kept["id"]]
    assert (await client.get(f"api/sessions/{session['id']}")).status == 404
    # a new POST for the path makes a new session with a new kernel
    fresh = await create(client, path="gone.ipynb", type="notebook")
    assert fresh["id"] != session["id"] and fresh["kernel"]["id"] != session["kernel"]["id"]


async def test_delete_after_the_kernel_was_deleted_is_410(client: Client) -> None:
    session = await create(client, path="d.ipynb", type="notebook")
    assert (await client.request("DELETE", f"api/kernels/{session['kernel']['id']}")).status == 204
    r = await client.request("DELETE", f"api/sessions/{session['id']}")
    assert r.status == 410 and r.json["reason"] == "kernel gone"
    r = await client.request("DELETE", f"api/sessions/{session['id']}")
    assert r.status == 404 and r.json["reason"] == "no such session"


async def test_kernel_runs_in_the_notebook_directory_with_session_name(
    client: Client, root_dir: Path
) -> None:
    (root_dir / "sub").mkdir()
    session = await create(client, path="sub/nb.ipynb", type="notebook", name="nb.ipynb")
    ws = await KernelSocket.connect(client.base.replace("http://", "ws://"), session["kernel"]["id"], TOKEN)
    try:
        outputs, reply = await ws.run("import os; print(os.getcwd(), os.environ['JPY_SESSION_NAME'])")
    finally:
        ws.close()
    assert reply.content["status"] == "ok"
    assert stream_text(outputs).split() == [str(root_dir / "sub"), str(root_dir / "sub" / "nb.ipynb")]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"type": "notebook"}, 400, "bad model"),  # missing path
        ({"path": "a.ipynb"}, 400, "bad model"),  # missing type
        ({"path": 3, "type": "notebook"}, 400, "bad model"),
        ({"path": "a.ipynb", "type": ["notebook"]}, 400, "bad model"),
        ({"path": "a.ipynb", "type": "notebook", "name": 1}, 400, "bad model"),
        ({"path": "a.ipynb", "type": "notebook", "kernel": "python3"}, 400, "bad model"),
        ({"path": "a.ipynb", "type": "notebook", "kernel": {"name": 3}}, 400, "bad model"),
        ({"notebook": "a.ipynb"}, 400, "bad model"),
        ({"path": "a.ipynb", "type": "notebook", "kernel": {"name": "no-such"}}, 404, "no such kernelspec"),
        ({"path": "a.ipynb", "type": "notebook", "kernel": {"id": "not-a-uuid"}}, 400, "bad kernel id"),
        ({"path": "../out.ipynb", "type": "notebook"}, 404, "outside root"),
    ],
)
async def test_bad_create_requests(client: Client, body: dict[str, Any], status: int, reason: str) -> None:
    r = await client.post("api/sessions", json=body)
    assert r.status == status and r.json["reason"] == reason, r.text
    assert (await client.get("api/sessions")).json == []
    assert await kernel_ids(client) == []


@pytest.mark.parametrize("raw", [b"", b"[]", b"{", b'"a.ipynb"', b"null"])
async def test_bad_create_bodies(client: Client, raw: bytes) -> None:
    """No body, non-object bodies and invalid JSON."""
    r = await client.post("api/sessions", body=raw)
    assert r.status == 400 and r.json["reason"] in ("bad model", "bad json")


async def test_bad_patch_requests(client: Client) -> None:
    session = await create(client, path="p.ipynb", type="notebook")
    path = f"api/sessions/{session['id']}"
    for body in (b"[]", b"{", b"", b'{"path": 1}', b'{"kernel": 1}', b'{"kernel": {"id": 5}}'):
        r = await client.request("PATCH", path, body=body)
        assert r.status == 400, body
    r = await client.request("PATCH", path, json={"kernel": {"name": "no-such"}})
    assert r.status == 404 and r.json["reason"] == "no such kernelspec"
    assert stable((await client.get(path)).json) == stable(session)


async def test_unknown_kernel_name_is_404_with_a_short_message(client: Client) -> None:
    """POST and PATCH naming a kernelspec that is not installed: nbserver's documented 404, with
    jupyter_server's ``short_message`` (``"<name> not found"``, which UIs show) besides
    ``message``; other errors carry none."""
    r = await client.post(
        "api/sessions", json={"path": "a.ipynb", "type": "notebook", "kernel": {"name": "no-such"}}
    )
    assert r.status == 404, r.text
    assert r.json["reason"] == "no such kernelspec"
    assert r.json["short_message"] == "no-such not found"
    assert "no-such" in r.json["message"]
    session = await create(client, path="p.ipynb", type="notebook")
    r = await client.request("PATCH", f"api/sessions/{session['id']}", json={"kernel": {"name": "no-such"}})
    assert r.status == 404 and r.json["short_message"] == "no-such not found", r.text
    r = await client.get("api/sessions/nope-123")
    assert r.status == 404 and "short_message" not in r.json


async def test_unknown_session_ids_are_404(client: Client) -> None:
    for method, body in (("GET", None), ("PATCH", {"name": "x"}), ("DELETE", None)):
        r = await client.request(method, "api/sessions/nope-123", json=body)
        assert r.status == 404, method
        assert r.json["reason"] == "no such session"


def test_make_app_sessions_and_kernels_must_agree(tmp_path: Path) -> None:
    """``make_app(sessions=...)`` adopts the session manager's kernels; a different
    ``kernels=`` is refused."""
    from nbserver import ServerConfig, make_app, make_context
    from nbserver.app import kernel_manager
    from nbserver.errors import ConfigError
    from nbserver.services.kernels.manager import KernelManager
    from nbserver.services.sessions.manager import SessionManager
    from nbserver.services.sessions.store import SessionStore

    config = ServerConfig(root_dir=tmp_path, token="t", cookie_secret=b"k" * 32)
    ctx = make_context(config)
    kernels = kernel_manager(make_context(config))
    sessions = SessionManager(SessionStore(), kernels, tmp_path)
    make_app(config, context=ctx, sessions=sessions)
    assert ctx.services["sessions"] is sessions and ctx.services["kernels"] is kernels
    other = KernelManager(config, kernels.specs)
    with pytest.raises(ConfigError, match="kernel manager"):
        make_app(config, sessions=sessions, kernels=other)
    sessions.store.close()
