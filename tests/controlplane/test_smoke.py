"""The control plane is a real Kubernetes API: the official client can do what cfgsync will do with it."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client, watch

from controlplane import ControlPlane
from controlplane.fixtures import object_names

pytestmark = pytest.mark.timeout(120)

MANAGER = "cfgsync-smoke-test"

new_watch: Callable[[], Any] = watch.Watch  # the watch helper carries no annotations


def test_serves_the_pinned_kubernetes_version(control_plane: ControlPlane, kube_api: Any) -> None:
    info = client.VersionApi(kube_api).get_code()

    assert info.git_version.startswith("v1.37.")
    assert control_plane.server.startswith("https://127.0.0.1:")


def test_namespaces_are_created_and_listed(kube_api: Any, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)

    names = object_names(core.list_namespace())
    created = core.read_namespace(namespace)

    assert {namespace, "default", "kube-system"} <= names
    assert created.status is not None
    assert created.status.phase == "Active"


def test_configmaps_and_secrets_round_trip(kube_api: Any, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="settings", labels={"app": "demo"}),
            data={"mode": "fast", "level": "3"},
        ),
    )
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="token"),
            type="Opaque",
            string_data={"password": "s3cret"},
        ),
    )

    configmaps = core.list_namespaced_config_map(namespace, label_selector="app=demo")
    secret = core.read_namespaced_secret("token", namespace)

    assert object_names(configmaps) == {"settings"}
    assert configmaps.items[0].data == {"mode": "fast", "level": "3"}
    assert secret.type == "Opaque"
    assert secret.data is not None
    assert base64.b64decode(secret.data["password"]) == b"s3cret"  # stringData is stored base64-encoded


def test_watch_sees_add_modify_delete_in_order(kube_api: Any, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    listing = core.list_namespaced_config_map(namespace)
    assert listing.metadata is not None
    start = listing.metadata.resource_version
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched"), data={"v": "1"})
    )
    core.patch_namespaced_config_map(
        "watched", namespace, {"data": {"v": "2"}}, _content_type="application/merge-patch+json"
    )
    core.delete_namespaced_config_map("watched", namespace)

    seen = []
    watcher = new_watch()
    for event in watcher.stream(
        core.list_namespaced_config_map, namespace, resource_version=start, timeout_seconds=30
    ):
        obj = event["object"]
        seen.append((event["type"], obj.metadata.name, (obj.data or {}).get("v")))
        if event["type"] == "DELETED":
            watcher.stop()

    assert seen == [("ADDED", "watched", "1"), ("MODIFIED", "watched", "2"), ("DELETED", "watched", "2")]


def test_server_side_apply_records_the_field_manager(kube_api: Any, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "applied", "namespace": namespace, "annotations": {"note": "first"}},
        "data": {"key": "one"},
    }

    def apply(body: dict[str, Any], *, manager: str = MANAGER, force: bool = False) -> Any:
        return core.patch_namespaced_config_map(
            "applied",
            namespace,
            body,
            field_manager=manager,
            force=force or None,
            _content_type="application/apply-patch+yaml",
        )

    created = apply(manifest)
    updated = apply({**manifest, "data": {"key": "two"}})
    with pytest.raises(client.ApiException) as conflict:
        apply({**manifest, "data": {"key": "three"}}, manager="someone-else")
    taken_over = apply({**manifest, "data": {"key": "four"}}, manager="someone-else", force=True)

    assert created.data == {"key": "one"}
    assert created.metadata.annotations == {"note": "first"}
    assert updated.data == {"key": "two"}
    assert [(f.manager, f.operation) for f in created.metadata.managed_fields] == [(MANAGER, "Apply")]
    assert conflict.value.status == 409  # another manager owns data.key: SSA refuses without force
    assert taken_over.data == {"key": "four"}
    assert {f.manager for f in taken_over.metadata.managed_fields} == {MANAGER, "someone-else"}
