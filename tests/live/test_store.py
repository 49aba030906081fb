"""The controller's Store, without an API server: what it takes for a source, a copy, and what it keeps."""

from __future__ import annotations

import dataclasses

import pytest

from cfgsync._controller.store import Store
from cfgsync._core import manifests
from cfgsync._core.model import ConfigObject, Namespace, ObjectRef, frozen

CLUSTER = "unicorn"
SOURCE = ObjectRef(kind="ConfigMap", namespace="demo", name="omni")


def obj(
    namespace: str,
    name: str = "omni",
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
    uid: str | None = None,
    version: str = "7",
) -> ConfigObject:
    return ConfigObject(
        ref=ObjectRef(kind="ConfigMap", namespace=namespace, name=name),
        labels=frozen(labels),
        annotations=frozen(annotations),
        data=frozen(data or {"k": "v"}),
        uid=uid or f"uid-{namespace}",
        resource_version=version,
    )


def marks(namespace: str, name: str = "omni", cluster: str = CLUSTER) -> dict[str, str]:
    return {
        "kubed.appscode.com/origin.name": name,
        "kubed.appscode.com/origin.namespace": namespace,
        "kubed.appscode.com/origin.cluster": cluster,
    }


SYNC = {"kubed.appscode.com/sync": ""}


@pytest.fixture
def changed() -> list[ObjectRef]:
    return []


@pytest.fixture
def store(changed: list[ObjectRef]) -> Store:
    return Store(cluster_name=CLUSTER, on_change=changed.extend)


def test_a_source_marked_with_its_own_origin_is_held_as_a_source_not_a_copy(
    store: Store, changed: list[ObjectRef]
) -> None:
    marked = obj("demo", labels=marks("demo"), annotations=SYNC)

    store.put_copy(marked)  # the copy watch selects it by its labels ...
    store.put_object(marked)  # ... and the metadata watch sees it too

    assert store.copy_keys("ConfigMap") == set()
    assert store.source(SOURCE).version == "7"
    assert store.all_keys() == {SOURCE}
    assert changed == [SOURCE]


def test_a_copy_is_held_as_a_copy_of_its_source_even_with_a_sync_annotation(
    store: Store, changed: list[ObjectRef]
) -> None:
    copy = obj("team-a", labels=marks("demo"), annotations=SYNC)

    store.put_copy(copy)
    store.put_object(copy)

    assert store.copy_keys("ConfigMap") == {("team-a", "omni")}
    assert store.source(copy.ref).version is None  # not a source
    assert store.managed_copies == 1
    assert changed == [SOURCE]  # its owner is reconciled


def test_a_copy_relabelled_to_point_at_itself_stops_being_a_copy(store: Store) -> None:
    store.put_copy(obj("team-a", labels=marks("demo")))

    store.put_copy(obj("team-a", labels=marks("team-a"), version="8"))

    assert store.copy_keys("ConfigMap") == set()
    assert store.managed_copies == 0


def test_copies_are_held_as_a_digest_of_their_payload(store: Store) -> None:
    big = {"blob": "x" * 100_000}
    store.put_copy(obj("team-a", labels=marks("demo"), data=big))

    (held,) = store.neighbourhood([SOURCE], []).existing.values()

    assert held.data == {}
    assert held.content_digest == manifests.content_digest(big, {})


def test_what_holds_a_name_is_seen_whoever_holds_it(store: Store) -> None:
    store.put_copy(obj("team-a", labels=marks("demo")))
    store.put_object(obj("team-a", labels=marks("demo")))
    store.put_object(obj("team-b"))  # somebody else's object with the copy's name
    store.put_object(obj("team-c", labels=marks("demo", cluster="elsewhere")))  # another cluster's copy

    hood = store.neighbourhood([], [("ConfigMap", "omni")])

    assert sorted(r.namespace for r in hood.existing) == ["team-a", "team-b", "team-c"]
    assert hood.existing[obj("team-a").ref].labels == frozen(marks("demo"))
    assert hood.existing[obj("team-b").ref] == ConfigObject(ref=obj("team-b").ref)  # bare: nobody's
    assert hood.owners == {SOURCE}


def test_a_copy_that_can_no_longer_be_read_is_seen_as_nobodys(store: Store) -> None:
    copy = obj("team-a", labels=marks("demo"))
    store.put_copy(copy)
    store.put_object(copy)

    store.drop_copy("ConfigMap", ("team-a", "omni"))  # the copy watch could not read it any more

    hood = store.neighbourhood([SOURCE], [("ConfigMap", "omni")])
    assert hood.existing[copy.ref] == ConfigObject(ref=copy.ref)


def test_echoes_of_its_own_writes_are_not_news(store: Store, changed: list[ObjectRef]) -> None:
    copy = obj("team-a", labels=marks("demo"), version="9")
    store.record_write(copy.ref, stored=copy, replaced_uid=None)

    store.put_copy(dataclasses.replace(copy, resource_version="8"))  # an older event, late
    store.put_copy(copy)  # the echo of the write

    assert changed == []
    store.record_write(copy.ref, stored=None, replaced_uid=copy.uid)
    store.put_copy(copy)  # the watch's late view of the deleted copy does not bring it back
    assert store.copy_keys("ConfigMap") == set()


def test_namespace_changes_reconcile_every_source(store: Store, changed: list[ObjectRef]) -> None:
    store.put_object(obj("demo", annotations=SYNC))
    changed.clear()

    store.put_namespace(Namespace(name="team-a", labels=frozen({"app": "kubed"})))
    store.put_namespace(Namespace(name="team-a", labels=frozen({"app": "kubed"})))  # no change: no news

    assert changed == [SOURCE]
    assert [n.name for n in store.namespaces()] == ["team-a"]


def test_queries_answer_with_snapshots(store: Store) -> None:
    store.put_namespace(Namespace(name="a"))
    before = store.namespaces()
    keys = store.copy_keys("ConfigMap")
    keys.add(("x", "y"))

    store.put_namespace(Namespace(name="b"))

    assert [n.name for n in before] == ["a"]
    assert store.copy_keys("ConfigMap") == set()
    public = {name for name in vars(store) if not name.startswith("_")}
    assert public == set()  # no state outside the Store's own methods


def test_the_sources_kept_in_full_are_bounded(store: Store) -> None:
    from cfgsync._controller.store import SOURCE_CACHE_BYTES

    big = "x" * (SOURCE_CACHE_BYTES // 4)
    sources = [obj("demo", f"big-{i}", annotations=SYNC, data={"k": big}) for i in range(6)]
    for source in sources:
        store.put_object(source)
        store.remember_source(source, source.resource_version)

    kept = [s for s in sources if store.source(s.ref).cached is not None]

    assert len(kept) == 3  # the oldest went first: never more than the budget in memory
    assert [s.ref.name for s in kept] == ["big-3", "big-4", "big-5"]


ASKS = {"cfgsync.io/copy-from": "demo/omni"}
OTHER = ObjectRef(kind="ConfigMap", namespace="demo", name="other")


def test_a_target_is_indexed_by_the_source_it_asks_for_and_nothing_else(
    store: Store, changed: list[ObjectRef]
) -> None:
    target = obj(
        "team-a", "app", annotations={**ASKS, "kubectl.kubernetes.io/last-applied-configuration": "x" * 1000}
    )
    store.put_object(target)

    assert changed == [SOURCE]
    assert store.requesters([SOURCE]) == {target.ref}
    assert SOURCE in store.all_keys()  # resync reaches it, whether it exists or not
    assert store.target(target.ref) == ("7", None)  # its version only, until the reconciler reads it
    store.put_object(obj("team-b", "plain"))  # an object that asks for nothing adds nothing
    assert store.requesters([SOURCE]) == {target.ref}


def test_a_changed_request_reconciles_the_old_and_the_new_source(
    store: Store, changed: list[ObjectRef]
) -> None:
    store.put_object(obj("team-a", "app", annotations=ASKS))
    changed.clear()

    store.put_object(obj("team-a", "app", annotations={"cfgsync.io/copy-from": "demo/other"}, version="8"))

    assert set(changed) == {OTHER, SOURCE}
    assert store.requesters([SOURCE]) == set()
    assert store.requesters([OTHER]) == {ObjectRef(kind="ConfigMap", namespace="team-a", name="app")}


@pytest.mark.parametrize("how", ["request removed", "target deleted"])
def test_a_request_that_goes_reconciles_its_source_and_is_forgotten(
    store: Store, changed: list[ObjectRef], how: str
) -> None:
    store.put_object(obj("team-a", "app", annotations=ASKS))
    changed.clear()

    if how == "request removed":
        store.put_object(obj("team-a", "app", version="8"))
    else:
        store.drop_object("ConfigMap", ("team-a", "app"))

    assert changed == [SOURCE]
    assert store.requesters([SOURCE]) == set()
    assert SOURCE not in store.all_keys()


def test_a_target_edit_reconciles_its_source_and_an_echo_of_the_same_version_does_not(
    store: Store, changed: list[ObjectRef]
) -> None:
    store.put_object(obj("team-a", "app", annotations=ASKS))
    store.put_object(obj("team-a", "app", annotations=ASKS))
    assert changed == [SOURCE]
    store.put_object(obj("team-a", "app", annotations=ASKS, version="8"))
    assert changed == [SOURCE, SOURCE]


def test_a_malformed_request_reconciles_the_target_itself_so_that_it_is_told(
    store: Store, changed: list[ObjectRef]
) -> None:
    target = obj("team-a", "app", annotations={"cfgsync.io/copy-from": "no-slash"})
    store.put_object(target)
    assert changed == [target.ref]
    assert store.requesters([target.ref]) == {target.ref}


def test_a_switched_off_vocabulary_asks_for_nothing(changed: list[ObjectRef]) -> None:
    store = Store(cluster_name=CLUSTER, on_change=changed.extend, disabled=frozenset({"replicator"}))
    store.put_object(
        obj("team-a", "app", annotations={"replicator.v1.mittwald.de/replicate-from": "demo/omni"})
    )
    assert changed == []


def test_peer_made_copies_are_remembered_by_name_until_taken_over(store: Store) -> None:
    mirror = obj(
        "team-a",
        annotations={
            "reflector.v1.k8s.emberstack.com/reflects": "demo/omni",
            "reflector.v1.k8s.emberstack.com/auto-reflects": "True",
        },
    )
    store.put_object(mirror)
    assert store.peer_made([mirror.ref, SOURCE]) == {mirror.ref}
    store.put_object(
        dataclasses.replace(
            mirror, labels=frozen(marks("demo")), annotations=frozen({}), resource_version="8"
        )
    )
    assert store.peer_made([mirror.ref]) == set()
