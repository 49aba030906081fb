"""The SyncRule CRD on a real API server: documented SyncRules are accepted, malformed ones refused."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from cfgsync._core import syncrule
from deploy import kube
from deploy.chart import CHART

pytestmark = pytest.mark.timeout(120)

CRD = CHART / "crds" / "syncrules.cfgsync.io.yaml"
RULES_DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
GROUP, VERSION, PLURAL = "cfgsync.io", "v1alpha1", "syncrules"


@pytest.fixture(scope="module")
def crd(kube_api: Any) -> None:
    """The chart's CRD, installed (server-side apply) and established."""
    doc = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    kube.server_side_apply(kube_api, doc)
    kube.wait_established(kube_api, doc["metadata"]["name"])


def documented_syncrule() -> dict[str, Any]:
    """The SyncRule example of docs/rules.md."""
    section = RULES_DOC.read_text(encoding="utf-8").split("## SyncRule", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None, "docs/rules.md has no SyncRule example"
    document: dict[str, Any] = yaml.safe_load(block.group(1))
    return document


def create(kube_api: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create a SyncRule, refusing unknown fields as `kubectl create --validate=strict` does."""
    custom: Any = client.CustomObjectsApi(kube_api)
    created: dict[str, Any] = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body, field_validation="Strict"
    )
    return created


@pytest.mark.usefixtures("crd")
def test_documented_syncrule_is_stored_as_written_and_cfgsync_accepts_it(
    kube_api: Any, namespace: str
) -> None:
    body = documented_syncrule()
    body["metadata"]["namespace"] = namespace

    create(kube_api, namespace, body)
    custom: Any = client.CustomObjectsApi(kube_api)
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body["metadata"]["name"])

    assert stored["spec"] == body["spec"]  # nothing pruned
    rule = syncrule.rule_from_document(stored)
    assert rule.source.namespace == namespace
    assert rule.copy_name == body["spec"]["copyName"]
    assert rule.strip_metadata == tuple(body["spec"]["stripMetadata"])


@pytest.mark.usefixtures("crd")
def test_selector_may_be_a_string(kube_api: Any, namespace: str) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SyncRule",
        "metadata": {"name": "by-label", "namespace": namespace},
        "spec": {"source": {"kind": "Secret", "name": "registry"}, "namespaceSelector": "env in (prod,qa)"},
    }

    stored = create(kube_api, namespace, body)

    assert stored["spec"]["namespaceSelector"] == "env in (prod,qa)"
    assert syncrule.rule_from_document(stored).source.kind == "Secret"


def _minimal(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SyncRule",
        "metadata": {"name": "broken", "namespace": namespace},
        "spec": {"source": {"kind": "ConfigMap", "name": "settings"}, "namespaces": ["*"]},
    }


@pytest.mark.parametrize(
    "case",
    [
        (("spec", "source", "kind"), "Pod", 422, 'spec.source.kind: Unsupported value: "Pod"'),
        (("spec", "namespaces"), [], 422, "spec.namespaces"),
        (("spec", "namespaces"), None, 422, "spec.namespaces: Required value"),
        (("spec", "keys", "rename"), {"a": 3}, 422, "spec.keys.rename.a"),
        (("spec", "copyNames"), "typo", 400, 'unknown field "spec.copyNames"'),
    ],
    ids=["kind-not-copyable", "no-namespaces", "no-target", "rename-not-a-string", "unknown-field"],
)
@pytest.mark.usefixtures("crd")
def test_malformed_syncrules_are_refused_with_the_field_named(
    kube_api: Any, namespace: str, case: tuple[tuple[str, ...], object, int, str]
) -> None:
    path, value, status, message = case
    body = _minimal(namespace)
    parent = body
    for key in path[:-1]:
        parent = parent.setdefault(key, {})
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(value)

    with pytest.raises(client.ApiException) as refused:
        create(kube_api, namespace, body)

    assert refused.value.status == status
    assert message in json.loads(refused.value.body or "{}")["message"]
