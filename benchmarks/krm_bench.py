"""KRM function benchmark: ``cfgsync krm`` on a 10 MB ResourceList, against the YAML reader's floor.

The input is what a large kustomize build hands a function: 1,000 namespaces (half labelled
``env=prod``), 2,500 Deployments (the bulk of the bytes, passed through untouched), 1,000 ConfigMaps
with a few KB of data each, and 10 annotated sources that land in the 500 ``env=prod`` namespaces
(5,000 copies added), every item with kustomize's bookkeeping annotations.

Measures, in one run:
- the floor: libyaml (PyYAML's ``CSafeLoader``) reading the same text, in-process;
- the function in-process, as it runs and as when its output would not read back as its input
  (the whole list then written by libyaml's emitter);
- ``cfgsync krm`` in a fresh process: wall time and peak RSS;
- with ``--baseline-src DIR`` (a ``src/`` directory of another cfgsync version, e.g. from
  ``git archive``), the same command run from that source, for a before/after in one run.
Prints a table and writes bench-results/krm.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

NAMESPACES = 1000
DEPLOYMENTS = 2500
CONFIGMAPS = 1000
SOURCES = 10


def _bookkeeping(index: int, path: str) -> dict[str, str]:
    return {
        "config.kubernetes.io/index": "0",
        "internal.config.kubernetes.io/index": "0",
        "config.kubernetes.io/path": path,
        "internal.config.kubernetes.io/path": path,
        "config.k8s.io/id": str(index + 1),
    }


def _deployment(i: int) -> dict[str, Any]:
    name = f"app-{i:04d}"
    env = [{"name": f"SETTING_{k}", "value": f"value-{i}-{k}"} for k in range(20)]
    container = {
        "name": "main",
        "image": f"registry.example/team/{name}:1.{i % 40}.0",
        "args": ["--listen=:8080", "--log-format=json", "--config=/etc/app/config.yaml"],
        "env": env,
        "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 9090, "name": "metrics"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": f"ns-{i % NAMESPACES:04d}", "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": name}}],
                },
            },
        },
    }


def make_resource_list() -> str:
    """The benchmark's ResourceList as YAML text (about 10 MB)."""
    items: list[dict[str, Any]] = []
    for i in range(NAMESPACES):
        labels = {"env": "prod"} if i % 2 else {"env": "dev"}
        items.append(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{i:04d}", "labels": labels}}
        )
    items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "platform"}})
    items.extend(_deployment(i) for i in range(DEPLOYMENTS))
    for i in range(CONFIGMAPS):
        data = {
            f"file-{k}.conf": "\n".join(f"option_{j} = {i * k + j}" for j in range(40)) + "\n"
            for k in range(4)
        }
        items.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"app-{i:04d}", "namespace": f"ns-{i % NAMESPACES:04d}"},
                "data": data,
            }
        )
    for i in range(SOURCES):
        items.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": f"shared-{i}",
                    "namespace": "platform",
                    "annotations": {"kubed.appscode.com/sync": "env=prod"},
                },
                "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIBexample\n-----END CERTIFICATE-----\n"},
            }
        )
    for index, item in enumerate(items):
        meta = item["metadata"]
        path = f"{meta.get('namespace', 'cluster')}/{item['kind'].lower()}-{meta['name']}.yaml"
        meta["annotations"] = {**meta.get("annotations", {}), **_bookkeeping(index, path)}
    body = {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": items}
    return yaml.dump(body, Dumper=yaml.CSafeDumper, sort_keys=False, width=1 << 16)


def floor_seconds(text: str) -> float:
    """Seconds libyaml's C loader takes to read ``text`` (the fastest well-kept YAML reader)."""
    start = time.perf_counter()
    yaml.load(text, Loader=yaml.CSafeLoader)
    return time.perf_counter() - start


def in_process_seconds(text: str, *, emitted: bool) -> float:
    """Seconds the function takes in this process; ``emitted``: as when its output did not read back
    as its input, so that the whole list is written by the emitter (the safety net's worst case)."""
    from cfgsync._adapters import krm, krm_check
    from cfgsync._plugins.manager import load_plugins

    hooks = load_plugins(only=())
    real = krm_check.reads_back
    if emitted:
        krm_check.reads_back = lambda text, expected: False
    try:
        start = time.perf_counter()
        krm.run_function(text, hooks=hooks)
        return time.perf_counter() - start
    finally:
        krm_check.reads_back = real


def timed_krm(stdin: Path, pythonpath: str | None) -> tuple[float, float, int]:
    """Run ``cfgsync krm`` in a fresh process: (wall seconds, peak RSS MiB, bytes written)."""
    code = (
        "import resource, sys, runpy; sys.argv = ['cfgsync', 'krm'];\n"
        "try:\n    runpy.run_module('cfgsync', run_name='__main__')\n"
        "finally:\n    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    sys.stderr.write('PEAK_RSS_KB=%d\\n' % peak)"
    )
    env = {**os.environ, "CFGSYNC_PLUGINS": ""}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    with stdin.open("rb") as source, tempfile.TemporaryFile() as sink:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code],
            stdin=source,
            stdout=sink,
            stderr=subprocess.PIPE,
            check=False,
            env=env,
        )
        wall = time.perf_counter() - start
        written = sink.tell()
    stderr = done.stderr.decode(errors="replace")
    if done.returncode != 0:
        raise SystemExit(f"cfgsync krm failed:\n{stderr[-2000:]}")
    peak = next(int(line.split("=")[1]) for line in stderr.splitlines() if line.startswith("PEAK_RSS_KB="))
    return wall, peak / 1024, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=Path("bench-results"))
    parser.add_argument("--baseline-src", type=Path, default=None, help="src/ of the version to compare with")
    options = parser.parse_args()
    text = make_resource_list()
    rows: dict[str, object] = {"input_mib": round(len(text.encode()) / 2**20, 2)}
    rows["floor_libyaml_load_seconds"] = round(floor_seconds(text), 3)
    with tempfile.TemporaryDirectory() as tmp:
        stdin = Path(tmp) / "resource-list.yaml"
        stdin.write_text(text, encoding="utf-8")
        if options.baseline_src is not None:
            wall, rss, _ = timed_krm(stdin, str(options.baseline_src.resolve()))
            rows["baseline_krm_seconds"] = round(wall, 3)
            rows["baseline_krm_peak_rss_mib"] = round(rss, 1)
        wall, rss, written = timed_krm(stdin, None)
    # In this process last: a child started after it grew would report its peak RSS as its own.
    rows["in_process_seconds"] = round(in_process_seconds(text, emitted=False), 3)
    rows["in_process_emitted_seconds"] = round(in_process_seconds(text, emitted=True), 3)
    rows["krm_seconds"] = round(wall, 3)
    rows["krm_vs_floor"] = round(wall / float(rows["floor_libyaml_load_seconds"]), 2)  # type: ignore[arg-type]
    rows["krm_peak_rss_mib"] = round(rss, 1)
    rows["output_mib"] = round(written / 2**20, 2)
    if "baseline_krm_seconds" in rows:
        rows["speedup_vs_baseline"] = round(float(rows["baseline_krm_seconds"]) / wall, 1)  # type: ignore[arg-type]
    options.results.mkdir(parents=True, exist_ok=True)
    (options.results / "krm.json").write_text(json.dumps(rows, indent=2) + "\n")
    for key, value in rows.items():
        print(f"{key:36} {value}")


if __name__ == "__main__":
    main()
