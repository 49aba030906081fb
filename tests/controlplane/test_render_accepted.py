"""What ``cfgsync render`` prints for each example under ``examples/`` is valid Kubernetes: a real API
server accepts every object, and an object applied for real reads back with the same content.

Each example directory is a self-contained set of manifests (its own namespaces and sources), so each
is rendered on its own, the way its README tells a user to.
"""

from __future__ import annotations

import base64
import contextlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, dynamic
from kubernetes.dynamic import exceptions

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
FIELD_MANAGER = "cfgsync"

new_dynamic_client: Callable[[Any], Any] = dynamic.DynamicClient  # the dynamic client carries no annotations


def example_sets() -> list[str]:
    """Every example directory, relative to the repository (``examples/basic``, ...)."""
    return sorted(str(path.relative_to(REPO)) for path in EXAMPLES.iterdir() if path.is_dir())


def render(example: str) -> list[dict[str, Any]]:
    """Run ``cfgsync render <example>`` as a user would and split its YAML stream into objects."""
    result = subprocess.run(
        [sys.executable, "-m", "cfgsync", "render", example],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def content(obj: dict[str, Any]) -> dict[str, Any]:
    """What a copy is made of, in the server's representation (``stringData`` folded into ``data``)."""
    meta = obj["metadata"]
    data = dict(obj.get("data") or {})
    data.update({k: base64.b64encode(v.encode()).decode() for k, v in (obj.get("stringData") or {}).items()})
    found = {
        "kind": obj["kind"],
        "namespace": meta["namespace"],
        "name": meta["name"],
        "labels": meta.get("labels") or {},
        "annotations": meta.get("annotations") or {},
        "data": data,
        "binaryData": obj.get("binaryData") or {},
        "immutable": obj.get("immutable", False),
    }
    if obj["kind"] == "Secret":
        found["type"] = obj.get("type") or "Opaque"
    return found


def test_there_are_examples_to_render() -> None:
    assert example_sets(), f"no example directory under {EXAMPLES}"


@pytest.mark.parametrize("example", example_sets())
def test_every_rendered_manifest_is_accepted_and_reads_back_the_same(kube_api: Any, example: str) -> None:
    docs = render(example)
    assert docs, f"cfgsync render {example} printed no object"
    api = new_dynamic_client(kube_api)
    core = client.CoreV1Api(kube_api)
    for name in sorted({doc["metadata"]["namespace"] for doc in docs}):
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        except client.ApiException as exc:
            if exc.status != 409:  # already there from an earlier test is fine
                raise

    def apply(doc: dict[str, Any], **options: str) -> dict[str, Any]:
        resource = api.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        applied: dict[str, Any] = api.server_side_apply(
            resource, body=doc, field_manager=FIELD_MANAGER, **options
        ).to_dict()
        return applied

    def read(doc: dict[str, Any]) -> dict[str, Any]:
        resource = api.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        found: dict[str, Any] = api.get(
            resource, name=doc["metadata"]["name"], namespace=doc["metadata"]["namespace"]
        ).to_dict()
        return found

    dry_runs = [apply(doc, dry_run="All") for doc in docs]
    persisted_by_dry_run = []
    for doc in docs:
        with contextlib.suppress(exceptions.NotFoundError):
            persisted_by_dry_run.append(read(doc))
    try:
        for doc in docs:
            apply(doc)
        read_back = [read(doc) for doc in docs]
    finally:  # the next example may render objects of the same names
        for doc in docs:
            resource = api.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            with contextlib.suppress(exceptions.NotFoundError):
                api.delete(resource, name=doc["metadata"]["name"], namespace=doc["metadata"]["namespace"])

    expected = [content(doc) for doc in docs]
    assert [content(obj) for obj in dry_runs] == expected
    assert persisted_by_dry_run == []  # dryRun=All was honoured: nothing was stored
    assert [content(obj) for obj in read_back] == expected
    assert {obj["kind"] for obj in read_back} <= {"ConfigMap", "Secret"}  # cfgsync copies nothing else
