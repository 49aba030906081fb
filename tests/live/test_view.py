"""What the planner sees of an observed copy: full payload, only the metadata cfgsync owns."""

from __future__ import annotations

from typing import Any

import pytest

from cfgsync._adapters.kube import view
from cfgsync._core.policy import Policy

ORIGIN = {
    "kubed.appscode.com/origin.name": "omni",
    "kubed.appscode.com/origin.namespace": "demo",
    "kubed.appscode.com/origin.cluster": "",
}
SELF = {
    "kubed.appscode.com/origin.name": "omni",
    "kubed.appscode.com/origin.namespace": "team-a",
    "kubed.appscode.com/origin.cluster": "unicorn",
}


def copy(managed: list[dict[str, Any]] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "omni",
        "namespace": "a",
        "uid": "u-1",
        "resourceVersion": "7",
        "labels": {**ORIGIN, "team": "platform", "added-by-hand": "yes"},
        "annotations": {"kubed.appscode.com/origin": "{}", "note": "kept", "other-tool": "x"},
    }
    if managed is not None:
        meta["managedFields"] = managed
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v", "extra": "x"}}


def owns(manager: str, labels: list[str], annotations: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "f:metadata": {
            "f:labels": {".": {}, **{f"f:{k}": {} for k in labels}},
            "f:annotations": {f"f:{k}": {} for k in annotations},
        }
    }
    return {"manager": manager, "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": fields}


def test_the_planner_sees_what_cfgsync_owns_plus_the_origin_metadata_and_all_data() -> None:
    managed = [
        owns("cfgsync", [*ORIGIN, "team"], ["kubed.appscode.com/origin", "note"]),
        owns("kubectl-label", ["added-by-hand"], ["other-tool"]),
    ]

    seen = view.observed_copy(copy(managed))

    assert dict(seen.labels) == {**ORIGIN, "team": "platform"}
    assert dict(seen.annotations) == {"kubed.appscode.com/origin": "{}", "note": "kept"}
    assert dict(seen.data) == {"k": "v", "extra": "x"}  # a key added by hand is seen, so it is removed
    assert (seen.uid, seen.resource_version) == ("u-1", "7")


def test_a_copy_made_by_another_tool_shows_only_its_origin_metadata() -> None:
    seen = view.observed_copy(copy([owns("kubed", [*ORIGIN, "team"], ["kubed.appscode.com/origin"])]))

    assert dict(seen.labels) == ORIGIN
    assert dict(seen.annotations) == {"kubed.appscode.com/origin": "{}"}


def test_without_managed_fields_everything_is_shown() -> None:
    seen = view.observed_copy(copy(None))

    assert "added-by-hand" in seen.labels
    assert "other-tool" in seen.annotations


def test_equal_mappings_are_shared_between_copies() -> None:
    interner = view.Interner()

    one = view.observed_copy(copy(None), interner)
    two = view.observed_copy(
        {**copy(None), "metadata": {**copy(None)["metadata"], "namespace": "b"}}, interner
    )

    assert one.data is two.data
    assert one.labels is two.labels


@pytest.mark.parametrize(
    ("annotations", "labels", "expected"),
    [
        ({"kubed.appscode.com/sync": ""}, {}, True),
        ({"kubed.appscode.com/sync-contexts": "east"}, {}, True),
        ({"cfgsync.io/namespaces": "*"}, {}, True),
        ({"cfgsync.io/typo": "x"}, {}, True),  # reported by the planner as an unknown annotation
        ({"helm.sh/chart": "x"}, {}, False),
        ({"kubed.appscode.com/sync": ""}, ORIGIN, False),  # a copy is never a source
        # kubed marks its own sources with origin labels pointing at themselves after a restart
        ({"kubed.appscode.com/sync": ""}, SELF, True),
        # ... but a copy another cluster's syncer made keeps its source's namespace and name
        ({"kubed.appscode.com/sync": ""}, {**SELF, "kubed.appscode.com/origin.cluster": "other"}, False),
    ],
)
def test_which_objects_declare_a_rule(
    annotations: dict[str, str], labels: dict[str, str], expected: bool
) -> None:
    meta = {"namespace": "team-a", "name": "omni", "annotations": annotations, "labels": labels}
    assert view.declares_rule(meta, "unicorn") is expected


def test_a_namespace_with_a_deletion_timestamp_is_terminating() -> None:
    ns = view.namespace_of({"metadata": {"name": "x", "deletionTimestamp": "2024-01-01T00:00:00Z"}})

    assert ns.terminating


def test_interning_keeps_every_field() -> None:
    import dataclasses as dc

    from cfgsync._core.model import ConfigObject, ObjectRef, frozen

    obj = ConfigObject(
        ref=ObjectRef(kind="Secret", namespace="a", name="b"),
        labels=frozen({"l": "1"}),
        annotations=frozen({"a": "1"}),
        data=frozen({"k": "dg=="}),
        binary_data=frozen({}),
        type="Opaque",
        immutable=True,
        uid="u",
        resource_version="9",
        created="2026-11-26T12:00:00Z",
        api_version="v1",
        content_digest="d" * 64,
        where="x:1",
    )
    assert {f.name for f in dc.fields(ConfigObject)} == {
        "ref", "labels", "annotations", "data", "binary_data", "type", "immutable", "uid",
        "resource_version", "created", "api_version", "content_digest", "where",
    }  # fmt: skip
    assert view.Interner().intern(obj) == obj


def test_a_namespace_carries_its_consent_annotation() -> None:
    meta = {"name": "team-a", "annotations": {"cfgsync.io/accept-from": "platform, infra-*", "x": "y"}}

    assert view.namespace_of({"metadata": meta}).accept_from == ("platform", "infra-*")
    assert view.namespace_of({"metadata": {"name": "team-b"}}).accept_from is None


def test_the_planner_sees_marks_a_copy_never_carries_whoever_wrote_them() -> None:
    raw = copy([owns("kubed", [*ORIGIN, "team"], ["kubed.appscode.com/origin"])])
    raw["metadata"]["labels"] |= {"app.kubernetes.io/instance": "argo-app", "example.com/x": "1"}
    raw["metadata"]["annotations"]["meta.helm.sh/release-name"] = "r"

    default = view.observed_copy(raw)
    operator = view.observed_copy(raw, policy=Policy(strip_metadata=("example.com/*",)))

    assert dict(default.labels) == {**ORIGIN, "app.kubernetes.io/instance": "argo-app"}
    assert dict(default.annotations) == {"kubed.appscode.com/origin": "{}", "meta.helm.sh/release-name": "r"}
    assert dict(operator.labels) == {**ORIGIN, "app.kubernetes.io/instance": "argo-app", "example.com/x": "1"}
