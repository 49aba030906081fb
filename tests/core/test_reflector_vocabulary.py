"""reflector's annotations read as cfgsync rules: allowed and auto namespaces, mirrors, booleans."""

from __future__ import annotations

import pytest

from cfgsync import ActionKind
from cfgsync._core import reflector
from cfgsync.testing import config_map, namespace, plan

F = "reflector.v1.k8s.emberstack.com/"
SPACES = [
    namespace("platform"),
    namespace("team-a"),
    namespace("team-b", {"trust": "platform"}),
    namespace("sandbox"),
]
AUTO = {F + "reflection-allowed": "true", F + "reflection-auto-enabled": "true"}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, {"team-a", "team-b", "sandbox"}),  # allowed everywhere, auto everywhere allowed
        ({F + "reflection-allowed-namespaces": "team-.*"}, {"team-a", "team-b"}),
        ({F + "reflection-allowed-namespaces": ""}, {"team-a", "team-b", "sandbox"}),  # empty: all
        ({F + "reflection-allowed-namespaces-selector": "trust=platform"}, {"team-b"}),
        (
            {
                F + "reflection-allowed-namespaces": "sandbox",
                F + "reflection-allowed-namespaces-selector": "trust=platform",
            },
            {"team-b", "sandbox"},
        ),
        ({F + "reflection-auto-namespaces": "team-a"}, {"team-a"}),
        (
            {
                F + "reflection-allowed-namespaces": "team-.*",
                F + "reflection-auto-namespaces": "team-a,sandbox",
            },
            {"team-a"},
        ),
        ({F + "reflection-auto-namespaces-selector": "trust=platform"}, {"team-b"}),
        (
            {F + "reflection-allowed-namespaces": "team|team-a"},
            set(),
        ),  # the first match "team" is not the name
    ],
)
def test_auto_mirrors_go_to_allowed_and_auto_namespaces(extra: dict[str, str], expected: set[str]) -> None:
    source = config_map("platform", "ca", {"k": "v"}, annotations={**AUTO, **extra})
    assert {c.ref.namespace for c in plan([source], SPACES).copies} == expected


@pytest.mark.parametrize(
    ("annotations", "copied"),
    [
        ({F + "reflection-allowed": "true"}, False),  # mirrors only on request
        ({F + "reflection-auto-enabled": "true"}, False),  # auto needs allowed too
        ({F + "reflection-allowed": "True", F + "reflection-auto-enabled": " TRUE "}, True),
        ({F + "reflection-allowed": "yes", F + "reflection-auto-enabled": "true"}, False),
    ],
)
def test_auto_needs_both_switches_read_as_dotnet_booleans(annotations: dict[str, str], copied: bool) -> None:
    source = config_map("platform", "ca", annotations=annotations)
    assert bool(plan([source], SPACES).copies) is copied


def test_mirrors_carry_neither_labels_nor_annotations_of_the_source() -> None:
    source = config_map(
        "platform", "ca", {"k": "v"}, labels={"grafana_dashboard": "1"}, annotations={**AUTO, "x/y": "z"}
    )
    copy = plan([source], [namespace("platform"), namespace("team-a")]).copies[0]
    assert set(copy.labels) == {
        "kubed.appscode.com/origin.cluster",
        "kubed.appscode.com/origin.name",
        "kubed.appscode.com/origin.namespace",
    }
    assert set(copy.annotations) == {"kubed.appscode.com/origin"}


def test_a_manual_mirror_asks_and_an_automatic_one_does_not() -> None:
    assert reflector.is_manual_mirror({F + "reflects": "platform/ca"})
    assert reflector.is_manual_mirror({F + "reflects": "platform/ca", F + "auto-reflects": "False"})
    assert not reflector.is_manual_mirror({F + "reflects": "platform/ca", F + "auto-reflects": "True"})
    assert (
        reflector.auto_mirror_of({F + "reflects": "platform/ca", F + "auto-reflects": "True"}, "Secret")
        is not None
    )


@pytest.mark.parametrize(("ns", "allowed"), [("team-b", True), ("sandbox", False)])
def test_a_manual_mirror_is_pulled_only_where_allowed(ns: str, allowed: bool) -> None:
    source = config_map(
        "platform",
        "ca",
        {"ca.crt": "x"},
        annotations={
            F + "reflection-allowed": "true",
            F + "reflection-allowed-namespaces-selector": "trust=platform",
        },
    )
    mirror = config_map(ns, "ca", annotations={F + "reflects": "platform/ca"})
    result = plan([source, mirror], SPACES, [source, mirror])
    updated = [a for a in result.actions if a.kind is ActionKind.UPDATE]
    assert bool(updated) is allowed
    assert bool(result.pull_refusals) is not allowed
