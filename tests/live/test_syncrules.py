"""SyncRule documents (the CRD installed) drive ``apply`` and ``run`` like annotations do."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from controlplane import ControlPlane
from live.conftest import NamespaceFactory
from live.controller import running
from live.helpers import cfgsync, cm_data, configmap, read_cm, wait_for

pytestmark = pytest.mark.timeout(240)

CRD = (
    Path(__file__).resolve().parents[2] / "deploy" / "helm" / "cfgsync" / "crds" / "syncrules.cfgsync.io.yaml"
)
GROUP, VERSION, PLURAL = "cfgsync.io", "v1alpha1", "syncrules"


@pytest.fixture(scope="session")
def syncrule_crd(kube_api: Any) -> None:
    """The SyncRule CRD, installed once and served."""
    extensions = client.ApiextensionsV1Api(kube_api)
    try:
        extensions.create_custom_resource_definition(yaml.safe_load(CRD.read_text(encoding="utf-8")))
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    custom = client.CustomObjectsApi(kube_api)
    wait_for(functools.partial(_served, custom), what="the SyncRule API to be served")


def _served(custom: Any) -> bool:
    try:
        custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    except client.ApiException:
        return False
    return True


def rule(name: str, source: str, namespaces: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SyncRule",
        "metadata": {"name": name},
        "spec": {"source": {"kind": "ConfigMap", "name": source}, "namespaces": namespaces},
    }


def test_a_syncrule_drives_apply_and_the_controller(
    syncrule_crd: None,
    control_plane: ControlPlane,
    kube_api: Any,
    core: Any,
    make_namespace: NamespaceFactory,
) -> None:
    custom = client.CustomObjectsApi(kube_api)
    src = make_namespace("src")
    a = make_namespace("a")
    b = make_namespace("b")
    core.create_namespaced_config_map(src, configmap("plain", {"k": "v"}))  # no annotation at all
    custom.create_namespaced_custom_object(GROUP, VERSION, src, PLURAL, rule("to-a", "plain", [a]))

    result = cfgsync("apply", kubeconfig=control_plane.kubeconfig)
    assert result.returncode == 0, result.stderr
    assert cm_data(core, a, "plain") == {"k": "v"}

    args = ("--no-leader-elect", "--cluster-name", "", "--config-source-namespace", src)
    with running(*args, kubeconfig=control_plane.kubeconfig):
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, src, PLURAL, "to-a", {"spec": {"namespaces": [b]}}
        )
        wait_for(lambda: cm_data(core, b, "plain") == {"k": "v"}, what="copy moved to b")
        wait_for(lambda: read_cm(core, a, "plain") is None, what="copy gone from a")

        custom.delete_namespaced_custom_object(GROUP, VERSION, src, PLURAL, "to-a")
        wait_for(lambda: read_cm(core, b, "plain") is None, what="copy gone with the rule")


def test_an_invalid_syncrule_is_reported_and_the_rest_is_applied(
    syncrule_crd: None,
    control_plane: ControlPlane,
    kube_api: Any,
    core: Any,
    make_namespace: NamespaceFactory,
) -> None:
    custom = client.CustomObjectsApi(kube_api)
    src = make_namespace("src")
    a = make_namespace("a")
    core.create_namespaced_config_map(src, configmap("good", {"k": "v"}))
    custom.create_namespaced_custom_object(GROUP, VERSION, src, PLURAL, rule("fine", "good", [a]))
    custom.create_namespaced_custom_object(
        GROUP, VERSION, src, PLURAL, rule("broken", "good", ["Not_A_Name!"])
    )

    result = cfgsync("apply", "--source-namespace", src, kubeconfig=control_plane.kubeconfig)

    assert result.returncode == 1
    assert f"SyncRule {src}/broken" in result.stderr
    assert cm_data(core, a, "good") == {"k": "v"}
