"""Pulls: a target asks, the source allows; the same policy as push; never a create or a delete."""

from __future__ import annotations

import json

import pytest

from cfgsync import ActionKind, ConfigObject, Plan, PlanSettings, build_policy
from cfgsync._core import patterns
from cfgsync._core.patterns import Matching
from cfgsync.testing import config_map, namespace, plan, secret

C = "cfgsync.io/"
SPACES = [
    namespace("platform"),
    namespace("team-a", {"pulls": "ok"}),
    namespace("team-b"),
    namespace("kube-system"),
]
ALLOWING = {C + "allow-pull-namespaces": "team-*,kube-system"}


def source(annotations: dict[str, str] | None = None, **kwargs: object) -> ConfigObject:
    return config_map(
        "platform", "settings", {"k": "v"}, annotations=ALLOWING if annotations is None else annotations
    )


def target(ns: str = "team-a", name: str = "app", **annotations: str) -> ConfigObject:
    return config_map(
        ns,
        name,
        {"old": "x"},
        labels={"app": "shop"},
        annotations={C + "copy-from": "platform/settings", **annotations},
    )


def planned(*objects: ConfigObject, settings: PlanSettings | None = None) -> Plan:
    return plan(objects, SPACES, objects, settings=settings or PlanSettings())


def test_an_allowed_target_gets_the_source_data_and_keeps_its_own_metadata() -> None:
    result = planned(source(), target())
    (action,) = result.actions
    assert action.kind is ActionKind.UPDATE
    assert action.ref.namespace == "team-a"
    assert action.ref.name == "app"
    copy = action.desired
    assert copy is not None
    assert copy.pulled
    assert dict(copy.data) == {"k": "v"}
    assert dict(copy.labels) == {"app": "shop"}  # the target's, not the source's, no origin labels
    assert copy.annotations[C + "copy-from"] == "platform/settings"
    pointer = json.loads(copy.annotations[C + "copied-from"])
    assert pointer == {"kind": "ConfigMap", "namespace": "platform", "name": "settings", "apiVersion": "v1"}
    assert not result.pull_refusals


def test_a_target_already_up_to_date_is_unchanged() -> None:
    first = planned(source(), target()).actions[0].desired
    assert first is not None
    current = config_map(
        "team-a", "app", dict(first.data), labels=first.labels, annotations=first.annotations
    )
    (action,) = planned(source(), current).actions
    assert action.kind is ActionKind.UNCHANGED


@pytest.mark.parametrize(
    ("objects", "settings", "reason"),
    [
        ((source({}), target()), None, "allows no pulls"),
        ((source({C + "allow-pull-namespaces": "team-b"}), target()), None, "does not allow team-a"),
        ((source({C + "allow-pull-namespace-selector": "pulls=ok"}), target("team-b")), None, "do not match"),
        ((target(),), None, "does not exist"),
        ((source(), target("kube-system")), None, "refused by policy system-namespaces"),
        (
            (source(), target()),
            PlanSettings(policy=build_policy(sources_from=("shared",))),
            "source-namespaces",
        ),
        (
            (source(), target()),
            PlanSettings(policy=build_policy(require_consent=True)),
            "refused by policy consent",
        ),
        ((source(), target()), PlanSettings(excluded_namespaces=("team-*",)), "excluded for every rule"),
        (
            (source(), target()),
            PlanSettings(
                excluded_namespace_regexes=patterns.compile_list("am-", Matching.ANYWHERE, where="t")
            ),
            "--exclude-namespace-regex am-",
        ),
        ((source(), target()), PlanSettings(source_namespace="other"), "only sources in other count"),
    ],
)
def test_a_refused_target_gets_nothing_and_is_told_why(
    objects: tuple[ConfigObject, ...], settings: PlanSettings | None, reason: str
) -> None:
    result = planned(*objects, settings=settings)
    assert not [a for a in result.actions if a.desired is not None and a.desired.pulled]
    (refusal,) = result.pull_refusals
    assert refusal.target.name == "app"
    assert reason in refusal.reason, refusal.reason


def test_protected_sources_cannot_be_pulled() -> None:
    token = secret(
        "platform", "token", {"t": "eA=="}, type="kubernetes.io/service-account-token", annotations=ALLOWING
    )
    asking = secret("team-a", "stolen", annotations={C + "copy-from": "platform/token"})
    (refusal,) = planned(token, asking).pull_refusals
    assert "protected-sources" in refusal.reason


def test_a_secret_type_that_differs_is_refused() -> None:
    src = secret("platform", "settings", {"k": "dg=="}, type="kubernetes.io/tls", annotations=ALLOWING)
    asking = secret("team-a", "app", annotations={C + "copy-from": "platform/settings"})
    (refusal,) = planned(src, asking).pull_refusals
    assert "a Secret's type cannot change" in refusal.reason


def test_a_copy_never_pulls() -> None:
    copy = config_map(
        "team-a",
        "app",
        labels={
            "kubed.appscode.com/origin.name": "x",
            "kubed.appscode.com/origin.namespace": "y",
            "kubed.appscode.com/origin.cluster": "",
        },
        annotations={C + "copy-from": "platform/settings"},
    )
    (refusal,) = planned(source(), copy).pull_refusals
    assert "is a copy" in refusal.reason


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({C + "copy-from": "settings"}, "does not name a source"),
        ({C + "copy-from": "team-a/app"}, "cannot pull itself"),
        (
            {
                C + "copy-from": "platform/settings",
                "replicator.v1.mittwald.de/replicate-from": "platform/settings",
            },
            "keep one",
        ),
    ],
)
def test_a_malformed_request_is_an_error_naming_the_target(annotations: dict[str, str], message: str) -> None:
    asking = config_map("team-a", "app", annotations=annotations)
    (problem,) = planned(source(), asking).problems
    assert problem.subject == "ConfigMap team-a/app"
    assert message in problem.message


def test_the_source_key_filters_shape_the_pulled_data() -> None:
    src = config_map(
        "platform",
        "settings",
        {"a.crt": "1", "b.key": "2"},
        annotations={**ALLOWING, C + "include-keys": "*.crt", C + "rename-keys": "a.crt=ca.crt"},
    )
    (action,) = planned(src, target()).actions
    assert action.desired is not None
    assert dict(action.desired.data) == {"ca.crt": "1"}


def test_a_source_that_only_allows_pulls_pushes_nothing() -> None:
    assert planned(source()).actions == ()


def test_a_switched_off_vocabulary_means_nothing() -> None:
    src = config_map(
        "platform",
        "settings",
        {"k": "v"},
        annotations={
            "replicator.v1.mittwald.de/replication-allowed": "true",
            "replicator.v1.mittwald.de/replication-allowed-namespaces": "team-a",
        },
    )
    asking = config_map(
        "team-a", "app", annotations={"replicator.v1.mittwald.de/replicate-from": "platform/settings"}
    )
    assert planned(src, asking).actions[0].kind is ActionKind.UPDATE
    off = planned(src, asking, settings=PlanSettings(disabled_vocabularies=frozenset({"replicator"})))
    assert off.actions == ()
    assert off.pull_refusals == ()
    assert off.problems == ()


def test_any_vocabulary_allowing_suffices() -> None:
    src = config_map(
        "platform",
        "settings",
        {"k": "v"},
        annotations={
            C + "allow-pull-namespaces": "team-b",
            "reflector.v1.k8s.emberstack.com/reflection-allowed": "true",
        },
    )
    (action,) = planned(src, target()).actions
    assert action.kind is ActionKind.UPDATE


def test_a_push_copy_wanted_where_a_target_is_is_a_conflict_not_an_overwrite() -> None:
    pushing = config_map("platform", "app", {"p": "1"}, annotations={C + "namespaces": "team-a", **ALLOWING})
    asking = config_map("team-a", "app", annotations={C + "copy-from": "platform/settings"})
    result = planned(source(), pushing, asking)
    assert [c.ref for c in result.conflicts] == [asking.ref]
    (action,) = result.actions
    assert action.desired is not None
    assert action.desired.pulled


def test_a_replicator_target_holding_keys_of_its_own_is_not_taken_over() -> None:
    src = config_map(
        "platform",
        "settings",
        {"k": "v"},
        annotations={
            "replicator.v1.mittwald.de/replication-allowed": "true",
            "replicator.v1.mittwald.de/replication-allowed-namespaces": "team-a",
        },
    )
    asking = config_map(
        "team-a",
        "app",
        {"k": "v", "mine": "1"},
        annotations={
            "replicator.v1.mittwald.de/replicate-from": "platform/settings",
            "replicator.v1.mittwald.de/replicated-keys": "k",
            "replicator.v1.mittwald.de/replicated-at": "2024-01-01T00:00:00Z",
        },
    )
    (refusal,) = planned(src, asking).pull_refusals
    assert "keys of its own" in refusal.reason
    assert "mine" in refusal.reason


def test_a_source_kubed_marked_with_its_own_origin_is_still_pulled_from() -> None:
    # kubed 0.13 writes its origin labels onto its sources when it restarts: still a source, never a copy.
    marked = config_map(
        "platform",
        "settings",
        {"k": "v"},
        labels={
            "kubed.appscode.com/origin.name": "settings",
            "kubed.appscode.com/origin.namespace": "platform",
            "kubed.appscode.com/origin.cluster": "",
        },
        annotations=ALLOWING,
    )
    (action,) = planned(marked, target()).actions
    assert action.kind is ActionKind.UPDATE
    assert action.desired is not None
    assert dict(action.desired.data) == {"k": "v"}
