"""The API server's audit log: every write recorded once with who, what and when; reads not at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from controlplane import ControlPlane, ControlPlaneError
from controlplane.audit import POLICY, AuditEvent, AuditLog, parse_event
from controlplane.fixtures import api_client, wait_until

pytestmark = pytest.mark.timeout(120)

AGENT = "cfgsync-audit-test/1.0 (replica-a)"


def wait_for_events(plane: ControlPlane, namespace: str, count: int) -> list[AuditEvent]:
    """The ConfigMap writes logged in ``namespace``, once there are at least ``count``."""

    def logged() -> list[AuditEvent]:
        return [e for e in plane.audit_events() if e.namespace == namespace and e.resource == "configmaps"]

    wait_until(lambda: len(logged()) >= count, f"{count} ConfigMap writes in {namespace} to be logged")
    return logged()


def _event(**changes: Any) -> dict[str, Any]:
    """A ResponseComplete event for a ConfigMap create, as the API server writes one."""
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "0b5f3e0c-7d4a-4a55-9c53-2d1b8b0e9f10",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/team-a/configmaps",
        "verb": "create",
        "user": {"username": "cfgsync-admin", "groups": ["system:masters", "system:authenticated"]},
        "sourceIPs": ["127.0.0.1"],
        "userAgent": AGENT,
        "objectRef": {
            "resource": "configmaps",
            "namespace": "team-a",
            "name": "settings",
            "apiVersion": "v1",
        },
        "responseStatus": {"metadata": {}, "code": 201},
        "requestReceivedTimestamp": "2026-03-01T10:00:00.123456Z",
        "stageTimestamp": "2026-03-01T10:00:00.125001Z",
    }
    event.update(changes)
    return event


def test_an_event_line_is_decoded_into_a_typed_record() -> None:
    event = parse_event(json.dumps(_event()))

    assert (event.verb, event.user, event.user_agent, event.code) == ("create", "cfgsync-admin", AGENT, 201)
    assert (event.resource, event.api_group, event.namespace, event.name) == (
        "configmaps",
        "",
        "team-a",
        "settings",
    )
    assert event.groups == ("system:masters", "system:authenticated")
    assert event.received == datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert event.at == datetime(2026, 3, 1, 10, 0, 0, 125001, tzinfo=UTC)


def test_a_cluster_scoped_deletecollection_has_no_namespace_or_name() -> None:
    ref = {"resource": "namespaces", "apiVersion": "v1"}
    event = parse_event(json.dumps(_event(verb="deletecollection", objectRef=ref)))

    assert (event.namespace, event.name) == ("", "")


def test_the_reader_leaves_a_half_written_line_for_later(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    first = json.dumps(_event(auditID="1")) + "\n"
    second = json.dumps(_event(auditID="2", stage="ResponseStarted")) + "\n"
    reader = AuditLog(log)
    assert reader.events() == ()  # no file yet

    log.write_text(first + second[:40], encoding="utf-8")
    early = reader.events(stage=None)
    with log.open("a", encoding="utf-8") as appending:
        appending.write(second[40:])
    late = reader.events(stage=None)

    assert [e.audit_id for e in early] == ["1"]
    assert [e.audit_id for e in late] == ["1", "2"]
    assert [e.audit_id for e in reader.events()] == ["1"]  # only ResponseComplete by default


def test_a_line_that_is_not_an_event_is_reported_with_its_place(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(json.dumps(_event()) + "\nnot json\n", encoding="utf-8")

    with pytest.raises(ControlPlaneError, match=r"audit.log:2: not an audit event"):
        AuditLog(log).events()


def test_the_policy_records_writes_at_metadata_level_lease_bodies_and_nothing_else() -> None:
    writes = ["create", "update", "patch", "delete", "deletecollection"]
    assert POLICY["rules"] == [
        {
            "level": "Request",
            "verbs": writes,
            "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}],
        },
        {"level": "Metadata", "verbs": writes},
        {"level": "None"},
    ]


def test_a_control_plane_without_audit_says_how_to_get_one() -> None:
    with pytest.raises(ControlPlaneError, match="create it with audit=True"):
        ControlPlane().audit_events()


def test_writes_are_recorded_with_who_what_and_when(control_plane: ControlPlane, namespace: str) -> None:
    before = datetime.now(UTC)
    with api_client(control_plane.kubeconfig) as api:
        api.user_agent = AGENT
        core = client.CoreV1Api(api)
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="audited"), data={"k": "v"})
        core.create_namespaced_config_map(namespace, body)
        core.read_namespaced_config_map("audited", namespace)  # a read: not recorded
        core.list_namespaced_config_map(namespace)
        with pytest.raises(client.ApiException) as conflict:
            core.create_namespaced_config_map(namespace, body)
        core.patch_namespaced_config_map("audited", namespace, {"data": {"k": "w"}})
        core.delete_namespaced_config_map("audited", namespace)
    after = datetime.now(UTC)

    mine = wait_for_events(control_plane, namespace, 4)

    assert conflict.value.status == 409
    assert [(e.verb, e.name, e.code) for e in mine] == [
        ("create", "audited", 201),
        ("create", "audited", 409),  # refused writes are recorded too, with their code
        ("patch", "audited", 200),
        ("delete", "audited", 200),
    ]
    created = mine[0]
    assert created.request_object is None  # no bodies, but for leases
    assert created.user == "cfgsync-admin"
    assert "system:masters" in created.groups
    assert created.user_agent == AGENT
    assert (created.resource, created.api_group, created.stage) == ("configmaps", "", "ResponseComplete")
    assert before <= created.received <= created.at <= after
    assert [e.at for e in mine] == sorted(e.at for e in mine)


def test_a_denied_write_is_recorded_under_the_identity_that_tried(
    control_plane: ControlPlane, namespace: str
) -> None:
    with api_client(control_plane.restricted_kubeconfig) as api:
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="not-allowed"))
        with pytest.raises(client.ApiException) as denied:
            client.CoreV1Api(api).create_namespaced_config_map(namespace, body)

    mine = wait_for_events(control_plane, namespace, 1)

    assert denied.value.status == 403
    assert [(e.user, e.verb, e.code) for e in mine] == [("cfgsync-restricted", "create", 403)]


def test_lease_writes_are_recorded_with_their_bodies(control_plane: ControlPlane, namespace: str) -> None:
    with api_client(control_plane.kubeconfig) as api:
        leases = client.CoordinationV1Api(api)
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name="audited"), spec=client.V1LeaseSpec(holder_identity="a")
        )
        leases.create_namespaced_lease(namespace, body)
        leases.patch_namespaced_lease("audited", namespace, {"spec": {"holderIdentity": None}})

    def logged() -> list[AuditEvent]:
        return [
            e for e in control_plane.audit_events() if e.namespace == namespace and e.resource == "leases"
        ]

    wait_until(lambda: len(logged()) >= 2, f"2 Lease writes in {namespace} to be logged")
    created, released = logged()
    assert created.request_object is not None
    assert created.request_object["spec"]["holderIdentity"] == "a"
    assert released.request_object == {"spec": {"holderIdentity": None}}
