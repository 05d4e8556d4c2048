"""The ``codecs`` workload: kernel-websocket codec micro-benchmarks, no server.

For each target, ``python -m benchmarks.codecs <target>`` runs in a fresh process of the target's
own interpreter (so a target installed in another virtualenv is measured with its own packages,
and nothing the suite did before in this process disturbs the timings). That process checks the
target's codec against the benchmark's reference framing, times it and prints JSON; see
:mod:`benchmarks.codecs` for what exactly is measured.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from .codecs import IMPLEMENTATIONS, messages
from .targets import TargetSpec, target_env
from .workloads import Measurements, NotApplicable, RunConfig, register_local

__all__: list[str] = []

TIMEOUT_S = 300.0
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # where `import benchmarks` works from


def _names() -> list[str]:
    return [
        f"codec_{framing}_{sample.name}_{direction}_mps"
        for sample in messages()
        for framing in ("v1", "legacy")
        for direction in ("encode", "decode")
    ]


@register_local(
    "codecs",
    "encode/decode of v1 and legacy (text; binary with buffers) websocket frames, in-process: msg/s",
)
def codecs(spec: TargetSpec, cfg: RunConfig) -> Measurements:
    if spec.name not in IMPLEMENTATIONS:
        na = NotApplicable(f"no codec adapter for {spec.name} in benchmarks/codecs.py")
        return dict.fromkeys(_names(), na)
    argv = [
        spec.python, "-m", "benchmarks.codecs", spec.name,
        "--batch-s", str(cfg.codec_batch_s),
        "--batches", str(cfg.codec_batches),
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix=f"nbbench-codecs-{spec.name}-") as tmp:
        env = target_env(spec, Path(tmp), extra_path=(_PACKAGE_ROOT,))
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
            timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"python -m benchmarks.codecs {spec.name} exited with {done.returncode}: {tail}")
    values = json.loads(done.stdout)["measurements"]
    return {str(name): float(value) for name, value in values.items()}
