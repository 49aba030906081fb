"""The controller's wiring without an API server: building it does no I/O; its probes say what died."""

from __future__ import annotations

from cfgsync._adapters.kube import view
from cfgsync._adapters.kube.connection import METADATA, METADATA_LIST
from cfgsync._adapters.kube.lease import ElectionSettings
from cfgsync._controller.controller import Controller, ControllerSettings
from cfgsync._controller.informer import Poison
from cfgsync._core import planner
from cfgsync._plugins.manager import load_plugins
from live.fakes import FakeApi, RaisingApi

ELECTION = ElectionSettings(namespace="ops", identity="me")


def build() -> Controller:
    settings = ControllerSettings(
        plan=planner.PlanSettings(cluster_name="unicorn"), health_port=0, election=ELECTION
    )
    return Controller(
        kube=RaisingApi().as_kube(),
        lease_kube=RaisingApi().as_kube(),
        settings=settings,
        hooks=load_plugins(only=()),
    )


def test_building_the_controller_does_no_io() -> None:
    controller = build()  # every call on the API would raise

    assert not controller.ready()
    assert controller.healthy()
    assert controller.ready_detail() == []


def test_no_write_is_sent_before_the_lease_is_held() -> None:
    controller = build()

    assert controller.kube.fence is not None
    assert not controller.kube.fence()


def test_a_dead_election_makes_the_controller_unhealthy() -> None:
    controller = build()
    assert controller.elector is not None
    controller.elector.failed = RuntimeError("a bug")

    assert not controller.healthy()


def test_only_this_clusters_copies_are_held_in_full() -> None:
    """Objects with forged origin labels of another cluster, or none, never reach the copies' cache:
    the API server filters by the cluster name, so they cost their metadata only."""
    informers = build()._informers()  # built, not started: no I/O

    full = {i.name: i.label_selector for i in informers if i.name.endswith("-copies")}
    assert full == {
        "configmaps-copies": "kubed.appscode.com/origin.name,kubed.appscode.com/origin.namespace,"
        "kubed.appscode.com/origin.cluster=unicorn",
        "secrets-copies": "kubed.appscode.com/origin.name,kubed.appscode.com/origin.namespace,"
        "kubed.appscode.com/origin.cluster=unicorn",
    }
    # Every other ConfigMap and Secret is watched as metadata only, whatever it carries.
    others = [i for i in informers if not i.name.endswith("-copies")]
    assert {i.name for i in others} == {"namespaces", "configmaps-metadata", "secrets-metadata"}
    assert all((i.accept, i.watch_accept) == (METADATA_LIST, METADATA) for i in others)


def test_a_copy_that_cannot_be_read_is_counted_and_told_to_its_source_once() -> None:
    source = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "omni", "namespace": "demo", "uid": "src", "resourceVersion": "5"},
    }
    api = FakeApi(objects={"/api/v1/namespaces/demo/configmaps/omni": source})
    controller = Controller(
        kube=api.as_kube(),
        lease_kube=RaisingApi().as_kube(),
        settings=ControllerSettings(plan=planner.PlanSettings(cluster_name="unicorn"), health_port=0),
        hooks=load_plugins(only=()),
    )
    controller._on_leading()  # the only replica leads once it runs
    controller.store.put_object(view.header(source))  # as the metadata watch has it
    labels = {
        "kubed.appscode.com/origin.name": "omni",
        "kubed.appscode.com/origin.namespace": "demo",
        "kubed.appscode.com/origin.cluster": "unicorn",
    }
    poison = Poison(
        collection="configmaps-copies",
        kind="ConfigMap",
        namespace="team-a",
        name="omni",
        uid="copy",
        labels=labels,
        error="ConfigMap team-a/omni: data is too large",
    )

    controller._poisoned(poison)
    controller._poisoned(poison)  # met again at the next relist

    counted = controller.metrics.registry.get_sample_value(
        "cfgsync_unreadable_objects_total", {"collection": "configmaps-copies"}
    )
    assert counted == 2
    (event,) = [c.body for c in api.writes("POST")]
    assert (event["reason"], event["involvedObject"]["name"]) == ("UnreadableCopy", "omni")
    assert event["metadata"]["namespace"] == "demo"
    assert (
        "ConfigMap team-a/omni cannot be read: ConfigMap team-a/omni: data is too large" in event["message"]
    )
