"""Sources kubed marked with origin labels pointing at themselves stay sources, in every planner path.

kubed 0.13 writes its origin labels and annotation onto its own sources when it restarts (its namespace
handler does not skip the source's namespace). Taking such a source for a copy made every one of its
copies look orphaned, and the first reconcile deleted them all.
"""

from __future__ import annotations

import json

import pytest

from cfgsync import ActionKind, ConfigObject, ObjectRef, PlanSettings, Policy, explain_namespace
from cfgsync._core import contexts, origin
from cfgsync._core.model import frozen
from cfgsync._plugins.manager import load_plugins
from cfgsync.testing import config_map, namespace, plan

CLUSTER = "unicorn"
SETTINGS = PlanSettings(cluster_name=CLUSTER)
KUBED = "kubed.appscode.com/sync"
SPACES = [
    namespace("demo"),
    namespace("a", {"app": "kubed"}),
    namespace("b"),
    namespace("kube-system"),
    namespace("kube-public"),
    namespace("kube-node-lease"),
    namespace("default"),
]


def origin_labels(namespace_name: str, name: str, cluster: str = CLUSTER) -> dict[str, str]:
    return {
        "kubed.appscode.com/origin.name": name,
        "kubed.appscode.com/origin.namespace": namespace_name,
        "kubed.appscode.com/origin.cluster": cluster,
    }


def origin_annotation(namespace_name: str, name: str, version: str) -> str:
    ref = {"kind": "ConfigMap", "namespace": namespace_name, "name": name, "uid": "src-uid"}
    return json.dumps({**ref, "apiVersion": "v1", "resourceVersion": version}, separators=(",", ":"))


def marked_source(name: str = "omni", cluster: str = CLUSTER, **annotations: str) -> ConfigObject:
    """A source as kubed leaves it after a restart: its own origin labels and annotation on it."""
    return ConfigObject(
        ref=ObjectRef(kind="ConfigMap", namespace="demo", name=name),
        labels=frozen({"team": "platform", **origin_labels("demo", name, cluster)}),
        annotations=frozen(
            {KUBED: "", "kubed.appscode.com/origin": origin_annotation("demo", name, "6100"), **annotations}
        ),
        data=frozen({"k": "v"}),
        uid="src-uid",
        resource_version="6149",
    )


def kubed_copy(source: ConfigObject, namespace_name: str, data: dict[str, str] | None = None) -> ConfigObject:
    """A copy as kubed wrote it: the source's labels and annotations (but the sync keys), origin marks."""
    annotations = {k: v for k, v in source.annotations.items() if not k.startswith(KUBED)}
    annotations["kubed.appscode.com/origin"] = origin_annotation("demo", source.ref.name, "6149")
    return ConfigObject(
        ref=ObjectRef(kind="ConfigMap", namespace=namespace_name, name=source.ref.name),
        labels=frozen({**source.labels, **origin_labels("demo", source.ref.name)}),
        annotations=frozen(annotations),
        data=frozen(data if data is not None else dict(source.data)),
        uid=f"uid-{namespace_name}",
    )


SYSTEM = {"kube-system", "kube-public", "kube-node-lease"}


def test_a_source_marked_by_kubed_keeps_every_copy_kubed_made() -> None:
    source = marked_source()
    copies = [kubed_copy(source, ns.name) for ns in SPACES if ns.name != "demo"]

    result = plan([source, *copies], SPACES, existing=[source, *copies], settings=SETTINGS)

    assert result.of_kind(ActionKind.DELETE) == ()
    assert result.of_kind(ActionKind.CREATE) == ()
    # kubed's copies in the system namespaces are left as they are (and reported), not managed.
    assert {a.ref.namespace for a in result.actions} == {ns.name for ns in SPACES} - {"demo"} - SYSTEM
    assert {x.ref.namespace for x in result.left_alone} == SYSTEM
    assert not any(a.ref == source.ref for a in result.actions)  # the source itself is never touched
    assert result.conflicts == ()


def test_with_system_namespaces_allowed_every_copy_kubed_made_is_managed() -> None:
    source = marked_source()
    copies = [kubed_copy(source, ns.name) for ns in SPACES if ns.name != "demo"]
    settings = PlanSettings(cluster_name=CLUSTER, policy=Policy(allow_system_namespaces=True))

    result = plan([source, *copies], SPACES, existing=[source, *copies], settings=settings)

    assert result.of_kind(ActionKind.DELETE) == ()
    assert result.of_kind(ActionKind.CREATE) == ()
    assert {a.ref.namespace for a in result.actions} == {ns.name for ns in SPACES} - {"demo"}
    assert result.left_alone == ()


def test_stale_and_hand_edited_copies_of_a_marked_source_are_put_right_in_place() -> None:
    source = marked_source()
    edited = kubed_copy(source, "a", {"k": "edited by hand"})
    stale = kubed_copy(source, "b", {"k": "old"})

    result = plan([source, edited, stale], SPACES, existing=[source, edited, stale], settings=SETTINGS)

    by_ns = {a.ref.namespace: a for a in result.actions}
    assert by_ns["a"].kind is ActionKind.UPDATE
    assert by_ns["b"].kind is ActionKind.UPDATE
    assert by_ns["a"].desired is not None
    assert dict(by_ns["a"].desired.data) == {"k": "v"}


def test_the_copy_of_a_marked_source_carries_a_fresh_origin_annotation() -> None:
    copy = plan([marked_source()], SPACES, settings=SETTINGS).copies[0]

    annotation = json.loads(copy.annotations["kubed.appscode.com/origin"])
    assert annotation["resourceVersion"] == "6149"  # the source's, not the stale one kubed wrote onto it
    assert dict(copy.labels) == {"team": "platform", **origin_labels("demo", "omni")}


def test_a_marked_source_whose_rule_is_removed_takes_its_copies_along() -> None:
    source = marked_source()
    copies = [kubed_copy(source, "a"), kubed_copy(source, "b")]
    unannotated = ConfigObject(
        ref=source.ref, labels=source.labels, data=source.data, uid=source.uid, resource_version="7000"
    )

    result = plan([unannotated, *copies], SPACES, existing=[unannotated, *copies], settings=SETTINGS)

    assert {a.ref.namespace for a in result.of_kind(ActionKind.DELETE)} == {"a", "b"}
    assert all("no longer has a sync rule" in a.reason for a in result.of_kind(ActionKind.DELETE))


def test_a_sync_annotation_added_to_a_copy_does_not_make_it_a_source() -> None:
    source = marked_source()
    copy = kubed_copy(source, "a")
    tampered = ConfigObject(
        ref=copy.ref,
        labels=copy.labels,
        annotations=frozen({**copy.annotations, KUBED: "", "cfgsync.io/copy-name": "frozen"}),
        data=frozen({"k": "frozen"}),
        uid=copy.uid,
    )

    result = plan([source, tampered], SPACES, existing=[source, tampered], settings=SETTINGS)

    assert {c.source for c in result.copies} == {source.ref}
    (action,) = [a for a in result.actions if a.ref == tampered.ref]
    assert action.kind is ActionKind.UPDATE  # reverted to the source's data, annotation dropped
    assert action.desired is not None
    assert KUBED not in action.desired.annotations


def test_origin_labels_pointing_at_itself_with_another_cluster_name_are_a_warning() -> None:
    source = marked_source(cluster="kubed-default")

    result = plan([source], SPACES, settings=SETTINGS)

    assert result.copies == ()
    (warning,) = result.warnings
    assert "origin labels point at itself with cluster name 'kubed-default'" in warning.message
    assert "--cluster-name 'kubed-default'" in warning.message


def test_a_long_source_name_marked_by_kubed_is_a_source() -> None:
    name = "ca-bundle-" + "x" * 70
    source = config_map(
        "demo",
        name,
        {"k": "v"},
        labels=origin_labels(
            "demo",
            origin.origin_labels(ObjectRef(kind="", namespace="demo", name=name), "")[
                "kubed.appscode.com/origin.name"
            ],
        ),
        annotations={KUBED: ""},
    )

    result = plan([source], SPACES, settings=SETTINGS)

    assert len(result.copies) == len(SPACES) - 1 - len(SYSTEM)  # not its own, nor a system namespace


def test_an_object_marked_as_its_own_origin_is_never_overwritten_as_a_copy() -> None:
    rival = config_map("b", "omni", {"mine": "yes"}, labels=origin_labels("b", "omni"))
    result = plan([marked_source(), rival], SPACES, existing=[rival], settings=SETTINGS)

    (conflict,) = result.conflicts
    assert conflict.ref == rival.ref
    assert not any(a.ref == rival.ref for a in result.actions)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, False),
        (origin_labels("demo", "omni"), True),  # a copy in another namespace
        (origin_labels("a", "omni"), False),  # points at itself, this cluster: a source
        (origin_labels("a", "omni", "elsewhere"), True),  # another cluster's copy keeps the source's name
        (origin_labels("a", "other"), True),
    ],
)
def test_which_objects_are_copies(labels: dict[str, str], expected: bool) -> None:
    ref = ObjectRef(kind="ConfigMap", namespace="a", name="omni")
    assert origin.is_copy(ref, labels, CLUSTER) is expected


def test_explain_says_a_marked_object_is_a_source() -> None:
    source = marked_source()
    result = plan([source], SPACES, settings=SETTINGS)

    (explanation,) = explain_namespace("a", [source], SPACES, result, settings=SETTINGS)

    assert explanation.lands
    assert explanation.reasons[0].startswith("yes: its origin labels point at itself")


def test_copies_in_another_cluster_keep_the_sources_namespace_and_name_and_are_managed() -> None:
    """sync-contexts copies go to the source's namespace name there: the same ref, and still copies."""
    source = config_map("demo", "omni", {"k": "v"}, annotations={"kubed.appscode.com/sync-contexts": "east"})
    hooks = load_plugins(only=())
    first = contexts.plan_context_copies(
        [source], context="east", context_namespace=None, namespaces=SPACES, settings=SETTINGS, hooks=hooks
    )
    (copy,) = first.copies
    assert copy.ref == source.ref
    there = ConfigObject(
        ref=copy.ref, labels=copy.labels, annotations=copy.annotations, data=frozen({"k": "x"})
    )
    unnamed = config_map("demo", "omni", {"k": "v"}, annotations={"kubed.appscode.com/sync-contexts": "west"})

    updated = contexts.plan_context_copies(
        [source],
        context="east",
        context_namespace=None,
        namespaces=SPACES,
        existing=[there],
        settings=SETTINGS,
        hooks=hooks,
    )
    removed = contexts.plan_context_copies(
        [unnamed],
        context="east",
        context_namespace=None,
        namespaces=SPACES,
        existing=[there],
        settings=SETTINGS,
        hooks=hooks,
    )

    assert [a.kind for a in updated.actions] == [ActionKind.UPDATE]
    assert [a.kind for a in removed.actions] == [ActionKind.DELETE]


@pytest.mark.parametrize("annotation", ["[" * 5000, '{"name": "' + "x" * 5000 + '"}', "not json", "[]"])
def test_a_forged_origin_annotation_is_ignored_not_fatal(annotation: str) -> None:
    label = origin.origin_labels(ObjectRef(kind="", namespace="demo", name="n" * 80), CLUSTER)
    forged = ConfigObject(
        ref=ObjectRef(kind="ConfigMap", namespace="a", name="n" * 80),
        labels=frozen(label),
        annotations=frozen({"kubed.appscode.com/origin": annotation}),
    )

    owner = origin.owner_of(forged, CLUSTER)

    assert owner is not None
    assert owner.name == label["kubed.appscode.com/origin.name"]  # the shortened label, never the text
