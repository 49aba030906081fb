"""Rules declared by annotations: kubed's unchanged, and cfgsync's own."""

from __future__ import annotations

import pytest

from cfgsync import errors
from cfgsync._core import rules
from cfgsync.testing import config_map, namespace

KUBED = "kubed.appscode.com/sync"


def rule_of(annotations: dict[str, str]) -> rules.Rule:
    found = rules.rules_from_annotations(config_map("demo", "omni", annotations=annotations))
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("value", ["", "true", " true "])
def test_kubed_empty_or_true_selects_every_namespace(value: str) -> None:
    rule = rule_of({KUBED: value})
    assert rule.targets.names is None
    assert rule.targets.selector is None
    assert rule.targets.selects(namespace("anything", {"x": "y"}))


@pytest.mark.parametrize(
    ("value", "labels", "selected"),
    [
        ("app=kubed", {"app": "kubed"}, True),
        ("app=kubed", {"app": "other"}, False),
        ("app=kubed", {}, False),
        ("env in (a,b)", {"env": "b"}, True),
        ("!legacy", {"legacy": "1"}, False),
        ("!legacy", {}, True),
        # kubed parses "false" as a selector: "has a label with key false".
        ("false", {}, False),
        ("false", {"false": ""}, True),
    ],
)
def test_kubed_selector_value(value: str, labels: dict[str, str], selected: bool) -> None:
    assert rule_of({KUBED: value}).targets.selects(namespace("ns", labels)) is selected


def test_unparsable_kubed_selector_names_object_and_annotation() -> None:
    with pytest.raises(errors.RuleError) as caught:
        rules.rules_from_annotations(config_map("demo", "omni", annotations={KUBED: "env in (a,b"}))
    message = str(caught.value)
    assert "ConfigMap demo/omni" in message
    assert KUBED in message
    assert "env in (a,b" in message


def test_unannotated_object_has_no_rule() -> None:
    assert rules.rules_from_annotations(config_map("demo", "plain", annotations={"x": "y"})) == ()


def test_terminating_namespace_is_never_a_target() -> None:
    assert not rule_of({KUBED: ""}).targets.selects(namespace("gone", terminating=True))


def test_cfgsync_annotations_full_vocabulary() -> None:
    rule = rule_of(
        {
            "cfgsync.io/namespaces": "team-*, shared",
            "cfgsync.io/namespace-selector": "env=prod",
            "cfgsync.io/exclude-namespaces": "team-b",
            "cfgsync.io/include-keys": "*.crt",
            "cfgsync.io/exclude-keys": "old.crt",
            "cfgsync.io/rename-keys": "root.crt=ca.crt",
            "cfgsync.io/copy-name": "trusted-ca",
        }
    )
    assert rule.origin == "annotation cfgsync.io/namespaces"
    assert rule.targets.names == ("team-*", "shared")
    assert str(rule.targets.selector) == "env=prod"
    assert rule.keys == rules.KeyTransforms(
        include=("*.crt",), exclude=("old.crt",), rename=(("root.crt", "ca.crt"),)
    )
    assert rule.copy_name == "trusted-ca"
    assert rule.targets.selects(namespace("team-a", {"env": "prod"}))
    assert not rule.targets.selects(namespace("team-a", {"env": "dev"}))
    assert not rule.targets.selects(namespace("team-b", {"env": "prod"}))
    assert not rule.targets.selects(namespace("other", {"env": "prod"}))


def test_kubed_rule_takes_cfgsync_modifiers() -> None:
    rule = rule_of({KUBED: "", "cfgsync.io/exclude-namespaces": "kube-*", "cfgsync.io/exclude-keys": "*.key"})
    assert not rule.targets.selects(namespace("kube-system"))
    assert rule.targets.selects(namespace("apps"))
    assert rule.keys.exclude == ("*.key",)


def test_sync_contexts_alone_copy_only_into_other_clusters() -> None:
    rule = rule_of({"kubed.appscode.com/sync-contexts": "east"})
    assert rule.contexts == ("east",)
    assert rule.origin == "annotation kubed.appscode.com/sync-contexts"
    assert not rule.targets.selects(namespace("anything"))
    assert rule.targets.explain(namespace("anything")) == (
        "no: the rule copies only into other clusters (kubed.appscode.com/sync-contexts)",
    )


def test_sync_contexts_are_read() -> None:
    assert rule_of({KUBED: "", "kubed.appscode.com/sync-contexts": "east, west"}).contexts == ("east", "west")


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({KUBED: "", "cfgsync.io/namespaces": "a"}, "keep one of them"),
        ({"cfgsync.io/namespace": "a"}, "unknown annotation cfgsync.io/namespace"),
        ({"cfgsync.io/include-keys": "*.crt"}, "no rule says where to copy"),
        ({"cfgsync.io/namespaces": " , "}, "is empty"),
        ({"cfgsync.io/namespaces": "Team_A"}, "'Team_A' is not a namespace name or glob"),
        ({KUBED: "", "cfgsync.io/exclude-namespaces": "UPPER"}, "exclude-namespaces"),
        ({KUBED: "", "cfgsync.io/rename-keys": "a"}, "write old=new"),
        ({KUBED: "", "cfgsync.io/rename-keys": "a=b,a=c"}, "renamed twice"),
        ({KUBED: "", "cfgsync.io/rename-keys": "a=c,b=c"}, "the target of two renames"),
        ({KUBED: "", "cfgsync.io/rename-keys": "a=b/c"}, "not a valid data key"),
        ({KUBED: "", "cfgsync.io/copy-name": "Bad_Name"}, "not a valid object name"),
        ({KUBED: "", "cfgsync.io/include-keys": "a/b*"}, "not a key glob"),
        ({"cfgsync.io/namespace-selector": "env in"}, "cfgsync.io/namespace-selector"),
    ],
)
def test_invalid_annotations_are_explained(annotations: dict[str, str], expected: str) -> None:
    with pytest.raises(errors.RuleError) as caught:
        rules.rules_from_annotations(config_map("demo", "omni", annotations=annotations))
    assert expected in str(caught.value)
    assert "ConfigMap demo/omni" in str(caught.value)


def test_explain_lists_each_check() -> None:
    rule = rule_of({"cfgsync.io/namespaces": "team-*", "cfgsync.io/exclude-namespaces": "team-b"})
    lines = rule.targets.explain(namespace("team-b"))
    assert lines == (
        "yes: name matches team-* (names: team-*)",
        "no: name matches the exclusion team-b",
    )
