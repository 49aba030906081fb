"""The real kustomize running cfgsync as an exec KRM transformer, and installing the ArgoCD sidecar."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cfgsync.testing import assert_golden

from .helpers import REPO, documents, tool_env

GOLDEN = Path(__file__).parent / "golden"
pytestmark = pytest.mark.timeout(900)  # the first run builds kustomize


def build(kustomize: Path, directory: Path, home: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kustomize), "build", *flags, str(directory)],
        env=tool_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_kustomize_build_runs_cfgsync_as_a_transformer(kustomize: Path, tmp_path: Path) -> None:
    result = build(
        kustomize, REPO / "examples/kustomize", tmp_path, "--enable-alpha-plugins", "--enable-exec"
    )

    assert result.returncode == 0, result.stderr
    assert_golden(result.stdout, GOLDEN / "kustomize-example.yaml")


def test_a_failing_function_fails_the_build_with_cfgsync_message(kustomize: Path, tmp_path: Path) -> None:
    example = tmp_path / "example"
    shutil.copytree(REPO / "examples/kustomize", example)
    function = example / "cfgsync-function.yaml"
    function.write_text(function.read_text().replace("clusterName: example", "clusterNmae: example"))

    result = build(kustomize, example, tmp_path, "--enable-alpha-plugins", "--enable-exec")

    assert result.returncode != 0
    assert result.stdout == ""
    assert "unknown setting 'clusterNmae'" in result.stderr


def test_the_sidecar_component_patches_the_repo_server(kustomize: Path, tmp_path: Path) -> None:
    # A stand-in for the ArgoCD install: the repo server with the volumes the real one has.
    install = tmp_path / "install"
    install.mkdir()
    (install / "repo-server.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: argocd-repo-server}\nspec:\n"
        "  selector: {matchLabels: {app: repo}}\n  template:\n"
        "    metadata: {labels: {app: repo}}\n    spec:\n"
        "      automountServiceAccountToken: false\n"
        "      containers: [{name: argocd-repo-server, image: argocd}]\n"
        "      volumes: [{name: var-files, emptyDir: {}}, {name: plugins, emptyDir: {}}]\n"
    )
    shutil.copytree(REPO / "deploy/argocd", install / "cfgsync")
    (install / "kustomization.yaml").write_text(
        "resources: [repo-server.yaml]\ncomponents: [cfgsync, cfgsync/live-namespaces]\n"
        "images: [{name: cfgsync-cmp, newName: registry.example.invalid/cfgsync-cmp, newTag: 0.1.0}]\n"
    )

    result = build(kustomize, install, tmp_path)

    assert result.returncode == 0, result.stderr
    objects = {(o["kind"], o["metadata"]["name"]): o for o in documents(result.stdout)}
    pod = objects["Deployment", "argocd-repo-server"]["spec"]["template"]["spec"]
    sidecar = next(c for c in pod["containers"] if c["name"] == "cfgsync")
    mounts = {m["mountPath"]: m for m in sidecar["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert sidecar["image"] == "registry.example.invalid/cfgsync-cmp:0.1.0"
    assert sidecar["command"] == ["/var/run/argocd/argocd-cmp-server"]
    assert sidecar["securityContext"]["runAsUser"] == 999
    assert mounts["/home/argocd/cmp-server/config/plugin.yaml"]["subPath"] == "plugin.yaml"
    assert volumes[mounts["/tmp"]["name"]] == {"name": "cfgsync-tmp", "emptyDir": {}}  # noqa: S108  # a mount path in the pod, not a file here
    assert {mounts["/var/run/argocd"]["name"], mounts["/home/argocd/cmp-server/plugins"]["name"]} == {
        "var-files",
        "plugins",
    }
    plugin = objects["ConfigMap", volumes["cfgsync-cmp-plugin"]["configMap"]["name"]]
    assert plugin["data"]["plugin.yaml"] == (REPO / "deploy/argocd/plugin.yaml").read_text()
    # The token is for the cfgsync container only; the repo server itself still mounts none.
    assert "/var/run/secrets/kubernetes.io/serviceaccount" in mounts
    assert pod["automountServiceAccountToken"] is False
    role = objects["ClusterRole", "cfgsync-cmp-namespace-reader"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}]
