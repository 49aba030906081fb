"""Copies that GitOps tools leave alone: no Argo CD, Flux or Helm ownership marks, plus the operator's and
the source's own keys to strip; the origin marks always stay."""

from __future__ import annotations

import dataclasses

import pytest

from cfgsync import ActionKind, ConfigObject, PlanSettings, Policy, RuleError
from cfgsync._core.model import frozen
from cfgsync._core.policy import GITOPS_KEYS
from cfgsync._core.syncrule import rule_from_document
from cfgsync.testing import config_map, namespace, plan

KUBED = "kubed.appscode.com/sync"
SPACES = [namespace("platform"), namespace("team-a")]
ORIGIN = {
    "kubed.appscode.com/origin.name",
    "kubed.appscode.com/origin.namespace",
    "kubed.appscode.com/origin.cluster",
}
MARKS = {
    # Argo CD label tracking, and annotation tracking (the default since v3)
    "app.kubernetes.io/instance": "platform-config",
    "argocd.argoproj.io/tracking-id": "platform-config:/ConfigMap:platform/ca",
    # Flux
    "kustomize.toolkit.fluxcd.io/name": "platform",
    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    "helm.toolkit.fluxcd.io/name": "ca",
    "helm.toolkit.fluxcd.io/namespace": "flux-system",
    # Helm
    "app.kubernetes.io/managed-by": "Helm",
    "meta.helm.sh/release-name": "ca",
    "meta.helm.sh/release-namespace": "platform",
}


def source(**annotations: str) -> ConfigObject:
    """A source deployed by a GitOps tool: its marks in both labels and annotations."""
    return config_map(
        "platform",
        "ca",
        {"ca.crt": "PEM"},
        labels={**MARKS, "team": "platform", "example.com/cost-center": "42"},
        annotations={**MARKS, KUBED: "", "note": "kept", "example.com/owner": "alice", **annotations},
    )


def copy_metadata(
    settings: PlanSettings = PlanSettings(),  # noqa: B008 -- an immutable default
    annotations: dict[str, str] | None = None,
) -> tuple[set[str], set[str]]:
    (copy,) = plan([source(**(annotations or {}))], SPACES, settings=settings).copies
    return set(copy.labels), set(copy.annotations)


def test_the_marks_are_the_documented_ones() -> None:
    assert set(GITOPS_KEYS) == set(MARKS)


def test_copies_do_not_carry_gitops_tools_marks_by_default() -> None:
    labels, annotations = copy_metadata()

    assert labels == {"team", "example.com/cost-center", *ORIGIN}
    assert annotations == {"note", "example.com/owner", "kubed.appscode.com/origin"}


@pytest.mark.parametrize(
    ("strip", "gone"),
    [
        (("team",), {"team"}),
        (("example.com/*",), {"example.com/cost-center", "example.com/owner"}),
        (("note", "team"), {"note", "team"}),
        (("kubed.appscode.com/*",), set()),  # origin marks are added after stripping: never stripped
    ],
)
def test_the_operator_and_the_source_name_more_keys_to_strip(strip: tuple[str, ...], gone: set[str]) -> None:
    default_labels, default_annotations = copy_metadata()

    by_operator = copy_metadata(PlanSettings(policy=Policy(strip_metadata=strip)))
    by_source = copy_metadata(annotations={"cfgsync.io/strip-metadata": ",".join(strip)})

    expected = (default_labels - gone, default_annotations - gone)
    assert by_operator == expected
    assert by_source == expected


def test_a_syncrule_names_keys_to_strip() -> None:
    unannotated = dataclasses.replace(
        source(), annotations=frozen({"note": "kept", "example.com/owner": "a"})
    )
    rule = rule_from_document(
        {
            "apiVersion": "cfgsync.io/v1alpha1",
            "kind": "SyncRule",
            "metadata": {"name": "r", "namespace": "platform"},
            "spec": {
                "source": {"kind": "ConfigMap", "name": "ca"},
                "namespaces": ["team-a"],
                "stripMetadata": ["example.com/*"],
            },
        }
    )

    (copy,) = plan([unannotated], SPACES, rules=[rule]).copies

    assert set(copy.labels) == {"team", *ORIGIN}
    assert set(copy.annotations) == {"note", "kubed.appscode.com/origin"}


@pytest.mark.parametrize("value", ["a b", "example.com/a/b", "x,,ü"])
def test_an_invalid_key_to_strip_is_an_error_naming_the_annotation(value: str) -> None:
    bad = source(**{"cfgsync.io/strip-metadata": value})

    result = plan([bad], SPACES)

    (problem,) = result.problems
    assert "annotation cfgsync.io/strip-metadata" in problem.message
    assert "is not a label or annotation key or glob" in problem.message


def test_a_syncrule_with_an_invalid_key_to_strip_is_an_error() -> None:
    with pytest.raises(RuleError, match=r"spec.stripMetadata: 'a b' is not a label or annotation key"):
        rule_from_document(
            {
                "apiVersion": "cfgsync.io/v1alpha1",
                "kind": "SyncRule",
                "metadata": {"name": "r", "namespace": "platform"},
                "spec": {
                    "source": {"kind": "ConfigMap", "name": "ca"},
                    "namespaces": ["*"],
                    "stripMetadata": ["a b"],
                },
            }
        )


def test_a_copy_carrying_the_marks_loses_them_in_one_update_in_place() -> None:
    """A copy kubed made carries its source's labels and annotations, GitOps marks included."""
    (desired,) = plan([source()], SPACES).copies
    kubed_made = ConfigObject(
        ref=desired.ref,
        labels=frozen({**desired.labels, **MARKS}),
        annotations=frozen({**desired.annotations, **MARKS}),
        data=desired.data,
        uid="kubed-uid",
    )

    (action,) = plan([source()], SPACES, [kubed_made]).actions

    assert action.kind is ActionKind.UPDATE
    removed = {op["path"] for op in action.patch if op["op"] == "remove"}
    escaped = {key.replace("/", "~1") for key in MARKS}
    assert removed == {f"/metadata/{part}/{key}" for part in ("labels", "annotations") for key in escaped}
    assert all(op["op"] == "remove" for op in action.patch)
