"""``cfgsync run`` with the network and the control plane broken on purpose: it fails safe.

Each test has a control plane of its own that keeps an audit log of every write, and puts a fault
proxy between each replica and the API server, so a replica's connection can be hung, reset or
refused while the other replica, and the test itself, talk to the API server directly. Who wrote what,
and when, is read from the API server's audit log; replicas are told apart by their User-Agent.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from controlplane import Binaries, ControlPlane
from controlplane.faults import FaultProxy
from controlplane.fixtures import api_client
from live.controller import RunningController
from live.helpers import SYNC, cm_data, configmap, wait_for

pytestmark = pytest.mark.timeout(420)

LEASE = ("--lease-duration", "6", "--renew-deadline", "4", "--retry-period", "1")
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 6.0, 4.0, 1.0
TEAM = "faults"
SPACES = [f"team-{i}" for i in range(3)]


@dataclass
class Cluster:
    """A control plane with an audit log, an admin client, and the namespaces the tests copy into."""

    plane: ControlPlane
    core: Any
    tmp: Path

    def proxy(self) -> FaultProxy:
        """A fault proxy to the API server (closed with the test)."""
        return FaultProxy(self.plane.server)

    def replica(
        self, proxy: FaultProxy, name: str, *extra: str, lease: tuple[str, ...] = LEASE
    ) -> RunningController:
        """``cfgsync run`` as replica ``name``, talking to the API server through ``proxy``."""
        kubeconfig = proxy.kubeconfig(self.plane.kubeconfig, self.tmp / f"{name}.kubeconfig")
        args = ("--cluster-name", TEAM, "--leader-elect-namespace", "ops", *lease, *extra)
        return RunningController(*args, kubeconfig=kubeconfig, env={"POD_NAME": name})

    def writes_by(self, replica: str, *, after: datetime.datetime | None = None) -> list[Any]:
        """Writes the audit log saw from ``replica`` (lease renewals apart), received after ``after``."""
        return [
            e
            for e in self.plane.audit_events()
            if f"({replica})" in e.user_agent
            and e.resource != "leases"
            and (after is None or e.received > after)
        ]

    def last_renewal(self, replica: str) -> datetime.datetime:
        """When the API server received ``replica``'s last successful lease write."""
        return max(
            e.received
            for e in self.plane.audit_events()
            if f"({replica})" in e.user_agent and e.resource == "leases" and e.code in {200, 201}
        )

    def copies(self, value: str) -> bool:
        return all(cm_data(self.core, ns, "shared") == {"k": value} for ns in SPACES)


@pytest.fixture
def cluster(controlplane_binaries: Binaries, tmp_path: Path) -> Iterator[Cluster]:
    with (
        ControlPlane(controlplane_binaries, audit=True) as plane,
        api_client(plane.kubeconfig) as api,
    ):
        core = client.CoreV1Api(api)
        for name in ("ops", "src", *SPACES):
            labels = {TEAM: "yes"} if name in SPACES else {}
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
        core.create_namespaced_config_map(
            "src", configmap("shared", {"k": "v0"}, annotations={SYNC: f"{TEAM}=yes"})
        )
        yield Cluster(plane=plane, core=core, tmp=tmp_path)


@contextlib.contextmanager
def two_replicas(
    cluster: Cluster, lease: tuple[str, ...] = LEASE
) -> Iterator[tuple[FaultProxy, RunningController, FaultProxy, RunningController]]:
    """Replicas "one" and "two", each behind a proxy of its own, until the block ends."""
    with cluster.proxy() as proxy_one, cluster.proxy() as proxy_two:
        one = cluster.replica(proxy_one, "one", lease=lease)
        two = cluster.replica(proxy_two, "two", lease=lease)
        try:
            one.wait_ready()
            two.wait_ready()
            yield proxy_one, one, proxy_two, two
        finally:
            one.close()
            two.close()


def leader_of(
    one: RunningController, two: RunningController
) -> tuple[str, RunningController, RunningController]:
    wait_for(lambda: one.metric("cfgsync_leader") + two.metric("cfgsync_leader") == 1, what="one leader")
    return ("one", one, two) if one.metric("cfgsync_leader") == 1 else ("two", two, one)


@pytest.mark.parametrize("fault", ["hang", "refuse", "reset"])
def test_a_leader_cut_off_stops_writing_at_its_deadline_and_the_standby_takes_over(
    cluster: Cluster, fault: str
) -> None:
    with two_replicas(cluster) as (proxy_one, one, proxy_two, two):
        name, leader, standby = leader_of(one, two)
        proxy = proxy_one if leader is one else proxy_two
        wait_for(lambda: cluster.copies("v0"), what="the first copies")

        getattr(proxy, fault)()  # the leader's network breaks, the API server is fine
        cut = time.monotonic()
        cluster.core.patch_namespaced_config_map("shared", "src", {"data": {"k": "v1"}})

        wait_for(lambda: standby.metric("cfgsync_leader") == 1, what="the standby leads", timeout=30)
        took_over = time.monotonic() - cut
        wait_for(lambda: cluster.copies("v1"), what="copies converge under the new leader")
        wait_for(lambda: leader.process.poll() is not None, what="the cut-off leader exits", timeout=60)
        assert leader.process.returncode == 1, leader.log()[-3000:]
        assert any("lost lease" in str(r.get("message")) for r in leader.log_records())

    deadline = cluster.last_renewal(name) + datetime.timedelta(seconds=RENEW_DEADLINE)
    late = cluster.writes_by(name, after=deadline)
    assert late == [], f"{len(late)} writes by the cut-off leader after its renew deadline"
    assert took_over <= LEASE_DURATION + 2 * RETRY_PERIOD, f"took over in {took_over:.1f}s"
    print(f"{fault}: standby led {took_over:.2f}s after the cut")


def test_sigterm_hands_the_lease_over_in_under_three_seconds(cluster: Cluster) -> None:
    with two_replicas(cluster, lease=()) as (_, one, _, two):  # the default timings: 15 s, 10 s, 2 s
        name, leader, standby = leader_of(one, two)
        wait_for(lambda: cluster.copies("v0"), what="the first copies")

        started = time.monotonic()
        assert leader.stop() == 0
        wait_for(lambda: standby.metric("cfgsync_leader") == 1, what="the standby leads", timeout=10)
        handed_over = time.monotonic() - started
        cluster.core.patch_namespaced_config_map("shared", "src", {"data": {"k": "v1"}})
        wait_for(lambda: cluster.copies("v1"), what="copies follow the new leader")

    assert handed_over < 3.0, f"hand-over took {handed_over:.2f}s"
    released = [
        e for e in cluster.plane.audit_events() if f"({name})" in e.user_agent and e.resource == "leases"
    ]
    assert released[-1].verb == "update"  # the release, once: nothing re-acquired after it
    print(f"SIGTERM hand-over: {handed_over:.2f}s")


def test_a_silently_hung_watch_is_noticed_and_edits_still_arrive(cluster: Cluster) -> None:
    with cluster.proxy() as proxy:
        ctl = cluster.replica(proxy, "solo", "--no-leader-elect")
        try:
            ctl.wait_ready()
            wait_for(lambda: cluster.copies("v0"), what="the first copies")
            proxy.hang(on="existing")  # every open connection, the watches too, goes silent; new ones work
            started = time.monotonic()
            cluster.core.patch_namespaced_config_map("shared", "src", {"data": {"k": "v1"}})
            wait_for(lambda: cluster.copies("v1"), what="the edit despite the hung watch", timeout=150)
            took = time.monotonic() - started
            assert ctl.get("/healthz")[0] == 200
        finally:
            ctl.close()
    assert took < 120, f"the edit took {took:.0f}s"
    print(f"hung watch: the edit reached every copy in {took:.0f}s")


def test_etcd_stopped_for_20_seconds_mid_sync_loses_nothing(cluster: Cluster) -> None:
    more = [f"wave-{i}" for i in range(10)]
    for name in more:
        cluster.core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={TEAM: "yes"}))
        )
    with cluster.proxy() as proxy:
        ctl = cluster.replica(proxy, "solo", "--no-leader-elect")
        try:
            ctl.wait_ready()
            wait_for(lambda: cluster.copies("v0"), what="the first copies")
            cluster.core.patch_namespaced_config_map("shared", "src", {"data": {"k": "v1"}})
            cluster.plane.stop_etcd()
            stopped = time.monotonic()
            wait_for(lambda: time.monotonic() - stopped >= 20, timeout=25, what="20 s without etcd")
            cluster.plane.start_etcd()
            everywhere = [*SPACES, *more]
            wait_for(
                lambda: all(cm_data(cluster.core, ns, "shared") == {"k": "v1"} for ns in everywhere),
                what="every copy after etcd came back",
                timeout=120,
            )
            assert ctl.process.poll() is None
            assert ctl.get("/healthz")[0] == 200
        finally:
            ctl.close()
