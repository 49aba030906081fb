"""Taking over a cluster that kubed 0.13 synced: every copy adopted in place, none lost.

The cluster is left exactly as a real kubed 0.13.2 leaves it after it has restarted once (see
docs/migrating-from-kubed.md): its copies carry the source's labels (an Argo CD tracking label among
them), the origin labels and the origin annotation, with field manager ``kubed``; ``sync: ""`` reached
every namespace, the system ones too; and the sources themselves carry origin labels and the origin
annotation pointing at themselves, which kubed's namespace handler writes when it restarts. (kubed's own
module is not served by the Go module proxy this project builds from, so the cluster is prepared the way
kubed writes it rather than by kubed.)

By default cfgsync copies nothing into the system namespaces: kubed's copies there are left exactly as
they are (never deleted: a workload may need them) and reported, until the operator allows system
namespaces (``--allow-system-namespaces``, kubed's behaviour), when they are managed like the others.

Each test gets a control plane of its own, so that "every namespace" is a set the test knows.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from controlplane import Binaries, ControlPlane
from controlplane.fixtures import api_client
from live.controller import running
from live.helpers import SYNC, cfgsync, cm_data, read_cm, read_secret, wait_for

pytestmark = pytest.mark.timeout(300)

KUBED_CLUSTER = "unicorn"  # the cluster name kubed's Helm chart sets by default
KUBED = "kubed"  # kubed's field manager (client-go names it after the binary)
SYSTEM = ("default", "kube-system", "kube-public", "kube-node-lease")
LEFT_ALONE = ("kube-node-lease", "kube-public", "kube-system")  # the system namespaces cfgsync leaves alone
TRACKING = "app.kubernetes.io/instance"  # Argo CD's tracking label, on the source and so on kubed's copies
TEAMS = {"team-a": {"app": "kubed"}, "team-b": {"app": "kubed"}, "team-c": {}, "legacy": {}}


@pytest.fixture
def kubed_cluster(controlplane_binaries: Binaries) -> Iterator[ControlPlane]:
    """A control plane of the test's own."""
    with ControlPlane(controlplane_binaries) as plane:
        yield plane


@pytest.fixture
def core(kubed_cluster: ControlPlane) -> Iterator[Any]:
    """CoreV1Api as the admin of that control plane."""
    with api_client(kubed_cluster.kubeconfig) as api:
        yield client.CoreV1Api(api)


def origin_labels(namespace: str, name: str) -> dict[str, str]:
    return {
        "kubed.appscode.com/origin.name": name,
        "kubed.appscode.com/origin.namespace": namespace,
        "kubed.appscode.com/origin.cluster": KUBED_CLUSTER,
    }


def origin_annotation(obj: Any, kind: str) -> str:
    meta = obj.metadata
    ref = {"kind": kind, "namespace": meta.namespace, "name": meta.name, "uid": meta.uid}
    ref |= {"apiVersion": "v1", "resourceVersion": meta.resource_version}
    return json.dumps(ref, separators=(",", ":"))


def kubed_metadata(source: Any, kind: str, namespace: str) -> client.V1ObjectMeta:
    """A copy's metadata as kubed writes it: source labels and annotations, origin labels and annotation."""
    meta = source.metadata
    annotations = {k: v for k, v in (meta.annotations or {}).items() if not k.startswith(SYNC)}
    annotations["kubed.appscode.com/origin"] = origin_annotation(source, kind)
    labels = {**(meta.labels or {}), **origin_labels(meta.namespace, meta.name)}
    return client.V1ObjectMeta(name=meta.name, namespace=namespace, labels=labels, annotations=annotations)


def mark_as_kubed_restart_does(core: Any, source: Any, kind: str) -> Any:
    """kubed's namespace handler, on restart, writes the origin marks onto the source itself."""
    body = {
        "metadata": {
            "labels": origin_labels(source.metadata.namespace, source.metadata.name),
            "annotations": {"kubed.appscode.com/origin": origin_annotation(source, kind)},
        }
    }
    patch = core.patch_namespaced_config_map if kind == "ConfigMap" else core.patch_namespaced_secret
    return patch(source.metadata.name, source.metadata.namespace, body, field_manager=KUBED)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def kubed_synced(core: Any) -> dict[str, Any]:
    """kubed's tutorial, synced by kubed and kubed restarted once: what a migrating user has."""
    for name, labels in {"demo": {}, **TEAMS}.items():
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    present = {ns.metadata.name for ns in core.list_namespace().items}
    assert set(SYSTEM) <= present  # the API server makes the system namespaces itself
    omni = core.create_namespaced_config_map(
        "demo",
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name="omni", labels={"app": "omni", TRACKING: "platform-config"}, annotations={SYNC: ""}
            ),
            data={"you": "only", "live": "once"},
        ),
    )
    regcred = core.create_namespaced_secret(
        "demo",
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="regcred", annotations={SYNC: "app=kubed"}),
            type="kubernetes.io/dockerconfigjson",
            data={".dockerconfigjson": b64('{"auths":{}}')},
        ),
    )
    # kubed restarted once: it marked the sources, then brought its copies in line with them.
    omni = mark_as_kubed_restart_does(core, omni, "ConfigMap")
    regcred = mark_as_kubed_restart_does(core, regcred, "Secret")
    everywhere = sorted(present - {"demo"})
    for ns in everywhere:
        data = {"you": "edited", "live": "by hand"} if ns == "team-c" else dict(omni.data)
        core.create_namespaced_config_map(
            ns,
            client.V1ConfigMap(metadata=kubed_metadata(omni, "ConfigMap", ns), data=data),
            field_manager=KUBED,
        )
    # "legacy" lost its app=kubed label after kubed copied into it: kubed left that copy behind.
    for ns in ("team-a", "team-b", "legacy"):
        core.create_namespaced_secret(
            ns,
            client.V1Secret(
                metadata=kubed_metadata(regcred, "Secret", ns), type=regcred.type, data=dict(regcred.data)
            ),
            field_manager=KUBED,
        )
    uids = {("ConfigMap", ns): read_cm(core, ns, "omni").metadata.uid for ns in everywhere}
    uids |= {("Secret", ns): read_secret(core, ns, "regcred").metadata.uid for ns in ("team-a", "team-b")}
    return {"everywhere": everywhere, "uids": uids}


def current_uids(core: Any, keys: Any) -> dict[tuple[str, str], str | None]:
    read = {"ConfigMap": functools.partial(read_cm, core), "Secret": functools.partial(read_secret, core)}
    found = {}
    for kind, ns in keys:
        obj = read[kind](ns, "omni" if kind == "ConfigMap" else "regcred")
        found[(kind, ns)] = None if obj is None else obj.metadata.uid
    return found


@pytest.mark.parametrize("allow_system", [False, True], ids=["default", "allow-system-namespaces"])
def test_the_preview_shows_no_copy_lost(
    kubed_cluster: ControlPlane, kubed_synced: dict[str, Any], allow_system: bool
) -> None:
    flags = ["--allow-system-namespaces"] if allow_system else []
    result = cfgsync(
        "apply", "--dry-run", "--cluster-name", KUBED_CLUSTER, *flags, kubeconfig=kubed_cluster.kubeconfig
    )

    assert result.returncode == 0, result.stderr
    assert "delete Secret legacy/regcred" in result.stdout  # the copy kubed left behind
    assert "update ConfigMap team-c/omni" in result.stdout  # the hand edit is reverted
    summary = result.stdout.splitlines()[-1]  # the preview ends with what it would do, deletes included
    assert summary.startswith("dry run: 0 to create, "), summary
    assert summary.endswith(", 0 to replace, 1 to delete; nothing written"), summary
    for ns in LEFT_ALONE:
        left_alone = f"warning: left alone: ConfigMap {ns}/omni (copy of ConfigMap demo/omni) left alone"
        assert (left_alone in result.stderr) is not allow_system, result.stderr
        assert (f"update ConfigMap {ns}/omni" in result.stdout) is allow_system


@pytest.mark.parametrize("allow_system", [False, True], ids=["default", "allow-system-namespaces"])
def test_run_adopts_every_copy_in_place_and_keeps_them_in_line(
    kubed_cluster: ControlPlane, core: Any, kubed_synced: dict[str, Any], allow_system: bool
) -> None:
    everywhere, before = kubed_synced["everywhere"], kubed_synced["uids"]
    managed = [ns for ns in everywhere if allow_system or ns not in LEFT_ALONE]
    system_copies = {ns: read_cm(core, ns, "omni") for ns in LEFT_ALONE}
    flags = ["--allow-system-namespaces"] if allow_system else []

    with running(
        "--no-leader-elect", "--cluster-name", KUBED_CLUSTER, *flags, kubeconfig=kubed_cluster.kubeconfig
    ) as ctl:
        wait_for(lambda: read_secret(core, "legacy", "regcred") is None, what="kubed's stale copy removed")
        wait_for(
            lambda: cm_data(core, "team-c", "omni") == {"you": "only", "live": "once"}, what="edit reverted"
        )
        wait_for(lambda: ctl.metric("cfgsync_queue_depth") == 0, what="first pass done")
        assert current_uids(core, before) == before  # every copy kept: nothing deleted and made again
        # No copy created; the only POSTs are the CopyLeftAlone Events, one per copy left alone.
        left_alone = 0 if allow_system else len(LEFT_ALONE)
        assert ctl.metric("cfgsync_write_calls_total", method="POST") == left_alone
        assert ctl.metric("cfgsync_write_calls_total", method="DELETE") == 1
        assert ctl.metric("cfgsync_copies_managed") == len(before)
        assert ctl.metric("cfgsync_deletes_held") == 0
        assert ctl.metric("cfgsync_copies_left_alone") == left_alone
        # Copies kubed made lose the GitOps tracking label in that one update in place.
        wait_for(lambda: TRACKING not in read_cm(core, "team-a", "omni").metadata.labels, what="label gone")
        if not allow_system:
            for ns in LEFT_ALONE:
                events = wait_for(
                    lambda ns=ns: [  # type: ignore[misc]
                        e for e in core.list_namespaced_event(ns).items if e.reason == "CopyLeftAlone"
                    ],
                    what=f"a CopyLeftAlone Event in {ns}",
                )
                assert "--allow-system-namespaces" in events[0].message
            logged = [r for r in ctl.log_records() if "left alone" in str(r.get("message", ""))]
            assert sorted(str(r["copy"]) for r in logged) == [f"ConfigMap {ns}/omni" for ns in LEFT_ALONE]

        core.patch_namespaced_config_map("omni", "demo", {"data": {"you": "only", "live": "twice"}})
        twice = {"you": "only", "live": "twice"}
        wait_for(lambda: all(cm_data(core, ns, "omni") == twice for ns in managed), what="the edit flows")
        core.patch_namespace("team-c", {"metadata": {"labels": {"app": "kubed"}}})
        wait_for(
            lambda: read_secret(core, "team-c", "regcred") is not None, what="a newly selected namespace"
        )
        if not allow_system:
            # Left exactly as kubed wrote them: same version, same data, kubed's labels, never deleted.
            for ns, kept in system_copies.items():
                now = read_cm(core, ns, "omni")
                assert now.metadata.resource_version == kept.metadata.resource_version, ns
                assert now.data == {"you": "only", "live": "once"}
                assert now.metadata.labels[TRACKING] == "platform-config"

    assert current_uids(core, before) == before
    source = read_cm(core, "demo", "omni")
    assert source.metadata.labels["kubed.appscode.com/origin.name"] == "omni"  # left as kubed wrote it
    assert "cfgsync" not in {m.manager for m in source.metadata.managed_fields}  # a source is never written
    managers = {m.manager for m in read_cm(core, "team-a", "omni").metadata.managed_fields}
    assert "cfgsync" in managers
