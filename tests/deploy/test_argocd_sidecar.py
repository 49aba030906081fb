"""deploy/argocd on Argo CD's own repo-server Deployment, admitted under Pod Security "restricted".

The Deployment is Argo CD's (manifests/base/repo-server of the release the tests build, read from the Go
module cache), the sidecar is added by deploy/argocd as docs/argocd.md tells users to, with the pinned
kustomize. The pod it would run is then created with a server-side dry run on the test control plane,
in a namespace labelled ``pod-security.kubernetes.io/enforce=restricted``, where the API server's
PodSecurity admission decides. A control case (the same pod without the sidecar's seccomp profile)
shows that the admission really runs there.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

import gotools
from gitops.argocd_cmp import GO_MODULE
from gitops.argocd_fixtures import ArgoCD

REPO = Path(__file__).resolve().parents[2]
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}

pytestmark = pytest.mark.timeout(300)


def argocd_source(version: str) -> Path:
    """Argo CD's module source at ``version`` (in the Go module cache since the build; fetched if not)."""
    go = gotools.find_go()
    if go is None:
        pytest.skip("no Go toolchain to locate Argo CD's manifests in the module cache")
    done = subprocess.run(
        [str(go), "mod", "download", "-json", f"github.com/argoproj/argo-cd/v3@{version}"],
        cwd=GO_MODULE,
        env={**os.environ, "GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local", "GOWORK": "off"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return Path(json.loads(done.stdout)["Dir"])


def repo_server_with_sidecar(kustomize: Path, argocd: ArgoCD, work: Path) -> dict[str, Any]:
    """Argo CD's repo-server Deployment with deploy/argocd's Component, as ``kustomize build`` gives it."""
    shutil.copytree(argocd_source(argocd.version) / "manifests/base/repo-server", work / "repo-server")
    shutil.copytree(REPO / "deploy/argocd", work / "cfgsync")
    (work / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": ["repo-server"],
                "components": ["cfgsync"],
                "images": [
                    {"name": "cfgsync-cmp", "newName": "registry.example.com/cfgsync-cmp", "newTag": "0.1.0"}
                ],
            }
        ),
        encoding="utf-8",
    )
    built = subprocess.run(
        [str(kustomize), "build", str(work)], capture_output=True, text=True, timeout=120, check=True
    )
    return next(d for d in yaml.safe_load_all(built.stdout) if d and d["kind"] == "Deployment")


def pod_of(deployment: dict[str, Any]) -> dict[str, Any]:
    """The pod the Deployment's ReplicaSet would create."""
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "argocd-repo-server"},
        "spec": template["spec"],
    }


def dry_run(core: Any, namespace: str, pod: dict[str, Any]) -> client.ApiException | None:
    """Create ``pod`` with ``dryRun=All``: None when admitted, else the refusal."""
    try:
        core.create_namespaced_pod(namespace, pod, dry_run="All")
    except client.ApiException as exc:
        return exc
    return None


def test_the_sidecar_passes_pod_security_restricted(
    kustomize: Path, argocd: ArgoCD, kube_api: Any, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(kube_api)
    core.patch_namespace(namespace, {"metadata": {"labels": RESTRICTED}})
    deployment = repo_server_with_sidecar(kustomize, argocd, tmp_path)
    pod = pod_of(deployment)
    sidecar = next(c for c in pod["spec"]["containers"] if c["name"] == "cfgsync")
    without_seccomp = copy.deepcopy(pod)
    del next(c for c in without_seccomp["spec"]["containers"] if c["name"] == "cfgsync")["securityContext"][
        "seccompProfile"
    ]

    refused = dry_run(core, namespace, without_seccomp)
    admitted = dry_run(core, namespace, pod)

    assert sidecar["image"] == "registry.example.com/cfgsync-cmp:0.1.0"
    assert sidecar["command"] == ["/var/run/argocd/argocd-cmp-server"]
    assert sidecar["securityContext"]["runAsUser"] == 999
    assert refused is not None, "PodSecurity admission does not run on the test API server"
    assert refused.status == 403
    message = json.loads(refused.body or "{}")["message"]
    assert 'violates PodSecurity "restricted:latest"' in message
    assert 'container "cfgsync" must set securityContext.seccompProfile.type' in message
    assert admitted is None, admitted.body
