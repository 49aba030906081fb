"""``explain`` names the policy that stopped a copy, for each policy, and the outcome of arbitration."""

from __future__ import annotations

import pytest

from cfgsync import ConfigObject, Namespace, PlanSettings, Policy, build_policy, explain_namespace
from cfgsync.testing import config_map, namespace, plan, secret

KUBED = "kubed.appscode.com/sync"


def explained(
    target: str,
    objects: list[ConfigObject],
    spaces: list[Namespace],
    settings: PlanSettings = PlanSettings(),  # noqa: B008 -- an immutable default
    existing: list[ConfigObject] | None = None,
) -> dict[str, tuple[bool, tuple[str, ...]]]:
    result = plan(objects, spaces, existing if existing is not None else objects, settings=settings)
    return {
        str(e.source): (e.lands, e.reasons)
        for e in explain_namespace(target, [*objects, *(existing or [])], spaces, result, settings=settings)
    }


@pytest.mark.parametrize(
    ("target", "source", "spaces", "settings", "line"),
    [
        (
            "kube-system",
            config_map("demo", "coredns-custom", annotations={KUBED: ""}),
            [namespace("demo"), namespace("kube-system")],
            PlanSettings(),
            "no: refused by policy system-namespaces: kube-system is a system namespace; no copy goes there "
            "unless the operator allows system namespaces (--allow-system-namespaces)",
        ),
        (
            "team-a",
            secret("demo", "token", type="kubernetes.io/service-account-token", annotations={KUBED: ""}),
            [namespace("demo"), namespace("team-a")],
            PlanSettings(),
            "no: not a source, refused by policy protected-sources: a Secret of type "
            "kubernetes.io/service-account-token is never a source (cfgsync copies no credentials the "
            "cluster issues, nor Helm's release records), whatever its annotations say",
        ),
        (
            "team-a",
            config_map("demo", "release", labels={"owner": "helm"}, annotations={KUBED: ""}),
            [namespace("demo"), namespace("team-a")],
            PlanSettings(),
            "no: not a source, refused by policy protected-sources: it is one of Helm's release records "
            "(label owner=helm), never a source",
        ),
        (
            "team-a",
            config_map("demo", "conf", annotations={KUBED: ""}),
            [namespace("demo"), namespace("team-a")],
            PlanSettings(policy=build_policy(sources_from=("platform",), sources_from_selector="src=yes")),
            "no: not a source, refused by policy source-namespaces: sources may only live in namespaces in "
            "platform (--allow-sources-from) or whose labels match src=yes (--allow-sources-from-selector); "
            "demo is not one of them",
        ),
        (
            "team-a",
            config_map("demo", "conf", annotations={KUBED: ""}),
            [namespace("demo"), namespace("team-a")],
            PlanSettings(policy=Policy(require_consent=True)),
            "no: refused by policy consent: namespace team-a has no cfgsync.io/accept-from annotation, so "
            "it receives no copies (--require-consent)",
        ),
        (
            "team-a",
            config_map("demo", "conf", annotations={KUBED: ""}),
            [namespace("demo"), namespace("team-a", accept_from=("platform", "infra-*"))],
            PlanSettings(policy=Policy(require_consent=True)),
            "no: refused by policy consent: namespace team-a accepts copies only from platform, infra-* "
            "(annotation cfgsync.io/accept-from), not from demo (--require-consent)",
        ),
    ],
    ids=["system-namespace", "sa-token", "helm-storage", "source-namespaces", "no-consent", "other-consent"],
)
def test_explain_names_the_policy_that_stopped_the_copy(
    target: str, source: ConfigObject, spaces: list[Namespace], settings: PlanSettings, line: str
) -> None:
    lands, reasons = explained(target, [source], spaces, settings)[str(source.ref)]

    assert not lands
    assert line in reasons


def test_explain_says_when_consent_is_given() -> None:
    source = config_map("demo", "conf", annotations={KUBED: ""})
    spaces = [namespace("demo"), namespace("team-a", accept_from=("de*",))]

    lands, reasons = explained("team-a", [source], spaces, PlanSettings(policy=Policy(require_consent=True)))[
        "ConfigMap demo/conf"
    ]

    assert lands
    assert "yes: namespace team-a accepts copies from demo (cfgsync.io/accept-from: de*)" in reasons


def test_explain_says_a_copy_in_a_system_namespace_is_left_alone() -> None:
    source = config_map("demo", "regcred", annotations={KUBED: ""})
    spaces = [namespace("demo"), namespace("kube-system")]
    allowed = PlanSettings(policy=Policy(allow_system_namespaces=True))
    copy = plan([source], spaces, settings=allowed).copies[0]
    kubed_made = ConfigObject(ref=copy.ref, labels=copy.labels, annotations=copy.annotations, uid="x")

    lands, reasons = explained("kube-system", [source], spaces, existing=[kubed_made])[
        "ConfigMap demo/regcred"
    ]

    assert not lands
    assert any(
        r.startswith("no: its existing copy is kube-system is a system namespace, where cfgsync writes and "
                     "deletes nothing") for r in reasons
    ), reasons  # fmt: skip


def test_explain_gives_the_arbitration_to_both_sources() -> None:
    wants = {"cfgsync.io/namespaces": "team-a", "cfgsync.io/copy-name": "ca"}
    first = config_map("alpha", "ca-bundle", annotations=wants)
    second = config_map("zulu", "ca-bundle", annotations=wants)
    spaces = [namespace("alpha"), namespace("zulu"), namespace("team-a")]

    found = explained("team-a", [first, second], spaces)

    first_lands, first_reasons = found["ConfigMap alpha/ca-bundle"]
    second_lands, second_reasons = found["ConfigMap zulu/ca-bundle"]
    assert first_lands
    assert any(
        r.startswith("yes: it has the copy another source also wants: 2 sources want") for r in first_reasons
    )
    assert not second_lands
    assert any(r.startswith("no: 2 sources want ConfigMap team-a/ca") for r in second_reasons)
    assert any("Not written for ConfigMap zulu/ca-bundle" in r for r in second_reasons)
