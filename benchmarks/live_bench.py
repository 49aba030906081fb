"""Live benchmark: ``cfgsync run`` on a real API server, against the floor of plain apply calls.

On a fresh control plane (tests/controlplane) with NAMESPACES namespaces and UNRELATED unrelated
100 KB Secrets (Helm-release-like), measures in one run:

- cold start: SOURCES sources already annotated, ``cfgsync run`` started, time until the last of the
  SOURCES x NAMESPACES copies exists;
- a no-op resync: write calls made by one full periodic resync (must be 0);
- propagation: one source updated UPDATES times, time from each update to the last of its NAMESPACES
  copies updated (p50, p95), seen by a watch;
- peak RSS of the ``cfgsync run`` process over all of the above;
- forged objects: FORGED ConfigMaps of 100 KB carrying all three origin labels with another cluster name,
  and FORGED with the controller's own, created by someone else; how much the controller's peak RSS
  grows over that phase (its high-water mark is reset first, through /proc/PID/clear_refs);
- the floor: the same number of writes from a plain loop with the same concurrency over the same
  transport cfgsync uses (the official client's ApiClient, JSON bodies, no model classes): POSTs of the
  copies cfgsync creates (it creates with POST, see docs/apply.md) and server-side applies of them; and,
  in turns with cfgsync's updates (so both see the same load), server-side applies of one source's
  NAMESPACES copies exactly as cfgsync writes them (same labels, annotations and data), timed per round
  for p50 and p95. (The official client's typed
  API methods cost more client CPU than that on a 2-core machine, so they would not be a floor.)

Prints a table and writes bench-results/live.json. ``--namespaces``, ``--sources`` etc. shrink it for a
quick run. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes import client

from cfgsync._adapters.kube import connection
from cfgsync._adapters.kube.connection import METADATA, Kube

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from controlplane import ControlPlane  # noqa: E402 -- the test harness lives under tests/

CLUSTER = "bench"
FORGED_PAYLOAD = 75 * 1024  # bytes of random data, 100 KB once base64-encoded
LABEL = "cfgsync-bench"
SYNC = "kubed.appscode.com/sync"
ORIGIN_CLUSTER = "kubed.appscode.com/origin.cluster"
ORIGIN_NAME = "kubed.appscode.com/origin.name"
OK_RECONCILES = 'cfgsync_reconciles_total{result="ok"}'


def parallel(calls: Iterable[Callable[[], object]], concurrency: int) -> float:
    """Run the calls with ``concurrency`` threads; return the wall time."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(c) for c in calls]:
            future.result()
    return time.monotonic() - started


def setup(core: Any, namespaces: int, unrelated: int, concurrency: int) -> list[str]:
    """Namespaces labelled for the sources, and large unrelated Secrets spread over them."""
    names = [f"bench-{i:04d}" for i in range(namespaces)]
    bodies = [{"metadata": {"name": n, "labels": {LABEL: "yes"}}} for n in [*names, "bench-sources"]]
    parallel(
        (functools.partial(core.create_namespace, b, _preload_content=False) for b in bodies), concurrency
    )
    payload = base64.b64encode(os.urandom(75 * 1024)).decode()  # 100 KB once encoded
    secrets_ = [
        (
            names[i % namespaces],
            {
                "metadata": {
                    "name": f"sh.helm.release.v1.app{i}.v1",
                    "labels": {"owner": "helm", "name": f"app{i}"},
                },
                "type": "helm.sh/release.v1",
                "data": {"release": payload},
            },
        )
        for i in range(unrelated)
    ]
    parallel(
        (
            functools.partial(core.create_namespaced_secret, ns, b, _preload_content=False)
            for ns, b in secrets_
        ),
        concurrency,
    )
    return names


def source_body(name: str, value: str) -> dict[str, Any]:
    """A source selecting every benchmark namespace."""
    return {
        "metadata": {"name": name, "annotations": {SYNC: f"{LABEL}=yes"}, "labels": {"app": "bench"}},
        "data": {"value": value, "config.yaml": "key: value\n" * 20},
    }


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Controller:
    """``cfgsync run`` as a subprocess, with its metrics and peak RSS."""

    def __init__(self, kubeconfig: Path, *, resync: str, concurrency: int, log: Path) -> None:
        self.port = free_port()
        self._log = log.open("w")
        self.started = time.monotonic()
        argv = [
            sys.executable, "-m", "cfgsync", "run",
            "--kubeconfig", str(kubeconfig),
            "--cluster-name", CLUSTER,
            "--no-leader-elect",
            "--resync-period", resync,
            "--write-concurrency", str(concurrency),
            "--health-address", "127.0.0.1",
            "--health-port", str(self.port),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
        )

    def metrics(self) -> dict[str, float]:
        """Every sample, summed over identical names."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as response:
                text = response.read().decode()
        except OSError:
            return {}
        values: dict[str, float] = {}
        for line in text.splitlines():
            if not line.startswith("#") and line:
                sample, _, value = line.rpartition(" ")
                values[sample] = values.get(sample, 0.0) + float(value)
        return values

    def writes(self) -> float:
        """Write calls so far."""
        return sum(v for k, v in self.metrics().items() if k.startswith("cfgsync_write_calls_total"))

    def wait_metric(self, name: str, predicate: Callable[[float], bool], *, timeout: float) -> None:
        """Poll ``/metrics`` until ``predicate(value of name)``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            values = self.metrics()
            if name in values and predicate(values[name]):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{name} did not reach the expected value within {timeout:.0f}s")

    def peak_rss_mib(self) -> float:
        """VmHWM of the process."""
        return self._status("VmHWM:")

    def rss_mib(self) -> float:
        """VmRSS of the process."""
        return self._status("VmRSS:")

    def reset_peak(self) -> None:
        """Reset VmHWM to the current RSS (Linux: 5 > /proc/PID/clear_refs)."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5", encoding="ascii")

    def _status(self, field: str) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        line = next(x for x in status.splitlines() if x.startswith(field))
        return int(line.split()[1]) / 1024

    def stop(self) -> int:
        """SIGTERM and the exit code."""
        self.process.terminate()
        code = self.process.wait(timeout=60)
        self._log.close()
        return code


def watch_until(
    kube: Kube, *, selector: str, version: str, done: Callable[[dict[str, Any]], bool], full: bool
) -> float:
    """Watch ConfigMaps matching ``selector`` from ``version`` until ``done(event)``; return that time."""
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        query = [("labelSelector", selector), ("resourceVersion", version), ("timeoutSeconds", "60")]
        accept = connection.JSON if full else METADATA
        for event in kube.stream("/api/v1/configmaps", query=query, accept=accept, timeout=(10, 90)):
            version = event.get("object", {}).get("metadata", {}).get("resourceVersion", version)
            if done(event):
                return time.monotonic()
    raise TimeoutError(f"watch on {selector} did not finish")


def current_version(kube: Kube) -> str:
    """The current resourceVersion of ConfigMaps."""
    page = kube.request("GET", "/api/v1/configmaps", query=[("limit", "1")], accept=connection.METADATA_LIST)
    return str(page["metadata"]["resourceVersion"])


class Counter:
    """Counts distinct objects in watch events until a total is reached."""

    def __init__(self, total: int, *, stamp: str | None = None) -> None:
        self.total = total
        self.stamp = stamp
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, event: dict[str, Any]) -> bool:
        obj = event.get("object", {})
        meta = obj.get("metadata", {})
        wanted = (
            event.get("type") == "ADDED"
            if self.stamp is None
            else (obj.get("data") or {}).get("value") == self.stamp
        )
        if wanted:
            self.seen.add((str(meta.get("namespace")), str(meta.get("name"))))
        return len(self.seen) >= self.total


def cold_start(
    args: argparse.Namespace, core: Any, kube: Kube, ctl_factory: Callable[[], Controller]
) -> tuple[Controller, dict[str, Any]]:
    """Sources exist before the controller starts; time to the last copy."""
    for i in range(args.sources):
        core.create_namespaced_config_map(
            "bench-sources", source_body(f"src-{i:02d}", "0"), _preload_content=False
        )
    total = args.sources * args.namespaces
    version = current_version(kube)
    print(f"cold start: {args.sources} sources x {args.namespaces} namespaces = {total} copies", flush=True)
    ctl = ctl_factory()
    finished = watch_until(
        kube, selector=f"{ORIGIN_CLUSTER}={CLUSTER}", version=version, done=Counter(total), full=False
    )
    result = {"cold_start_seconds": round(finished - ctl.started, 2), "cold_start_writes": ctl.writes()}
    print(f"  {result['cold_start_seconds']} s, {result['cold_start_writes']:.0f} write calls", flush=True)
    return ctl, result


def noop_resync(args: argparse.Namespace, ctl: Controller) -> dict[str, Any]:
    """Write calls made by one full resync with nothing changed."""
    ctl.wait_metric("cfgsync_queue_depth", lambda v: v == 0, timeout=300)
    writes = ctl.writes()
    before = ctl.metrics().get(OK_RECONCILES, 0.0)
    ctl.wait_metric(OK_RECONCILES, lambda v: v >= before + args.sources, timeout=600)
    ctl.wait_metric("cfgsync_queue_depth", lambda v: v == 0, timeout=300)
    result = {"noop_resync_write_calls": ctl.writes() - writes}
    print(f"no-op resync: {result['noop_resync_write_calls']:.0f} write calls", flush=True)
    return result


def propagation(args: argparse.Namespace, core: Any, kube: Kube, names: list[str]) -> dict[str, Any]:
    """Time from a source update to the last of its copies updated, and the floor, in turns.

    Each round updates the source and waits for its copies, then has the plain loop apply the same
    copies: both see the same load on the machine, whatever else runs on it meanwhile."""
    latencies: list[float] = []
    floors: list[float] = []
    for n in range(1, args.updates + 1):
        stamp = f"update-{n}-{secrets.token_hex(2)}"
        version = current_version(kube)
        started = time.monotonic()
        core.patch_namespaced_config_map(
            "src-00", "bench-sources", {"data": {"value": stamp}}, _preload_content=False
        )
        done = Counter(args.namespaces, stamp=stamp)
        finished = watch_until(kube, selector=f"{ORIGIN_NAME}=src-00", version=version, done=done, full=True)
        latencies.append(finished - started)
        floors.append(
            parallel(
                (functools.partial(apply_floor, kube, copy_body(ns, stamp), "floor-00") for ns in names),
                args.concurrency,
            )
        )
    result = {
        "update_seconds": [round(x, 3) for x in latencies],
        "update_p50_seconds": round(statistics.median(latencies), 3),
        "update_p95_seconds": round(_p95(latencies), 3),
        "floor_update_seconds": [round(x, 3) for x in floors],
        "floor_update_p50_seconds": round(statistics.median(floors), 3),
        "floor_update_p95_seconds": round(_p95(floors), 3),
    }
    print(
        f"update 1 source -> {args.namespaces}: p50 {result['update_p50_seconds']} s, p95 "
        f"{result['update_p95_seconds']} s; floor (same rounds) p50 {result['floor_update_p50_seconds']} s, "
        f"p95 {result['floor_update_p95_seconds']} s",
        flush=True,
    )
    return result


def copy_body(namespace: str, value: str) -> dict[str, Any]:
    """A copy of ``src-00`` in ``namespace`` exactly as cfgsync writes it (for the update floor)."""
    body = source_body("src-00", value)
    body["apiVersion"], body["kind"] = "v1", "ConfigMap"
    body["metadata"] = {
        "name": "src-00",
        "namespace": namespace,
        "labels": {
            "app": "bench",
            ORIGIN_CLUSTER: CLUSTER,
            ORIGIN_NAME: "src-00",
            "kubed.appscode.com/origin.namespace": "bench-sources",
        },
        "annotations": {
            "kubed.appscode.com/origin": json.dumps(
                {"kind": "ConfigMap", "namespace": "bench-sources", "name": "src-00", "uid": "0" * 36,
                 "apiVersion": "v1", "resourceVersion": "123456"}, separators=(",", ":")),
        },
    }  # fmt: skip
    return body


def apply_floor(kube: Kube, body: dict[str, Any], name: str | None = None) -> None:
    """One plain server-side apply of ``body`` (renamed to ``name`` when given)."""
    meta = body["metadata"]
    if name is not None:
        body = {**body, "metadata": {**meta, "name": name}}
        meta = body["metadata"]
    kube.request(
        "PATCH",
        f"/api/v1/namespaces/{meta['namespace']}/configmaps/{meta['name']}",
        query=[("fieldManager", "bench"), ("force", "true")],
        body=body,
        content_type=connection.APPLY_PATCH,
    )


def post_floor(kube: Kube, name: str, namespace: str) -> None:
    """One plain create (POST) of a ConfigMap shaped like a copy."""
    body = copy_body(namespace, "0")
    body["metadata"]["name"] = name
    kube.request(
        "POST", f"/api/v1/namespaces/{namespace}/configmaps", query=[("fieldManager", "bench")], body=body
    )


def floor(args: argparse.Namespace, kube: Kube, names: list[str]) -> dict[str, Any]:
    """The same writes from a plain loop of the client (see the module docstring)."""
    calls = [(f"floor-{i:02d}", ns) for i in range(args.sources) for ns in names]
    posts = parallel(
        (functools.partial(post_floor, kube, f"post-{n}", ns) for n, ns in calls), args.concurrency
    )
    creates = parallel(
        (functools.partial(apply_floor, kube, copy_body(ns, "0"), n) for n, ns in calls), args.concurrency
    )
    result = {"floor_posts_seconds": round(posts, 2), "floor_creates_seconds": round(creates, 2)}
    print(
        f"floor: {len(calls)} POSTs in {result['floor_posts_seconds']} s, applies in "
        f"{result['floor_creates_seconds']} s",
        flush=True,
    )
    return result


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def forged(args: argparse.Namespace, core: Any, ctl: Controller, names: list[str]) -> dict[str, Any]:
    """Someone creates origin-labelled 100 KB objects; how much the controller's peak RSS grows."""
    if not args.forged:
        return {}
    ctl.wait_metric("cfgsync_queue_depth", lambda v: v == 0, timeout=300)
    before = ctl.rss_mib()
    ctl.reset_peak()
    payload = base64.b64encode(os.urandom(FORGED_PAYLOAD)).decode()
    bodies = []
    for i in range(args.forged):
        for cluster in ("elsewhere", CLUSTER):
            labels = {ORIGIN_CLUSTER: cluster, ORIGIN_NAME: f"forged-{i}"}
            labels["kubed.appscode.com/origin.namespace"] = "bench-sources"
            meta = {"name": f"forged-{cluster}-{i}", "labels": labels}
            bodies.append((names[i % len(names)], {"metadata": meta, "binaryData": {"blob": payload}}))
    print(f"forged: {len(bodies)} origin-labelled 100 KB ConfigMaps", flush=True)
    parallel(
        (
            functools.partial(core.create_namespaced_config_map, ns, b, _preload_content=False)
            for ns, b in bodies
        ),
        args.concurrency,
    )
    ctl.wait_metric("cfgsync_queue_depth", lambda v: v == 0, timeout=600)
    result = {
        "forged_objects": len(bodies),
        "forged_rss_before_mib": round(before, 1),
        "forged_peak_rss_mib": round(ctl.peak_rss_mib(), 1),
    }
    result["forged_peak_rss_growth_mib"] = round(result["forged_peak_rss_mib"] - before, 1)
    print(f"  peak RSS {before:.1f} -> {result['forged_peak_rss_mib']} MiB", flush=True)
    return result


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement on one fresh control plane."""
    results: dict[str, Any] = {
        "namespaces": args.namespaces,
        "sources": args.sources,
        "unrelated_secrets": args.unrelated,
        "concurrency": args.concurrency,
    }
    with ControlPlane() as plane, tempfile.TemporaryDirectory() as tmp:
        config: Any = kubernetes.config  # untyped
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        api.configuration.connection_pool_maxsize = args.concurrency * 2
        core = client.CoreV1Api(api)
        kube = connection.connect(
            connection.ConnectionSettings(kubeconfig=(str(plane.kubeconfig),)), pool_size=args.concurrency * 2
        )
        print(
            f"setting up {args.namespaces} namespaces and {args.unrelated} unrelated 100 KB Secrets",
            flush=True,
        )
        names = setup(core, args.namespaces, args.unrelated, args.concurrency)
        factory = functools.partial(
            Controller,
            plane.kubeconfig,
            resync=args.resync,
            concurrency=args.concurrency,
            log=args.log or Path(tmp) / "run.log",
        )
        ctl, found = cold_start(args, core, kube, factory)
        try:
            results |= found
            results |= noop_resync(args, ctl)
            results |= propagation(args, core, kube, names)
            results["peak_rss_mib"] = round(ctl.peak_rss_mib(), 1)
            print(f"peak RSS of cfgsync run: {results['peak_rss_mib']} MiB", flush=True)
            results |= forged(args, core, ctl, names)
        finally:
            results["exit_code_on_sigterm"] = ctl.stop()
        results |= floor(args, kube, names)
        results["cold_start_vs_floor"] = round(
            results["cold_start_seconds"] / results["floor_creates_seconds"], 2
        )
        results["cold_start_vs_post_floor"] = round(
            results["cold_start_seconds"] / results["floor_posts_seconds"], 2
        )
        results["update_p50_vs_floor"] = round(
            results["update_p50_seconds"] / results["floor_update_p50_seconds"], 2
        )
        results["update_p95_vs_floor_p95"] = round(
            results["update_p95_seconds"] / results["floor_update_p95_seconds"], 2
        )
        kube.close()
        api.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--unrelated", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--forged", type=int, default=1000, help="forged objects per cluster name")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--resync", default="60s", help="resync period of the controller under test")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "live.json")
    parser.add_argument("--log", type=Path, default=None, help="keep the controller's log there")
    args = parser.parse_args()
    results = bench(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    ok = results["noop_resync_write_calls"] == 0 and results["exit_code_on_sigterm"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
