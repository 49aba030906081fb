"""The operator's policy gives the same copies in every mode: the library, ``render`` and ``explain``
(flags), the ArgoCD plugin (parameters or plugin env) and the KRM function (SyncSettings or ConfigMap)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import cfgsync

from .helpers import documents, tool_env

NAMESPACES: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "platform", "labels": {"src": "yes"}}},
    *(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "annotations": annotations}}
        for name, annotations in (
            ("team-a", {"cfgsync.io/accept-from": "platform"}),
            ("team-b", {}),  # says nothing: receives nothing in consent mode
            ("tenant", {"cfgsync.io/accept-from": "platform, infra-*"}),
            ("kube-system", {"cfgsync.io/accept-from": "*"}),  # consents, but is a system namespace
        )
    ),
]
SYNC = {"kubed.appscode.com/sync": ""}
SOURCES: list[dict[str, Any]] = [
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "ca",
            "namespace": "platform",
            "labels": {
                "app.kubernetes.io/instance": "platform-config",
                "example.com/owner": "x",
                "tier": "1",
            },
            "annotations": {
                **SYNC,
                "argocd.argoproj.io/tracking-id": "platform-config:/ConfigMap:platform/ca",
            },
        },
        "data": {"ca.crt": "PEM"},
    },
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bootstrap-token-abcdef", "namespace": "platform", "annotations": SYNC},
        "type": "bootstrap.kubernetes.io/token",
        "data": {"token-id": "YWJjZGVm"},
    },
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "coredns-custom",
            "namespace": "tenant",
            "annotations": {"cfgsync.io/namespaces": "kube-system,team-a"},
        },
        "data": {"override.server": "evil"},
    },
]
FLAGS = ["--require-consent", "--allow-sources-from", "platform", "--strip-metadata", "example.com/*"]
EXPECTED = [
    (
        "ConfigMap",
        namespace,
        "ca",
        {
            "tier": "1",
            "kubed.appscode.com/origin.cluster": "",
            "kubed.appscode.com/origin.name": "ca",
            "kubed.appscode.com/origin.namespace": "platform",
        },
    )
    for namespace in ("team-a", "tenant")
]
Copies = list[tuple[str, str, str, dict[str, str]]]


def copies_of(objects: list[dict[str, Any]]) -> Copies:
    """Kind, namespace, name and labels of every copy; the annotations must hold no GitOps mark."""
    found = []
    for obj in objects:
        meta = obj["metadata"]
        labels = meta.get("labels") or {}
        if "kubed.appscode.com/origin.name" not in labels:
            continue
        annotations = meta.get("annotations") or {}
        assert "argocd.argoproj.io/tracking-id" not in annotations
        found.append((obj["kind"], meta["namespace"], meta["name"], labels))
    return sorted(found, key=lambda c: (c[1], c[0], c[2]))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "cfgsync.yaml").write_text(yaml.safe_dump_all(NAMESPACES))  # the ArgoCD plugin's inventory
    (app / "sources.yaml").write_text(yaml.safe_dump_all(SOURCES))
    return app


def run(
    args: list[str], tmp_path: Path, *, cwd: Path | None = None, input_text: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["cfgsync", *args],
        cwd=cwd,
        input=input_text,
        env=tool_env(tmp_path, {"CFGSYNC_PLUGINS": "", **env}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_library(tree: Path) -> None:
    found = cfgsync.load_manifests([str(tree / "cfgsync.yaml"), str(tree / "sources.yaml")])
    settings = cfgsync.PlanSettings(
        policy=cfgsync.build_policy(
            require_consent=True, sources_from=("platform",), strip_metadata=("example.com/*",)
        )
    )

    result = cfgsync.plan_inventory(found, settings=settings, plugins=cfgsync.load_plugin_hooks(only=()))

    assert copies_of([dict(m) for m in cfgsync.copy_manifests(result)]) == EXPECTED
    assert {w.ref.name for w in result.warnings if w.ref} == {"bootstrap-token-abcdef", "coredns-custom"}


def test_render(tree: Path, tmp_path: Path) -> None:
    result = run(["render", str(tree / "cfgsync.yaml"), str(tree / "sources.yaml"), *FLAGS], tmp_path)

    assert result.returncode == 0, result.stderr
    assert copies_of(documents(result.stdout)) == EXPECTED
    assert "refused by policy protected-sources" in result.stderr
    assert "refused by policy source-namespaces" in result.stderr


@pytest.mark.parametrize(
    ("namespace", "policy_line"),
    [
        ("kube-system", "no: refused by policy system-namespaces: kube-system is a system namespace"),
        (
            "team-b",
            "no: refused by policy consent: namespace team-b has no cfgsync.io/accept-from annotation",
        ),
    ],
)
def test_explain(tree: Path, tmp_path: Path, namespace: str, policy_line: str) -> None:
    result = run(
        ["explain", str(tree / "cfgsync.yaml"), str(tree / "sources.yaml"), "-n", namespace, *FLAGS], tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert f"ConfigMap platform/ca does not land in {namespace}" in result.stdout
    assert f"  {policy_line}" in result.stdout
    assert (
        "  no: not a source, refused by policy protected-sources: a Secret of type bootstrap" in result.stdout
    )


def argocd(
    tree: Path, tmp_path: Path, parameters: object, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return run(
        ["argocd", "generate"],
        tmp_path,
        cwd=tree,
        ARGOCD_APP_NAME="shared",
        ARGOCD_APP_NAMESPACE="platform",
        ARGOCD_APP_PARAMETERS=json.dumps(parameters),
        **env,
    )


@pytest.mark.parametrize(
    ("parameters", "env"),
    [
        (
            [
                {"name": "output", "string": "copies"},
                {"name": "require-consent", "string": "true"},
                {"name": "allow-sources-from", "array": ["platform"]},
                {"name": "strip-metadata", "array": ["example.com/*"]},
            ],
            {},
        ),
        (
            [],
            {
                "ARGOCD_ENV_CFGSYNC_OUTPUT": "copies",
                "ARGOCD_ENV_CFGSYNC_REQUIRE_CONSENT": "true",
                "ARGOCD_ENV_CFGSYNC_ALLOW_SOURCES_FROM": "platform",
                "ARGOCD_ENV_CFGSYNC_STRIP_METADATA": "example.com/*",
            },
        ),
    ],
    ids=["parameters", "plugin-env"],
)
def test_the_argocd_plugin(tree: Path, tmp_path: Path, parameters: object, env: dict[str, str]) -> None:
    result = argocd(tree, tmp_path, parameters, env)

    assert result.returncode == 0, result.stderr
    assert copies_of(documents(result.stdout)) == EXPECTED


def test_the_argocd_plugin_refuses_an_invalid_policy_setting(tree: Path, tmp_path: Path) -> None:
    bad = [{"name": "allow-sources-from-selector", "string": "env in ("}]

    result = argocd(tree, tmp_path, bad, {})

    assert result.returncode == 1
    assert "plugin parameters (or ARGOCD_ENV_CFGSYNC_*): allow-sources-from-selector: bad label selector" in (
        result.stderr
    )


@pytest.mark.parametrize(
    "function_config",
    [
        {
            "apiVersion": "cfgsync.io/v1alpha1",
            "kind": "SyncSettings",
            "metadata": {"name": "policy"},
            "spec": {
                "requireConsent": True,
                "allowSourcesFrom": ["platform"],
                "stripMetadata": ["example.com/*"],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "policy"},
            "data": {
                "require-consent": "true",
                "allow-sources-from": "platform",
                "strip-metadata": "example.com/*",
            },
        },
    ],
    ids=["SyncSettings", "ConfigMap"],
)
def test_the_krm_function(tmp_path: Path, function_config: dict[str, Any]) -> None:
    resource_list = {
        "apiVersion": "config.kubernetes.io/v1",
        "kind": "ResourceList",
        "items": [*NAMESPACES, *SOURCES],
        "functionConfig": function_config,
    }

    result = run(["krm"], tmp_path, input_text=yaml.safe_dump(resource_list))

    assert result.returncode == 0, result.stderr
    out = yaml.safe_load(result.stdout)
    assert copies_of(out["items"]) == EXPECTED
    messages = [r["message"] for r in out.get("results", [])]
    assert any("refused by policy protected-sources" in m for m in messages)


@pytest.mark.parametrize(
    ("function_config", "message"),
    [
        (
            {"apiVersion": "cfgsync.io/v1alpha1", "kind": "SyncSettings", "spec": {"requireConsent": "yes"}},
            "functionConfig: spec.requireConsent must be true or false",
        ),
        (
            {"apiVersion": "v1", "kind": "ConfigMap", "data": {"allow-system-namespaces": "yes"}},
            'functionConfig data allow-system-namespaces: must be "true" or "false"',
        ),
        (
            {"apiVersion": "cfgsync.io/v1alpha1", "kind": "SyncSettings", "spec": {"stripMetadata": ["a b"]}},
            "functionConfig spec: strip-metadata: 'a b' is not a label or annotation key or glob",
        ),
    ],
)
def test_the_krm_function_refuses_invalid_policy_settings(
    tmp_path: Path, function_config: dict[str, Any], message: str
) -> None:
    resource_list = {
        "apiVersion": "config.kubernetes.io/v1",
        "kind": "ResourceList",
        "items": SOURCES,
        "functionConfig": function_config,
    }

    result = run(["krm"], tmp_path, input_text=yaml.safe_dump(resource_list))

    assert result.returncode == 1
    assert message in result.stderr


@pytest.mark.parametrize("command", ["render", "explain", "diff", "apply", "run"])
def test_every_command_refuses_an_invalid_policy_flag_before_doing_anything(
    tree: Path, tmp_path: Path, command: str
) -> None:
    extra = {"explain": ["-n", "team-a"], "diff": ["--against", str(tmp_path)]}.get(command, [])
    paths = [str(tree)] if command in {"render", "explain", "diff"} else []

    result = run([command, *paths, *extra, "--allow-sources-from-selector", "env in ("], tmp_path)

    assert result.returncode == 1, result.stderr
    assert "error: command line: allow-sources-from-selector: bad label selector" in result.stderr
