"""The planner: kubed's copy contract, loop prevention, conflicts, updates, deletes, determinism."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from cfgsync import ActionKind, ConfigObject, PlanSettings
from cfgsync._core import manifests
from cfgsync._core.model import frozen
from cfgsync.testing import config_map, namespace, plan, secret

KUBED = "kubed.appscode.com/sync"
SPACES = [
    namespace("demo"),
    namespace("a", {"app": "kubed"}),
    namespace("b"),
    namespace("c", {"app": "kubed"}),
]


def omni(**annotations: str) -> ConfigObject:
    return config_map(
        "demo",
        "omni",
        {"you": "only", "live": "once"},
        labels={"team": "platform"},
        annotations={
            KUBED: "",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "note": "kept",
            **annotations,
        },
    )


def as_existing(obj: ConfigObject | None) -> ConfigObject:
    """The copy as the API server would hold it after cfgsync wrote it."""
    assert obj is not None
    return obj


def copy_object(plan_result: object, namespace_name: str) -> ConfigObject:
    from cfgsync import Plan

    assert isinstance(plan_result, Plan)
    copy = next(c for c in plan_result.copies if c.ref.namespace == namespace_name)
    return ConfigObject(
        ref=copy.ref,
        labels=copy.labels,
        annotations=copy.annotations,
        data=copy.data,
        binary_data=copy.binary_data,
        type=copy.type,
        immutable=copy.immutable,
        uid=f"uid-{namespace_name}",
    )


def test_copies_go_everywhere_but_the_source_namespace() -> None:
    result = plan([omni()], SPACES)
    assert [str(c.ref) for c in result.copies] == ["ConfigMap a/omni", "ConfigMap b/omni", "ConfigMap c/omni"]
    assert {a.kind for a in result.actions} == {ActionKind.CREATE}


def test_copy_carries_exactly_kubeds_metadata() -> None:
    source = dataclasses.replace(omni(), uid="1234", resource_version="6149")
    copy = plan([source], SPACES).copies[0]
    assert dict(copy.labels) == {
        "team": "platform",
        "kubed.appscode.com/origin.name": "omni",
        "kubed.appscode.com/origin.namespace": "demo",
        "kubed.appscode.com/origin.cluster": "",
    }
    assert dict(copy.annotations) == {
        "note": "kept",
        "kubed.appscode.com/origin": '{"kind":"ConfigMap","namespace":"demo","name":"omni",'
        '"uid":"1234","apiVersion":"v1","resourceVersion":"6149"}',
    }
    assert dict(copy.data) == {"live": "once", "you": "only"}


def test_origin_annotation_leaves_out_unknown_fields() -> None:
    copy = plan([omni()], SPACES).copies[0]
    assert json.loads(copy.annotations["kubed.appscode.com/origin"]) == {
        "kind": "ConfigMap",
        "namespace": "demo",
        "name": "omni",
        "apiVersion": "v1",
    }


def test_cluster_name_goes_into_the_origin_label() -> None:
    copy = plan([omni()], SPACES, settings=PlanSettings(cluster_name="unicorn")).copies[0]
    assert copy.labels["kubed.appscode.com/origin.cluster"] == "unicorn"


def test_secret_type_and_data_are_copied() -> None:
    source = secret(
        "demo",
        "pull",
        {".dockerconfigjson": "e30="},
        type="kubernetes.io/dockerconfigjson",
        annotations={KUBED: "app=kubed"},
    )
    result = plan([source], SPACES)
    assert [str(c.ref) for c in result.copies] == ["Secret a/pull", "Secret c/pull"]
    assert all(
        c.type == "kubernetes.io/dockerconfigjson" and dict(c.data) == {".dockerconfigjson": "e30="}
        for c in result.copies
    )


def test_terminating_namespace_gets_no_copy() -> None:
    result = plan([omni()], [namespace("demo"), namespace("a"), namespace("gone", terminating=True)])
    assert [c.ref.namespace for c in result.copies] == ["a"]


def test_copies_never_become_sources() -> None:
    first = plan([omni()], SPACES)
    copies = [copy_object(first, ns) for ns in ("a", "b", "c")]
    # A copy that somehow carries a sync annotation still is not a source: its origin labels say so.
    tampered = dataclasses.replace(copies[0], annotations=frozen({**copies[0].annotations, KUBED: ""}))
    again = plan([omni(), tampered, *copies[1:]], SPACES, existing=[tampered, *copies[1:]])
    assert {c.source for c in again.copies} == {omni().ref}
    assert not any(KUBED in c.annotations for c in again.copies)


def test_unmanaged_object_with_the_copy_name_is_a_conflict_and_untouched() -> None:
    mine = config_map("b", "omni", {"keep": "me"})
    result = plan([omni()], SPACES, existing=[mine])
    assert [c.ref.namespace for c in result.copies] == ["a", "c"]
    assert len(result.conflicts) == 1
    conflict = result.conflicts[0]
    assert str(conflict.ref) == "ConfigMap b/omni"
    assert "an unmanaged ConfigMap with that name exists in namespace b" in conflict.reason
    assert not any(a.ref == mine.ref for a in result.actions)


def test_copies_of_two_live_sources_with_one_name_collide_and_the_owner_keeps_it() -> None:
    other = config_map("other", "omni", annotations={KUBED: ""})
    spaces = [*SPACES, namespace("other")]
    foreign = copy_object(plan([other], spaces), "a")
    result = plan([omni(), other], spaces, existing=[foreign])
    conflicts = {str(c.ref): c for c in result.conflicts}
    assert set(conflicts["ConfigMap a/omni"].sources) == {omni().ref, other.ref}
    assert conflicts["ConfigMap a/omni"].winner == other.ref  # demo sorts first, but other holds it
    (action,) = [a for a in result.actions if a.ref == foreign.ref]
    assert action.source == other.ref
    assert action.kind is ActionKind.UNCHANGED


def test_stale_copy_of_a_deleted_source_is_deleted_first_never_taken_over() -> None:
    other = config_map("other", "omni", {"old": "value"}, annotations={KUBED: ""})
    spaces = [*SPACES, namespace("other")]
    stale = copy_object(plan([other], spaces), "a")
    result = plan([omni()], spaces, existing=[stale])
    (action,) = [a for a in result.actions if a.ref == stale.ref]
    assert action.kind is ActionKind.DELETE
    assert action.source == other.ref
    assert action.reason == "its source ConfigMap other/omni no longer exists"
    (conflict,) = [c for c in result.conflicts if c.ref == stale.ref]
    assert conflict.sources == (omni().ref,)
    assert conflict.winner is None
    assert "deleted first" in conflict.reason
    # Once the stale copy is gone, the next pass creates the new source's own.
    after = plan([omni()], spaces)
    (create,) = [a for a in after.actions if a.ref == stale.ref]
    assert (create.kind, create.source) == (ActionKind.CREATE, omni().ref)


def test_two_sources_for_one_new_copy_the_first_by_namespace_and_name_has_it() -> None:
    one = config_map(
        "x", "shared", annotations={"cfgsync.io/namespaces": "a", "cfgsync.io/copy-name": "same"}
    )
    two = config_map("y", "other", annotations={"cfgsync.io/namespaces": "a", "cfgsync.io/copy-name": "same"})
    result = plan([one, two], [namespace("a"), namespace("x"), namespace("y")])
    assert [c.source for c in result.copies] == [one.ref]
    (conflict,) = result.conflicts
    assert conflict.sources == (one.ref, two.ref)
    assert conflict.winner == one.ref
    assert "ConfigMap x/shared" in conflict.reason
    assert "ConfigMap y/other" in conflict.reason


def test_unchanged_copy_is_unchanged() -> None:
    first = plan([omni()], SPACES)
    existing = [copy_object(first, ns) for ns in ("a", "b", "c")]
    again = plan([omni()], SPACES, existing=existing)
    assert {a.kind for a in again.actions} == {ActionKind.UNCHANGED}


def test_changed_source_updates_copies_with_a_json_patch() -> None:
    first = plan([omni()], SPACES)
    existing = [copy_object(first, ns) for ns in ("a", "b", "c")]
    edited = dataclasses.replace(omni(), data=frozen({"you": "only", "live": "twice"}))
    again = plan([edited], SPACES, existing=existing)
    updates = again.of_kind(ActionKind.UPDATE)
    assert len(updates) == 3
    assert updates[0].patch == ({"op": "replace", "path": "/data/live", "value": "twice"},)
    assert updates[0].reason == "copy differs: data"


def test_manual_edit_of_a_copy_is_reverted() -> None:
    first = plan([omni()], SPACES)
    edited = dataclasses.replace(copy_object(first, "a"), data=frozen({"you": "hacked"}))
    again = plan([omni()], SPACES, existing=[edited])
    (update,) = again.of_kind(ActionKind.UPDATE)
    assert update.ref.namespace == "a"
    assert dict(update.desired.data) == {"live": "once", "you": "only"}  # type: ignore[union-attr]


def test_immutable_copy_with_new_data_is_replaced() -> None:
    source = dataclasses.replace(omni(), immutable=True)
    first = plan([source], SPACES)
    existing = [copy_object(first, "a")]
    changed = dataclasses.replace(source, data=frozen({"you": "again"}))
    (action,) = [a for a in plan([changed], SPACES, existing=existing).actions if a.ref.namespace == "a"]
    assert action.kind is ActionKind.REPLACE
    assert action.reason.startswith("immutable copy differs")


@pytest.mark.parametrize(
    ("sources", "spaces", "reason"),
    [
        ([], SPACES, "its source ConfigMap demo/omni no longer exists"),
        ([config_map("demo", "omni", {"you": "only"})], SPACES, "no longer has a sync rule"),
        (
            [config_map("demo", "omni", annotations={KUBED: "app=kubed"})],
            SPACES,
            "namespace b is no longer selected",
        ),
    ],
)
def test_managed_copies_no_longer_wanted_are_deleted(
    sources: list[ConfigObject], spaces: list[object], reason: str
) -> None:
    first = plan([omni()], SPACES)
    existing = [copy_object(first, ns) for ns in ("a", "b", "c")]
    result = plan(sources, SPACES, existing=existing)
    deletes = {a.ref.namespace: a for a in result.of_kind(ActionKind.DELETE)}
    assert "b" in deletes
    assert reason in deletes["b"].reason


def test_the_copies_of_a_source_that_cannot_be_read_are_kept_and_reported() -> None:
    first = plan([omni()], SPACES)
    existing = [copy_object(first, ns) for ns in ("a", "b", "c")]
    source = omni().ref

    gone = plan([], SPACES, existing=existing)
    unreadable = plan([], SPACES, existing=existing, unreadable=[source])

    assert len(gone.of_kind(ActionKind.DELETE)) == 3
    assert unreadable.actions == ()
    assert {(x.ref.namespace, x.source, x.policy) for x in unreadable.left_alone} == {
        (ns, source, "unreadable-source") for ns in ("a", "b", "c")
    }
    assert "exists but cannot be read" in unreadable.left_alone[0].reason

    # Nor does a rival wanting the same copy names get them: they are still the unreadable source's.
    rival = config_map("other", "omni", {"k": "v"}, annotations={KUBED: ""})
    contested = plan([rival], [*SPACES, namespace("other")], existing=existing, unreadable=[source])
    assert contested.of_kind(ActionKind.DELETE) == ()
    assert {x.ref.namespace for x in contested.left_alone} == {"a", "b", "c"}
    assert {c.ref.namespace for c in contested.conflicts} == {"a", "b", "c"}


def test_copies_of_another_cluster_name_are_not_ours() -> None:
    first = plan([omni()], SPACES, settings=PlanSettings(cluster_name="unicorn"))
    existing = [copy_object(first, "a")]
    result = plan([], SPACES, existing=existing)
    assert result.actions == ()


def test_kubed_copies_with_the_same_cluster_name_are_adopted_in_place() -> None:
    kubed_copy = ConfigObject(
        ref=omni().ref.__class__(kind="ConfigMap", namespace="a", name="omni"),
        labels=frozen(
            {
                "team": "platform",
                "kubed.appscode.com/origin.name": "omni",
                "kubed.appscode.com/origin.namespace": "demo",
                "kubed.appscode.com/origin.cluster": "unicorn",
            }
        ),
        annotations=frozen(
            {
                "note": "kept",
                "kubed.appscode.com/origin": '{"kind":"ConfigMap","namespace":"demo","name":"omni",'
                '"apiVersion":"v1"}',
            }
        ),
        data=frozen({"you": "only", "live": "once"}),
        uid="kubed-made",
    )
    result = plan([omni()], SPACES, existing=[kubed_copy], settings=PlanSettings(cluster_name="unicorn"))
    (action,) = [a for a in result.actions if a.ref.namespace == "a"]
    assert action.kind is ActionKind.UNCHANGED


def test_long_source_names_get_a_short_deterministic_origin_label() -> None:
    name = "a" * 40 + "-" + "b" * 40
    source = config_map("demo", name, annotations={KUBED: ""})
    copy = plan([source], SPACES).copies[0]
    label = copy.labels["kubed.appscode.com/origin.name"]
    assert len(label) == 63
    assert label == plan([source], SPACES).copies[0].labels["kubed.appscode.com/origin.name"]
    assert json.loads(copy.annotations["kubed.appscode.com/origin"])["name"] == name
    existing = [copy_object(plan([source], SPACES), "a")]
    assert {a.kind for a in plan([source], SPACES, existing=existing).actions if a.ref.namespace == "a"} == {
        ActionKind.UNCHANGED
    }
    gone = plan([], SPACES, existing=existing)
    assert [a.kind for a in gone.actions] == [ActionKind.DELETE]
    assert gone.actions[0].source.name == name


def test_source_namespace_setting_limits_sources() -> None:
    elsewhere = config_map("b", "x", annotations={KUBED: ""})
    result = plan([omni(), elsewhere], SPACES, settings=PlanSettings(source_namespace="demo"))
    assert {c.source for c in result.copies} == {omni().ref}


def test_excluded_namespaces_never_get_copies() -> None:
    result = plan([omni()], SPACES, settings=PlanSettings(excluded_namespaces=("a", "c*")))
    assert [c.ref.namespace for c in result.copies] == ["b"]


def test_rule_naming_an_excluded_namespace_is_warned() -> None:
    source = config_map("demo", "x", annotations={"cfgsync.io/namespaces": "kube-system,a"})
    spaces = [*SPACES, namespace("kube-system")]
    result = plan([source], spaces, settings=PlanSettings(excluded_namespaces=("kube-*",)))
    assert [c.ref.namespace for c in result.copies] == ["a"]
    (warning,) = result.warnings
    assert (
        "names namespace kube-system, which is excluded for every rule (--exclude-namespace kube-*)"
        in str(warning)
    )


def test_invalid_rule_is_a_problem_and_the_rest_is_planned() -> None:
    bad = config_map("demo", "bad", annotations={KUBED: "env in ("})
    result = plan([omni(), bad], SPACES)
    assert len(result.copies) == 3
    (problem,) = result.problems
    assert problem.ref == bad.ref
    assert "kubed.appscode.com/sync" in problem.message


def test_syncrule_without_its_source_is_a_warning() -> None:
    from cfgsync._core.syncrule import rule_from_document

    rule = rule_from_document(
        {
            "apiVersion": "cfgsync.io/v1alpha1",
            "kind": "SyncRule",
            "metadata": {"name": "r", "namespace": "demo"},
            "spec": {"source": {"kind": "ConfigMap", "name": "missing"}, "namespaces": ["*"]},
        }
    )
    result = plan([], SPACES, rules=[rule])
    assert [str(w) for w in result.warnings] == [
        "SyncRule demo/r: its source ConfigMap demo/missing does not exist"
    ]


def test_plan_is_the_same_whatever_the_input_order() -> None:
    sources = [
        omni(),
        secret("demo", "s", {"k": "dg=="}, annotations={KUBED: "app=kubed"}),
        config_map("b", "z", annotations={"cfgsync.io/namespaces": "*"}),
    ]
    spaces = [*SPACES, *(namespace(f"n{i}", {"app": "kubed"} if i % 2 else {}) for i in range(20))]
    expected = plan(sources, spaces)
    shuffler = random.Random(7)  # noqa: S311  # a fixed, reproducible shuffle; nothing secret
    for _ in range(5):
        shuffler.shuffle(sources)
        shuffler.shuffle(spaces)
        assert plan(sources, spaces) == expected
    refs = [a.ref.sort_key for a in expected.actions]
    assert refs == sorted(refs)


def test_rendered_manifest_field_order() -> None:
    copy = plan([secret("demo", "s", {"k": "dg=="}, annotations={KUBED: ""})], SPACES).copies[0]
    manifest = manifests.to_manifest(copy)
    assert list(manifest) == ["apiVersion", "kind", "metadata", "type", "data"]
