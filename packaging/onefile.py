"""Build nbserver as one executable file: a zipapp made with shiv (``dist/nbserver.pyz``).

    python packaging/onefile.py [--output dist/nbserver.pyz] [--extras nbconvert,terminals]

The file holds nbserver and every dependency (pure Python and compiled wheels for this
platform and Python version); it runs with the Python it was built with (``#!/usr/bin/env
python3``, or ``python3 dist/nbserver.pyz ...``), unpacking its compiled parts once into
``~/.shiv`` (``SHIV_ROOT`` moves that). Arguments are those of ``python -m nbserver``.

Kernels are those installed on the machine (``jupyter kernelspec list``): a kernelspec runs its
own interpreter, which must have ipykernel. The ``python3`` kernel that ipykernel adds by
default uses the interpreter running the zipapp.

Needs shiv (``pip install shiv``) and network or a pip cache for the dependencies. See
``docs/onefile.md``; ``tests/test_onefile.py`` builds it and runs a smoke test against it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build(output: Path, extras: str = "") -> Path:
    """Build the zipapp at ``output``; returns its path. Raises CalledProcessError."""
    output.parent.mkdir(parents=True, exist_ok=True)
    target = f"{REPO}[{extras}]" if extras else str(REPO)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "shiv",
            "--console-script",
            "nbserver",
            "--output-file",
            str(output),
            "--python",
            "/usr/bin/env python3",
            "--reproducible",
            "--compressed",
            target,
        ],
        check=True,
    )
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description="Build nbserver as one executable zipapp (shiv).")
    parser.add_argument("--output", type=Path, default=REPO / "dist" / "nbserver.pyz")
    parser.add_argument("--extras", default="", help="extras to include, e.g. nbconvert")
    args = parser.parse_args()
    print(build(args.output, args.extras))


if __name__ == "__main__":
    main()
