"""``cfgsync run``: the controller follows every change, end to end, on a real API server."""

from __future__ import annotations

import functools
import secrets
import time
from typing import Any

import pytest
from kubernetes import client

from controlplane import ControlPlane
from live.conftest import NamespaceFactory
from live.controller import running
from live.helpers import SYNC, cm_data, configmap, read_cm, read_secret, secret, wait_for

pytestmark = pytest.mark.timeout(240)

BASE = ("--no-leader-elect", "--log-format", "json")
GRACE = ("--source-gone-grace", "2s")  # tests that delete a source wait out a short grace, not the 30 s


def cluster() -> tuple[str, str]:
    """A cluster name no other test uses, so each test's controller manages only its own copies."""
    return ("--cluster-name", f"test-{secrets.token_hex(3)}")


def test_the_kubed_tutorial_sequence(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    demo = make_namespace("demo")
    other = make_namespace("other")
    core.create_namespaced_config_map(demo, configmap("omni", {"you": "only", "live": "once"}))

    with running(*BASE, *GRACE, *cluster(), kubeconfig=control_plane.kubeconfig) as ctl:
        # annotate → a copy in every namespace but the source's
        core.patch_namespaced_config_map("omni", demo, {"metadata": {"annotations": {SYNC: ""}}})
        wait_for(
            lambda: cm_data(core, other, "omni") == {"you": "only", "live": "once"}, what="copy in other"
        )
        wait_for(lambda: read_cm(core, "default", "omni") is not None, what="copy in default")
        assert read_cm(core, demo, "omni").metadata.labels is None  # the source itself is not touched

        # a new namespace → a copy
        fresh = make_namespace("fresh")
        wait_for(lambda: cm_data(core, fresh, "omni") is not None, what="copy in a new namespace")

        # source edit → copies follow
        core.patch_namespaced_config_map("omni", demo, {"data": {"live": "twice"}})
        wait_for(lambda: (cm_data(core, other, "omni") or {}).get("live") == "twice", what="update in other")
        wait_for(lambda: (cm_data(core, fresh, "omni") or {}).get("live") == "twice", what="update in fresh")

        # selector change → copies move to the selected namespaces only
        core.patch_namespace(fresh, {"metadata": {"labels": {"app": "kubed"}}})
        core.patch_namespaced_config_map("omni", demo, {"metadata": {"annotations": {SYNC: "app=kubed"}}})
        wait_for(lambda: read_cm(core, other, "omni") is None, what="copy gone from other")
        wait_for(lambda: read_cm(core, "default", "omni") is None, what="copy gone from default")
        assert cm_data(core, fresh, "omni") is not None

        # namespace label change → copy appears / disappears
        core.patch_namespace(other, {"metadata": {"labels": {"app": "kubed"}}})
        wait_for(lambda: cm_data(core, other, "omni") is not None, what="copy after labelling")
        core.patch_namespace(fresh, {"metadata": {"labels": {"app": None}}})
        wait_for(lambda: read_cm(core, fresh, "omni") is None, what="copy gone after unlabelling")

        # annotation removed → copies gone
        core.patch_namespaced_config_map("omni", demo, {"metadata": {"annotations": {SYNC: None}}})
        wait_for(lambda: read_cm(core, other, "omni") is None, what="copies gone without annotation")

        # annotated again, then the source deleted → copies gone
        core.patch_namespaced_config_map("omni", demo, {"metadata": {"annotations": {SYNC: "app=kubed"}}})
        wait_for(lambda: cm_data(core, other, "omni") is not None, what="copy back")
        core.delete_namespaced_config_map("omni", demo)
        wait_for(lambda: read_cm(core, other, "omni") is None, what="copies gone with the source")
        assert ctl.metric("cfgsync_errors_total", kind="write") == 0
        assert any("wait 2s before they are deleted" in str(r.get("message")) for r in ctl.log_records())


def test_a_source_replaced_within_the_grace_keeps_its_copies(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    """``kubectl replace --force`` (or a GitOps tool's replace) must not cost a workload its copy."""
    team = f"team-{secrets.token_hex(3)}"
    src = make_namespace("src")
    targets = [make_namespace(f"t{i}", {team: "yes"}) for i in range(2)]
    core.create_namespaced_config_map(src, configmap("ca", {"v": "1"}, annotations={SYNC: f"{team}=yes"}))

    with running(*BASE, *cluster(), kubeconfig=control_plane.kubeconfig) as ctl:  # the default grace
        before = {
            ns: wait_for(functools.partial(read_cm, core, ns, "ca"), what=f"copy in {ns}") for ns in targets
        }
        core.delete_namespaced_config_map("ca", src)
        wait_for(
            lambda: any("its 2 copies wait 30s" in str(r.get("message")) for r in ctl.log_records()),
            what="the controller saw the source go",
        )
        core.create_namespaced_config_map(src, configmap("ca", {"v": "2"}, annotations={SYNC: f"{team}=yes"}))
        for ns, copy in before.items():
            wait_for(lambda: cm_data(core, ns, "ca") == {"v": "2"}, what=f"new data in {ns}")  # noqa: B023
            assert read_cm(core, ns, "ca").metadata.uid == copy.metadata.uid  # never deleted
        assert ctl.metric("cfgsync_write_calls_total", method="DELETE") == 0


def test_copies_edited_or_deleted_by_hand_are_restored(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    team = f"team-{secrets.token_hex(3)}"
    src = make_namespace("src")
    a = make_namespace("a", {team: "yes"})
    core.create_namespaced_secret(
        src, secret("token", {"password": "hunter2"}, annotations={SYNC: f"{team}=yes"})
    )

    with running(*BASE, *cluster(), kubeconfig=control_plane.kubeconfig) as ctl:
        original = wait_for(lambda: read_secret(core, a, "token"), what="copy")
        core.patch_namespaced_secret("token", a, {"data": {"password": "ZWRpdGVk", "extra": "eA=="}})
        wait_for(lambda: read_secret(core, a, "token").data == original.data, what="edit reverted")

        core.delete_namespaced_secret("token", a)
        wait_for(lambda: read_secret(core, a, "token") is not None, what="copy re-created")
        assert read_secret(core, a, "token").data == original.data

        records = ctl.log_records()
        assert records, "no JSON log lines"
        assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
        assert "hunter2" not in ctl.log()
        assert original.data["password"] not in ctl.log()


def test_an_unmanaged_object_is_never_touched_and_the_conflict_is_an_event(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    team = f"team-{secrets.token_hex(3)}"
    src = make_namespace("src")
    mine = make_namespace("mine", {team: "yes"})
    free = make_namespace("free", {team: "yes"})
    theirs = core.create_namespaced_config_map(mine, configmap("shared", {"owner": "them"}))
    core.create_namespaced_config_map(
        src, configmap("shared", {"owner": "us"}, annotations={SYNC: f"{team}=yes"})
    )

    with running(*BASE, *cluster(), kubeconfig=control_plane.kubeconfig):
        wait_for(lambda: cm_data(core, free, "shared") == {"owner": "us"}, what="copy in free")

        def conflict_event() -> list[Any]:
            events = core.list_namespaced_event(src).items
            return [e for e in events if e.reason == "CopyConflict" and e.involved_object.name == "shared"]

        events = wait_for(conflict_event, what="CopyConflict event on the source")
        assert f"an unmanaged ConfigMap with that name exists in namespace {mine}" in events[0].message
        after = read_cm(core, mine, "shared")
        assert after.metadata.resource_version == theirs.metadata.resource_version

        # once the unmanaged object goes, the copy takes its place
        core.delete_namespaced_config_map("shared", mine)
        wait_for(
            lambda: cm_data(core, mine, "shared") == {"owner": "us"}, what="copy after the clash is gone"
        )


def test_a_resync_that_finds_nothing_changed_writes_nothing(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    team = f"team-{secrets.token_hex(3)}"
    src = make_namespace("src")
    spaces = [make_namespace(f"t{i}", {team: "yes"}) for i in range(3)]
    core.create_namespaced_config_map(src, configmap("conf", {"k": "v"}, annotations={SYNC: f"{team}=yes"}))
    core.create_namespaced_secret(src, secret("cred", {"k": "v"}, annotations={SYNC: f"{team}=yes"}))
    core.create_namespaced_config_map(spaces[0], configmap("cred", {"clash": "x"}))

    with running(*BASE, *cluster(), "--resync-period", "1s", kubeconfig=control_plane.kubeconfig) as ctl:
        for ns in spaces:
            wait_for(functools.partial(cm_data, core, ns, "conf"), what=f"copy in {ns}")
            wait_for(functools.partial(read_secret, core, ns, "cred"), what=f"secret copy in {ns}")
        wait_for(lambda: ctl.metric("cfgsync_queue_depth") == 0, what="queue drained")
        writes = ctl.writes()
        reconciles = ctl.metric("cfgsync_reconciles_total", result="ok")
        wait_for(
            lambda: ctl.metric("cfgsync_reconciles_total", result="ok") >= reconciles + 6,
            what="three more resyncs",
        )
        assert ctl.writes() == writes
        assert ctl.metric("cfgsync_copies_managed") == 6
        assert ctl.metric("cfgsync_last_successful_sync_timestamp_seconds") > 0


def test_deleting_the_source_namespace_removes_the_copies(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    team = f"team-{secrets.token_hex(3)}"
    src = make_namespace("src")
    a = make_namespace("a", {team: "yes"})
    core.create_namespaced_config_map(src, configmap("conf", {"k": "v"}, annotations={SYNC: f"{team}=yes"}))

    with running(*BASE, *cluster(), kubeconfig=control_plane.kubeconfig):
        wait_for(lambda: cm_data(core, a, "conf") is not None, what="copy")
        core.delete_namespace(src)  # stays Terminating here (no controller-manager), as it does for a while
        wait_for(lambda: read_cm(core, a, "conf") is None, what="copy removed with the source namespace")


def test_the_controller_survives_an_api_server_restart(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    team = f"team-{secrets.token_hex(3)}"
    src = make_namespace("src")
    a = make_namespace("a", {team: "yes"})
    core.create_namespaced_config_map(src, configmap("conf", {"v": "1"}, annotations={SYNC: f"{team}=yes"}))

    with running(*BASE, *cluster(), kubeconfig=control_plane.kubeconfig) as ctl:
        wait_for(lambda: cm_data(core, a, "conf") == {"v": "1"}, what="copy")
        restarted = time.monotonic()
        control_plane.restart_apiserver()
        # Changed at once, likely before the controller has reconnected: the resumed watch must deliver it.
        api = client.CoreV1Api(client.ApiClient(core.api_client.configuration))
        api.patch_namespaced_config_map("conf", src, {"data": {"v": "2"}})
        b = make_namespace("b", {team: "yes"})
        wait_for(lambda: cm_data(core, a, "conf") == {"v": "2"}, what="update after the restart", timeout=60)
        wait_for(
            lambda: cm_data(core, b, "conf") == {"v": "2"}, what="copy in a namespace made after the restart"
        )
        print(f"API server restart: every copy current {time.monotonic() - restarted:.1f}s after it began")
        assert (
            ctl.metric("cfgsync_watch_restarts_total", collection="configmaps-metadata", event="error") >= 1
        )
        assert ctl.get("/healthz")[0] == 200
