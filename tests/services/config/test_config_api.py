"""``/api/config/<section>`` and ``/api/resolvePath`` over real HTTP."""

from __future__ import annotations

import json

from tests.lab.conftest import jupyter_dirs  # noqa: F401 -- fixture


async def test_config_put_patch_get(jupyter_dirs, make_server, make_client) -> None:  # noqa: F811
    """PATCH deep-merges and null deletes; PUT replaces; bad inputs: a non-object body, a bad name."""
    client = make_client(await make_server())
    assert (await client.get("api/config/mine")).json == {}
    assert (
        await client.request("PUT", "api/config/mine", json={"a": {"b": 1, "c": 2}, "d": 1})
    ).status == 204
    patched = await client.request("PATCH", "api/config/mine", json={"a": {"c": None, "e": 3}, "d": None})
    assert patched.status == 200 and patched.json == {"a": {"b": 1, "e": 3}}
    assert json.loads((jupyter_dirs / "nbconfig" / "mine.json").read_text()) == {"a": {"b": 1, "e": 3}}
    assert (await client.get("api/config/mine")).json == {"a": {"b": 1, "e": 3}}
    assert (await client.request("PUT", "api/config/mine", json={"z": 1})).status == 204
    assert (await client.get("api/config/mine")).json == {"z": 1}
    bad = await client.request("PUT", "api/config/mine", json=[1, 2])
    assert bad.status == 400 and bad.json["reason"] == "bad config"
    assert (await client.request("PATCH", "api/config/mine", body="not json")).status == 400
    assert (await client.get("api/config/no-such")).status == 404  # not \w+


async def test_config_merges_drop_ins(jupyter_dirs, make_server, make_client) -> None:  # noqa: F811
    drop_in = jupyter_dirs / "nbconfig" / "notebook.d"
    drop_in.mkdir(parents=True)
    (drop_in / "pkg.json").write_text('{"load_extensions": {"pkg/extension": true}, "x": 1}')
    (jupyter_dirs / "nbconfig" / "notebook.json").write_text('{"x": 2}')
    client = make_client(await make_server())
    section = (await client.get("api/config/notebook")).json
    assert section["load_extensions"]["pkg/extension"] is True and section["x"] == 2


async def test_resolve_path(make_server, make_client, root_dir) -> None:
    """Bad inputs: an absolute path outside the root, ``..``, a missing file, an unknown kernel."""
    (root_dir / "dir").mkdir()
    (root_dir / "dir" / "a.txt").write_text("x")
    client = make_client(await make_server())

    async def resolve(**params: str) -> dict:
        response = await client.get("api/resolvePath", params=params)
        assert response.status == 200
        return response.json

    assert (await resolve(path="dir/a.txt"))["resolved"] == [{"scope": "server", "path": "dir/a.txt"}]
    assert (await resolve(path=str(root_dir / "dir" / "a.txt")))["resolved"][0]["path"] == "dir/a.txt"
    assert (await resolve(path="/etc/passwd"))["resolved"] == []
    assert (await resolve(path="../root/dir/a.txt"))["resolved"] == []
    assert (await resolve(path="dir/missing.txt"))["resolved"] == []
    unknown = await resolve(path="dir", kernel="0000-00-00-00-0000")
    assert unknown["resolved"] == [{"scope": "server", "path": "dir"}]
    assert unknown["unresolved"][0]["scope"] == "kernel"
    assert (await client.get("api/resolvePath")).status == 400
