"""Taking over from kubed: copies kubed made are adopted in place (same uid), then kept in line."""

from __future__ import annotations

import functools
import json
import secrets
from typing import Any

import pytest
from kubernetes import client

from controlplane import ControlPlane
from live.conftest import NamespaceFactory
from live.controller import running
from live.helpers import SYNC, cm_data, configmap, read_cm, wait_for

pytestmark = pytest.mark.timeout(240)

KUBED_CLUSTER = "unicorn"  # the cluster name kubed's Helm chart sets by default


def kubed_copy(source: Any, namespace: str) -> client.V1ConfigMap:
    """A copy exactly as kubed 0.13 writes one: source labels plus origin labels, the origin annotation."""
    meta = source.metadata
    origin = {
        "kind": "ConfigMap",
        "namespace": meta.namespace,
        "name": meta.name,
        "uid": meta.uid,
        "apiVersion": "v1",
        "resourceVersion": meta.resource_version,
    }
    labels = dict(meta.labels or {})
    labels |= {
        "kubed.appscode.com/origin.name": meta.name,
        "kubed.appscode.com/origin.namespace": meta.namespace,
        "kubed.appscode.com/origin.cluster": KUBED_CLUSTER,
    }
    annotations = {
        k: v for k, v in (meta.annotations or {}).items() if not k.startswith("kubed.appscode.com/sync")
    }
    annotations["kubed.appscode.com/origin"] = json.dumps(origin, separators=(",", ":"))
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(
            name=meta.name, namespace=namespace, labels=labels, annotations=annotations
        ),
        data=dict(source.data or {}),
    )


def has_data(core: Any, namespace: str, data: dict[str, str]) -> bool:
    return cm_data(core, namespace, "omni") == data


def test_copies_made_by_kubed_are_adopted_in_place(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    team = f"team-{secrets.token_hex(3)}"
    src = make_namespace("src")
    spaces = [make_namespace(f"t{i}", {team: "yes"}) for i in range(3)]
    stale = make_namespace("stale", {team: "no"})  # kubed left a copy here after the label changed
    source = core.create_namespaced_config_map(
        src, configmap("omni", {"k": "v"}, labels={"app": "demo"}, annotations={SYNC: f"{team}=yes"})
    )
    for ns in [*spaces, stale]:
        core.create_namespaced_config_map(ns, kubed_copy(source, ns), field_manager="kubed")
    before = {ns: read_cm(core, ns, "omni").metadata.uid for ns in spaces}

    args = ("--no-leader-elect", "--cluster-name", KUBED_CLUSTER, "--config-source-namespace", src)
    with running(*args, kubeconfig=control_plane.kubeconfig) as ctl:
        wait_for(lambda: read_cm(core, stale, "omni") is None, what="kubed's stale copy removed")
        wait_for(lambda: ctl.metric("cfgsync_queue_depth") == 0, what="first pass done")
        assert ctl.metric("cfgsync_write_calls_total", method="POST") == 0  # nothing re-created
        assert ctl.metric("cfgsync_copies_managed") == 3

        core.patch_namespaced_config_map("omni", src, {"data": {"k": "v2"}})
        for ns in spaces:
            wait_for(functools.partial(has_data, core, ns, {"k": "v2"}), what=f"update in {ns}")

    after = {ns: read_cm(core, ns, "omni").metadata.uid for ns in spaces}
    assert after == before
    managers = {m.manager for m in read_cm(core, spaces[0], "omni").metadata.managed_fields}
    assert "cfgsync" in managers
