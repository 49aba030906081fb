"""Planning copies into another cluster's context (pure): namespace choice, removal, conflicts."""

from __future__ import annotations

from cfgsync import ActionKind, ConfigObject, Plan, PlanSettings
from cfgsync._core import contexts
from cfgsync._plugins.manager import load_plugins
from cfgsync.testing import config_map, namespace

SYNC = {"kubed.appscode.com/sync": "nowhere=x"}
SETTINGS = PlanSettings(cluster_name="prod")


def source(contexts_value: str | None) -> ConfigObject:
    annotations = dict(SYNC)
    if contexts_value is not None:
        annotations["kubed.appscode.com/sync-contexts"] = contexts_value
    return config_map("demo", "omni", {"k": "v"}, annotations=annotations)


def plan(
    src: ConfigObject,
    *,
    context_namespace: str | None,
    spaces: list[str],
    existing: tuple[ConfigObject, ...] = (),
) -> Plan:
    return contexts.plan_context_copies(
        [src],
        context="east",
        context_namespace=context_namespace,
        namespaces=[namespace(n) for n in spaces],
        existing=existing,
        settings=SETTINGS,
        hooks=load_plugins(only=()),
    )


def test_the_copy_goes_to_the_contexts_namespace() -> None:
    result = plan(source("east,west"), context_namespace="shared", spaces=["shared", "demo"])

    assert [(a.kind, str(a.ref)) for a in result.actions] == [(ActionKind.CREATE, "ConfigMap shared/omni")]
    copy = result.actions[0].desired
    assert copy is not None
    assert copy.labels["kubed.appscode.com/origin.cluster"] == "prod"


def test_without_one_it_goes_to_the_sources_namespace_name_even_though_that_is_the_sources_own() -> None:
    result = plan(source("east"), context_namespace=None, spaces=["demo"])

    assert [str(a.ref) for a in result.actions] == ["ConfigMap demo/omni"]


def test_a_missing_namespace_is_a_warning_never_created() -> None:
    result = plan(source("east"), context_namespace=None, spaces=[])

    assert result.actions == ()
    assert "namespace demo does not exist in context east" in str(result.warnings[0])


def test_a_context_no_longer_named_loses_its_copy() -> None:
    first = plan(source("east"), context_namespace="shared", spaces=["shared"])
    made = first.actions[0].desired
    assert made is not None
    existing = config_map(
        "shared", "omni", dict(made.data), labels=dict(made.labels), annotations=dict(made.annotations)
    )

    again = plan(source("east"), context_namespace="shared", spaces=["shared"], existing=(existing,))
    after = plan(source("west"), context_namespace="shared", spaces=["shared"], existing=(existing,))

    assert [a.kind for a in again.actions] == [ActionKind.UNCHANGED]
    assert [(a.kind, a.reason) for a in after.actions] == [
        (ActionKind.DELETE, "context east is no longer named in its source's sync-contexts")
    ]


def test_an_unmanaged_object_there_is_a_conflict() -> None:
    theirs = config_map("shared", "omni", {"mine": "1"})

    result = plan(source("east"), context_namespace="shared", spaces=["shared"], existing=(theirs,))

    assert result.actions == ()
    assert "an unmanaged ConfigMap with that name exists" in result.conflicts[0].reason


def test_sync_contexts_alone_is_enough_for_other_clusters() -> None:
    alone = config_map("demo", "omni", {"k": "v"}, annotations={"kubed.appscode.com/sync-contexts": "east"})
    result = plan(alone, context_namespace=None, spaces=["demo"])
    assert [(a.kind, str(a.ref)) for a in result.actions] == [(ActionKind.CREATE, "ConfigMap demo/omni")]
    annotations = result.actions[0].desired.annotations  # type: ignore[union-attr]
    assert "kubed.appscode.com/sync-contexts" not in annotations
