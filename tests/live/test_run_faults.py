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
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from controlplane import Binaries, ControlPlane
from controlplane.audit import AuditEvent
from controlplane.faults import FaultProxy
from controlplane.fixtures import api_client
from live.controller import RunningController
from live.helpers import SYNC, configmap, wait_for

pytestmark = pytest.mark.timeout(420)

LEASE = ("--lease-duration", "6", "--renew-deadline", "4", "--retry-period", "1")
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 6.0, 4.0, 1.0
TEAM = "faults"
SPACES = [f"team-{i}" for i in range(3)]
BACKLOG = [f"backlog-{i}" for i in range(200)]  # many times the 16 writes a replica has in flight
FENCED = "this replica does not hold the lease"  # how a write the fence turned away is logged


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

    def writes_by(self, replica: str, *, after: datetime.datetime | None = None) -> list[AuditEvent]:
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

    def copies(self, value: str, spaces: Collection[str] = SPACES) -> bool:
        """Whether every namespace of ``spaces`` holds the copy, with ``value``."""
        held = {
            cm.metadata.namespace: cm.data
            for cm in self.core.list_config_map_for_all_namespaces(
                field_selector="metadata.name=shared"
            ).items
        }
        return all(held.get(ns) == {"k": value} for ns in spaces)

    def current(self, value: str, spaces: Collection[str]) -> int:
        """How many namespaces of ``spaces`` hold the copy with ``value``."""
        held = self.core.list_config_map_for_all_namespaces(field_selector="metadata.name=shared").items
        return sum(cm.data == {"k": value} and cm.metadata.namespace in spaces for cm in held)

    def more_spaces(self, names: Collection[str]) -> list[str]:
        """Create more namespaces the source is copied into."""
        for name in names:
            self.core.create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={TEAM: "yes"}))
            )
        return list(names)


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
    """The leader is cut off mid-sync; its network comes back after its deadline, and it writes nothing.

    Cutting every byte for good would prove nothing: no write could arrive, fence or no fence. So the
    leader is cut while it copies an edit into 203 namespaces (many more than the 16 writes it has in
    flight): new connections hang, are refused or are reset, and the requests in flight go silent, as
    on a partitioned network. Its write threads wait on those for the 20 s request timeout, the other
    copies queued behind them, and the process drains them after it lost the lease. Once it has given
    the lease up and cut + renew deadline has passed (its last renewal started before the cut), the
    network comes back for new connections, not for the hung ones (bytes sent before the deadline may
    arrive late): the queued writes would reach the API server but for the fence. (Any sooner, it could
    renew the lease nobody had taken yet, as it may.) Were the open connections reset instead, its
    writes would fail at once, their retries would be dropped with the lease, and it would exit before
    its network came back: fence or none, there would be nothing to see.
    """
    spaces = [*SPACES, *cluster.more_spaces(BACKLOG)]
    with two_replicas(cluster) as (proxy_one, one, proxy_two, two):
        name, leader, standby = leader_of(one, two)
        proxy = proxy_one if leader is one else proxy_two
        wait_for(lambda: cluster.copies("v0", spaces), what="the first copies", timeout=60)

        patched = datetime.datetime.now(datetime.UTC)
        cluster.core.patch_namespaced_config_map("shared", "src", {"data": {"k": "v1"}})
        wait_for(lambda: cluster.writes_by(name, after=patched), what="the leader starts copying v1")
        getattr(proxy, fault)(on="new")  # the leader's network breaks, the API server is fine
        proxy.hang(on="existing")  # and what it has in flight goes silent
        cut = time.monotonic()

        wait_for(lambda: "lost lease" in leader.log(), what="the cut-off leader gives up", timeout=30)
        past = cut + RENEW_DEADLINE  # its last renewal started before the cut
        wait_for(lambda: time.monotonic() > past, what="its deadline", timeout=RENEW_DEADLINE + 1)
        proxy.forward(on="new")  # the network is back, for new connections only
        back, back_at = time.monotonic(), datetime.datetime.now(datetime.UTC)
        assert leader.process.poll() is None, "the cut-off leader exited before the network came back"

        wait_for(lambda: standby.metric("cfgsync_leader") == 1, what="the standby leads", timeout=30)
        took_over = time.monotonic() - cut
        wait_for(lambda: cluster.copies("v1", spaces), what="copies converge under the new leader")
        wait_for(lambda: leader.process.poll() is not None, what="the cut-off leader exits", timeout=60)
        lived = time.monotonic() - back
        code, log = leader.process.returncode, leader.log()
        turned_away = [r for r in leader.log_records() if FENCED in str(r.get("message"))]

    wrote = cluster.writes_by(name, after=patched)
    deadline = cluster.last_renewal(name) + datetime.timedelta(seconds=RENEW_DEADLINE)
    late = [e for e in wrote if e.received > deadline]
    assert late == [], f"{len(late)} writes by the cut-off leader after its renew deadline"
    assert len(wrote) < len(spaces), "the leader had written every copy before the cut: nothing pending"
    logged = [_log_time(r) for r in turned_away]
    assert logged, "the cut-off leader never tried to write after its deadline"
    assert min(logged) >= back_at.replace(microsecond=0), (
        "its backlog was turned away before the network was back"
    )
    assert code == 1, log[-3000:]
    assert took_over <= LEASE_DURATION + 2 * RETRY_PERIOD, f"took over in {took_over:.1f}s"
    print(
        f"{fault}: standby led {took_over:.2f}s after the cut; the old leader had written "
        f"{len(wrote)}/{len(spaces)} copies, lived {lived:.1f}s with the network back "
        f"and turned {len(turned_away)} writes away"
    )


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
    leases = [e for e in cluster.plane.audit_events() if e.resource == "leases"]
    mine = [e for e in leases if f"({name})" in e.user_agent]
    released = [e for e in mine if not _holder(e)]
    assert len(released) == 1, f"the leader emptied the lease {len(released)} times"
    release = released[0]
    assert (release.verb, release.code) == ("update", 200)
    assert mine[-1].audit_id == release.audit_id, "the leader wrote the lease after releasing it"
    standby_name = "two" if name == "one" else "one"
    assert any(
        _holder(e) == standby_name and e.code == 200 and e.received > release.received for e in leases
    ), "the standby did not take the released lease"
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
    everywhere = [*SPACES, *cluster.more_spaces([f"wave-{i}" for i in range(200)])]
    with cluster.proxy() as proxy:
        ctl = cluster.replica(proxy, "solo", "--no-leader-elect")
        try:
            ctl.wait_ready()
            wait_for(lambda: cluster.copies("v0", everywhere), what="the first copies", timeout=120)
            cluster.core.patch_namespaced_config_map("shared", "src", {"data": {"k": "v1"}})
            spaces = set(everywhere)
            partial = wait_for(lambda: cluster.current("v1", spaces), what="the edit being copied")
            cluster.plane.stop_etcd()  # mid-sync: some copies hold the edit, the rest do not yet
            stopped = time.monotonic()
            assert partial < len(everywhere), "the sync ended before etcd stopped"
            wait_for(lambda: time.monotonic() - stopped >= 20, timeout=25, what="20 s without etcd")
            cluster.plane.start_etcd()
            back = time.monotonic()
            wait_for(
                lambda: cluster.copies("v1", everywhere), what="every copy after etcd came back", timeout=120
            )
            assert ctl.process.poll() is None
            assert ctl.get("/healthz")[0] == 200
            print(
                f"etcd stopped 20 s mid-sync ({partial} of {len(everywhere)} copies current then): "
                f"all current {time.monotonic() - back:.1f}s after it came back"
            )
        finally:
            ctl.close()


def _log_time(record: dict[str, object]) -> datetime.datetime:
    """When a JSON log record was written (to the second)."""
    return datetime.datetime.strptime(str(record["time"]), "%Y-%m-%dT%H:%M:%S%z")


def _holder(event: AuditEvent) -> str:
    """The holder a Lease write asked for ('' when it empties the lease: a release)."""
    body = event.request_object or {}
    return str(body.get("spec", {}).get("holderIdentity") or "")
