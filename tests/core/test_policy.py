"""The operator's policy, enforced by the planner: protected sources, source namespaces, system
namespaces (copies there left alone, never deleted), consent, and the same in other clusters."""

from __future__ import annotations

import dataclasses

import pytest

from cfgsync import ActionKind, ConfigObject, Namespace, PlanSettings, Policy, RuleError, build_policy
from cfgsync._core import contexts
from cfgsync._core.model import frozen
from cfgsync._core.syncrule import rule_from_document
from cfgsync._plugins.manager import load_plugins
from cfgsync.testing import config_map, namespace, plan, secret

KUBED = "kubed.appscode.com/sync"
SYSTEM = ("kube-node-lease", "kube-public", "kube-system")
SPACES = [
    namespace("demo"),
    namespace("team-a", {"tier": "tenant"}),
    namespace("team-b", {"tier": "tenant"}),
    namespace("platform", {"cfgsync.io/sources": "yes"}),
    namespace("default"),
    *(namespace(ns) for ns in SYSTEM),
]
ALL = PlanSettings(policy=Policy(allow_system_namespaces=True))


def as_copy(result: object, ref_namespace: str, **changes: object) -> ConfigObject:
    """The copy planned for a namespace, as the API server would hold it (optionally edited)."""
    from cfgsync import Plan

    assert isinstance(result, Plan)
    copy = next(c for c in result.copies if c.ref.namespace == ref_namespace)
    obj = ConfigObject(
        ref=copy.ref,
        labels=copy.labels,
        annotations=copy.annotations,
        data=copy.data,
        type=copy.type,
        uid=f"uid-{ref_namespace}",
    )
    return dataclasses.replace(obj, **changes)  # type: ignore[arg-type]


def landed(result: object) -> list[str]:
    from cfgsync import Plan

    assert isinstance(result, Plan)
    return sorted(c.ref.namespace for c in result.copies)


# -- protected sources -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "policy", "why"),
    [
        (secret("demo", "t", type="kubernetes.io/service-account-token"), Policy(), "service-account-token"),
        (
            secret("demo", "t", type="bootstrap.kubernetes.io/token"),
            Policy(),
            "bootstrap.kubernetes.io/token",
        ),
        (secret("demo", "t", type="helm.sh/release.v1"), Policy(), "helm.sh/release.v1"),
        (config_map("demo", "t", labels={"owner": "helm"}), Policy(), "label owner=helm"),
        (secret("demo", "t", labels={"owner": "helm"}), Policy(), "label owner=helm"),
        (config_map("demo", "t", labels={"OWNER": "TILLER"}), Policy(), "label OWNER=TILLER"),
        (
            secret("demo", "t", type="kubernetes.io/tls"),
            Policy(denied_source_types=("kubernetes.io/tls",)),
            "--deny-source-type kubernetes.io/tls",
        ),
    ],
    ids=[
        "sa-token",
        "bootstrap-token",
        "helm-release-secret",
        "helm-configmap",
        "helm-secret",
        "tiller",
        "operator-type",
    ],
)
def test_protected_objects_are_never_sources_whatever_they_say(
    obj: ConfigObject, policy: Policy, why: str
) -> None:
    source = dataclasses.replace(obj, annotations=frozen({KUBED: ""}))

    result = plan([source], SPACES, settings=PlanSettings(policy=policy))

    assert result.copies == ()
    (warning,) = result.warnings
    assert warning.ref == source.ref
    assert "not synced: refused by policy protected-sources" in warning.message
    assert why in warning.message


@pytest.mark.parametrize(
    "obj",
    [
        secret("demo", "t", type="Opaque"),
        secret("demo", "t", type="kubernetes.io/dockerconfigjson"),
        secret("demo", "t", type="kubernetes.io/tls"),
        config_map("demo", "t", labels={"owner": "platform-team"}),
    ],
)
def test_ordinary_objects_are_sources(obj: ConfigObject) -> None:
    source = dataclasses.replace(obj, annotations=frozen({KUBED: ""}))

    assert landed(plan([source], SPACES)) == ["default", "platform", "team-a", "team-b"]


def test_a_syncrule_cannot_make_a_protected_object_a_source() -> None:
    token = secret("demo", "token", type="kubernetes.io/service-account-token")
    rule = rule_from_document(
        {
            "apiVersion": "cfgsync.io/v1alpha1",
            "kind": "SyncRule",
            "metadata": {"name": "r", "namespace": "demo"},
            "spec": {"source": {"kind": "Secret", "name": "token"}, "namespaces": ["*"]},
        }
    )

    result = plan([token], SPACES, rules=[rule])

    assert result.copies == ()
    (warning,) = result.warnings  # refused, not "its source does not exist"
    assert "refused by policy protected-sources" in warning.message


def test_protected_objects_without_a_rule_are_not_reported() -> None:
    helm_release = secret("demo", "sh.helm.release.v1.app.v1", type="helm.sh/release.v1")

    assert plan([helm_release], SPACES).warnings == ()


# -- which namespaces may hold sources ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "source_namespace", "allowed"),
    [
        (Policy(), "team-a", True),
        (Policy(sources_from=("platform",)), "platform", True),
        (Policy(sources_from=("platform",)), "team-a", False),
        (Policy(sources_from=("platform", "team-*")), "team-a", True),
        (build_policy(sources_from_selector="cfgsync.io/sources=yes"), "platform", True),
        (build_policy(sources_from_selector="cfgsync.io/sources=yes"), "team-a", False),
        (build_policy(sources_from=("team-b",), sources_from_selector="cfgsync.io/sources"), "team-b", True),
        (build_policy(sources_from=("team-b",), sources_from_selector="cfgsync.io/sources"), "team-a", False),
    ],
)
def test_only_allowed_namespaces_hold_sources(policy: Policy, source_namespace: str, allowed: bool) -> None:
    source = config_map(source_namespace, "conf", annotations={"cfgsync.io/namespaces": "demo"})

    result = plan([source], SPACES, settings=PlanSettings(policy=policy))

    assert landed(result) == (["demo"] if allowed else [])
    if not allowed:
        (warning,) = result.warnings
        assert "refused by policy source-namespaces" in warning.message
        assert f"{source_namespace} is not one of them" in warning.message


def test_copies_of_a_source_in_a_refused_namespace_are_deleted_saying_why() -> None:
    source = config_map("team-a", "conf", annotations={"cfgsync.io/namespaces": "demo"})
    existing = [as_copy(plan([source], SPACES), "demo")]

    result = plan(
        [source], SPACES, existing, settings=PlanSettings(policy=Policy(sources_from=("platform",)))
    )

    (delete,) = result.of_kind(ActionKind.DELETE)
    assert delete.reason.startswith("its source ConfigMap team-a/conf is not synced: refused by policy")


# -- system namespaces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "settings", "expected"),
    [
        ({KUBED: ""}, PlanSettings(), ["default", "platform", "team-a", "team-b"]),
        ({KUBED: ""}, ALL, ["default", "platform", "team-a", "team-b", *SYSTEM]),
        ({"cfgsync.io/namespaces": "kube-system"}, PlanSettings(), []),
        ({"cfgsync.io/namespaces": "kube-*"}, ALL, ["kube-node-lease", "kube-public", "kube-system"]),
    ],
)
def test_system_namespaces_receive_copies_only_when_allowed(
    annotations: dict[str, str], settings: PlanSettings, expected: list[str]
) -> None:
    source = config_map("demo", "coredns-custom", annotations=annotations)

    assert landed(plan([source], SPACES, settings=settings)) == sorted(expected)


@pytest.mark.parametrize("source_present", [True, False], ids=["source-present", "source-gone"])
def test_managed_copies_in_system_namespaces_are_left_alone_and_reported(source_present: bool) -> None:
    source = config_map("demo", "regcred", {"v": "2"}, annotations={KUBED: ""})
    old = plan([dataclasses.replace(source, data=frozen({"v": "1"}))], SPACES, settings=ALL)
    existing = [as_copy(old, ns) for ns in ("kube-system", "team-a")]

    result = plan([source] if source_present else [], SPACES, existing)

    touched = {a.ref.namespace: a.kind for a in result.actions if a.kind is not ActionKind.CREATE}
    assert "kube-system" not in touched  # neither updated nor deleted
    assert touched["team-a"] is (ActionKind.UPDATE if source_present else ActionKind.DELETE)
    (left,) = result.left_alone
    assert str(left.ref) == "ConfigMap kube-system/regcred"
    assert left.source == source.ref
    assert left.policy == "system-namespaces"
    assert "--allow-system-namespaces" in left.reason


def test_allowing_system_namespaces_manages_those_copies_again() -> None:
    source = config_map("demo", "regcred", {"v": "2"}, annotations={KUBED: ""})
    old = plan([dataclasses.replace(source, data=frozen({"v": "1"}))], SPACES, settings=ALL)
    existing = [as_copy(old, "kube-system")]

    updated = plan([source], SPACES, existing, settings=ALL)
    gone = plan([], SPACES, existing, settings=ALL)

    assert [(a.ref.namespace, a.kind) for a in updated.changes] == [
        *((ns, ActionKind.CREATE) for ns in ("default", "kube-node-lease", "kube-public")),
        ("kube-system", ActionKind.UPDATE),
        *((ns, ActionKind.CREATE) for ns in ("platform", "team-a", "team-b")),
    ]
    assert [(a.ref.namespace, a.kind) for a in gone.actions] == [("kube-system", ActionKind.DELETE)]
    assert updated.left_alone == gone.left_alone == ()


def test_unmanaged_objects_in_system_namespaces_are_not_reported() -> None:
    coredns = config_map("kube-system", "coredns", {"Corefile": "."})

    assert plan([], SPACES, [coredns]).left_alone == ()


# -- consent -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept_from", "lands"),
    [
        (None, False),  # says nothing: receives nothing
        ((), False),  # an empty annotation accepts no one
        (("demo",), True),
        (("de*",), True),
        (("platform", "demo"), True),
        (("platform",), False),
        (("demo-*",), False),
    ],
)
def test_consent_mode_copies_only_where_the_namespace_accepts_the_source_namespace(
    accept_from: tuple[str, ...] | None, lands: bool
) -> None:
    target = namespace("team-a", accept_from=accept_from)
    source = config_map("demo", "conf", annotations={KUBED: ""})
    consent = PlanSettings(policy=Policy(require_consent=True))

    assert landed(plan([source], [namespace("demo"), target], settings=consent)) == (
        ["team-a"] if lands else []
    )
    assert landed(plan([source], [namespace("demo"), target])) == ["team-a"]  # consent mode is opt-in


def test_consent_applies_to_every_kind_of_rule() -> None:
    spaces = [namespace("demo"), namespace("yes", accept_from=("demo",)), namespace("no")]
    sources = [
        config_map("demo", "kubed", annotations={KUBED: ""}),
        config_map("demo", "own", annotations={"cfgsync.io/namespaces": "*"}),
        config_map("demo", "documented"),
    ]
    rule = rule_from_document(
        {
            "apiVersion": "cfgsync.io/v1alpha1",
            "kind": "SyncRule",
            "metadata": {"name": "r", "namespace": "demo"},
            "spec": {"source": {"kind": "ConfigMap", "name": "documented"}, "namespaces": ["*"]},
        }
    )

    result = plan(sources, spaces, rules=[rule], settings=PlanSettings(policy=Policy(require_consent=True)))

    assert sorted(str(c.ref) for c in result.copies) == [
        "ConfigMap yes/documented",
        "ConfigMap yes/kubed",
        "ConfigMap yes/own",
    ]


def test_a_namespace_withdrawing_consent_loses_its_copies_saying_why() -> None:
    source = config_map("demo", "conf", annotations={KUBED: ""})
    consent = PlanSettings(policy=Policy(require_consent=True))
    before = plan([source], [namespace("demo"), namespace("team-a", accept_from=("demo",))], settings=consent)

    after = plan(
        [source], [namespace("demo"), namespace("team-a")], [as_copy(before, "team-a")], settings=consent
    )

    (delete,) = after.actions
    assert delete.kind is ActionKind.DELETE
    assert "its namespace is refused by policy consent" in delete.reason


# -- other clusters (sync-contexts) ------------------------------------------------------------------


def context_plan(
    source: ConfigObject, spaces: list[Namespace], settings: PlanSettings, context_namespace: str | None
) -> object:
    return contexts.plan_context_copies(
        [source],
        context="east",
        context_namespace=context_namespace,
        namespaces=spaces,
        settings=settings,
        hooks=load_plugins(only=()),
    )


@pytest.mark.parametrize(
    ("source", "context_namespace", "spaces", "settings", "policy_name"),
    [
        (
            config_map("demo", "c", annotations={"kubed.appscode.com/sync-contexts": "east"}),
            "kube-system",
            [namespace("kube-system")],
            PlanSettings(),
            "system-namespaces",
        ),
        (
            secret(
                "demo",
                "t",
                type="bootstrap.kubernetes.io/token",
                annotations={"kubed.appscode.com/sync-contexts": "east"},
            ),
            None,
            [namespace("demo")],
            PlanSettings(),
            "protected-sources",
        ),
        (
            config_map("demo", "c", annotations={"kubed.appscode.com/sync-contexts": "east"}),
            None,
            [namespace("demo", accept_from=("platform",))],
            PlanSettings(policy=Policy(require_consent=True)),
            "consent",
        ),
        (
            config_map("demo", "c", annotations={"kubed.appscode.com/sync-contexts": "east"}),
            None,
            [namespace("demo")],
            PlanSettings(policy=Policy(sources_from=("platform",))),
            "source-namespaces",
        ),
    ],
    ids=["system-namespace", "protected-source", "consent", "source-namespaces"],
)
def test_the_policy_holds_for_copies_into_other_clusters(
    source: ConfigObject,
    context_namespace: str | None,
    spaces: list[Namespace],
    settings: PlanSettings,
    policy_name: str,
) -> None:
    from cfgsync import Plan

    result = context_plan(source, spaces, settings, context_namespace)

    assert isinstance(result, Plan)
    assert result.copies == ()
    assert any(f"refused by policy {policy_name}" in w.message for w in result.warnings), result.warnings


def test_other_clusters_accept_copies_where_the_policy_allows() -> None:
    source = config_map("demo", "c", annotations={"kubed.appscode.com/sync-contexts": "east"})
    consent = PlanSettings(policy=Policy(require_consent=True, allow_system_namespaces=True))

    result = context_plan(source, [namespace("kube-system", accept_from=("demo",))], consent, "kube-system")

    assert landed(result) == ["kube-system"]


# -- settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sources_from": ("Team_A",)}, "allow-sources-from: 'Team_A' is not a namespace name or glob"),
        ({"sources_from_selector": "env in ("}, "allow-sources-from-selector: bad label selector"),
        ({"denied_source_types": ("my type",)}, "deny-source-type 'my type' is not a Secret type"),
        ({"strip_metadata": ("a/b/c",)}, "strip-metadata: 'a/b/c' is not a label or annotation key or glob"),
        ({"strip_metadata": ("",)}, "strip-metadata: '' is not a label or annotation key"),
    ],
)
def test_invalid_policy_settings_are_errors_naming_the_setting(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(RuleError, match=r"^flags: ") as error:
        build_policy(where="flags", **settings)  # type: ignore[arg-type]
    assert message in str(error.value)
