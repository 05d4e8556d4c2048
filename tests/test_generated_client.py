"""A client generated from api.yaml by openapi-python-client works against a real server.

The client is generated at test time, with ``--fail-on-warning`` (a schema the generator cannot
read, such as an array without ``items``, makes it drop a model and fail here), imported, and used
for round trips through contents (a file and a notebook), kernels (a real ipykernel: start, list,
get, interrupt, restart, shut down) and sessions (create, get, list, patch, delete). Every answer
must parse into the generated models (``Contents``, ``Notebook``, ``Kernel``, ``Session``...).

The generated functions are synchronous (httpx), so they run in a worker thread while the
server runs on the test's event loop.
"""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest
import yaml

from nbserver import Server
from tests.conftest import TOKEN
from tests.openapi import SPEC_FILE

pytest.importorskip("openapi_python_client", reason="openapi-python-client is not installed")

PACKAGE = "nbserver_generated_client"

#: The generator's configuration: no post hooks (they would run ruff, which the tests do not
#: need); ``*/*`` responses (downloads, kernelspec resources) read as bytes, which the
#: generator otherwise cannot read.
GENERATOR_CONFIG = """\
post_hooks: []
content_type_overrides:
  "*/*": application/octet-stream
"""

T = TypeVar("T")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], ModuleType]]:
    """Generate the client once for this module; yields ``load("api.kernels.start_kernel")``."""
    out = tmp_path_factory.mktemp("generated")
    config = out / "config.yaml"
    config.write_text(GENERATOR_CONFIG)
    command = [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(SPEC_FILE)]
    command += ["--output-path", str(out / PACKAGE), "--meta", "none", "--config", str(config)]
    command += ["--fail-on-warning"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"generation failed:\n{result.stdout}\n{result.stderr}"
    sys.path.insert(0, str(out))
    try:
        yield lambda name: importlib.import_module(f"{PACKAGE}.{name}")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a generated (blocking) function in a thread, so the server keeps serving."""
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))


def test_generation_keeps_every_model(generated: Callable[[str], ModuleType]) -> None:
    """Every object or enum schema of api.yaml became a model of the same name (none dropped;
    the others, such as ``UtcDateTime``, are plain values the generator inlines)."""
    models = generated("models")
    schemas = yaml.safe_load(SPEC_FILE.read_text())["components"]["schemas"]
    named = [name for name, schema in schemas.items() if schema.get("type") == "object" or "enum" in schema]
    assert {"Contents", "Notebook", "NotebookCell", "Kernel", "Session", "ContentsType"} <= set(named)
    assert [name for name in named if not hasattr(models, name)] == []


@pytest.fixture
def client(generated: Callable[[str], ModuleType], server: Server) -> Iterator[Any]:
    """The generated ``AuthenticatedClient`` for ``server`` (``Authorization: token ...``)."""
    module = generated("client")
    api = module.AuthenticatedClient(
        base_url=f"http://127.0.0.1:{server.port}",
        token=TOKEN,
        prefix="token",
        raise_on_unexpected_status=True,
        timeout=module.httpx.Timeout(120),
    )
    with api:
        yield api


async def test_round_trips(generated: Callable[[str], ModuleType], client: Any, root_dir: Path) -> None:
    m = generated("models")

    def op(name: str) -> Any:
        """The generated module of one operation, e.g. ``op("kernels.start_kernel")``."""
        return generated(f"api.{name}")

    # -- server ---------------------------------------------------------------------------
    status = await call(op("server.get_status").sync, client=client)
    assert isinstance(status, m.Status) and status.kernels == 0
    me = await call(op("identity.get_me").sync, client=client, permissions='{"contents": ["read"]}')
    assert isinstance(me, m.Me) and me.permissions["contents"] == ["read"]
    spec = await call(op("server.get_api_spec").sync, client=client)
    assert yaml.safe_load(spec) == yaml.safe_load(SPEC_FILE.read_text())

    # -- contents: a file --------------------------------------------------------------------
    save, get = op("contents.save_contents"), op("contents.get_contents")
    folder = m.SaveModel(type_=m.ContentsType.DIRECTORY)
    made = await call(save.sync_detailed, "d", client=client, body=folder)
    assert made.status_code == 201 and isinstance(made.parsed, m.Contents)
    text = m.SaveModel(type_=m.ContentsType.FILE, format_=m.ContentsFormat.TEXT, content="héllo\n")
    made = await call(save.sync_detailed, "d/a b.txt", client=client, body=text)
    assert made.status_code == 201 and made.parsed.path == "d/a b.txt" and made.parsed.content is None
    got = await call(get.sync, "d/a b.txt", client=client)
    assert isinstance(got, m.Contents) and got.type_ is m.ContentsType.FILE
    assert got.content == "héllo\n" and got.format_ is m.ContentsFormat.TEXT and got.mimetype == "text/plain"
    rename = m.RenameModel(path="d/b.txt")
    renamed = await call(op("contents.rename_contents").sync, "d/a b.txt", client=client, body=rename)
    assert isinstance(renamed, m.Contents) and renamed.path == "d/b.txt"
    listing = await call(get.sync, "d", client=client)
    assert isinstance(listing.content, list) and [e.name for e in listing.content] == ["b.txt"]
    assert all(isinstance(e, m.Contents) and e.content is None for e in listing.content)
    deleted = await call(op("contents.delete_contents").sync_detailed, "d/b.txt", client=client)
    assert deleted.status_code == 204 and not (root_dir / "d" / "b.txt").exists()

    # -- contents: a notebook ----------------------------------------------------------------
    create = m.CreateModel(type_=m.ContentsType.NOTEBOOK)
    untitled = await call(op("contents.create_in_contents").sync, "d", client=client, body=create)
    assert isinstance(untitled, m.Contents) and untitled.path == "d/Untitled.ipynb"
    cell = m.NotebookCell(cell_type="markdown", id="c1", metadata=m.NotebookCellMetadata(), source="# Title")
    notebook = m.Notebook(cells=[cell], nbformat=4, metadata=m.NotebookMetadata(), nbformat_minor=5)
    body = m.SaveModel(type_=m.ContentsType.NOTEBOOK, content=notebook)
    saved = await call(save.sync_detailed, "d/Untitled.ipynb", client=client, body=body)
    assert saved.status_code == 200 and saved.parsed.type_ is m.ContentsType.NOTEBOOK
    got = await call(get.sync, "d/Untitled.ipynb", client=client)
    assert isinstance(got.content, m.Notebook) and got.content.nbformat == 4
    assert got.content.cells == [cell] and got.format_ is m.ContentsFormat.JSON
    assert isinstance(got.content.cells[0], m.NotebookCell)
    checkpoints = await call(op("contents.list_checkpoints").sync, "d/Untitled.ipynb", client=client)
    assert [type(c) for c in checkpoints] == [m.Checkpoint]
    missing = await call(get.sync, "nope.txt", client=client)
    assert isinstance(missing, m.Error) and missing.message

    # -- kernels -------------------------------------------------------------------------------
    start = m.KernelStart(name="python3", path="d")
    kernel = await call(op("kernels.start_kernel").sync, client=client, body=start)
    assert isinstance(kernel, m.Kernel) and kernel.name == "python3"
    assert kernel.execution_state is m.KernelExecutionState.IDLE
    listed = await call(op("kernels.list_kernels").sync, client=client)
    assert [k.id for k in listed] == [kernel.id] and isinstance(listed[0], m.Kernel)
    assert (await call(op("kernels.get_kernel").sync, kernel.id, client=client)).id == kernel.id
    interrupted = await call(op("kernels.interrupt_kernel").sync_detailed, kernel.id, client=client)
    assert interrupted.status_code == 204
    restarted = await call(op("kernels.restart_kernel").sync, kernel.id, client=client)
    assert isinstance(restarted, m.Kernel) and restarted.id == kernel.id
    stopped = await call(op("kernels.shutdown_kernel").sync_detailed, kernel.id, client=client)
    assert stopped.status_code == 204
    gone = await call(op("kernels.get_kernel").sync, kernel.id, client=client)
    assert isinstance(gone, m.Error) and gone.reason == "no such kernel"

    # -- sessions ------------------------------------------------------------------------------
    request = m.SessionCreate(
        path="d/Untitled.ipynb",
        type_="notebook",
        name="Untitled.ipynb",
        kernel=m.SessionKernel(name="python3"),
    )
    session = await call(op("sessions.create_session").sync, client=client, body=request)
    assert isinstance(session, m.Session) and isinstance(session.kernel, m.Kernel)
    assert session.path == "d/Untitled.ipynb" and session.notebook.path == "d/Untitled.ipynb"
    assert (await call(op("sessions.get_session").sync, session.id, client=client)).id == session.id
    listed_sessions = await call(op("sessions.list_sessions").sync, client=client)
    assert [s.id for s in listed_sessions] == [session.id]
    change = m.SessionUpdate(name="renamed", path="d/renamed.ipynb")
    updated = await call(op("sessions.update_session").sync, session.id, client=client, body=change)
    assert isinstance(updated, m.Session) and (updated.name, updated.path) == ("renamed", "d/renamed.ipynb")
    assert updated.kernel.id == session.kernel.id
    ended = await call(op("sessions.delete_session").sync_detailed, session.id, client=client)
    assert ended.status_code == 204
    assert await call(op("sessions.list_sessions").sync, client=client) == []
    assert await call(op("kernels.list_kernels").sync, client=client) == []
