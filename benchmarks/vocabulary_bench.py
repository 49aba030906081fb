"""Planner benchmark per vocabulary: 100 sources x 1,000 namespaces, in-process, the planner alone.

Each scenario plans 100 sources over 1,000 namespaces (about 50,000 copies, or 1,000 pulled targets)
with the built-in transforms, as every mode does:

- ``kubed``: ``kubed.appscode.com/sync: "app=kubed"`` (the baseline, and the only scenario an older
  cfgsync can run: compare with ``--baseline-src DIR``, the ``src/`` of another version);
- ``cfgsync``: ``cfgsync.io/namespaces`` globs (the same half of the namespaces, as in every push
  scenario);
- ``replicator``: ``replicate-to`` regexes (RE2) plus ``replicate-to-matching``;
- ``reflector``: ``reflection-auto-enabled`` within ``reflection-allowed-namespaces`` regexes;
- ``pull``: 1,000 targets, one per namespace, each asking one of the 100 sources, which allow ``ns-*``.

Prints a table (median of the rounds, seconds) and writes bench-results/vocabulary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SOURCES = 100
NAMESPACES = 1000
SCENARIOS = ("kubed", "cfgsync", "replicator", "reflector", "pull")
R = "replicator.v1.mittwald.de/"
F = "reflector.v1.k8s.emberstack.com/"


def source_annotations(scenario: str) -> dict[str, str]:
    """What each source carries in ``scenario``."""
    return {
        "kubed": {"kubed.appscode.com/sync": "app=kubed"},
        "cfgsync": {"cfgsync.io/namespaces": "ns-00*,ns-01*,ns-02*,ns-03*,ns-04*"},
        "replicator": {
            R + "replicate-to": "ns-00[0-9]+, ns-01.*, ns-0[23].*",
            R + "replicate-to-matching": "tier=4",
        },
        "reflector": {
            F + "reflection-allowed": "true",
            F + "reflection-allowed-namespaces": "ns-0[0-4].*",
            F + "reflection-auto-enabled": "true",
        },
        "pull": {"cfgsync.io/allow-pull-namespaces": "ns-*"},
    }[scenario]


def inputs(scenario: str) -> tuple[list[Any], list[Any], list[Any]]:
    """Sources (and targets), namespaces, existing objects."""
    from cfgsync.testing import config_map, namespace

    spaces = [
        namespace(
            f"ns-{i:04d}", {"app": "kubed" if i % 2 else "other", "tier": "4" if 400 <= i < 500 else "0"}
        )
        for i in range(NAMESPACES)
    ]
    spaces.append(namespace("platform"))
    data = {f"setting-{k}": f"value-{k}" for k in range(5)}
    sources = [
        config_map("platform", f"shared-{i:03d}", data, annotations=source_annotations(scenario))
        for i in range(SOURCES)
    ]
    targets = []
    if scenario == "pull":
        targets = [
            config_map(
                f"ns-{i:04d}",
                "app",
                annotations={"cfgsync.io/copy-from": f"platform/shared-{i % SOURCES:03d}"},
            )
            for i in range(NAMESPACES)
        ]
    objects = sources + targets
    return objects, spaces, objects


def measure(scenario: str, rounds: int) -> dict[str, Any]:
    """Median seconds of ``rounds`` plans, and how many copies a plan holds."""
    from cfgsync.testing import plan  # the built-in transforms alone, as in every mode

    sources, spaces, existing = inputs(scenario)
    times = []
    copies = 0
    for _ in range(rounds):
        started = time.perf_counter()
        result = plan(sources, spaces, existing)
        times.append(time.perf_counter() - started)
        copies = len(result.copies)
    return {"seconds": statistics.median(times), "copies": copies}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scenario", choices=SCENARIOS, action="append")
    parser.add_argument("--baseline-src", type=Path, help="src/ of another cfgsync: its kubed scenario too")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only (internal)")
    args = parser.parse_args()
    results = {name: measure(name, args.rounds) for name in args.scenario or SCENARIOS}
    if args.json:
        print(json.dumps(results))
        return 0
    if args.baseline_src is not None:
        env = {**os.environ, "PYTHONPATH": str(args.baseline_src.resolve())}
        other = subprocess.run(
            [sys.executable, __file__, "--json", "--scenario", "kubed", "--rounds", str(args.rounds)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        results["kubed (baseline)"] = json.loads(other.stdout)["kubed"]
    print(f"{'scenario':<18} {'copies':>8} {'median s':>9}")
    for name, found in results.items():
        print(f"{name:<18} {found['copies']:>8} {found['seconds']:>9.3f}")
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "vocabulary.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
