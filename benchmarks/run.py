"""Run every benchmark (``benchmarks/*_bench.py``), one process each; results land in bench-results/.

Usage: ``nox -s bench`` or ``python benchmarks/run.py [NAME ...]`` (NAME = ``render``, ``live``, ...).
Benchmarks are not part of the test run: they take minutes and measure the machine as much as the code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    """Run the named benchmarks (all when none are named); return the number that failed."""
    scripts = sorted(HERE.glob("*_bench.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removesuffix("_bench") in names]
    failed = 0
    for script in scripts:
        print(f"== {script.stem.removesuffix('_bench')}", flush=True)
        failed += subprocess.run([sys.executable, str(script)], check=False).returncode != 0
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
