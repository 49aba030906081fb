"""Argo CD benchmark: an Application's manifests through Argo CD's own plugin server, vs the bare command.

Builds (or finds cached) Argo CD's ``argocd-cmp-server`` and the repo-server-like client
(tests/gitops/go/argocd), starts the server with deploy/argocd/plugin.yaml as the sidecar runs it, and
measures, for examples/basic as an Application (17 objects, 8 of them copies), ROUNDS times each:

- the GenerateManifest round trip as the repo server sees it (repository packed and streamed, the
  plugin server unpacking it and running ``cfgsync argocd generate``, the manifests back), from the
  client's own clock;
- the repo server's whole path for that Application: discovery (CheckPluginConfiguration and
  MatchRepository on the socket), then CheckPluginConfiguration and GenerateManifest;
- the floor: ``cfgsync argocd generate`` run directly in the Application's directory (a fresh Python
  process, as the plugin server starts one).

Prints a table and writes bench-results/argocd.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import gotools  # noqa: E402 -- the test support code lives under tests/
from gitops.argocd_cmp import ARGOCD, call, running_server  # noqa: E402


def summary(values: list[float]) -> dict[str, float]:
    """Median, min and max, in milliseconds."""
    return {
        "median_ms": round(statistics.median(values) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def bench(rounds: int) -> dict[str, Any]:
    """Run the measurements; the results as a JSON-ready mapping."""
    entry = gotools.ensure_module(ARGOCD)
    with tempfile.TemporaryDirectory(prefix="cfgsync-argocd-bench-") as tmp:
        work = Path(tmp)
        repo = work / "repo"
        app = repo / "shared-config"
        shutil.copytree(ROOT / "examples/basic", app)
        (app / "cfgsync.yaml").write_text("", encoding="utf-8")
        request = {
            "call": "GenerateManifest",
            "repoPath": str(repo),
            "appName": "shared-config",
            "namespace": "demo",
            "revision": "0123456789abcdef0123456789abcdef01234567",
            "source": {"repoURL": "https://git.example.invalid/config.git", "path": "shared-config"},
            "kubeVersion": "v1.34.2",
        }
        round_trip: list[float] = []
        whole_path: list[float] = []
        floor: list[float] = []
        env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin", "HOME": str(work)}
        with running_server(entry / "argocd-cmp-server", work / "sidecar") as server:
            for _ in range(rounds):
                reply = call(entry / "cmp-client", server, request)
                if reply.code != 0:
                    raise SystemExit(f"GenerateManifest failed: {reply.error}")
                timings = reply.body["timings"]
                round_trip.append(timings["generateManifestSeconds"])
                whole_path.append(timings["totalSeconds"])
                objects = len(reply.body["objects"])
                start = time.perf_counter()
                subprocess.run(
                    ["cfgsync", "argocd", "generate"], cwd=app, env=env, capture_output=True, check=True
                )
                floor.append(time.perf_counter() - start)
    return {
        "argocd_version": ARGOCD.version,
        "rounds": rounds,
        "objects": objects,
        "generate_manifest_round_trip": summary(round_trip),
        "repo_server_path_discovery_and_generate": summary(whole_path),
        "floor_cfgsync_argocd_generate_process": summary(floor),
        "round_trip_over_floor": round(statistics.median(round_trip) / statistics.median(floor), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "argocd.json")
    args = parser.parse_args()
    try:
        results = bench(args.rounds)
    except gotools.NoGoError as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
