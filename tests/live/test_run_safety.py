"""``cfgsync run`` under adverse conditions: two replicas, forbidden namespaces."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from controlplane import ControlPlane
from live.conftest import NamespaceFactory
from live.controller import RunningController, running
from live.helpers import SYNC, cm_data, configmap, read_cm, wait_for
from live.test_apply import restricted_access

pytestmark = pytest.mark.timeout(240)


def test_two_replicas_elect_one_leader_and_only_it_writes(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    team = f"team-{secrets.token_hex(3)}"
    lease_ns = make_namespace("lease")
    src = make_namespace("src")
    a = make_namespace("a", {team: "yes"})
    args = (
        "--cluster-name", f"test-{team}",
        "--leader-elect-namespace", lease_ns,
        "--leader-elect-name", "cfgsync-test",
        "--lease-duration", "4", "--renew-deadline", "3", "--retry-period", "1",
    )  # fmt: skip
    with (
        running(*args, kubeconfig=control_plane.kubeconfig) as one,
        running(*args, kubeconfig=control_plane.kubeconfig) as two,
    ):
        wait_for(lambda: one.metric("cfgsync_leader") + two.metric("cfgsync_leader") == 1, what="one leader")
        leader, follower = (one, two) if one.metric("cfgsync_leader") == 1 else (two, one)
        core.create_namespaced_config_map(
            src, configmap("conf", {"v": "1"}, annotations={SYNC: f"{team}=yes"})
        )
        wait_for(lambda: cm_data(core, a, "conf") == {"v": "1"}, what="copy by the leader")
        assert leader.writes() >= 1
        assert follower.writes() == 0
        assert follower.metric("cfgsync_leader") == 0

        assert leader.stop() == 0  # SIGTERM: drains, releases the lease, exits cleanly
        wait_for(lambda: follower.metric("cfgsync_leader") == 1, what="the follower takes over", timeout=30)
        core.patch_namespaced_config_map("conf", src, {"data": {"v": "2"}})
        wait_for(lambda: cm_data(core, a, "conf") == {"v": "2"}, what="copy updated by the new leader")
        assert follower.writes() >= 1


def test_a_forbidden_namespace_is_reported_and_skipped(
    control_plane: ControlPlane, kube_api: Any, core: Any, make_namespace: NamespaceFactory
) -> None:
    team = f"team-{secrets.token_hex(3)}"
    src = make_namespace("src")
    open_ns = make_namespace("open", {team: "yes"})
    closed = make_namespace("closed", {team: "yes"})
    core.create_namespaced_config_map(src, configmap("conf", {"k": "v"}, annotations={SYNC: f"{team}=yes"}))
    with (
        restricted_access(kube_api, writable=[open_ns, src], events=True),
        running(
            "--no-leader-elect",
            "--cluster-name",
            f"test-{team}",
            kubeconfig=control_plane.restricted_kubeconfig,
        ) as ctl,
    ):
        wait_for(lambda: cm_data(core, open_ns, "conf") == {"k": "v"}, what="copy where writes are allowed")
        wait_for(lambda: ctl.metric("cfgsync_errors_total", kind="forbidden") >= 1, what="forbidden counted")
        assert read_cm(core, closed, "conf") is None
        events = wait_for(
            lambda: [e for e in core.list_namespaced_event(src).items if e.reason == "CopyForbidden"],
            what="CopyForbidden event",
        )
        assert closed in events[0].message, ctl.log()
        assert ctl.get("/healthz")[0] == 200


def test_the_controller_exits_cleanly_on_sigterm_as_soon_as_it_serves(control_plane: ControlPlane) -> None:
    ctl = RunningController("--no-leader-elect", kubeconfig=control_plane.kubeconfig)
    try:
        wait_for(lambda: ctl.get("/healthz")[0] != 0, what="the health server")
        assert ctl.stop() == 0
    finally:
        ctl.close()
