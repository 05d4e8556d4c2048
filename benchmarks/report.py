"""Summaries, the stdout table and the JSON file.

Each run (one workload x one repetition x one target, on a fresh server process) becomes a
:class:`RunRecord`. :func:`summarize` groups the samples per (workload, measurement, target) into
median / min / max, and computes for every peer the ratio against the reference target
(nbserver) oriented so that **> 1 means nbserver is better**:

* lower-is-better measurements (ms, µs, s, MiB, KiB): ``peer / nbserver``;
* higher-is-better measurements (req/s, op/s, msg/s, count): ``nbserver / peer``.

Ratios are computed from the medians only; with a noisy machine, read anything within about
±10 % of 1.0 as "no difference" unless the min-max ranges do not overlap.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .targets import TargetSpec
from .workloads import higher_is_better, unit_of

__all__ = [
    "REFERENCE",
    "RunRecord",
    "Summary",
    "machine_info",
    "machine_line",
    "print_table",
    "summarize",
    "write_json",
]

REFERENCE = "nbserver"
SCHEMA_VERSION = 1


@dataclass
class RunRecord:
    """One workload run on one fresh target process."""

    workload: str
    target: str
    rep: int
    ok: bool
    elapsed_s: float
    measurements: dict[str, float] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)  # name -> reason
    error: str | None = None


@dataclass
class Cell:
    samples: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # reasons, one per failed repetition
    na_reason: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


@dataclass
class Summary:
    workload: str
    measurement: str  # "" for a workload where every target failed before measuring anything
    cells: dict[str, Cell]
    ratios: dict[str, float | None]  # peer -> ratio (> 1: reference better)


def _ratio(name: str, ref: float | None, peer: float | None) -> float | None:
    if ref is None or peer is None or ref <= 0 or peer <= 0:
        return None
    return ref / peer if higher_is_better(name) else peer / ref


def summarize(records: Sequence[RunRecord], targets: Sequence[str]) -> list[Summary]:
    """Group records into one :class:`Summary` per (workload, measurement), in first-seen order."""
    workloads: list[str] = []
    names: dict[str, list[str]] = {}
    for rec in records:
        if rec.workload not in names:
            workloads.append(rec.workload)
            names[rec.workload] = []
        for name in [*rec.measurements, *rec.not_applicable]:
            if name not in names[rec.workload]:
                names[rec.workload].append(name)

    out: list[Summary] = []
    for wl in workloads:
        wl_records = [r for r in records if r.workload == wl]
        for name in names[wl] or [""]:
            cells = {t: Cell() for t in targets}
            for rec in wl_records:
                cell = cells.setdefault(rec.target, Cell())
                if not rec.ok:
                    cell.failures.append(rec.error or "unknown error")
                elif name in rec.measurements:
                    cell.samples.append(rec.measurements[name])
                elif name in rec.not_applicable:
                    cell.na_reason = rec.not_applicable[name]
            ratios: dict[str, float | None] = {}
            if name and REFERENCE in cells:
                for peer in targets:
                    if peer != REFERENCE:
                        ratios[peer] = _ratio(name, cells[REFERENCE].median, cells[peer].median)
            out.append(Summary(wl, name, cells, ratios))
    return out


# --------------------------------------------------------------------------------------------
# Text output


def fmt(value: float) -> str:
    a = abs(value)
    if a >= 1000:
        return f"{value:,.0f}"
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


class _Footnotes:
    def __init__(self) -> None:
        self.items: list[str] = []

    def ref(self, text: str) -> int:
        if text not in self.items:
            self.items.append(text)
        return self.items.index(text) + 1


def _cell_text(cell: Cell, target: str, workload: str, notes: _Footnotes) -> str:
    if cell.samples:
        text = f"{fmt(statistics.median(cell.samples))} [{fmt(min(cell.samples))}-{fmt(max(cell.samples))}]"
        if cell.failures:
            n = notes.ref(f"{target}/{workload} failed {len(cell.failures)}x; first: {cell.failures[0]}")
            text += f" !{n}"
        return text
    if cell.failures:
        n = notes.ref(f"{target}/{workload}: {cell.failures[0]}")
        return f"FAILED [{n}]"
    if cell.na_reason is not None:
        n = notes.ref(f"{target}: {cell.na_reason}")
        return f"n/a [{n}]"
    return "-"


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def print_table(
    summaries: Sequence[Summary],
    targets: Sequence[str],
    *,
    repeat: int,
    stream: TextIO | None = None,
) -> None:
    stream = stream or sys.stdout
    notes = _Footnotes()
    peers = [t for t in targets if t != REFERENCE] if REFERENCE in targets else []
    header = ["workload", "measurement", "unit"]
    header += [f"{t} median [min-max]" for t in targets]
    header += [f"{p}/{REFERENCE}" for p in peers]
    rows: list[list[str]] = []
    for s in summaries:
        row = [s.workload, s.measurement or "(all)", unit_of(s.measurement) if s.measurement else ""]
        row += [_cell_text(s.cells[t], t, s.workload, notes) for t in targets]
        for p in peers:
            r = s.ratios.get(p)
            row.append(f"{r:.2f}x" if r is not None else "-")
        rows.append(row)

    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    numeric_from = 3

    def line(cols: list[str]) -> str:
        parts = [
            c.rjust(w) if i >= numeric_from and cols is not header else c.ljust(w)
            for i, (c, w) in enumerate(zip(cols, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    print(line(header), file=stream)
    print("  ".join("-" * w for w in widths), file=stream)
    prev = None
    for row in rows:
        shown = list(row)
        if row[0] == prev:
            shown[0] = ""
        prev = row[0]
        print(line(shown), file=stream)
    print(file=stream)
    print(f"median [min-max] over {repeat} repetition(s), each on a fresh server process.", file=stream)
    if peers:
        print(
            f"ratio = peer vs {REFERENCE} on medians, oriented so that >1 means {REFERENCE} is "
            f"faster/smaller (req/s: {REFERENCE}/peer, everything else: peer/{REFERENCE}).",
            file=stream,
        )
    for i, text in enumerate(notes.items, 1):
        print(f"[{i}] {_short(text)}", file=stream)


# --------------------------------------------------------------------------------------------
# Machine description


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def machine_info(targets: Mapping[str, TargetSpec]) -> dict[str, Any]:
    """CPU, cores, platform, Python, and the versions of tornado and of every target (asked of
    the target's own interpreter when it runs in another one: ``interpreters``)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "packages": {"tornado": _version("tornado")}
        | {spec.distribution: spec.version() for spec in targets.values()},
        "interpreters": {name: spec.python for name, spec in targets.items() if not spec.in_process},
    }


def machine_line(info: dict[str, Any]) -> str:
    cores = f"{info['cores']} cores"
    if info["usable_cores"] != info["cores"]:
        cores += f" ({info['usable_cores']} usable)"
    pkgs = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    line = (
        f"{info['cpu']}, {cores}, {info['platform']}, "
        f"{info['python_implementation']} {info['python']}, {pkgs}"
    )
    for name, python in info["interpreters"].items():
        line += f"; {name} runs in {python}"
    return line


# --------------------------------------------------------------------------------------------
# JSON output


def _json_number(value: float | None) -> float | None:
    return value if value is not None and value == value else None  # NaN -> null


def write_json(
    path: Path,
    *,
    machine: dict[str, Any],
    config: dict[str, Any],
    notes: Sequence[str],
    records: Sequence[RunRecord],
    summaries: Sequence[Summary],
) -> None:
    """Raw samples (every run) plus the summaries the table was printed from."""
    summary_json = []
    for s in summaries:
        cells = {}
        for t, c in s.cells.items():
            cells[t] = {
                "median": _json_number(c.median),
                "min": min(c.samples) if c.samples else None,
                "max": max(c.samples) if c.samples else None,
                "samples": c.samples,
                "failures": c.failures,
                "not_applicable": c.na_reason,
            }
        summary_json.append(
            {
                "workload": s.workload,
                "measurement": s.measurement,
                "unit": unit_of(s.measurement) if s.measurement else None,
                "higher_is_better": higher_is_better(s.measurement) if s.measurement else None,
                "targets": cells,
                "ratios_vs_" + REFERENCE: s.ratios,
            }
        )
    doc = {
        "schema": SCHEMA_VERSION,
        "reference": REFERENCE,
        "ratio_definition": (
            "peer/reference for lower-is-better, reference/peer for higher-is-better; "
            ">1 means the reference is better"
        ),
        "machine": machine,
        "config": config,
        "notes": list(notes),
        "runs": [asdict(r) for r in records],
        "summary": summary_json,
    }
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
