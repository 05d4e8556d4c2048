"""/api/clusters with a real IPython Parallel cluster of 2 engines, used from a real kernel.

Bad inputs tried: n = 0, n = "2", n = true, a non-object body, ?n=x, ?n=² (a digit int() refuses),
?n=0, ?n=-1, ?n=1.5, ?n=0x2; starting a running cluster, stopping a stopped one, an unknown
cluster id; ipyparallel not installed.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import psutil
import pytest

from tests import openapi
from tests.conftest import TOKEN, Client
from tests.services.kernels.wsclient import KernelSocket, stream_text


@pytest.fixture
def ipython_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An IPython directory of the test's own: the server, its kernels and engines read it."""
    directory = tmp_path / "ipython"
    (directory / "profile_work").mkdir(parents=True)
    monkeypatch.setenv("IPYTHONDIR", str(directory))
    return directory


def cluster_processes() -> list[psutil.Process]:
    """ipyparallel controllers and engines started by this process (the server runs in it)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if "ipyparallel.controller" in cmdline or "ipyparallel.engine" in cmdline:
            found.append(child)
    return found


async def no_cluster_processes(timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while cluster_processes():
        assert loop.time() < deadline, f"left running: {[p.cmdline() for p in cluster_processes()]}"
        await asyncio.sleep(0.2)


async def test_list_start_use_stop(make_server, make_client, ipython_dir: Path) -> None:
    client: Client = make_client(await make_server())
    listed = (await client.get("api/clusters")).json
    assert [c["id"] for c in listed] == ["default", "work"]
    assert all(c["status"] == "stopped" and c["n"] is None for c in listed)
    assert listed[1]["profile_dir"] == str(ipython_dir / "profile_work")

    r = await client.post("api/clusters/work/start", json={"n": 2})
    assert r.status == 200, r.text
    assert r.json["status"] == "running" and r.json["n"] == 2 and r.json["profile"] == "work"
    assert (await client.get("api/clusters/work")).json["status"] == "running"
    r = await client.post("api/clusters/work/start", json={"n": 2})
    assert r.status == 409 and r.json["reason"] == "cluster running"

    kernel = await client.post("api/kernels", json={})
    ws = await KernelSocket.connect(client.base.replace("http://", "ws://"), kernel.json["id"], TOKEN)
    code = (
        "import ipyparallel as ipp, os\n"
        "rc = ipp.Client(profile='work')\n"
        "rc.wait_for_engines(2, timeout=120)\n"
        "print('answers', rc[:].apply_sync(lambda: 6 * 7))\n"
        "print('pids', sorted(rc[:].apply_sync(os.getpid)))\n"
        "rc.close()\n"
    )
    outputs, reply = await ws.run(code, timeout=180)
    assert reply.content["status"] == "ok", reply.content
    text = stream_text(outputs)
    assert "answers [42, 42]" in text, text
    ws.close()
    engines = [p for p in cluster_processes() if "ipyparallel.engine" in p.cmdline()]  # not the nannies
    assert len(engines) == 2 and len(cluster_processes()) > 2, [p.cmdline() for p in cluster_processes()]

    r = await client.post("api/clusters/work/stop")
    assert r.status == 200 and r.json["status"] == "stopped" and r.json["n"] is None
    await no_cluster_processes()
    r = await client.post("api/clusters/work/stop")
    assert r.status == 409 and r.json["reason"] == "cluster stopped"


async def test_stopping_the_server_stops_its_clusters(make_server, make_client, ipython_dir: Path) -> None:
    client: Client = make_client(await make_server())
    r = await client.post("api/clusters/work/start", params={"n": "1"})
    assert r.status == 200 and r.json["n"] == 1, r.text
    assert cluster_processes()
    await client.server.stop()
    await no_cluster_processes()


async def test_bad_requests(make_server, make_client, ipython_dir: Path) -> None:
    client: Client = make_client(await make_server())
    for body in ({"n": 0}, {"n": "2"}, {"n": True}, [2]):
        r = await client.post("api/clusters/work/start", json=body)
        assert r.status == 400, (body, r.text)
    r = await client.post("api/clusters/work/start", params={"n": "x"})
    assert r.status == 400
    for method, path in (
        ("GET", "api/clusters/nope"),
        ("POST", "api/clusters/nope/start"),
        ("POST", "api/clusters/nope/stop"),
    ):
        r = await client.request(method, path)
        assert r.status == 404 and r.json["reason"] == "no such cluster"
    assert (await client.get("api/clusters", auth=None)).status == 403
    assert not cluster_processes()


async def test_without_ipyparallel(make_server, make_client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ipyparallel", None)
    client: Client = make_client(await make_server())
    assert (await client.get("api/clusters")).json == []
    r = await client.post("api/clusters/default/start", json={"n": 2})
    assert r.status == 404 and r.json["reason"] == "not installed"
    assert "pip install 'nbserver[parallel]'" in r.json["message"]


@pytest.mark.parametrize("query", ["²", "0", "-1", "1.5", "0x2"])
async def test_a_query_n_that_is_no_positive_integer_is_400(
    make_server, make_client, ipython_dir: Path, query: str
) -> None:
    """``?n=²`` passed ``str.isdigit`` and then made ``int()`` raise: a 500 'Unhandled error'.
    It is 400 ``"bad model"``, as the other numbers that are not positive integers are."""
    client: Client = make_client(await make_server())
    r = await client.post("api/clusters/work/start", params={"n": query})
    assert (r.status, r.json["reason"]) == (400, "bad model"), r.text
    assert not cluster_processes()


async def test_an_empty_query_n_and_an_integral_float_n_are_counts(
    make_server, make_client, ipython_dir: Path
) -> None:
    """``?n=`` (empty) was 400; the classic notebook's clusters API read it as no count (the
    default, one engine per CPU), and api.yaml allows it. A body ``{"n": 1.0}`` was 400; JSON
    Schema's integer 1 and 1.0 are the same number."""
    client: Client = make_client(await make_server())
    r = await client.post("api/clusters/work/start", params={"n": ""})
    assert r.status == 200, r.text
    assert r.json["n"] == os.cpu_count()
    assert (await client.post("api/clusters/work/stop")).status == 200
    await no_cluster_processes()
    r = await client.post("api/clusters/work/start", json={"n": 1.0})
    assert r.status == 200 and r.json["n"] == 1, r.text
    assert (await client.post("api/clusters/work/stop")).status == 200
    await no_cluster_processes()


async def test_the_spec_links_a_listed_cluster_by_its_id(make_server, make_client, ipython_dir: Path) -> None:
    """The path's ``cluster_id`` is a model's ``id``; the model's own ``cluster_id`` is
    ipyparallel's (``""`` for a profile's default cluster). Without links in api.yaml the
    fuzzer took the field of the same name, asked for ``/api/clusters/`` (the list, not one
    cluster) and POSTed ``/api/clusters//start``. api.yaml links every cluster operation by
    ``id``, and its ``cluster_id`` parameter refuses the empty string."""
    client: Client = make_client(await make_server())
    listed = (await client.get("api/clusters")).json
    links = openapi.SPEC["paths"]["/api/clusters"]["get"]["responses"]["200"]["links"]
    assert {link["operationId"] for link in links.values()} == {"getCluster", "startCluster", "stopCluster"}
    for link in links.values():
        assert link["parameters"] == {"cluster_id": "$response.body#/0/id"}
    r = await client.get(f"api/clusters/{listed[0]['id']}")
    assert r.status == 200 and r.json == listed[0]
    pattern = openapi.SPEC["components"]["parameters"]["ClusterId"]["schema"]["pattern"]
    assert listed[0]["cluster_id"] == "" and not re.search(pattern, "")
    assert all(re.search(pattern, c["id"]) for c in listed)
