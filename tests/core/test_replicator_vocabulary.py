"""replicator's annotations read as cfgsync rules: push (regexes, selector), pull allowance, marks."""

from __future__ import annotations

import pytest

from cfgsync import ActionKind, errors
from cfgsync._core import replicator
from cfgsync.testing import config_map, namespace, plan

R = "replicator.v1.mittwald.de/"
SPACES = [
    namespace("platform"),
    namespace("team-a", {"registry": "enabled"}),
    namespace("team-1"),
    namespace("team-b"),
    namespace("team-ab"),
]


def landed(result: object, name: str = "settings") -> set[str]:
    return {a.ref.namespace for a in result.actions if a.desired is not None and a.ref.name == name}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({R + "replicate-to": "team-a"}, {"team-a"}),
        ({R + "replicate-to": "team-a, team-[0-9]+"}, {"team-a", "team-1"}),
        ({R + "replicate-to": "team-.*"}, {"team-a", "team-1", "team-b", "team-ab"}),
        ({R + "replicate-to": "team-a|team-b"}, {"team-a", "team-b"}),  # whole names, not ^team-a|team-b$
        ({R + "replicate-to-matching": "registry=enabled"}, {"team-a"}),
        (
            {R + "replicate-to": "team-b", R + "replicate-to-matching": "registry=enabled"},
            {"team-a", "team-b"},
        ),
        ({R + "replicate-to": "platform"}, set()),  # never into the source's own namespace
        ({R + "replicate-to-matching": ""}, {"team-a", "team-1", "team-b", "team-ab"}),  # empty: everything
    ],
)
def test_push_annotations_choose_namespaces(annotations: dict[str, str], expected: set[str]) -> None:
    source = config_map("platform", "settings", {"k": "v"}, annotations=annotations)
    assert landed(plan([source], SPACES)) == expected


def test_copies_carry_the_labels_but_none_of_the_annotations_as_in_replicator() -> None:
    source = config_map(
        "platform",
        "settings",
        {"k": "v"},
        labels={"team": "platform"},
        annotations={R + "replicate-to": "team-a", "example.com/owner": "platform"},
    )
    copy = plan([source], SPACES).copies[0]
    assert copy.labels["team"] == "platform"
    assert set(copy.annotations) == {"kubed.appscode.com/origin"}
    assert copy.vocabulary == "replicator"


@pytest.mark.parametrize(
    ("value", "kept"), [("true", False), ("True", False), ("1", False), ("false", True), ("no", True)]
)
def test_strip_labels_reads_booleans_as_go_does(value: str, kept: bool) -> None:
    source = config_map(
        "platform",
        "settings",
        labels={"team": "platform"},
        annotations={R + "replicate-to": "team-a", R + "strip-labels": value},
    )
    assert ("team" in plan([source], SPACES).copies[0].labels) is kept


def test_keep_owner_references_is_reported_not_honoured() -> None:
    source = config_map(
        "platform",
        "settings",
        annotations={R + "replicate-to": "team-a", R + "keep-owner-references": "true"},
    )
    result = plan([source], SPACES)
    assert len(result.copies) == 1
    assert any("keep-owner-references is not honoured" in w.message for w in result.warnings)


def test_entries_replicator_reads_otherwise_are_reported_with_the_namespaces() -> None:
    source = config_map("platform", "settings", annotations={R + "replicate-to": "team-a|team-b"})
    (warning,) = [w for w in plan([source], SPACES).warnings if "replicator reads" in w.message]
    assert "team-a|team-b as ^team-a|team-b$" in warning.message
    assert "namespaces team-ab" in warning.message  # ^team-a matches team-ab under replicator's reading


def test_a_bad_regex_is_an_error_naming_the_source_and_annotation() -> None:
    source = config_map("platform", "settings", annotations={R + "replicate-to": "team-("})
    (problem,) = plan([source], SPACES).problems
    assert problem.subject == "ConfigMap platform/settings"
    assert R + "replicate-to" in problem.message


@pytest.mark.parametrize(
    ("annotations", "allowed"),
    [
        ({R + "replication-allowed": "true", R + "replication-allowed-namespaces": "team-a"}, True),
        ({R + "replication-allowed": "true", R + "replication-allowed-namespaces": "team-.*"}, True),
        ({R + "replication-allowed": "true", R + "replication-allowed-namespaces": "team-b"}, False),
        ({R + "replication-allowed": "true"}, False),  # both annotations are needed, as in replicator
        ({R + "replication-allowed-namespaces": "team-a"}, False),
        ({R + "replication-allowed": "false", R + "replication-allowed-namespaces": "team-a"}, False),
        ({R + "replication-allowed": "yes", R + "replication-allowed-namespaces": "team-a"}, False),
        ({R + "replication-allowed": "T", R + "replication-allowed-namespaces": "team-a|x"}, True),
    ],
)
def test_pull_allowance(annotations: dict[str, str], allowed: bool) -> None:
    verdict = replicator.allows(config_map("platform", "db", annotations=annotations), SPACES[1])
    assert verdict is not None
    assert verdict.allowed is allowed


def test_allowance_reading_notes_name_replicators_reading() -> None:
    source = config_map(
        "platform",
        "db",
        annotations={R + "replication-allowed": "true", R + "replication-allowed-namespaces": "team-a|x"},
    )
    verdict = replicator.allows(source, namespace("team-ab"))
    assert verdict is not None
    assert not verdict.allowed
    assert "^team-a|x$" in verdict.reason


def test_a_replicate_from_target_is_pulled_when_allowed() -> None:
    source = config_map(
        "platform",
        "db",
        {"host": "db"},
        annotations={R + "replication-allowed": "true", R + "replication-allowed-namespaces": "team-a"},
    )
    target = config_map("team-a", "database", annotations={R + "replicate-from": "platform/db"})
    objects = [source, target]
    (action,) = plan(objects, SPACES, objects).actions
    assert action.kind is ActionKind.UPDATE
    assert action.ref == target.ref
    assert action.desired is not None
    assert dict(action.desired.data) == {"host": "db"}


def test_own_keys_are_the_keys_replicator_did_not_write() -> None:
    obj = config_map(
        "team-a", "x", {"a": "1", "b": "2", "mine": "3"}, annotations={R + "replicated-keys": "a,b"}
    )
    assert replicator.own_keys(obj) == {"mine"}


def test_invalid_selector_is_an_error() -> None:
    with pytest.raises(errors.RuleError, match="replicate-to-matching"):
        replicator.push_rule(config_map("p", "s", annotations={R + "replicate-to-matching": "env in (a"}))
