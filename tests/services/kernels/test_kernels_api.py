"""/api/kernels and /api/kernelspecs over real HTTP with real ipykernel kernels.

Bad inputs tried: unknown kernelspec, non-object body, invalid JSON, non-string name/path,
a kernel_id that is not a UUID, a path outside the root, unknown kernel ids on every route.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.conftest import TOKEN, Client
from tests.services.kernels.wsclient import KernelSocket, stream_text

MISSING = "00000000-0000-0000-0000-000000000000"


def ws_base(client: Client) -> str:
    return client.base.replace("http://", "ws://")


async def start(client: Client, **body) -> dict:
    r = await client.post("api/kernels", json=body)
    assert r.status == 201, r.text
    assert r.headers["Location"] == f"/api/kernels/{r.json['id']}"
    return r.json


async def test_kernelspecs(client: Client) -> None:
    r = await client.get("api/kernelspecs")
    assert r.status == 200
    assert r.json["default"] == "python3"
    spec = r.json["kernelspecs"]["python3"]
    assert spec["spec"]["language"] == "python"
    assert spec["resources"]["logo-64x64"] == "/kernelspecs/python3/logo-64x64.png"
    one = await client.get("api/kernelspecs/python3")
    assert one.json == spec
    logo = await client.get("kernelspecs/python3/logo-64x64.png")
    assert logo.status == 200 and logo.body.startswith(b"\x89PNG")
    assert logo.headers["Content-Type"] == "image/png"
    for path in (
        "api/kernelspecs/nope",
        "kernelspecs/nope/logo-64x64.png",
        "kernelspecs/python3/missing.png",
    ):
        r = await client.get(path)
        assert r.status == 404, path
        assert r.json["reason"] in ("no such kernelspec", "no such resource")


async def test_start_get_list_delete(client: Client) -> None:
    assert (await client.get("api/kernels")).json == []
    kernel = await start(client)
    assert kernel["name"] == "python3" and kernel["execution_state"] == "idle"
    assert kernel["connections"] == 0
    assert (await client.get(f"api/kernels/{kernel['id']}")).json["id"] == kernel["id"]
    assert [k["id"] for k in (await client.get("api/kernels")).json] == [kernel["id"]]
    status = (await client.get("api/status")).json
    assert status["kernels"] == 1
    assert (await client.request("DELETE", f"api/kernels/{kernel['id']}")).status == 204
    assert (await client.get(f"api/kernels/{kernel['id']}")).status == 404
    assert (await client.get("api/status")).json["kernels"] == 0


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"name": "no-such-kernel"}, 404, "no such kernelspec"),
        ({"name": 3}, 400, "bad model"),
        ({"path": ["a"]}, 400, "bad model"),
        ({"kernel_id": "not-a-uuid"}, 400, "bad kernel id"),
        ({"path": "../outside"}, 404, "outside root"),
    ],
)
async def test_bad_start_requests(client: Client, body, status, reason) -> None:
    r = await client.post("api/kernels", json=body)
    assert r.status == status and r.json["reason"] == reason
    assert (await client.get("api/kernels")).json == []


@pytest.mark.parametrize("raw", [b"[]", b"{", b'"python3"'])
async def test_bad_start_bodies(client: Client, raw: bytes) -> None:
    r = await client.post("api/kernels", body=raw)
    assert r.status == 400


async def test_unknown_kernel_ids_are_404(client: Client) -> None:
    for method, path in [("GET", ""), ("DELETE", ""), ("POST", "/interrupt"), ("POST", "/restart")]:
        r = await client.request(method, f"api/kernels/{MISSING}{path}")
        assert r.status == 404, (method, path)
        assert r.json["reason"] == "no such kernel"


async def test_kernel_id_reuse(client: Client) -> None:
    wanted = "12345678-1234-1234-1234-123456789abc"
    kernel = await start(client, kernel_id=wanted)
    assert kernel["id"] == wanted
    again = await start(client, kernel_id=wanted)
    assert again["id"] == wanted
    assert len((await client.get("api/kernels")).json) == 1


async def test_kernel_starts_in_the_notebooks_directory(client: Client, root_dir) -> None:
    (root_dir / "sub").mkdir()
    kernel = await start(client, path="sub/nb.ipynb")
    ws = await KernelSocket.connect(ws_base(client), kernel["id"], TOKEN)
    outputs, reply = await ws.run("import os; print(os.getcwd())")
    assert reply.content["status"] == "ok"
    assert stream_text(outputs).strip() == str(root_dir / "sub")
    ws.close()


async def test_interrupt_a_running_cell(client: Client) -> None:
    kernel = await start(client)
    ws = await KernelSocket.connect(ws_base(client), kernel["id"], TOKEN)
    msg_id = await ws.execute("import time; print('sleeping', flush=True); time.sleep(60)")
    # interrupt once the cell runs: a SIGINT between "busy" and the code is not the cell's
    await ws.until(lambda m: m.msg_type == "stream" and m.parent_header.get("msg_id") == msg_id)
    assert (await client.post(f"api/kernels/{kernel['id']}/interrupt")).status == 204
    seen = await ws.until(
        lambda m: m.channel == "shell" and m.parent_header.get("msg_id") == msg_id, timeout=20
    )
    assert seen[-1].content["status"] == "error"
    assert seen[-1].content["ename"] == "KeyboardInterrupt"
    ws.close()


async def test_restart_waits_for_the_kernel_and_clears_state(client: Client) -> None:
    kernel = await start(client)
    ws = await KernelSocket.connect(ws_base(client), kernel["id"], TOKEN)
    await ws.run("x = 1")
    r = await client.post(f"api/kernels/{kernel['id']}/restart")
    assert r.status == 200
    assert r.json["execution_state"] == "idle" and r.json["id"] == kernel["id"]
    _, reply = await ws.run("x")
    assert reply.content["status"] == "error" and reply.content["ename"] == "NameError"
    ws.close()


def kernel_processes() -> set[int]:
    """Live ipykernel processes started by this process (the in-process server's kernels)."""
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                state, ppid = f.read().rpartition(b")")[2].split()[:2]
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if int(ppid) == os.getpid() and state != b"Z" and b"ipykernel_launcher" in cmdline:
            found.add(int(entry.name))
    return found


async def until_kernel_processes(count: int, timeout: float = 20.0) -> set[int]:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(pids := kernel_processes()) != count:
        assert asyncio.get_running_loop().time() < deadline, f"{len(pids)} kernel processes, not {count}"
        await asyncio.sleep(0.1)
    return pids


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts processes in /proc")
async def test_two_restarts_at_once_are_one_restart(client: Client) -> None:
    """A double click on Restart: both answer 200 once the kernel is back, and one process runs
    (two at once answered 500 "invalid state" and could leave a process no kernel owned)."""
    kernel = await start(client)
    ws = await KernelSocket.connect(ws_base(client), kernel["id"], TOKEN)
    await ws.run("x = 1")
    path = f"api/kernels/{kernel['id']}/restart"
    first, second = await asyncio.gather(client.post(path), client.post(path))
    assert (first.status, second.status) == (200, 200), (first.text, second.text)
    assert first.json["execution_state"] == second.json["execution_state"] == "idle"
    _, reply = await ws.run("x")
    assert reply.content["ename"] == "NameError"
    await until_kernel_processes(1)
    ws.close()
    assert (await client.request("DELETE", f"api/kernels/{kernel['id']}")).status == 204
    await until_kernel_processes(0)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts processes in /proc")
async def test_delete_during_a_restart_is_404_for_the_restart(client: Client) -> None:
    kernel = await start(client)
    restart = asyncio.ensure_future(client.post(f"api/kernels/{kernel['id']}/restart"))
    await asyncio.sleep(0.4)  # inside the restart: it takes a second or so
    assert not restart.done()
    assert (await client.request("DELETE", f"api/kernels/{kernel['id']}")).status == 204
    r = await restart
    assert (r.status, r.json["reason"]) == (404, "no such kernel"), r.text
    await until_kernel_processes(0)
    assert (await client.get("api/kernels")).json == []


async def test_idle_kernels_are_culled(make_server, make_client) -> None:
    server = await make_server(cull_idle_timeout=1, cull_interval=0.3)
    client = make_client(server)
    kernel = await start(client)
    for _ in range(50):
        await asyncio.sleep(0.2)
        if (await client.get(f"api/kernels/{kernel['id']}")).status == 404:
            break
    assert (await client.get("api/kernels")).json == []


async def test_the_idle_clock_starts_when_a_long_silent_cell_ends(make_server, make_client) -> None:
    """A cell that runs longer than cull_idle_timeout without output, its tab then closed: the
    kernel is culled only once it has been idle that long (it was culled as the cell ended)."""
    server = await make_server(cull_idle_timeout=3, cull_interval=0.3)
    client = make_client(server)
    kernel = await start(client)
    url = f"api/kernels/{kernel['id']}"
    ws = await KernelSocket.connect(ws_base(client), kernel["id"], TOKEN)
    await ws.execute("import time; time.sleep(5)")
    await asyncio.sleep(1)
    ws.close()  # the tab is closed while the cell runs: no connection keeps the kernel
    while (r := await client.get(url)).json["execution_state"] != "idle":
        assert r.status == 200, "culled while busy"
        await asyncio.sleep(0.1)
    ended = asyncio.get_running_loop().time()
    while asyncio.get_running_loop().time() - ended < 2:
        assert (await client.get(url)).status == 200, "culled right after the cell ended"
        await asyncio.sleep(0.1)
    for _ in range(100):  # and it is culled after the timeout
        if (await client.get(url)).status == 404:
            break
        await asyncio.sleep(0.1)
    assert (await client.get("api/kernels")).json == []


async def test_server_stop_leaves_no_kernel_process(make_server, make_client) -> None:
    server = await make_server()
    client = make_client(server)
    kernel = await start(client)
    ws = await KernelSocket.connect(ws_base(client), kernel["id"], TOKEN)
    outputs, _ = await ws.run("import os; print(os.getpid())")
    pid = int(stream_text(outputs))
    ws.close()
    await server.stop()
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"kernel process {pid} outlived the server")


async def test_fifty_concurrent_starts_all_work(client: Client) -> None:
    """jupyter_server and jupyverse sometimes lose a kernel to 'Address already in use' here."""
    responses = await asyncio.gather(*(client.post("api/kernels", json={}) for _ in range(50)))
    assert [r.status for r in responses] == [201] * 50
    ids = {r.json["id"] for r in responses}
    assert len(ids) == 50
    sockets = [await KernelSocket.connect(ws_base(client), kid, TOKEN) for kid in ids]
    replies = await asyncio.gather(*(ws.run("print(1 + 1)", timeout=120) for ws in sockets))
    assert all(stream_text(outputs) == "2\n" for outputs, _ in replies)
    for ws in sockets:
        ws.close()
