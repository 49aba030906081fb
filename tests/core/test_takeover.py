"""Copies a peer made are taken over in place (an update, never a delete and create), only when the
peer's marks say they are that source's copies and hold nothing else."""

from __future__ import annotations

import pytest

from cfgsync import ActionKind, ConfigObject, PlanSettings
from cfgsync.testing import config_map, namespace, plan

R = "replicator.v1.mittwald.de/"
F = "reflector.v1.k8s.emberstack.com/"
SPACES = [namespace("platform"), namespace("team-a")]


def replicated(data: dict[str, str], keys: str = "k", **extra: str) -> ConfigObject:
    return config_map(
        "team-a",
        "settings",
        data,
        labels={"team": "platform"},
        annotations={
            R + "replicated-at": "2024-05-01T10:00:00Z",
            R + "replicated-from-version": "41",
            R + "replicated-keys": keys,
            **extra,
        },
    )


def mirror(reflects: str = "platform/settings", auto: str = "True") -> ConfigObject:
    return config_map(
        "team-a",
        "settings",
        {"k": "v"},
        annotations={
            F + "reflects": reflects,
            F + "auto-reflects": auto,
            F + "reflected-version": "41",
            F + "reflected-at": "2024-05-01T10:00:00.0000000+00:00",
        },
    )


REPLICATOR_SOURCE = config_map(
    "platform",
    "settings",
    {"k": "v"},
    labels={"team": "platform"},
    annotations={R + "replicate-to": "team-a"},
)
REFLECTOR_SOURCE = config_map(
    "platform",
    "settings",
    {"k": "v"},
    annotations={F + "reflection-allowed": "true", F + "reflection-auto-enabled": "true"},
)


@pytest.mark.parametrize(
    ("source", "found"), [(REPLICATOR_SOURCE, replicated({"k": "v"})), (REFLECTOR_SOURCE, mirror())]
)
def test_a_peer_copy_is_updated_in_place_with_the_same_data(
    source: ConfigObject, found: ConfigObject
) -> None:
    result = plan([source], SPACES, [found])
    (action,) = result.actions
    assert action.kind is ActionKind.UPDATE  # never create/delete: the uid stays
    assert action.reason.startswith("taken over in place from ")
    assert action.desired is not None
    assert dict(action.desired.data) == dict(found.data)
    assert "kubed.appscode.com/origin.name" in action.desired.labels
    assert not any(k.startswith((R, F)) for k in action.desired.annotations)  # the peer's marks go
    assert result.conflicts == ()


@pytest.mark.parametrize(
    ("source", "found"),
    [
        (
            REPLICATOR_SOURCE,
            replicated({"k": "v", "mine": "1"}),
        ),  # replicator merged into an object of someone's
        (REPLICATOR_SOURCE, config_map("team-a", "settings", {"k": "v"})),  # no marks: somebody else's
        (REFLECTOR_SOURCE, mirror("platform/other")),  # the mirror of another source
        (REFLECTOR_SOURCE, mirror(auto="False")),  # a manual mirror asks; it is no copy of reflector's
        (
            config_map("platform", "settings", annotations={"kubed.appscode.com/sync": ""}),
            replicated({"k": "v"}),
        ),
    ],
)
def test_anything_else_in_the_way_is_a_conflict(source: ConfigObject, found: ConfigObject) -> None:
    result = plan([source], SPACES, [found])
    assert [a for a in result.actions if a.ref == found.ref] == []
    assert [c.ref for c in result.conflicts] == [found.ref]


@pytest.mark.parametrize(
    ("source", "found", "off"),
    [(REPLICATOR_SOURCE, replicated({"k": "v"}), "replicator"), (REFLECTOR_SOURCE, mirror(), "reflector")],
)
def test_a_switched_off_vocabulary_takes_nothing_over(
    source: ConfigObject, found: ConfigObject, off: str
) -> None:
    settings = PlanSettings(disabled_vocabularies=frozenset({off}))
    result = plan([source], SPACES, [found], settings=settings)
    assert result.actions == ()


def test_a_taken_over_copy_goes_with_its_source() -> None:
    taken = plan([REPLICATOR_SOURCE], SPACES, [replicated({"k": "v"})]).actions[0].desired
    assert taken is not None
    held = config_map(
        "team-a", "settings", dict(taken.data), labels=taken.labels, annotations=taken.annotations
    )
    (action,) = plan([], SPACES, [held]).actions
    assert action.kind is ActionKind.DELETE
    assert "no longer exists" in action.reason
