"""The mass-delete guard on the real API server: ``apply`` and the first pass of ``run`` hold mass deletes."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from cfgsync import ActionKind, DeleteGuard, PlanSettings, apply_cluster
from controlplane import ControlPlane
from live.conftest import NamespaceFactory
from live.controller import running
from live.helpers import SYNC, cfgsync, configmap, read_cm, wait_for

pytestmark = pytest.mark.timeout(300)

COPIES = 12  # more than the default count of 10, and all of the copies this cluster name manages


def synced_source(core: Any, make_namespace: NamespaceFactory) -> tuple[str, list[str], str]:
    """A source for ``COPIES`` namespaces: its namespace, the targets, and their selector."""
    team = f"team-{secrets.token_hex(3)}"
    src = make_namespace("src")
    targets = [make_namespace(f"t{i}", {team: "yes"}) for i in range(COPIES)]
    selector = f"{team}=yes"
    core.create_namespaced_config_map(src, configmap("shared", {"k": "v"}, annotations={SYNC: selector}))
    return src, targets, selector


def apply(plane: ControlPlane, cluster: str, src: str, *extra: str) -> Any:
    return cfgsync(
        "apply", "--cluster-name", cluster, "--source-namespace", src, *extra, kubeconfig=plane.kubeconfig
    )


def copies_left(core: Any, targets: list[str]) -> int:
    return sum(read_cm(core, ns, "shared") is not None for ns in targets)


def test_apply_holds_mass_deletes_until_allowed(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    cluster = f"guard-{secrets.token_hex(3)}"
    src, targets, selector = synced_source(core, make_namespace)
    assert apply(control_plane, cluster, src).returncode == 0
    assert copies_left(core, targets) == COPIES
    core.patch_namespaced_config_map("shared", src, {"metadata": {"annotations": {SYNC: None}}})
    core.create_namespaced_config_map(src, configmap("fresh", {"k": "v"}, annotations={SYNC: selector}))

    preview = apply(control_plane, cluster, src, "--dry-run")
    held = apply(control_plane, cluster, src)

    assert preview.returncode == held.returncode == 4, preview.stderr + held.stderr
    assert preview.stdout.splitlines()[-1].endswith(
        f"{COPIES} to delete ({COPIES} deletes held); nothing written"
    )
    assert sum(line.startswith("held: delete ConfigMap") for line in held.stdout.splitlines()) == COPIES
    assert f"{COPIES} deletes held: more than 10 and more than 25% of the {COPIES} copies" in held.stderr
    assert "--allow-mass-delete" in held.stderr
    assert copies_left(core, targets) == COPIES  # nothing deleted ...
    assert read_cm(core, targets[0], "fresh") is not None  # ... while creates went ahead

    allowed = apply(control_plane, cluster, src, "--allow-mass-delete")

    assert allowed.returncode == 0, allowed.stderr
    assert copies_left(core, targets) == 0


def test_deletes_within_the_limits_are_not_held(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    cluster = f"guard-{secrets.token_hex(3)}"
    src, targets, _ = synced_source(core, make_namespace)
    assert apply(control_plane, cluster, src).returncode == 0
    core.patch_namespaced_config_map("shared", src, {"metadata": {"annotations": {SYNC: None}}})

    result = apply(control_plane, cluster, src, "--mass-delete-count", str(COPIES))

    assert result.returncode == 0, result.stderr
    assert copies_left(core, targets) == 0


@pytest.mark.parametrize("leader", [False, True], ids=["no-election", "on-gaining-the-lease"])
def test_run_holds_the_first_pass_mass_deletes_and_reports_them(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory, leader: bool
) -> None:
    cluster = f"guard-{secrets.token_hex(3)}"
    src, targets, selector = synced_source(core, make_namespace)
    assert apply(control_plane, cluster, src).returncode == 0
    # While no controller ran, the source lost its rule and another source appeared.
    core.patch_namespaced_config_map("shared", src, {"metadata": {"annotations": {SYNC: None}}})
    core.create_namespaced_config_map(src, configmap("fresh", {"k": "v"}, annotations={SYNC: selector}))
    # With leader election, the first pass is the one after the lease is gained (here, at once).
    election = (
        ("--leader-elect-namespace", src, "--leader-elect-name", cluster)
        if leader
        else ("--no-leader-elect",)
    )
    args = (*election, "--cluster-name", cluster, "--source-namespace", src)

    with running(*args, kubeconfig=control_plane.kubeconfig) as ctl:
        wait_for(lambda: ctl.metric("cfgsync_deletes_held") == COPIES, what="deletes held")
        wait_for(lambda: all(read_cm(core, ns, "fresh") for ns in targets), what="creates go ahead")
        status, body = ctl.get("/readyz")
        assert status == 200, body  # held deletes do not fail readiness ...
        assert f"{COPIES} deletes held by the mass-delete guard" in body  # ... but readiness says so
        core.patch_namespaced_config_map("shared", src, {"data": {"k": "edited"}})  # a later reconcile
        wait_for(lambda: ctl.metric("cfgsync_queue_depth") == 0, what="reconciled again")
        assert copies_left(core, targets) == COPIES
        events = core.list_namespaced_event(src, field_selector="reason=DeletesHeld").items
        assert [e.involved_object.name for e in events] == ["shared"]
        assert f"deletes of {COPIES} copies of ConfigMap {src}/shared held" in events[0].message
        assert any("deletes held" in str(r.get("message")) for r in ctl.log_records())

    with running(*args, "--allow-mass-delete", kubeconfig=control_plane.kubeconfig) as ctl:
        wait_for(lambda: copies_left(core, targets) == 0, what="deletes let through")
        assert ctl.metric("cfgsync_deletes_held") == 0


def test_apply_cluster_from_python_reports_what_it_wrote_and_held(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    """``cfgsync.apply_cluster``, the library entry point the command calls, on the same story."""
    cluster = f"guard-{secrets.token_hex(3)}"
    src, targets, _ = synced_source(core, make_namespace)
    settings = PlanSettings(cluster_name=cluster, source_namespace=src)
    kubeconfig = [str(control_plane.kubeconfig)]

    preview = apply_cluster(kubeconfig=kubeconfig, settings=settings, dry_run=True)
    assert {a.ref.namespace for a in preview.allowed} == set(targets)
    assert preview.written == preview.held == ()
    assert preview.failures == ()
    assert copies_left(core, targets) == 0

    done = apply_cluster(kubeconfig=kubeconfig, settings=settings)
    assert done.written == done.allowed
    assert done.failures == ()
    assert copies_left(core, targets) == COPIES

    core.patch_namespaced_config_map("shared", src, {"metadata": {"annotations": {SYNC: None}}})
    held = apply_cluster(kubeconfig=kubeconfig, settings=settings)
    assert len(held.held) == COPIES
    assert held.written == ()
    assert "--allow-mass-delete" in held.held_summary
    assert copies_left(core, targets) == COPIES

    allowed = apply_cluster(kubeconfig=kubeconfig, settings=settings, guard=DeleteGuard(enabled=False))
    assert len(allowed.written) == COPIES
    assert {a.kind for a in allowed.written} == {ActionKind.DELETE}
    assert copies_left(core, targets) == 0
