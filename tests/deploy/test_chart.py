"""The Helm chart: it lints, renders what the golden files hold, and renders what a cluster admin expects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cfgsync.testing import assert_golden
from deploy.chart import CHART, MANIFESTS, Helm, documents, find, render_manifests

HERE = Path(__file__).resolve().parent
CUSTOM_VALUES = HERE / "values-custom.yaml"
APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))["appVersion"]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The controller container of the rendered Deployment."""
    containers: list[dict[str, Any]] = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.mark.parametrize("values", [[], ["-f", str(CUSTOM_VALUES)]], ids=["default", "custom"])
def test_helm_lint_passes_strictly(helm: Helm, values: list[str]) -> None:
    result = helm.run("lint", "--strict", str(CHART), *values)

    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_default_values_render_the_golden_file(helm: Helm) -> None:
    assert_golden(helm.template(), HERE / "golden" / "default.yaml")


def test_custom_values_render_the_golden_file(helm: Helm) -> None:
    rendered = helm.template("-f", str(CUSTOM_VALUES), release="sync", namespace="platform")

    assert_golden(rendered, HERE / "golden" / "custom.yaml")


def test_plain_manifests_are_the_chart_with_its_defaults(helm: Helm) -> None:
    """deploy/manifests/ is regenerated with `nox -s manifests` (or CFGSYNC_UPDATE_GOLDEN=1)."""
    assert_golden(render_manifests(helm), MANIFESTS)


def test_plain_manifests_create_their_namespace_and_the_crd_first() -> None:
    docs = documents(MANIFESTS.read_text(encoding="utf-8"))

    assert [d["kind"] for d in docs[:2]] == ["Namespace", "CustomResourceDefinition"]
    assert {d["metadata"].get("namespace") for d in docs[2:]} <= {"cfgsync", None}


def test_pod_is_hardened_by_default(helm: Helm) -> None:
    docs = documents(helm.template())
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    main = container(docs)

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert main["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert {m["mountPath"] for m in main["volumeMounts"]} == {"/tmp"}  # noqa: S108 -- the pod's only writable path


def test_default_resources_are_the_ones_used_for_kubed(helm: Helm) -> None:
    main = container(documents(helm.template()))

    assert main["resources"] == {
        "requests": {"cpu": "30m", "memory": "100Mi"},
        "limits": {"cpu": "100m", "memory": "128Mi"},
    }


def test_probes_use_the_health_endpoints_on_the_health_port(helm: Helm) -> None:
    main = container(documents(helm.template("--set", "healthPort=9100")))

    assert main["ports"] == [{"name": "http", "containerPort": 9100, "protocol": "TCP"}]
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert "--health-port=9100" in main["args"]


@pytest.mark.parametrize(
    ("settings", "image"),
    [
        ([], f"cfgsync:{APP_VERSION}"),
        (["image.registry=harbor.example.com:8443"], f"harbor.example.com:8443/cfgsync:{APP_VERSION}"),
        (
            ["image.registry=harbor.example.com", "image.repository=platform/cfgsync", "image.tag=1.2.3"],
            "harbor.example.com/platform/cfgsync:1.2.3",
        ),
        (
            ["image.registry=harbor.example.com", "image.tag=1.2.3", "image.digest=sha256:" + "ab" * 32],
            "harbor.example.com/cfgsync@sha256:" + "ab" * 32,
        ),
    ],
    ids=["default", "registry", "repository-and-tag", "digest"],
)
def test_image_reference_is_built_from_registry_repository_and_tag(
    helm: Helm, settings: list[str], image: str
) -> None:
    args = [arg for setting in settings for arg in ("--set", setting)]

    assert container(documents(helm.template(*args)))["image"] == image


def test_cluster_role_grants_exactly_what_the_controller_uses(helm: Helm) -> None:
    docs = documents(helm.template())
    rules = {
        (group, resource, tuple(rule["verbs"]))
        for rule in find(docs, "ClusterRole", "cfgsync")["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }

    watch = ("get", "list", "watch")
    assert rules == {
        ("", "configmaps", (*watch, "create", "patch", "delete")),
        ("", "secrets", (*watch, "create", "patch", "delete")),
        ("", "namespaces", watch),
        ("", "events", ("create",)),
        ("cfgsync.io", "syncrules", watch),
        ("cfgsync.io", "copies", ("manage",)),  # checked by the admission policy, not served
    }
    binding = find(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "cfgsync", "namespace": "cfgsync"}]


def test_a_cluster_role_to_grant_writing_copies_to_others_is_shipped_unbound(helm: Helm) -> None:
    docs = documents(helm.template())

    writer = find(docs, "ClusterRole", "cfgsync-copy-writer")
    assert writer["rules"] == [{"apiGroups": ["cfgsync.io"], "resources": ["copies"], "verbs": ["manage"]}]
    assert [b["roleRef"]["name"] for b in docs if b["kind"] == "ClusterRoleBinding"] == ["cfgsync"]


def test_the_admission_policy_guards_origin_labels_by_default(helm: Helm) -> None:
    docs = documents(helm.template())

    policy = find(docs, "ValidatingAdmissionPolicy")
    binding = find(docs, "ValidatingAdmissionPolicyBinding")
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    assert policy["spec"]["failurePolicy"] == "Fail"
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["operations"], rule["resources"]) == (["CREATE", "UPDATE"], ["configmaps", "secrets"])
    conditions = {c["name"]: c["expression"] for c in policy["spec"]["matchConditions"]}
    assert "check('manage')" in conditions["may-not-manage-copies"]
    assert ".resource('copies')" in conditions["may-not-manage-copies"]


def test_the_admission_policy_guards_the_peers_marks_whatever_this_release_reads(helm: Helm) -> None:
    # `cfgsync apply`, the Argo CD plugin and the KRM function read every vocabulary by default, so the
    # marks stay guarded when this release switches a vocabulary off.
    for values in (
        (),
        ("--set", "config.vocabularies.reflector=false", "--set", "config.vocabularies.replicator=false"),
    ):
        policy = find(documents(helm.template(*values)), "ValidatingAdmissionPolicy")
        conditions = " ".join(c["expression"] for c in policy["spec"]["matchConditions"])
        validations = " ".join(v["expression"] for v in policy["spec"]["validations"])
        assert "replicator.v1.mittwald.de/replicated-at" in conditions
        assert "reflector.v1.k8s.emberstack.com/auto-reflects" in conditions
        assert "replicator.v1.mittwald.de/replicate-from" in validations
        assert "reflector.v1.k8s.emberstack.com/reflects" in validations


def test_protecting_copies_adds_a_second_policy_exempting_the_namespace_controller(helm: Helm) -> None:
    docs = documents(helm.template("-f", str(CUSTOM_VALUES), release="sync", namespace="platform"))

    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ValidatingAdmissionPolicy"}
    bindings = {d["spec"]["policyName"] for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"}
    assert set(policies) == bindings == {"config-syncer-origin", "config-syncer-copies"}
    copies = policies["config-syncer-copies"]["spec"]
    assert copies["matchConstraints"]["resourceRules"][0]["operations"] == ["UPDATE", "DELETE"]
    exempt = next(c["expression"] for c in copies["matchConditions"] if c["name"] == "not-exempt")
    assert "'system:serviceaccount:kube-system:namespace-controller'" in exempt
    assert "'system:serviceaccount:ops:janitor'" in exempt


def test_without_the_admission_policy_nothing_of_it_is_rendered(helm: Helm) -> None:
    docs = documents(helm.template("--set", "admissionPolicy.enabled=false"))

    assert not [d for d in docs if d["kind"].startswith("ValidatingAdmissionPolicy")]


def test_leader_election_gets_one_lease_in_the_release_namespace(helm: Helm) -> None:
    docs = documents(helm.template(namespace="ops"))
    role = find(docs, "Role")

    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["cfgsync"],
            "verbs": ["get", "update"],
        },
    ]
    args = container(docs)["args"]
    assert {"--leader-elect", "--leader-elect-namespace=ops", "--leader-elect-name=cfgsync"} <= set(args)


def test_without_leader_election_there_is_no_lease_access(helm: Helm) -> None:
    docs = documents(helm.template("--set", "leaderElection.enabled=false"))

    assert not [d for d in docs if d["kind"] in {"Role", "RoleBinding"}]
    assert "--no-leader-elect" in container(docs)["args"]


def test_config_values_become_kubed_compatible_flags(helm: Helm) -> None:
    args = container(documents(helm.template("-f", str(CUSTOM_VALUES))))["args"]

    assert args[0] == "run"
    assert "--cluster-name=prod-eu" in args
    assert "--config-source-namespace=platform" in args
    assert "--kubeconfig-file=/etc/cfgsync/contexts/kubeconfig" in args
    assert {
        "--allow-system-namespaces",
        "--deny-source-type=kubernetes.io/tls",
        "--allow-sources-from=platform",
        "--allow-sources-from=shared-*",
        "--allow-sources-from-selector=cfgsync.example.com/sources=allowed",
        "--require-consent",
        "--strip-metadata=example.com/*",
    } <= set(args)
    # kubed's chart wrote additional options without dashes; they come last, and an option given there
    # replaces the chart's own: config.resyncPeriod (5m) is not rendered beside resync-period=1m.
    assert args[-2:] == ["--resync-period=1m", "--workers=4"]
    assert [a for a in args if a.startswith("--resync-period")] == ["--resync-period=1m"]


def test_each_vocabulary_is_read_by_default_and_a_value_switches_it_off(helm: Helm) -> None:
    default = container(documents(helm.template()))["args"]
    custom = container(documents(helm.template("-f", str(CUSTOM_VALUES))))["args"]

    assert not [a for a in default if a.startswith(("--disable-vocabulary", "--exclude-namespace-regex"))]
    assert "--disable-vocabulary=reflector" in custom
    assert "--disable-vocabulary=replicator" not in custom
    assert "--exclude-namespace-regex=^sandbox-" in custom


def test_kubeconfig_secret_is_mounted_read_only(helm: Helm) -> None:
    docs = documents(helm.template("-f", str(CUSTOM_VALUES)))
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]

    volume = next(v for v in pod["volumes"] if v["name"] == "contexts")
    assert volume["secret"] == {
        "secretName": "cfgsync-contexts",
        "items": [{"key": "config", "path": "kubeconfig"}],
    }
    mount = next(m for m in container(docs)["volumeMounts"] if m["name"] == "contexts")
    assert mount == {"name": "contexts", "mountPath": "/etc/cfgsync/contexts", "readOnly": True}


@pytest.mark.parametrize("values", [[], ["-f", str(CUSTOM_VALUES)]], ids=["default", "custom"])
def test_every_rendered_option_is_one_cfgsync_run_accepts(helm: Helm, values: list[str]) -> None:
    args = container(documents(helm.template(*values)))["args"]

    # click parses every option before it acts on --help: an unknown option fails here.
    result = subprocess.run(
        [sys.executable, "-m", "cfgsync", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "Run the controller" in result.stdout


def test_service_monitor_needs_the_metrics_service(helm: Helm) -> None:
    result = helm.run(
        "template",
        "cfgsync",
        str(CHART),
        "--set",
        "metrics.enabled=false",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        check=False,
    )

    assert result.returncode != 0
    assert "metrics.serviceMonitor.enabled needs metrics.enabled" in result.stderr


def test_service_monitor_scrapes_the_metrics_port(helm: Helm) -> None:
    docs = documents(helm.template("-f", str(CUSTOM_VALUES), release="sync", namespace="platform"))
    monitor = find(docs, "ServiceMonitor")
    service = find(docs, "Service")

    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [{"port": "http-metrics", "path": "/metrics", "interval": "1m"}]
    assert service["spec"]["ports"][0]["name"] == "http-metrics"
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
