"""Harness benchmark: what the test control plane's fault tools cost.

Measures, in one run:
- the API server's audit log: ``ControlPlane.start()`` to ``/readyz`` ok with and without ``audit=True``
  (STARTS starts each, alternating), and OBJECTS ConfigMap creates in a plain sequential loop (the
  official client's typed API, one connection) with and without it (ROUNDS rounds each, on one plane of
  each kind, alternating);
- the fault proxy: OBJECTS GETs of one namespace in a sequential loop straight to the API server and
  through a ``FaultProxy`` in ``pass`` mode (ROUNDS rounds each, alternating, one plane);
- the outages: how long ``stop_etcd`` (killed, graceful), ``/readyz`` without etcd (until it first
  answers 500, and that answer), ``start_etcd``,
  ``pause_apiserver``, ``resume_apiserver`` and ``stop()`` with etcd stopped and the API server paused take.

Prints a table and writes bench-results/harness.json. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from controlplane import ControlPlane, ensure_binaries  # noqa: E402 -- the test harness lives under tests/
from controlplane.faults import FaultProxy  # noqa: E402
from controlplane.fixtures import api_client  # noqa: E402


def timed(action: Callable[[], object]) -> float:
    """Wall time of ``action()`` in seconds."""
    started = time.monotonic()
    action()
    return time.monotonic() - started


def summary(samples: list[float]) -> dict[str, Any]:
    """Median, minimum and maximum of ``samples`` (seconds), and the samples themselves."""
    return {
        "median_s": round(statistics.median(samples), 4),
        "min_s": round(min(samples), 4),
        "max_s": round(max(samples), 4),
        "samples_s": [round(s, 4) for s in samples],
    }


def start_times(starts: int) -> dict[str, Any]:
    """``start()`` to ready, with and without the audit log, alternating."""
    binaries = ensure_binaries()
    samples: dict[str, list[float]] = {"plain": [], "audit": []}
    for _ in range(starts):
        for kind, values in samples.items():
            plane = ControlPlane(binaries, audit=kind == "audit")
            try:
                values.append(timed(plane.start))
            finally:
                plane.stop()
    return {kind: summary(values) for kind, values in samples.items()}


def create_loop(plane: ControlPlane, objects: int, round_number: int) -> float:
    """Create ``objects`` ConfigMaps one after another in a fresh namespace; return the wall time."""
    namespace = f"bench-{round_number}"
    with api_client(plane.kubeconfig) as api:
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        bodies = [
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"cm-{i:04d}"), data={"key": "x" * 1024})
            for i in range(objects)
        ]
        core.list_namespaced_config_map(namespace)  # the connection is open before the clock starts
        return timed(lambda: [core.create_namespaced_config_map(namespace, body) for body in bodies])


def audit_write_cost(objects: int, rounds: int) -> dict[str, Any]:
    """The create loop on a plane without and one with the audit log, alternating."""
    binaries = ensure_binaries()
    with ControlPlane(binaries) as plain, ControlPlane(binaries, audit=True) as audited:
        samples: dict[str, list[float]] = {"plain": [], "audit": []}
        for number in range(rounds):
            samples["plain"].append(create_loop(plain, objects, number))
            samples["audit"].append(create_loop(audited, objects, number))
        logged = sum(1 for e in audited.audit_events() if e.verb == "create" and e.resource == "configmaps")
        log_bytes = audited.audit_log_path.stat().st_size
    result: dict[str, Any] = {kind: summary(values) for kind, values in samples.items()}
    result["configmap_creates_logged"] = logged
    result["audit_log_bytes"] = log_bytes
    return result


def get_loop(kubeconfig: Path, objects: int) -> float:
    """GET the ``default`` namespace ``objects`` times in a row; return the wall time."""
    with api_client(kubeconfig) as api:
        core = client.CoreV1Api(api)
        core.read_namespace("default")  # the connection is open before the clock starts
        return timed(lambda: [core.read_namespace("default") for _ in range(objects)])


def proxy_cost(objects: int, rounds: int) -> dict[str, Any]:
    """The GET loop straight to the API server and through the fault proxy, alternating."""
    with ControlPlane(ensure_binaries()) as plane, FaultProxy(plane.server) as proxy:
        proxied = proxy.kubeconfig(plane.kubeconfig)
        samples: dict[str, list[float]] = {"direct": [], "proxy": []}
        for _ in range(rounds):
            samples["direct"].append(get_loop(plane.kubeconfig, objects))
            samples["proxy"].append(get_loop(proxied, objects))
        stats = proxy.stats()
    result: dict[str, Any] = {kind: summary(values) for kind, values in samples.items()}
    result["proxy_connections"] = stats.accepted
    result["proxy_bytes_from_server"] = stats.bytes_from_server
    return result


def outage_times() -> dict[str, float]:
    """Seconds each outage operation takes, once, on a fresh plane."""
    plane = ControlPlane(ensure_binaries())
    plane.start()
    times: dict[str, float] = {}
    try:
        times["stop_etcd_killed_s"] = timed(plane.stop_etcd)
        stopped = time.monotonic()
        while True:  # until the outage shows: /readyz answers 500
            answered = time.monotonic()
            if plane.readyz()[0] == 500:
                break
        times["readyz_500_after_s"] = time.monotonic() - stopped
        times["readyz_500_answer_s"] = time.monotonic() - answered
        times["readyz_without_etcd_again_s"] = timed(plane.readyz)
        times["start_etcd_s"] = timed(plane.start_etcd)
        times["stop_etcd_graceful_s"] = timed(lambda: plane.stop_etcd(graceful=True))
        times["start_etcd_after_graceful_s"] = timed(plane.start_etcd)
        times["pause_apiserver_s"] = timed(plane.pause_apiserver)
        times["resume_apiserver_s"] = timed(plane.resume_apiserver)
        plane.stop_etcd()
        plane.pause_apiserver()
    finally:
        times["stop_with_etcd_stopped_and_apiserver_paused_s"] = timed(plane.stop)
    return {name: round(value, 3) for name, value in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5, help="control-plane starts per kind")
    parser.add_argument("--objects", type=int, default=300, help="creates / GETs per loop")
    parser.add_argument("--rounds", type=int, default=5, help="loops per kind")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "harness.json")
    args = parser.parse_args()
    results = {
        "start": start_times(args.starts),
        "creates": audit_write_cost(args.objects, args.rounds),
        "gets": proxy_cost(args.objects, args.rounds),
        "outages": outage_times(),
        "objects": args.objects,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
