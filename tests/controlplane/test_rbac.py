"""Authorization is live: the restricted identity is refused until a RoleBinding grants it access."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from controlplane import RESTRICTED_GROUP, RESTRICTED_USER, ControlPlane
from controlplane.fixtures import api_client, object_names

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def restricted_api(control_plane: ControlPlane) -> Iterator[Any]:
    with api_client(control_plane.restricted_kubeconfig) as api:
        yield api


def test_the_restricted_identity_is_who_the_server_sees(restricted_api: Any) -> None:
    review = client.AuthenticationV1Api(restricted_api).create_self_subject_review(
        client.V1SelfSubjectReview()
    )

    assert review.status is not None
    assert review.status.user_info is not None
    assert review.status.user_info.username == RESTRICTED_USER
    assert set(review.status.user_info.groups or ()) == {RESTRICTED_GROUP, "system:authenticated"}


def test_restricted_identity_is_forbidden_to_read_or_write_configmaps(
    restricted_api: Any, namespace: str
) -> None:
    core = client.CoreV1Api(restricted_api)

    with pytest.raises(client.ApiException) as listing:
        core.list_namespaced_config_map(namespace)
    with pytest.raises(client.ApiException) as creating:
        core.create_namespaced_secret(namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="nope")))

    assert listing.value.status == 403
    assert listing.value.body is not None
    refusal = json.loads(listing.value.body)
    assert refusal["reason"] == "Forbidden"
    assert f'User "{RESTRICTED_USER}" cannot list resource "configmaps"' in refusal["message"]
    assert creating.value.status == 403


def test_a_role_binding_grants_exactly_what_it_says(
    kube_api: Any, restricted_api: Any, namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(kube_api)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="configmap-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="configmap-reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="configmap-reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="User", name=RESTRICTED_USER, api_group="rbac.authorization.k8s.io")
            ],
        ),
    )
    client.CoreV1Api(kube_api).create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="visible"), data={"k": "v"})
    )
    core = client.CoreV1Api(restricted_api)

    listed = _once_authorized(lambda: core.list_namespaced_config_map(namespace))
    with pytest.raises(client.ApiException) as writing:
        core.delete_namespaced_config_map("visible", namespace)
    with pytest.raises(client.ApiException) as elsewhere:
        core.list_namespaced_config_map("default")

    assert object_names(listed) == {"visible"}
    assert writing.value.status == 403  # the Role grants get and list, not delete
    assert elsewhere.value.status == 403  # and only in its own namespace


def _once_authorized(call: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Retry ``call`` while it is refused: the authorizer learns of new bindings from a watch, not at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except client.ApiException as exc:
            if exc.status != 403 or time.monotonic() > deadline:
                raise
        time.sleep(0.05)
