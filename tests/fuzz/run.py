"""Run the coverage-guided fuzzer (atheris, libFuzzer for Python) on cfgsync's readers.

Usage: ``python tests/fuzz/run.py [--seconds N] [TARGET ...]`` (``nox -s fuzz``); targets are the
names in :data:`targets.TARGETS`, all by default. Each target runs in a process of its own for N
seconds, starting from its committed seed corpus (``tests/fuzz/corpus/<target>/``, never written to);
what it learns goes to a scratch corpus. An input that crashes a target is saved to
``tests/fuzz/crashes/<target>/`` and the run fails: fix the bug, keep the file, and
``tests/fuzz/test_regressions.py`` replays it from then on.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
_CHILD = """
import sys
import atheris
with atheris.instrument_imports(include=["cfgsync"]):
    sys.path.insert(0, {here!r})
    import targets
target = targets.TARGETS[sys.argv[1]]
atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
atheris.Fuzz()
"""


def fuzz(target: str, seconds: int, scratch: Path) -> bool:
    """Fuzz one target; True when it found nothing."""
    crashes = HERE / "crashes" / target
    crashes.mkdir(parents=True, exist_ok=True)
    corpus = scratch / target
    corpus.mkdir()
    args = [
        f"-max_total_time={seconds}",
        "-max_len=8192",
        "-timeout=10",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={crashes}/",
        "-print_final_stats=1",
        str(corpus),
        str(HERE / "corpus" / target),
    ]
    code = _CHILD.format(here=str(HERE))
    # libFuzzer prints a line per new input; kept in a log so that a CI transcript, which keeps only
    # its tail, still shows the test session's failures. The log is printed when the target crashed.
    log = scratch / f"{target}.log"
    with log.open("wb") as out:
        done = subprocess.run(
            [sys.executable, "-c", code, target, *args], stdout=out, stderr=subprocess.STDOUT, check=False
        )
    lines = log.read_text(errors="replace").splitlines()
    runs = next((line for line in reversed(lines) if line.startswith("Done ")), "no summary")
    if done.returncode == 0:
        print(f"fuzz {target}: nothing found ({runs})", flush=True)
        return True
    print(f"fuzz {target}: CRASHED (exit {done.returncode}); the fuzzer's last lines:", flush=True)
    print("\n".join(lines[-60:]), flush=True)
    return False


def main() -> int:
    """Fuzz the named targets (all by default); the number that found a crash is the exit code."""
    sys.path.insert(0, str(HERE))
    targets = importlib.import_module("targets")  # beside this script, which is run as a file

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=30, help="how long each target runs")
    parser.add_argument("names", nargs="*", help=f"targets: {', '.join(targets.TARGETS)} (default: all)")
    options = parser.parse_args()
    unknown = sorted(set(options.names) - set(targets.TARGETS))
    if unknown:
        parser.error(f"unknown target {unknown[0]}; the targets are {', '.join(targets.TARGETS)}")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="cfgsync-fuzz-") as scratch:
        for name in options.names or list(targets.TARGETS):
            failed += not fuzz(name, options.seconds, Path(scratch))
    if failed:
        print(f"fuzz: {failed} target(s) crashed; inputs saved in {HERE / 'crashes'}", file=sys.stderr)
    return failed


if __name__ == "__main__":
    sys.exit(main())
