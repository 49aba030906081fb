"""The controller's Store, without an API server: what it takes for a source and what for a copy."""

from __future__ import annotations

from typing import Any

from cfgsync._controller.store import Store
from cfgsync._core.model import ObjectRef

CLUSTER = "unicorn"
SOURCE = ObjectRef(kind="ConfigMap", namespace="demo", name="omni")


def raw(namespace: str, name: str, *, labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
    meta = {
        "namespace": namespace,
        "name": name,
        "uid": f"uid-{namespace}",
        "resourceVersion": "7",
        "labels": labels,
        "annotations": annotations,
    }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


def marks(namespace: str, name: str) -> dict[str, str]:
    return {
        "kubed.appscode.com/origin.name": name,
        "kubed.appscode.com/origin.namespace": namespace,
        "kubed.appscode.com/origin.cluster": CLUSTER,
    }


def test_a_source_marked_with_its_own_origin_is_held_as_a_source_not_a_copy() -> None:
    changed: list[ObjectRef] = []
    store = Store(cluster_name=CLUSTER, on_change=changed.extend)
    marked = raw("demo", "omni", labels=marks("demo", "omni"), annotations={"kubed.appscode.com/sync": ""})

    store.put_copy(marked)  # the copy watch selects it by its labels ...
    store.put_object("ConfigMap", marked["metadata"])  # ... and the metadata watch sees it too

    assert store.copy_refs("ConfigMap") == set()
    assert SOURCE in store.source_versions
    assert store.all_keys() == {SOURCE}
    assert changed == [SOURCE]


def test_a_copy_is_held_as_a_copy_of_its_source_even_with_a_sync_annotation() -> None:
    changed: list[ObjectRef] = []
    store = Store(cluster_name=CLUSTER, on_change=changed.extend)
    copy = raw("team-a", "omni", labels=marks("demo", "omni"), annotations={"kubed.appscode.com/sync": ""})

    store.put_copy(copy)
    store.put_object("ConfigMap", copy["metadata"])

    assert store.copy_refs("ConfigMap") == {ObjectRef(kind="ConfigMap", namespace="team-a", name="omni")}
    assert store.source_versions == {}
    assert store.managed_copies == 1
    assert changed == [SOURCE]  # its owner is reconciled


def test_a_copy_relabelled_to_point_at_itself_stops_being_a_copy() -> None:
    store = Store(cluster_name=CLUSTER)
    copy = raw("team-a", "omni", labels=marks("demo", "omni"), annotations={})
    store.put_copy(copy)

    store.put_copy(raw("team-a", "omni", labels=marks("team-a", "omni"), annotations={}))

    assert store.copy_refs("ConfigMap") == set()
    assert store.managed_copies == 0
