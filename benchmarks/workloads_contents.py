"""Contents workloads: a big directory listing, a big notebook, concurrent file operations.

The fixtures (a directory of small files, a ~10 MB notebook, one directory per client) are
written into the target's root directory by each workload's ``setup`` *before* the server
starts, so all targets serve identical trees that no server has cached. Everything else goes
over HTTP only. The notebook is generated once per benchmark process, deterministically.

Request bodies that create or save a file (POST, PUT) also carry the file's ``path``: the URL
is enough for jupyter_server and nbserver (they ignore the key there, as JupyterLab sends it in
its own ``newUntitled`` requests), while jupyverse requires it.
"""

from __future__ import annotations

import base64
import functools
import importlib
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from .fixtures import random_png
from .targets import RunningTarget
from .workloads import Measurements, RunConfig, call, call_json, register, run_clients

__all__ = ["make_notebook"]

LISTING_DIR = "listing"
NOTEBOOK = "bench.ipynb"
FILEOPS_DIR = "fileops"


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn(*args)
    return (time.perf_counter() - t0) * 1000.0, value


# --------------------------------------------------------------------------------------------
# listing


def _listing_setup(root: Path, cfg: RunConfig) -> None:
    folder = root / LISTING_DIR
    folder.mkdir()
    for i in range(cfg.listing_files):
        (folder / f"file-{i:05d}.txt").write_bytes(b"%d\n" % i)


@register(
    "listing",
    "GET /api/contents/<dir> (content=1) of a directory of 10,000 small files (quick: 1,000)",
    setup=_listing_setup,
)
def listing(target: RunningTarget, cfg: RunConfig) -> Measurements:
    path = f"/api/contents/{LISTING_DIR}?type=directory&content=1"
    conn = target.connection(timeout=120.0)
    try:
        call_json(conn, target, "GET", path)  # warm-up (page cache, imports, first-use code)
        samples, body = [], b""
        cpu0 = target.cpu_seconds()
        for _ in range(cfg.listing_requests):
            ms, (status, body) = _timed(call, conn, target, "GET", path)
            if status != 200:
                raise RuntimeError(f"GET {path} -> HTTP {status}: {body[:200]!r}")
            samples.append(ms)
        cpu = target.cpu_seconds() - cpu0
    finally:
        conn.close()
    entries = json.loads(body)["content"]
    if len(entries) != cfg.listing_files:
        raise RuntimeError(f"listing has {len(entries)} entries, expected {cfg.listing_files}")
    return {
        "listing_median_ms": statistics.median(samples),
        "listing_server_cpu_ms": cpu / cfg.listing_requests * 1000.0,
        "listing_response_kib": len(body) / 1024.0,
    }


# --------------------------------------------------------------------------------------------
# notebook


@functools.lru_cache(maxsize=2)
def make_notebook(cells: int) -> bytes:
    """An nbformat 4.5 notebook of ``cells`` code cells (ids ``cell-NNNN``), each with a stream
    output and a display_data of text/plain + a ~3 KB base64 PNG; ~10 MB for 2,000 cells.
    Deterministic: the same bytes for the same ``cells`` (seeded RNG, fixed ids)."""
    nbformat: Any = importlib.import_module("nbformat")  # untyped: used through Any
    v4: Any = importlib.import_module("nbformat.v4")

    rng = random.Random(20_000)
    nb = v4.new_notebook()
    for i in range(cells):
        source = f"# cell {i}\nx_{i} = sum(range({i}))\nprint(x_{i})\ndisplay(Image(data=png_{i}))"
        cell = v4.new_code_cell(source, id=f"cell-{i:04d}", execution_count=i + 1)
        image = base64.b64encode(random_png(rng)).decode("ascii")
        cell.outputs = [
            v4.new_output("stream", name="stdout", text=f"{i * (i - 1) // 2}\n"),
            v4.new_output(
                "display_data",
                data={"text/plain": f"<IPython.core.display.Image object {i}>", "image/png": image},
                metadata={},
            ),
        ]
        nb.cells.append(cell)
    if (nb.nbformat, nb.nbformat_minor) != (4, 5):
        raise RuntimeError(f"expected nbformat 4.5, got {nb.nbformat}.{nb.nbformat_minor}")
    text: str = nbformat.writes(nb)  # validates
    return text.encode("utf-8")


def _notebook_setup(root: Path, cfg: RunConfig) -> None:
    (root / NOTEBOOK).write_bytes(make_notebook(cfg.notebook_cells))


@register(
    "notebook",
    "GET and PUT (type=notebook) of a ~10 MB notebook of 2,000 cells with outputs and PNGs "
    "(quick: ~1 MB, 200 cells)",
    setup=_notebook_setup,
)
def notebook(target: RunningTarget, cfg: RunConfig) -> Measurements:
    get_path = f"/api/contents/{NOTEBOOK}?type=notebook&content=1"
    put_path = f"/api/contents/{NOTEBOOK}"
    n = cfg.notebook_requests
    conn = target.connection(timeout=120.0)
    try:
        # The first GET is timed on its own: a server that imports nbformat (and compiles its
        # schema validator) lazily pays for that here, not in its start-up time.
        first_ms, (status, body) = _timed(call, conn, target, "GET", get_path)
        if status != 200:
            raise RuntimeError(f"GET {get_path} -> HTTP {status}: {body[:200]!r}")
        get_ms, put_ms = [], []
        cpu0 = target.cpu_seconds()
        for _ in range(n):
            ms, (status, body) = _timed(call, conn, target, "GET", get_path)
            if status != 200:
                raise RuntimeError(f"GET {get_path} -> HTTP {status}: {body[:200]!r}")
            get_ms.append(ms)
        cpu1 = target.cpu_seconds()
        content = json.loads(body)["content"]
        if isinstance(content, str):  # jupyverse: the notebook as a JSON string, whatever `format`
            content = json.loads(content)
        if len(content["cells"]) != cfg.notebook_cells:
            raise RuntimeError(f"notebook has {len(content['cells'])} cells, expected {cfg.notebook_cells}")
        model = json.dumps(
            {"type": "notebook", "format": "json", "path": NOTEBOOK, "content": content}
        ).encode()
        for _ in range(n):
            ms, (status, reply) = _timed(call, conn, target, "PUT", put_path, model)
            if status != 200:
                raise RuntimeError(f"PUT {put_path} -> HTTP {status}: {reply[:200]!r}")
            put_ms.append(ms)
        cpu2 = target.cpu_seconds()
    finally:
        conn.close()
    return {
        "nb_first_get_ms": first_ms,
        "nb_get_median_ms": statistics.median(get_ms),
        "nb_get_server_cpu_ms": (cpu1 - cpu0) / n * 1000.0,
        "nb_get_response_kib": len(body) / 1024.0,
        "nb_put_median_ms": statistics.median(put_ms),
        "nb_put_server_cpu_ms": (cpu2 - cpu1) / n * 1000.0,
        "nb_put_request_kib": len(model) / 1024.0,
    }


# --------------------------------------------------------------------------------------------
# fileops

_OPS = ("create", "save", "rename", "delete")


def _fileops_setup(root: Path, cfg: RunConfig) -> None:
    for c in range(cfg.fileops_clients):
        (root / FILEOPS_DIR / f"c{c}").mkdir(parents=True)


def _fileops_round(
    conn: Any, target: RunningTarget, client: int, rnd: int, lat: dict[str, list[float]]
) -> None:
    """POST an untitled file into the client's directory, PUT text, PATCH-rename, DELETE."""
    folder = f"{FILEOPS_DIR}/c{client}"
    body = {"type": "file", "ext": ".txt", "path": folder}
    ms, model = _timed(call_json, conn, target, "POST", f"/api/contents/{folder}", body, (201,))
    lat["create"].append(ms)
    path = model["path"]
    text = f"client {client} round {rnd}\n" * 20
    ms, _ = _timed(
        call_json,
        conn,
        target,
        "PUT",
        f"/api/contents/{path}",
        {"type": "file", "format": "text", "path": path, "content": text},
        (200, 201),
    )
    lat["save"].append(ms)
    new_path = f"{folder}/renamed-{rnd}.txt"
    ms, _ = _timed(call_json, conn, target, "PATCH", f"/api/contents/{path}", {"path": new_path})
    lat["rename"].append(ms)
    ms, _ = _timed(call_json, conn, target, "DELETE", f"/api/contents/{new_path}", None, (204,))
    lat["delete"].append(ms)


@register(
    "fileops",
    "8 concurrent clients: create (POST untitled) + save (PUT) + rename (PATCH) + delete rounds",
    setup=_fileops_setup,
)
def fileops(target: RunningTarget, cfg: RunConfig) -> Measurements:
    clients, rounds = cfg.fileops_clients, cfg.fileops_rounds
    latencies: list[dict[str, list[float]]] = [{op: [] for op in _OPS} for _ in range(clients)]

    def warmup(conn: Any, c: int) -> None:  # untimed
        _fileops_round(conn, target, c, -1, {op: [] for op in _OPS})

    def work(conn: Any, c: int) -> None:
        for r in range(rounds):
            _fileops_round(conn, target, c, r, latencies[c])

    wall, cpu = run_clients(target, clients, warmup, work)
    ops = clients * rounds * len(_OPS)
    leftover = [p.name for p in (target.root_dir / FILEOPS_DIR).rglob("*") if p.is_file()]
    if leftover:
        raise RuntimeError(f"{len(leftover)} files left after the rounds, e.g. {leftover[:3]}")
    results: Measurements = {
        f"fileops_c{clients}_ops": ops / wall,
        "fileops_server_cpu_per_op_us": cpu / ops * 1e6,
    }
    for op in _OPS:
        results[f"fileops_{op}_median_ms"] = statistics.median(x for lat in latencies for x in lat[op])
    return results
