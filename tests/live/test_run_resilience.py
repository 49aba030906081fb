"""``cfgsync run`` against what a shared cluster throws at it: odd objects, admission denials, a SyncRule
resource that comes and goes, an idle cluster. Faults of the network itself are in test_run_faults.py."""

from __future__ import annotations

import functools
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from controlplane import Binaries, ControlPlane
from controlplane.fixtures import api_client
from live.conftest import NamespaceFactory
from live.controller import running
from live.helpers import SYNC, cm_data, configmap, read_cm, wait_for
from live.test_syncrules import CRD, GROUP, PLURAL, VERSION, rule

pytestmark = pytest.mark.timeout(300)

MIB = 1024 * 1024


def events(core: Any, namespace: str, reason: str) -> list[Any]:
    return list(core.list_namespaced_event(namespace, field_selector=f"reason={reason}").items)


def test_odd_objects_are_reported_and_everything_else_keeps_syncing(
    control_plane: ControlPlane, kube_api: Any, core: Any, make_namespace: NamespaceFactory
) -> None:
    team = f"team-{secrets.token_hex(3)}"
    cluster = f"odd-{team}"
    src = make_namespace("src")
    target = make_namespace("target", {team: "yes"})
    wanted = f"{team}=yes"
    # Exactly 1 MiB of values under long keys: the API server counts values only.
    big = {f"{'k' * 200}-{i}": "x" * (MIB // 4) for i in range(4)}
    core.create_namespaced_config_map(src, configmap("big", big, annotations={SYNC: wanted}))
    # The same size, carrying origin labels of this cluster name (a copy whose source is gone).
    forged = {"kubed.appscode.com/origin.name": "gone", "kubed.appscode.com/origin.namespace": src}
    forged["kubed.appscode.com/origin.cluster"] = cluster
    core.create_namespaced_config_map(target, configmap("gone", big, labels=forged))
    core.create_namespaced_config_map(
        src, configmap("typo", {"k": "v"}, annotations={"cfgsync.io/namepsaces": "*"})
    )
    core.create_namespaced_config_map(src, configmap("fine", {"k": "v"}, annotations={SYNC: wanted}))

    args = ("--no-leader-elect", "--cluster-name", cluster, "--source-namespace", src)
    with running(*args, kubeconfig=control_plane.kubeconfig) as ctl:
        started = time.monotonic()
        wait_for(lambda: cm_data(core, target, "fine") == {"k": "v"}, what="the fine source's copy")
        wait_for(lambda: cm_data(core, target, "big") == big, what="the 1 MiB source's copy", timeout=60)
        synced = time.monotonic() - started
        wait_for(lambda: events(core, src, "InvalidRule"), what="the typo reported")
        wait_for(lambda: read_cm(core, target, "gone") is None, what="the orphaned copy removed", timeout=60)
        print(
            f"odd objects: the copies synced {synced:.1f}s after start, the orphan removed after "
            f"{time.monotonic() - started:.1f}s (the source-gone grace is 30 s)"
        )
        assert "unknown annotation cfgsync.io/namepsaces" in events(core, src, "InvalidRule")[0].message
        assert ctl.get("/readyz")[0] == 200
        assert ctl.get("/healthz")[0] == 200
        core.patch_namespaced_config_map("fine", src, {"data": {"k": "v2"}})
        wait_for(lambda: cm_data(core, target, "fine") == {"k": "v2"}, what="later edits still flow")
        assert ctl.process.poll() is None


POLICY = "cfgsync-test-deny-one-copy"


@pytest.fixture
def deny_one_copy(kube_api: Any) -> Iterator[Any]:
    """Make a ValidatingAdmissionPolicy denying ConfigMaps named ``denied`` in labelled namespaces."""
    admission: Any = client.AdmissionregistrationV1Api(kube_api)
    made: list[str] = []

    def make(label: str, reason: str | None) -> None:
        validation: dict[str, Any] = {
            "expression": "object.metadata.name != 'denied'",
            "message": "copies named denied are not welcome here",
        }
        if reason is not None:
            validation["reason"] = reason
        name = f"{POLICY}-{secrets.token_hex(3)}"
        admission.create_validating_admission_policy(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "resourceRules": [
                            {
                                "apiGroups": [""],
                                "apiVersions": ["v1"],
                                "operations": ["CREATE", "UPDATE"],
                                "resources": ["configmaps"],
                            }
                        ]
                    },
                    "validations": [validation],
                },
            }
        )
        admission.create_validating_admission_policy_binding(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": name},
                "spec": {
                    "policyName": name,
                    "validationActions": ["Deny"],
                    "matchResources": {"namespaceSelector": {"matchLabels": {label: "yes"}}},
                },
            }
        )
        made.append(name)

    yield make
    for name in made:
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)


def refused(core: Any, namespace: str) -> bool:
    """True once the policy is in force: a dry-run create of ``denied`` is refused."""
    try:
        core.create_namespaced_config_map(namespace, configmap("denied", {}), dry_run="All")
    except client.ApiException as exc:
        return exc.status in {403, 422}
    return False


@pytest.mark.parametrize(("reason", "status"), [("Forbidden", 403), (None, 422)])
def test_an_admission_denial_affects_that_copy_only(
    *,
    control_plane: ControlPlane,
    core: Any,
    make_namespace: NamespaceFactory,
    deny_one_copy: Any,
    reason: str | None,
    status: int,
) -> None:
    team = f"team-{secrets.token_hex(3)}"
    src = make_namespace("src")
    guarded = make_namespace("guarded", {team: "yes"})
    deny_one_copy(team, reason)
    wait_for(lambda: refused(core, guarded), what="the policy in force")
    for name in ("denied", "allowed", "also-allowed"):
        core.create_namespaced_config_map(src, configmap(name, {"k": "v"}, annotations={SYNC: f"{team}=yes"}))

    args = ("--no-leader-elect", "--cluster-name", f"vap-{team}", "--source-namespace", src)
    with running(*args, kubeconfig=control_plane.kubeconfig) as ctl:
        started = time.monotonic()
        wait_for(lambda: read_cm(core, guarded, "allowed") is not None, what="the allowed copy")
        wait_for(lambda: read_cm(core, guarded, "also-allowed") is not None, what="the other allowed copy")
        wait_for(lambda: events(core, src, "CopyRejected"), what="the denial reported")
        (event,) = events(core, src, "CopyRejected")
        assert event.involved_object.name == "denied"
        assert f"refused by admission ({status}" in event.message
        assert "copies named denied are not welcome here" in event.message
        assert "RBAC" not in event.message
        assert ctl.metric("cfgsync_errors_total", kind="rejected") >= 1
        assert ctl.metric("cfgsync_errors_total", kind="forbidden") == 0
        # The namespace stays open: a new source is copied there at once.
        core.create_namespaced_config_map(
            src, configmap("later", {"k": "v"}, annotations={SYNC: f"{team}=yes"})
        )
        later = time.monotonic()
        wait_for(
            lambda: read_cm(core, guarded, "later") is not None, what="a later copy in the same namespace"
        )
        print(
            f"admission denial ({status}): the other copies written, the denial reported "
            f"{later - started:.1f}s after start; a later copy there {time.monotonic() - later:.1f}s after"
        )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_resync_period_0_turns_resync_off_and_idles(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    team = f"team-{secrets.token_hex(3)}"
    src = make_namespace("src")
    target = make_namespace("target", {team: "yes"})
    core.create_namespaced_config_map(src, configmap("conf", {"k": "v"}, annotations={SYNC: f"{team}=yes"}))
    args = (
        "--no-leader-elect",
        "--resync-period",
        "0",
        "--cluster-name",
        f"idle-{team}",
        "--source-namespace",
        src,
    )

    with running(*args, kubeconfig=control_plane.kubeconfig) as ctl:
        wait_for(lambda: cm_data(core, target, "conf") == {"k": "v"}, what="the copy")
        wait_for(lambda: ctl.metric("cfgsync_queue_depth") == 0, what="the first pass done")
        before, started = cpu_seconds(ctl.process.pid), time.monotonic()
        wait_for(lambda: time.monotonic() - started >= 10, timeout=15, what="ten idle seconds")
        used = cpu_seconds(ctl.process.pid) - before
        assert used < 0.5, f"{used:.2f} CPU seconds in 10 s of idling"  # a busy loop burns ~10
        print(f"--resync-period 0: {used:.2f} CPU-seconds in 10 s of idling")
        assert not any("periodic resync" in str(r.get("message")) for r in ctl.log_records())


def test_bad_flags_are_refused_with_a_clear_message(control_plane: ControlPlane) -> None:
    from live.helpers import cfgsync

    for args, expected in (
        (("--log-level", "bogus"), "'bogus' is not one of"),
        (("--write-concurrency", "0"), "0 is not in the range x>=1"),
        (("--resync-period", "ten minutes"), "'ten minutes' is not a duration"),
        (("--lease-duration", "5", "--renew-deadline", "10"), "lease duration (5s) > renew deadline"),
    ):
        result = cfgsync("run", *args, kubeconfig=control_plane.kubeconfig)
        assert result.returncode == 2, (args, result.stderr)
        assert expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


@pytest.fixture
def own_plane(controlplane_binaries: Binaries) -> Iterator[ControlPlane]:
    """A control plane of the test's own: the SyncRule resource comes and goes there."""
    with ControlPlane(controlplane_binaries) as plane:
        yield plane


def test_syncrules_are_followed_when_their_resource_comes_and_goes(own_plane: ControlPlane) -> None:
    with api_client(own_plane.kubeconfig) as api:
        core = client.CoreV1Api(api)
        extensions = client.ApiextensionsV1Api(api)
        custom = client.CustomObjectsApi(api)
        for name in ("src", "team-a"):
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        core.create_namespaced_config_map("src", configmap("settings", {"k": "v"}))

        with running("--no-leader-elect", kubeconfig=own_plane.kubeconfig) as ctl:
            extensions.create_custom_resource_definition(yaml.safe_load(CRD.read_text(encoding="utf-8")))
            wait_for(
                functools.partial(_created, custom, "src", rule("share", "settings", ["team-a"])),
                what="served",
            )
            wait_for(
                lambda: cm_data(core, "team-a", "settings") == {"k": "v"}, what="the rule obeyed", timeout=60
            )

            bad = rule("broken", "settings", ["team-a"])
            bad["spec"]["namespaceSelector"] = 42
            custom.create_namespaced_custom_object(GROUP, VERSION, "src", PLURAL, bad)
            wait_for(lambda: events(core, "src", "InvalidSyncRule"), what="the invalid SyncRule reported")
            (event,) = events(core, "src", "InvalidSyncRule")
            assert event.involved_object.kind == "SyncRule"
            assert event.involved_object.name == "broken"
            wait_for(lambda: ctl.metric("cfgsync_invalid_syncrules") == 1, what="counted")

            extensions.delete_custom_resource_definition(f"{PLURAL}.{GROUP}")
            wait_for(
                lambda: read_cm(core, "team-a", "settings") is None, what="the rule gone with it", timeout=60
            )
            assert ctl.get("/healthz")[0] == 200


def _created(custom: Any, namespace: str, body: dict[str, Any]) -> bool:
    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    except client.ApiException as exc:
        return bool(exc.status == 409)
    return True
