"""``python -m benchmarks``: run workloads against nbserver and its peers, interleaved.

For each repetition, every target is started fresh, the selected server workloads run on it in
registry order (``startup`` first), and it is stopped again: ``A, B, A, B, ...``. With
``--isolate`` each workload gets its own fresh process instead (slower: jupyter_server takes
seconds to start). Then the local workloads (``codecs``: no server) run once per target, in the
same interleaved order. A failed run is recorded (FAILED with its reason) and the loop goes on.
Progress goes to stderr; the table to stdout; ``--json`` writes raw samples.

Exit status: 0 when every nbserver run succeeded (peer failures only show up in the table),
1 if any nbserver run FAILED or counted errors (a ``..._errors`` measurement above 0), 2 on a
usage error, 130 after Ctrl-C (partial results are printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .report import (
    REFERENCE,
    RunRecord,
    machine_info,
    machine_line,
    print_table,
    summarize,
    write_json,
)
from .targets import TARGETS, TargetExitedError, TargetSpec, start_target
from .workloads import WORKLOADS, NotApplicable, RunConfig, counts_errors, unit_of

DEFAULT_REPEAT = 5
DEFAULT_REPEAT_QUICK = 1


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _python_option(value: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected TARGET=PATH, got {value!r}")
    return name.strip(), path.strip()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Compare nbserver with jupyter_server and jupyverse (medians, min-max, ratios).",
    )
    p.add_argument(
        "--targets",
        type=_csv,
        default=list(TARGETS),
        help=f"comma-separated targets (default: {','.join(TARGETS)}; those not installed are "
        "skipped with a note)",
    )
    p.add_argument(
        "--python",
        type=_python_option,
        action="append",
        default=[],
        metavar="TARGET=PATH",
        help="run TARGET with this interpreter instead of the current one (e.g. "
        "jupyverse=/opt/jupyverse-venv/bin/python); repeatable",
    )
    p.add_argument(
        "--workloads",
        type=_csv,
        default=None,
        help=f"comma-separated workloads (default: all: {','.join(WORKLOADS)})",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and one repetition: a smoke test of every workload, under a minute "
        "for nbserver + jupyter_server on 2 cores",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="N",
        help=f"repetitions per workload and target (default {DEFAULT_REPEAT}, "
        f"{DEFAULT_REPEAT_QUICK} with --quick)",
    )
    p.add_argument(
        "--isolate",
        action="store_true",
        help="a fresh server process per workload (default: one per repetition and target, "
        "shared by the selected workloads in registry order)",
    )
    p.add_argument("--json", type=Path, metavar="OUT", help="also write raw samples to OUT")
    p.add_argument("--keep-logs", type=Path, metavar="DIR", help="copy every server's stdout/stderr into DIR")
    p.add_argument("--list", action="store_true", help="list workloads and targets, then exit")
    return p


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _record(workload: str, target: str, rep: int, values: Mapping[str, object]) -> RunRecord:
    rec = RunRecord(workload, target, rep, ok=True, elapsed_s=0.0)
    for name, value in values.items():
        unit_of(name)  # validates the unit suffix
        if isinstance(value, NotApplicable):
            rec.not_applicable[name] = value.reason
        elif isinstance(value, (int, float)) and math.isfinite(value):
            rec.measurements[name] = float(value)
        else:
            raise ValueError(f"measurement {name!r} is not a finite number: {value!r}")
    return rec


def _failed(
    records: list[RunRecord],
    wl: str,
    target: str,
    rep: int,
    exc: BaseException,
    elapsed: float,
    context: str = "",
) -> None:
    rec = RunRecord(wl, target, rep, ok=False, elapsed_s=elapsed)
    rec.error = f"{type(exc).__name__}: {exc}" + (f" ({context})" if context else "")
    records.append(rec)
    _progress(f"  rep {rep} {target:15} {wl:10} FAILED: {rec.error} ({elapsed:.1f} s)")


def reference_failures(records: Sequence[RunRecord]) -> list[str]:
    """Why the run must exit 1: each nbserver run that FAILED or counted errors (a
    ``..._errors`` measurement above 0), as ``"workload: reason"``. Peers never count."""
    found = []
    for rec in records:
        if rec.target != REFERENCE:
            continue
        if not rec.ok:
            found.append(f"{rec.workload}: FAILED: {rec.error}")
        for name, value in rec.measurements.items():
            if counts_errors(name) and value > 0:
                found.append(f"{rec.workload}: {name} = {value:g}")
    return found


def run_local(records: list[RunRecord], wl: str, spec: TargetSpec, rep: int, cfg: RunConfig) -> None:
    """Run the local (server-less) workload ``wl`` for ``spec``; append its record. Never raises
    (except KeyboardInterrupt)."""
    local = WORKLOADS[wl].local
    assert local is not None
    t0 = time.perf_counter()
    try:
        rec = _record(wl, spec.name, rep, local(spec, cfg))
    except Exception as exc:
        _failed(records, wl, spec.name, rep, exc, time.perf_counter() - t0)
        return
    rec.elapsed_s = time.perf_counter() - t0
    records.append(rec)
    _progress(f"  rep {rep} {spec.name:15} {wl:10} ok ({rec.elapsed_s:.1f} s)")


def run_group(
    records: list[RunRecord],
    workloads: Sequence[str],
    spec: TargetSpec,
    rep: int,
    cfg: RunConfig,
    keep_logs: Path | None,
) -> None:
    """Start ``target`` fresh, run ``workloads`` on it in order, stop it; append to ``records``.

    Never raises (except KeyboardInterrupt, after stopping the server): a failure becomes a
    FAILED record and the next workload still runs.
    """
    first = len(records)
    target = spec.name

    def failed(wl: str, exc: BaseException, elapsed: float, context: str = "") -> None:
        _failed(records, wl, target, rep, exc, elapsed, context)

    def prepare(root: Path) -> None:  # fixtures of the selected workloads, before start-up
        for wl in workloads:
            setup = WORKLOADS[wl].setup
            if setup is not None:
                setup(root, cfg)

    t_spawn = time.perf_counter()
    try:
        with start_target(spec, keep_dir=keep_logs, prepare=prepare) as running:
            _progress(f"  rep {rep} {target:15} started in {running.startup_s:.2f} s (pid {running.pid})")
            for wl in workloads:
                t0 = time.perf_counter()
                try:
                    running.check_alive()
                    if wl != "startup":  # `startup` measures the fresh process as it is
                        running.wait_idle(cfg.settle_window_s, cfg.settle_quiet, timeout=cfg.settle_timeout_s)
                        t0 = time.perf_counter()
                    func = WORKLOADS[wl].func
                    assert func is not None
                    values = func(running, cfg)
                    rec = _record(wl, target, rep, values)
                except Exception as exc:
                    context = ""
                    if not isinstance(exc, TargetExitedError):
                        try:
                            running.check_alive()
                        except TargetExitedError as exited:
                            context = str(exited)
                    failed(wl, exc, time.perf_counter() - t0, context)
                    continue
                finally:
                    running.history.append(wl)
                rec.elapsed_s = time.perf_counter() - t0
                records.append(rec)
                _progress(f"  rep {rep} {target:15} {wl:10} ok ({rec.elapsed_s:.1f} s)")
    except Exception as exc:  # start-up (or stop) failed: every workload not run yet FAILED
        done = {r.workload for r in records[first:]}
        for wl in workloads:
            if wl not in done:
                failed(wl, exc, time.perf_counter() - t_spawn)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)

    specs = dict(TARGETS)
    for name, python in args.python:
        if name not in specs:
            parser.error(f"--python {name}=...: unknown target; known targets: {', '.join(TARGETS)}")
        specs[name] = specs[name].with_python(python)

    if args.list:
        for wl in WORKLOADS.values():
            print(f"workload {wl.name:12} {wl.description}")
        for spec in specs.values():
            why = spec.unavailable_reason()
            print(f"target   {spec.name:16} {spec.version() if why is None else 'unavailable: ' + why}")
        return 0

    unknown_t = [t for t in args.targets if t not in specs]
    chosen = args.workloads if args.workloads is not None else list(WORKLOADS)
    unknown_w = [w for w in chosen if w not in WORKLOADS]
    workloads = [w for w in WORKLOADS if w in chosen]  # registry order: startup comes first
    if unknown_t or unknown_w or not args.targets or not workloads:
        parser.error(
            f"unknown targets {unknown_t} / workloads {unknown_w}; "
            f"known targets: {', '.join(TARGETS)}; known workloads: {', '.join(WORKLOADS)}"
        )
    repeat = (
        args.repeat if args.repeat is not None else (DEFAULT_REPEAT_QUICK if args.quick else DEFAULT_REPEAT)
    )
    if repeat < 1:
        parser.error("--repeat must be at least 1")

    notes: list[str] = []
    targets: list[str] = []
    for name in dict.fromkeys(args.targets):  # de-duplicated, order kept
        why = specs[name].unavailable_reason()
        if why is None:
            targets.append(name)
        else:
            notes.append(f"target {name} skipped: {why}")
    cfg = RunConfig.for_mode(args.quick)
    info = machine_info({name: specs[name] for name in targets})

    print(machine_line(info), flush=True)
    for note in notes:
        print(f"note: {note}", flush=True)
    if not targets:
        print("no target can run; nothing to do", file=sys.stderr)
        return 1

    server_wls = [wl for wl in workloads if WORKLOADS[wl].needs_server]
    local_wls = [wl for wl in workloads if not WORKLOADS[wl].needs_server]
    groups = [[wl] for wl in server_wls] if args.isolate else [server_wls] if server_wls else []

    records: list[RunRecord] = []
    interrupted = False
    t_start = time.perf_counter()
    try:
        for rep in range(1, repeat + 1):
            for group in groups:
                for target in targets:  # interleaved: A, B, A, B, ...
                    run_group(records, group, specs[target], rep, cfg, args.keep_logs)
            for local in local_wls:
                for target in targets:
                    run_local(records, local, specs[target], rep, cfg)
    except KeyboardInterrupt:
        interrupted = True
        notes.append("interrupted by Ctrl-C: partial results")
        _progress("interrupted; reporting partial results")
    total_s = time.perf_counter() - t_start
    notes.append(f"total benchmark time {total_s:.1f} s")

    summaries = summarize(records, targets)
    print()
    print_table(summaries, targets, repeat=repeat)
    if interrupted:
        print("note: interrupted by Ctrl-C: partial results")
    print(f"total time {total_s:.1f} s ({'quick' if args.quick else 'full'} mode)")

    if args.json is not None:
        config = {
            "targets": targets,
            "pythons": {name: specs[name].python for name in targets},
            "workloads": workloads,
            "repeat": repeat,
            "quick": args.quick,
            "isolate": args.isolate,
            "run_config": dataclasses.asdict(cfg),
            "argv": list(sys.argv if argv is None else argv),
        }
        write_json(
            args.json,
            machine=info,
            config=config,
            notes=notes,
            records=records,
            summaries=summaries,
        )
        print(f"wrote {args.json}")

    if interrupted:
        return 130
    failures = reference_failures(records)
    for failure in failures:
        _progress(f"{REFERENCE} failed: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
