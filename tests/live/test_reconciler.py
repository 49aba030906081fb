"""The Reconciler without an API server: it plans from the Store, writes, and records what it wrote."""

from __future__ import annotations

from typing import Any

import pytest

from cfgsync._adapters.kube import view
from cfgsync._adapters.kube.events import EventRecorder
from cfgsync._adapters.kube.writing import Writer
from cfgsync._controller.metrics import Metrics
from cfgsync._controller.reconciler import Reconciler
from cfgsync._controller.store import Store
from cfgsync._core import planner
from cfgsync._core.model import Namespace, ObjectRef, frozen
from cfgsync._plugins.manager import load_plugins
from live.fakes import FakeApi

CLUSTER = "unicorn"
SOURCE = ObjectRef(kind="ConfigMap", namespace="demo", name="omni")
SOURCE_PATH = "/api/v1/namespaces/demo/configmaps/omni"


def source_json(data: dict[str, str], version: str = "5") -> dict[str, Any]:
    meta = {
        "name": "omni",
        "namespace": "demo",
        "uid": "src",
        "resourceVersion": version,
        "annotations": {"kubed.appscode.com/sync": "app=kubed"},
    }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


@pytest.fixture
def api() -> FakeApi:
    return FakeApi(objects={SOURCE_PATH: source_json({"k": "v"})})


@pytest.fixture
def store(api: FakeApi) -> Store:
    store = Store(cluster_name=CLUSTER)
    for name, labels in (("demo", {}), ("a", {"app": "kubed"}), ("b", {"app": "kubed"}), ("c", {})):
        store.put_namespace(Namespace(name=name, labels=frozen(labels)))
    store.put_object(view.header(api.objects[SOURCE_PATH]))
    return store


def make_reconciler(api: FakeApi, store: Store, **options: Any) -> Reconciler:
    """A reconciler on the fake API with the built-in transforms only; ``options`` go to its constructor."""
    kube = api.as_kube()
    return Reconciler(
        kube=kube,
        store=store,
        writer=Writer(kube, workers=2),
        hooks=load_plugins(only=()),
        settings=planner.PlanSettings(cluster_name=CLUSTER),
        events=EventRecorder(kube),
        metrics=Metrics(),
        **options,
    )


@pytest.fixture
def reconciler(api: FakeApi, store: Store) -> Reconciler:
    return make_reconciler(api, store)


def test_a_reconcile_creates_the_copies_and_the_next_one_writes_nothing(
    api: FakeApi, reconciler: Reconciler, store: Store
) -> None:
    first = reconciler.reconcile(SOURCE)

    assert (first.writes, first.failures, first.retry) == (2, 0, False)
    assert sorted(c.path for c in api.writes("POST")) == [
        "/api/v1/namespaces/a/configmaps",
        "/api/v1/namespaces/b/configmaps",
    ]
    assert store.managed_copies == 2  # recorded from the answers, before any watch echo
    api.calls.clear()

    again = reconciler.reconcile(SOURCE)

    assert again.writes == 0
    assert api.writes() == []
    assert [c.method for c in api.calls] == []  # the source came from the cache: not even a GET


def test_a_source_edit_is_fetched_once_and_updates_every_copy(
    api: FakeApi, reconciler: Reconciler, store: Store
) -> None:
    reconciler.reconcile(SOURCE)
    api.objects[SOURCE_PATH] = source_json({"k": "v2"}, version="6")
    store.put_object(view.header(api.objects[SOURCE_PATH]))
    api.calls.clear()

    result = reconciler.reconcile(SOURCE)

    assert result.writes == 2
    assert [c.method for c in api.calls].count("GET") == 1
    assert {c.body["data"]["k"] for c in api.writes("PATCH")} == {"v2"}


def test_an_object_in_the_way_is_a_conflict_reported_on_the_source(
    api: FakeApi, reconciler: Reconciler, store: Store
) -> None:
    store.put_object(view.header({"kind": "ConfigMap", "metadata": {"namespace": "a", "name": "omni"}}))

    reconciler.reconcile(SOURCE)

    assert [c.path for c in api.writes("POST")] == [
        "/api/v1/namespaces/b/configmaps",
        "/api/v1/namespaces/demo/events",
    ]
    (event,) = [c.body for c in api.writes("POST") if c.path.endswith("/events")]
    assert event["reason"] == "CopyConflict"
    assert event["message"].startswith("conflict: copy of ConfigMap demo/omni not written")
    assert store.claimants([ObjectRef(kind="ConfigMap", namespace="a", name="omni")]) == {SOURCE}


def test_a_source_that_cannot_be_read_is_reported_and_keeps_its_copies(
    api: FakeApi, reconciler: Reconciler, store: Store
) -> None:
    reconciler.reconcile(SOURCE)
    broken = source_json({"bad key!": "x"}, version="6")
    api.objects[SOURCE_PATH] = broken
    store.put_object(view.header(broken))
    api.calls.clear()

    result = reconciler.reconcile(SOURCE)

    assert api.writes("DELETE") == []
    assert api.writes("PATCH") == []
    events = {e["reason"]: e for e in (c.body for c in api.writes("POST"))}
    assert "data key 'bad key!' is invalid" in events["UnreadableSource"]["message"]
    assert "exists but cannot be read" in events["CopyLeftAlone"]["message"]
    assert result.failures == 0
    assert store.managed_copies == 2

    api.objects[SOURCE_PATH] = source_json({"k": "v2"}, version="7")  # fixed: its copies follow again
    store.put_object(view.header(api.objects[SOURCE_PATH]))
    reconciler.reconcile(SOURCE)
    assert {c.body["data"]["k"] for c in api.writes("PATCH")} == {"v2"}


def test_the_copies_of_a_vanished_source_wait_out_the_grace(api: FakeApi, store: Store) -> None:
    now = [0.0]
    reconciler = make_reconciler(api, store, gone_grace=30.0, clock=lambda: now[0])
    reconciler.reconcile(SOURCE)
    store.drop_object("ConfigMap", ("demo", "omni"))  # deleted ...
    api.calls.clear()

    waiting = reconciler.reconcile(SOURCE)

    assert api.writes("DELETE") == []
    assert waiting.again_in == 30.0
    now[0] = 10.0
    store.put_object(view.header(api.objects[SOURCE_PATH]))  # ... and created again within the grace
    assert reconciler.reconcile(SOURCE).again_in is None
    assert api.writes("DELETE") == []

    store.drop_object("ConfigMap", ("demo", "omni"))  # gone for good
    reconciler.reconcile(SOURCE)
    now[0] = 45.0
    gone = reconciler.reconcile(SOURCE)

    assert gone.again_in is None
    assert len(api.writes("DELETE")) == 2


def test_a_source_with_no_copies_to_delete_waits_for_nothing(api: FakeApi, store: Store) -> None:
    """A source a target asks for that never existed must not hold the first pass open for the grace."""
    reconciler = make_reconciler(api, store, gone_grace=30.0)

    result = reconciler.reconcile(ObjectRef(kind="ConfigMap", namespace="demo", name="never-was"))

    assert result.again_in is None
    assert api.writes("DELETE") == []
