"""Installing rendered manifests on the test API server, and acting as a ServiceAccount.

I/O: requests to the test control plane (127.0.0.1) and private kubeconfig files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubernetes import client

from live.helpers import wait_for

FIELD_MANAGER = "cfgsync-deploy-tests"
_PLURALS = {
    "Namespace": "namespaces",
    "CustomResourceDefinition": "customresourcedefinitions",
    "ServiceAccount": "serviceaccounts",
    "Service": "services",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "Deployment": "deployments",
    "ValidatingAdmissionPolicy": "validatingadmissionpolicies",
    "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings",
}
"""The kinds the chart renders by default (the ServiceMonitor needs prometheus-operator's CRDs)."""


def object_path(doc: dict[str, Any]) -> str:
    """The API path of the object ``doc`` describes."""
    api_version: str = doc["apiVersion"]
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    namespace = doc["metadata"].get("namespace")
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{prefix}{scope}/{_PLURALS[doc['kind']]}/{doc['metadata']['name']}"


def server_side_apply(api: Any, doc: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    """``kubectl apply --server-side [--dry-run=server]`` of one document; returns the server's object."""
    query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
    if dry_run:
        query.append(("dryRun", "All"))
    return _call(
        api, "PATCH", object_path(doc), query=query, body=doc, content_type="application/apply-patch+yaml"
    )


def exists(api: Any, doc: dict[str, Any]) -> bool:
    """Whether the object ``doc`` describes exists."""
    try:
        _call(api, "GET", object_path(doc))
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _call(
    api: Any,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    body: object = None,
    content_type: str | None = None,
) -> dict[str, Any]:
    """One request through the client's own serialisation and authentication; raises ``ApiException``."""
    headers = {"Accept": "application/json"} | ({"Content-Type": content_type} if content_type else {})
    serialized = api.param_serialize(
        method, path, query_params=query, header_params=headers, body=body, auth_settings=["BearerToken"]
    )
    response = api.call_api(*serialized[:4])
    response.read()
    result: dict[str, Any] = api.response_deserialize(response, {"200": "object", "201": "object"}).data
    return result


def wait_established(api: Any, name: str, *, timeout: float = 30.0) -> None:
    """Wait until the CRD ``name`` is served."""

    def established() -> bool:
        crd: Any = client.ApiextensionsV1Api(api).read_custom_resource_definition(name)
        conditions = crd.status.conditions if crd.status else None
        return any(c.type == "Established" and c.status == "True" for c in conditions or [])

    wait_for(established, timeout=timeout, what=f"CRD {name} to be established")


def service_account_kubeconfig(
    api: Any, *, admin_kubeconfig: Path, namespace: str, name: str, path: Path
) -> Path:
    """A kubeconfig that authenticates as ServiceAccount ``namespace/name``, with a token from TokenRequest.

    The same kind of token the kubelet mounts into the pod: short-lived, bound to the ServiceAccount.
    """
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    core: Any = client.CoreV1Api(api)
    token = core.create_namespaced_service_account_token(name, namespace, request).status.token
    admin = json.loads(admin_kubeconfig.read_text(encoding="utf-8"))
    cluster = admin["clusters"][0]["cluster"]
    user = f"system:serviceaccount:{namespace}:{name}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "test", "user": user}}],
        "current-context": "sa",
    }
    path.touch(mode=0o600)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path
