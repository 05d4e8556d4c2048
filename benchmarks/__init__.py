"""Benchmark suite comparing nbserver with jupyter_server and jupyverse.

Run ``python -m benchmarks --help`` from the project root; see ``benchmarks/README.md``.

Layout:

* :mod:`benchmarks.targets` -- how to start each server (a fresh subprocess per run) and its quirks;
* :mod:`benchmarks.workloads` -- the workload registry (``name -> function(target) -> dict``) and
  the sizes; the workloads themselves there and in ``workloads_*.py``;
* :mod:`benchmarks.kernelclient` -- the kernel websocket client and the direct-ZMQ floor;
* :mod:`benchmarks.loadstats` -- bookkeeping of the load workloads (errors, replies awaited, CPU);
* :mod:`benchmarks.poller` -- the ``GET /api/status`` poller of ``status_under_load`` (own process);
* :mod:`benchmarks.framing` -- the benchmark's own reference websocket framing;
* :mod:`benchmarks.codecs` -- the codec micro-benchmarks (``python -m benchmarks.codecs``);
* :mod:`benchmarks.report` -- summary statistics, the stdout table and the JSON file;
* :mod:`benchmarks.__main__` -- the command line and the interleaved run loop.

The runner and the HTTP workloads use only the standard library.
"""

from __future__ import annotations

__all__ = ["TOKEN"]

from .targets import TOKEN
