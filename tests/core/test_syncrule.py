"""SyncRule documents: the same rules, kept apart from the source, with field-precise errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cfgsync import errors
from cfgsync._core.syncrule import rule_from_document
from cfgsync.testing import namespace

VALID: dict[str, Any] = {
    "apiVersion": "cfgsync.io/v1alpha1",
    "kind": "SyncRule",
    "metadata": {"name": "share", "namespace": "platform"},
    "spec": {
        "source": {"kind": "Secret", "name": "registry"},
        "namespaces": ["team-*"],
        "namespaceSelector": {
            "matchLabels": {"env": "prod"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}],
        },
        "excludeNamespaces": ["team-x"],
        "keys": {"include": ["*"], "exclude": ["*.key"], "rename": {"a": "b"}},
        "copyName": "registry-copy",
    },
}


def test_valid_document() -> None:
    rule = rule_from_document(VALID, where="rules.yaml:3")
    assert str(rule.source) == "Secret platform/registry"
    assert rule.origin == "SyncRule platform/share (rules.yaml:3)"
    assert rule.copy_name == "registry-copy"
    assert rule.keys.rename == (("a", "b"),)
    assert rule.targets.selects(namespace("team-a", {"env": "prod", "tier": "web"}))
    assert not rule.targets.selects(namespace("team-a", {"env": "prod", "tier": "db"}))
    assert not rule.targets.selects(namespace("team-x", {"env": "prod", "tier": "web"}))


def test_string_selector_is_accepted() -> None:
    doc = copy.deepcopy(VALID)
    doc["spec"]["namespaceSelector"] = "env=prod"
    assert str(rule_from_document(doc).targets.selector) == "env=prod"


def test_namespace_comes_from_source_when_metadata_has_none() -> None:
    doc = copy.deepcopy(VALID)
    del doc["metadata"]["namespace"]
    doc["spec"]["source"]["namespace"] = "platform"
    assert rule_from_document(doc).source.namespace == "platform"


def _broken(path: str, value: object) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("apiVersion", "cfgsync.io/v2", "apiVersion: must be cfgsync.io/v1alpha1"),
        ("metadata.name", None, "metadata.name: must be a non-empty string"),
        ("spec.source.kind", "Deployment", "spec.source.kind: must be ConfigMap or Secret"),
        ("spec.source.name", "Bad_Name", "spec.source.name: 'Bad_Name' is not a valid object name"),
        ("spec.source.namespace", "elsewhere", "spec.source.namespace: must equal metadata.namespace"),
        ("spec.namespaces", "team-a", "spec.namespaces: must be a list of strings"),
        ("spec.namespaces", [], "spec.namespaces: is empty"),
        ("spec.namespaces", ["Team_A"], "spec.namespaces: 'Team_A' is not a namespace name"),
        ("spec.namespaceSelector", "env in (", "spec.namespaceSelector"),
        ("spec.namespaceSelector", {"matchLabel": {}}, "spec.namespaceSelector.matchLabel: unknown field"),
        ("spec.keys", {"includes": []}, "spec.keys.includes: unknown field"),
        ("spec.keys", {"rename": {"a": 3}}, "spec.keys.rename.a: must be a non-empty string"),
        ("spec.copyName", "Bad_Name", "spec.copyName: 'Bad_Name' is not a valid object name"),
        ("spec.extra", True, "spec.extra: unknown field"),
        ("spec", "nope", "spec: must be a mapping"),
        ("spec.keys", {1: "x"}, "spec.keys: key 1 is not a string; every field name is text"),
    ],
)
def test_errors_point_at_the_field(path: str, value: object, expected: str) -> None:
    with pytest.raises(errors.RuleError) as caught:
        rule_from_document(_broken(path, value), where="rules.yaml:7")
    assert expected in str(caught.value)
    assert "rules.yaml:7" in str(caught.value)


def test_rule_without_targets_is_an_error() -> None:
    doc = copy.deepcopy(VALID)
    del doc["spec"]["namespaces"]
    del doc["spec"]["namespaceSelector"]
    with pytest.raises(errors.RuleError, match=r"set namespaces \(\['\*'\] for every namespace\)"):
        rule_from_document(doc)
