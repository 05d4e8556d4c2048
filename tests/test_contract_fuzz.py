"""Contract fuzzing: schemathesis, every phase, against a live server's ``/api/spec.yaml``.

One test runs ``schemathesis run`` (its CLI, in a subprocess) against a real server on a
temporary root, with the installed ``python3`` kernelspec, so kernels and sessions start real
ipykernel kernels. All four phases run (examples, coverage, fuzzing, stateful) with every check,
and the run must end with zero failures: no 5xx, no undocumented status, header or body, no
schema-valid request refused for its shape, no schema-violating request accepted, nothing used
after it was deleted, nothing missing after it was created. ``POST /api/shutdown`` would end
the server: tests/services/api/test_api.py exercises it instead.

What the run is told, and why (the rest is schemathesis' defaults):

* A schema-valid request may still be refused for what it meets on the server, never for its
  own shape: a ``type`` that is not what is at the path, a file where a directory is needed, a
  hidden path or the root, a non-empty directory, a chunk out of order, a session switched to
  a kernel that does not run, a file that is not a notebook (any more) or not text; a session
  whose kernel died (410). The ``filter_failure`` hook below lets such an answer through the
  ``positive_data_acceptance`` check by its ``reason`` (:data:`STATE_REASONS`); a 400 for the
  request's own shape (``"bad model"``, ``"bad json"``, ``"bad format"`` on a PUT...) still fails.
  The websocket routes (those that document a 101) need an upgrade, which schemathesis' HTTP
  client cannot make: their 400 to a plain GET is documented and let through the same way.
* A JSON ``null`` body is read as no body, as jupyter_server does. api.yaml cannot say so
  without breaking generated clients (openapi-python-client then sends its "unset" marker as
  the body of every call that omits it), so the same hook lets a ``null`` body's acceptance
  through the ``negative_data_rejection`` check; any other wrong body must still be refused.
* Kernel starts are slow: the operations that start, restart or stop kernels get fewer examples,
  and only bad requests in the coverage phase, so that the run stays within about a minute.
* A cluster start runs an ipyparallel controller and engines (as many as asked): it gets only
  bad requests and no stateful chain, and the server's IPython directory is the test's own.

Failures print schemathesis' report, with a curl command per failure. ``NBSERVER_FUZZ_SEED``
replays another seed, ``NBSERVER_FUZZ_EXAMPLES`` sets the examples per operation (8; try 50 for
a deeper run), ``NBSERVER_FUZZ_ARGS`` adds ``schemathesis run`` options (``--include-tag
contents``), and ``NBSERVER_FUZZ_REPORT`` names a file to keep the whole report in.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from nbserver import Server
from tests.conftest import TOKEN, Client

REPO = Path(__file__).resolve().parent.parent
SEED = int(os.environ.get("NBSERVER_FUZZ_SEED", "20240501"))
EXAMPLES = int(os.environ.get("NBSERVER_FUZZ_EXAMPLES", "8"))

#: ``reason`` values of a 4xx that depends on the server's state, not on the request's shape
STATE_REASONS = frozenset(
    {
        "bad type",  # the path holds another type than the request names (or the root)
        "not a directory",  # POST into a file
        "hidden",  # a path component starts with "."
        "root",  # the path is the root ("", "/", ".") where it cannot be
        "directory not empty",
        "bad chunk",  # a chunk that does not follow the previous one
        "no such kernel",  # PATCH /api/sessions with the id of a kernel that does not run
        "kernel gone",  # DELETE /api/sessions/{id} after its kernel was shut down (410)
        "bad cwd",  # POST /api/terminals with a cwd that is no directory (yet)
        "bad path",  # a name longer than the filesystem allows, or a move into itself
    }
)
#: and those that depend on the state only when reading: what a stored file holds
READ_STATE_REASONS = frozenset({"bad format", "bad notebook"})

CONFIG = """\
workers = 1
seed = {seed}
request-timeout = 120
headers = {{ Authorization = "token {token}" }}

[generation]
max-examples = {examples}
database = "none"

[[operations]]
include-operation-id = "shutdownServer"
enabled = false

# `/api/contents/{{path}}/trust` is also `/api/contents/{{path}}` of a file named `trust`: a method
# other than POST reaches that file (as api.yaml says), so it is not a 405
[[operations]]
include-operation-id = "trustNotebook"
[operations.checks.unsupported_method]
enabled = false

# every accepted request of these starts, restarts or stops a real kernel (seconds each): few
# examples, and the coverage phase (which is not bounded by max-examples) tries only bad requests
[[operations]]
include-operation-id = ["startKernel", "restartKernel", "shutdownKernel", "createSession", "updateSession"]
[operations.generation]
max-examples = {kernel_examples}
[operations.phases.coverage.generation]
mode = "negative"

# an accepted start runs an ipyparallel controller and `n` engines (any n the schema allows): only
# bad requests, and no stateful chain (list -> start of the `default` cluster)
[[operations]]
include-operation-id = "startCluster"
[operations.generation]
mode = "negative"
[operations.phases.stateful]
enabled = false
"""

# -- hooks, loaded by the schemathesis process only (SCHEMATHESIS_HOOKS names this module) -----

if os.environ.get("SCHEMATHESIS_HOOKS") == __name__:
    import schemathesis

    @schemathesis.hook
    def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
        """Keep every failure but those the module docstring explains."""
        if failure.code == "ST201":  # negative_data_rejection
            return case.body is not None
        if failure.code != "ST202" or response.status_code not in (400, 410):
            return True
        if "101" in case.operation.definition.raw["responses"]:  # a websocket
            return False
        try:
            reason = json.loads(response.content).get("reason")
        except (ValueError, AttributeError):
            return True
        return reason not in (STATE_REASONS | READ_STATE_REASONS if case.method == "GET" else STATE_REASONS)


# -- the run -------------------------------------------------------------------------------------


async def run_schemathesis(server: Server, workdir: Path) -> tuple[int, str]:
    config = workdir / "schemathesis.toml"
    config.write_text(
        CONFIG.format(seed=SEED, token=TOKEN, examples=EXAMPLES, kernel_examples=max(1, EXAMPLES // 4))
    )
    env = {**os.environ, "SCHEMATHESIS_HOOKS": __name__, "PYTHONPATH": str(REPO)}
    url = f"http://127.0.0.1:{server.port}{server.config.base_url}api/spec.yaml"
    command = ["-m", "schemathesis.cli", "--config-file", str(config), "run", "--no-color", url]
    command += shlex.split(os.environ.get("NBSERVER_FUZZ_ARGS", ""))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=workdir,
        env=env,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace")


async def test_schemathesis_finds_nothing(
    make_server: Callable[..., Awaitable[Server]],
    root_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every phase and check of schemathesis; zero failures, zero errors."""
    pytest.importorskip("schemathesis", reason="schemathesis is not installed (it needs Python 3.11+)")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))  # clusters: not the user's profiles
    server = await make_server(delete_to_trash=False)
    (root_dir / "dir").mkdir()
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (root_dir / "dir" / "Untitled.ipynb").write_text(json.dumps(notebook))  # api.yaml's example path
    (root_dir / "a.txt").write_text("hello\n")
    (root_dir / "b.bin").write_bytes(b"\xff\xfe\x00")
    returncode, report = await run_schemathesis(server, tmp_path)
    if os.environ.get("NBSERVER_FUZZ_REPORT"):
        Path(os.environ["NBSERVER_FUZZ_REPORT"]).write_text(report)
    assert returncode == 0, report[-30000:]
    summary = report[report.index("Test Phases:") :]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):  # each ran, and passed
        assert f"✅ {phase}" in summary, summary


# -- regressions found by the contract work -----------------------------------------------------


async def test_put_of_a_directory_model_is_201_new_or_existing(client: Client, root_dir: Path) -> None:
    """jupyter_server 2.21 answers 201 to a PUT of ``{"type": "directory"}`` whether or not the
    directory exists (it asks ``file_exists``, which is False for directories), the root
    included. nbserver answered 200 for an existing one, which api.yaml did not list for the root."""
    (root_dir / "old").mkdir()
    for path in ("api/contents/new", "api/contents/new", "api/contents/old", "api/contents"):
        r = await client.request("PUT", path, json={"type": "directory"})
        assert r.status == 201, (path, r.status)
        assert r.json["type"] == "directory" and r.json["content"] is None
    assert (root_dir / "new").is_dir()


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("TRACE", "api/status", "GET, OPTIONS"),  # a method tornado does not know
        ("PUT", "api/status", "GET, OPTIONS"),  # a method the route does not have
        ("DELETE", "api/kernels", "GET, POST, OPTIONS"),
        ("TRACE", "api/contents/a.txt", "GET, POST, DELETE, PATCH, PUT, OPTIONS"),
        ("POST", "tree", "GET, OPTIONS"),  # a page
        ("TRACE", "static/nope.js", "GET, HEAD"),  # tornado's static file handler
        ("TRACE", "api/kernels/00000000-0000-0000-0000-000000000000/channels", "GET"),  # websocket
    ],
)
async def test_405_says_which_methods_are_allowed(client: Client, method: str, path: str, allow: str) -> None:
    """RFC 9110 (15.5.6): a 405 response MUST carry ``Allow``. schemathesis' unsupported_method
    check sends undeclared methods; nbserver answered 405 without the header (jupyter_server
    does the same)."""
    r = await client.request(method, path, validate=False)
    assert r.status == 405
    assert r.headers.get("Allow") == allow


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"copy_from": "a.txt", "ext": {}}, "bad model"),
        ({"copy_from": "a.txt", "type": 5}, "bad model"),
        ({"copy_from": "a.txt", "type": "symlink"}, "bad type"),
        ({"ext": 0}, "bad model"),  # falsy non-strings were read as ""
        ({"type": []}, "bad model"),
    ],
)
async def test_post_checks_type_and_ext_with_copy_from_too(
    client: Client, root_dir: Path, body: dict[str, Any], reason: str
) -> None:
    """A copy ignores ``type`` and ``ext``, but a malformed one was accepted when ``copy_from`` was
    given (the fuzzer sent ``{"copy_from": ..., "ext": {}}``), and a falsy one (``0``, ``[]``,
    ``{}``) always: api.yaml types them whatever else the body holds, so they are checked first."""
    (root_dir / "a.txt").write_text("x")
    r = await client.post("api/contents", json=body)
    assert (r.status, r.json["reason"]) == (400, reason)
    assert sorted(p.name for p in root_dir.iterdir()) == ["a.txt"]


@pytest.mark.parametrize(
    "notebook",
    [
        {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["a", 1]}]},
        {
            "cells": [
                {"cell_type": "code", "metadata": {}, "outputs": [{"output_type": "stream", "text": [2]}]}
            ]
        },
        {"cells": [{"cell_type": "raw"}]},  # no metadata
    ],
)
async def test_reading_a_stored_notebook_nbformat_cannot_read_is_400(
    client: Client, root_dir: Path, notebook: dict[str, Any]
) -> None:
    """A ``.ipynb`` written as a plain file (PUT ``type: file``, or by anything else) whose
    structure nbformat cannot read (a source line that is not a string...) was a 500 'Unhandled
    error' when read as a notebook. It is 400 ``"bad notebook"``, as a save of it is (and as
    jupyter_server's 'Unreadable Notebook'); read as a file it is its text."""
    text = json.dumps({"metadata": {}, "nbformat": 4, "nbformat_minor": 5, **notebook})
    r = await client.request(
        "PUT", "api/contents/x.ipynb", json={"type": "file", "format": "text", "content": text}
    )
    assert r.status == 201
    r = await client.get("api/contents/x.ipynb")
    assert (r.status, r.json["reason"]) == (400, "bad notebook")
    r = await client.get("api/contents/x.ipynb", params={"type": "file"})
    assert r.status == 200 and r.json["content"] == text


async def test_a_name_too_long_for_the_filesystem_is_400_bad_path(client: Client) -> None:
    """A path component over the filesystem's limit (255 bytes) was a 400 without a ``reason``
    (clients switch on it); it is ``"bad path"``. ``/files`` answers it with its HTML 400."""
    name = "a" * 300
    r = await client.get(f"api/contents/{name}")
    assert (r.status, r.json["reason"]) == (400, "bad path")
    r = await client.request("PUT", f"api/contents/{name}", json={"type": "directory"})
    assert (r.status, r.json["reason"]) == (400, "bad path")
    assert (await client.get(f"files/{name}")).status == 400


@pytest.mark.parametrize("body", [b" ", b"\r", b"\n\t "])
async def test_a_body_of_whitespace_is_not_an_empty_body(client: Client, body: bytes) -> None:
    """A body of only whitespace is not JSON (the fuzzer sent ``\\r``): it was read as an empty
    body, so PUT created an untitled file. It is 400 ``"bad json"``, as jupyter_server answers."""
    headers = {"Content-Type": "application/json"}
    r = await client.request("PUT", "api/contents", body=body, headers=headers)
    assert (r.status, r.json["reason"]) == (400, "bad json")
    r = await client.post("api/kernels", body=body, headers=headers)
    assert (r.status, r.json["reason"]) == (400, "bad json")
    assert (await client.get("api/contents")).json["content"] == []


@pytest.mark.parametrize(
    "permissions",
    ['{"\\ud800": []}', '{"contents": ["\\udebd"]}', '{"a": ["x\\udc00"]}'],
)
async def test_permissions_that_are_not_text_are_400(client: Client, permissions: str) -> None:
    """``/api/me?permissions=`` with a lone surrogate escaped in its JSON (valid JSON syntax, but
    no Unicode text) was echoed into the answer, which then was not valid JSON (RFC 8259; the
    fuzzer's JSON parser refused it). It is 400 ``"bad permissions"``; a pair is fine."""
    r = await client.get("api/me", params={"permissions": permissions})
    assert (r.status, r.json["reason"]) == (400, "bad permissions")
    r = await client.get("api/me", params={"permissions": '{"\\ud83d\\ude00": ["read"]}'})
    assert r.status == 200 and r.json["permissions"]["\U0001f600"] == ["read"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"path": "a.ipynb", "type": "notebook", "name": "\\udc00"}',
        b'{"path": "\\ud800.ipynb", "type": "notebook"}',
        b'{"path": "a.ipynb", "type": "\\udfff"}',
        b'{"notebook": {"path": "a\\udc00.ipynb"}}',
    ],
)
async def test_session_fields_that_are_not_text_are_400(client: Client, body: bytes) -> None:
    """A lone surrogate escaped in a session's JSON (``"\\udc00"``: valid JSON, no Unicode text)
    was a 500 'Unhandled error' (SQLite cannot encode it), after a kernel had been started for
    the session, which was left running without one. It is 400 ``"bad model"``, and nothing starts."""
    headers = {"Content-Type": "application/json"}
    r = await client.post("api/sessions", body=body, headers=headers)
    assert (r.status, r.json["reason"]) == (400, "bad model")
    assert (await client.get("api/kernels")).json == []
