"""``namespaces=cluster``: the plugin lists live namespaces with no more than deploy/argocd grants."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from controlplane import RESTRICTED_USER, ControlPlane

from .helpers import REPO, documents, tool_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
RBAC = REPO / "deploy/argocd/live-namespaces/rbac.yaml"


def generate(app: Path, kubeconfig: Path, home: Path) -> subprocess.CompletedProcess[str]:
    command = yaml.safe_load((REPO / "deploy/argocd/plugin.yaml").read_text())["spec"]["generate"]["command"]
    env = {
        "ARGOCD_APP_NAME": "live",
        "ARGOCD_APP_NAMESPACE": "platform",
        "ARGOCD_APP_PARAMETERS": json.dumps([{"name": "namespaces", "string": "cluster"}]),
        "KUBECONFIG": str(kubeconfig),
    }
    return subprocess.run(
        command, cwd=app, env=tool_env(home, env), capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def namespace_reader(kube_api: Any) -> Iterator[str]:
    """deploy/argocd's ClusterRole, bound to the restricted user instead of the repo server's account."""
    role = next(d for d in yaml.safe_load_all(RBAC.read_text()) if d["kind"] == "ClusterRole")
    name = f"{role['metadata']['name']}-{secrets.token_hex(3)}"
    rbac: Any = client.RbacAuthorizationV1Api(kube_api)  # plain dicts are valid bodies
    rbac.create_cluster_role({**role, "metadata": {"name": name}})
    yield name  # bound by the test, once it has seen the refusal
    if _exists(rbac, name):
        rbac.delete_cluster_role_binding(name)
    rbac.delete_cluster_role(name)


def _exists(rbac: Any, name: str) -> bool:
    try:
        rbac.read_cluster_role_binding(name)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_live_namespaces_with_only_list_namespaces_granted(
    control_plane: ControlPlane, kube_api: Any, namespace: str, namespace_reader: str, tmp_path: Path
) -> None:
    token = secrets.token_hex(4)
    client.CoreV1Api(kube_api).patch_namespace(
        namespace, {"metadata": {"labels": {"cfgsync.test/live": token}}}
    )
    app = tmp_path / "app"
    app.mkdir()
    (app / "cfgsync.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: planned\n"
        f"  labels: {{cfgsync.test/live: '{token}'}}\n"
    )
    (app / "source.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n"
        f"  annotations: {{kubed.appscode.com/sync: 'cfgsync.test/live={token}'}}\ndata: {{a: b}}\n"
    )

    refused = generate(app, control_plane.restricted_kubeconfig, tmp_path)
    _bind(kube_api, namespace_reader)
    allowed = _once_allowed(lambda: generate(app, control_plane.restricted_kubeconfig, tmp_path))

    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "403" in refused.stderr
    assert "grant `list` on `namespaces`" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    placed = [o["metadata"].get("namespace") for o in documents(allowed.stdout)]
    # The source (placed by ArgoCD), a copy in the live namespace, one in the declared one.
    assert placed == [None, *sorted([namespace, "planned"])]


def _bind(kube_api: Any, name: str) -> None:
    rbac: Any = client.RbacAuthorizationV1Api(kube_api)  # plain dicts are valid bodies
    rbac.create_cluster_role_binding(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "User", "name": RESTRICTED_USER, "apiGroup": "rbac.authorization.k8s.io"}],
        }
    )


def _once_allowed(run: Any, timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    """Run again while refused: the authorizer learns of a new binding from a watch, not at once."""
    deadline = time.monotonic() + timeout
    while True:
        result: subprocess.CompletedProcess[str] = run()
        if result.returncode == 0 or "403" not in result.stderr or time.monotonic() > deadline:
            return result
