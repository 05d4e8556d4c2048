"""Benchmark suite comparing nbserver with jupyter_server.

Run ``python -m benchmarks --help`` from the project root; see ``benchmarks/README.md``.

Layout:

* :mod:`benchmarks.targets` -- how to start each server (a fresh subprocess per run);
* :mod:`benchmarks.workloads` -- the workload registry (``name -> function(target) -> dict``);
* :mod:`benchmarks.report` -- summary statistics, the stdout table and the JSON file;
* :mod:`benchmarks.__main__` -- the command line and the interleaved run loop.

Only the standard library is used by the suite itself.
"""

from __future__ import annotations

__all__ = ["TOKEN"]

from .targets import TOKEN
