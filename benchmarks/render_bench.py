"""Render benchmark: 100 sources x 1,000 namespaces (100,000 copies), against the emitter floor.

Measures, in one run:
- the floor: PyYAML's libyaml dumper (CSafeDumper) dumping the same 100,000 manifests, in-process;
- ``cfgsync render`` to stdout (YAML), ``--format json``, and ``-o DIR`` (first write and an unchanged
  re-render), each as a fresh process: wall time and peak RSS;
- with ``--baseline-src DIR`` (the ``src/`` of another cfgsync version, e.g. from ``git archive``),
  ``-o DIR`` by that version too, alternating with this one, for a before/after in one run.
Prints a table and writes bench-results/render.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

import cfgsync

SOURCES = 100
NAMESPACES = 1000


def make_input(directory: Path, sources: int, namespaces: int) -> Path:
    """Write the benchmark input: namespaces with labels, and annotated sources of realistic size."""
    docs: list[dict[str, Any]] = []
    for i in range(namespaces):
        labels = {"team": f"t{i % 17}", "env": "prod" if i % 2 else "dev", "app": "kubed"}
        docs.append(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{i:04d}", "labels": labels}}
        )
    docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "platform"}})
    for i in range(sources):
        meta = {
            "name": f"shared-{i:03d}",
            "namespace": "platform",
            "labels": {"app.kubernetes.io/part-of": "platform", "tier": f"t{i % 3}"},
            "annotations": {"kubed.appscode.com/sync": "app=kubed", "owner": "platform-team"},
        }
        if i % 2:
            values = {f"key-{k}": f"secret value {i}-{k}" for k in range(4)}
            data = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
            docs.append(
                {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": data}
            )
        else:
            data = {f"setting-{k}": f"value {i}-{k}" for k in range(4)}
            data["ca.crt"] = "-----BEGIN CERTIFICATE-----\nMIIBexample\n-----END CERTIFICATE-----\n"
            docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})
    path = directory / "input.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return path


class _Null:
    def write(self, text: str) -> int:
        return len(text)


def floor_seconds(manifests: list[cfgsync.Manifest]) -> float:
    """Seconds PyYAML's C dumper takes to dump ``manifests`` (the fastest well-kept emitter)."""
    start = time.perf_counter()
    yaml.dump_all(manifests, _Null(), Dumper=yaml.CSafeDumper, sort_keys=False)
    return time.perf_counter() - start


def timed_run(args: list[str], stdout: Any, pythonpath: str | None = None) -> tuple[float, float]:
    """Run ``cfgsync ARGS`` in a fresh process: (wall seconds, peak RSS MiB of that process)."""
    code = (
        "import resource, sys, runpy; sys.argv = ['cfgsync'] + sys.argv[1:];\n"
        "try:\n    runpy.run_module('cfgsync', run_name='__main__')\n"
        "finally:\n    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    sys.stderr.write('PEAK_RSS_KB=%d\\n' % peak)"
    )
    env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath is not None else {})}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        env=env,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"cfgsync {' '.join(args)} failed:\n{done.stderr}")
    peak = next(
        int(line.split("=")[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KB=")
    )
    return wall, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=int, default=SOURCES)
    parser.add_argument("--namespaces", type=int, default=NAMESPACES)
    parser.add_argument("--results", type=Path, default=Path("bench-results"))
    parser.add_argument("--baseline-src", type=Path, default=None, help="src/ of the version to compare with")
    options = parser.parse_args()
    baseline: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = make_input(work, options.sources, options.namespaces)
        inventory = cfgsync.load_manifests([str(source)])
        plan = cfgsync.plan_inventory(inventory, plugins=cfgsync.load_plugin_hooks(only=set()))
        manifests = list(cfgsync.copy_manifests(plan))
        copies = len(manifests)
        floor = floor_seconds(manifests)
        del manifests, plan, inventory
        env_note = os.environ.get("CFGSYNC_PLUGINS")
        os.environ["CFGSYNC_PLUGINS"] = ""
        try:
            with open(os.devnull, "w") as sink:
                yaml_wall, yaml_rss = timed_run(["render", str(source)], sink)
                json_wall, json_rss = timed_run(["render", "--format", "json", str(source)], sink)
            if options.baseline_src is not None:
                old = work / "out-baseline"
                args = ["render", str(source), "-o", str(old), "--allow-secrets"]
                src = str(options.baseline_src.resolve())
                baseline["dir"], _ = timed_run(args, subprocess.DEVNULL, src)
                baseline["unchanged"], _ = timed_run(args, subprocess.DEVNULL, src)
            out = work / "out"
            dir_wall, dir_rss = timed_run(
                ["render", str(source), "-o", str(out), "--allow-secrets"], subprocess.DEVNULL
            )
            again_wall, again_rss = timed_run(
                ["render", str(source), "-o", str(out), "--allow-secrets"], subprocess.DEVNULL
            )
        finally:
            if env_note is None:
                del os.environ["CFGSYNC_PLUGINS"]
            else:
                os.environ["CFGSYNC_PLUGINS"] = env_note
    rows = {
        "copies": copies,
        "floor_pyyaml_c_seconds": round(floor, 3),
        "render_yaml_seconds": round(yaml_wall, 3),
        "render_yaml_vs_floor": round(yaml_wall / floor, 3),
        "render_yaml_peak_rss_mib": round(yaml_rss, 1),
        "render_json_seconds": round(json_wall, 3),
        "render_json_peak_rss_mib": round(json_rss, 1),
        "render_dir_seconds": round(dir_wall, 3),
        "render_dir_peak_rss_mib": round(dir_rss, 1),
        "render_dir_unchanged_seconds": round(again_wall, 3),
        "render_dir_unchanged_peak_rss_mib": round(again_rss, 1),
    }
    if baseline:
        rows["baseline_render_dir_seconds"] = round(baseline["dir"], 3)
        rows["baseline_render_dir_unchanged_seconds"] = round(baseline["unchanged"], 3)
    options.results.mkdir(parents=True, exist_ok=True)
    (options.results / "render.json").write_text(json.dumps(rows, indent=2) + "\n")
    for key, value in rows.items():
        print(f"{key:36} {value}")


if __name__ == "__main__":
    main()
