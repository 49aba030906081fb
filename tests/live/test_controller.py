"""The controller's wiring without an API server: building it does no I/O; its probes say what died."""

from __future__ import annotations

from cfgsync._adapters.kube.connection import METADATA, METADATA_LIST
from cfgsync._adapters.kube.lease import ElectionSettings
from cfgsync._controller.controller import Controller, ControllerSettings
from cfgsync._core import planner
from cfgsync._plugins.manager import load_plugins
from live.fakes import RaisingApi

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
