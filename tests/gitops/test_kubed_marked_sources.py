"""A source kubed marked with origin labels pointing at itself is a source in every offline mode.

``render``, ``explain``, the KRM function and the ArgoCD plugin read manifests exported from a cluster
that kubed synced (and restarted in): each must copy the marked source, never take it for a copy.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import documents, tool_env

CLUSTER = "unicorn"
MARKS = {
    "kubed.appscode.com/origin.name": "omni",
    "kubed.appscode.com/origin.namespace": "demo",
    "kubed.appscode.com/origin.cluster": CLUSTER,
}
SOURCE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "omni",
        "namespace": "demo",
        "labels": {"app": "omni", **MARKS},
        "annotations": {
            "kubed.appscode.com/sync": "app=kubed",
            "kubed.appscode.com/origin": '{"kind":"ConfigMap","namespace":"demo","name":"omni"}',
        },
    },
    "data": {"you": "only"},
}
NAMESPACES = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"app": "kubed"}}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b", "labels": {"app": "kubed"}}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}},
]
COPIED_TO = {"team-a", "team-b"}


def run(args: list[str], tmp_path: Path, *, cwd: Path | None = None, **kwargs: Any) -> Any:
    return subprocess.run(
        ["cfgsync", *args],
        cwd=cwd or tmp_path,
        env=tool_env(tmp_path, {"CFGSYNC_PLUGINS": "", **kwargs.pop("env", {})}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        **kwargs,
    )


def copies_of(objects: list[dict[str, Any]]) -> set[str]:
    return {
        o["metadata"]["namespace"]
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["namespace"] != "demo"
    }


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "cluster.yaml").write_text(yaml.safe_dump_all([*NAMESPACES, SOURCE], sort_keys=False))
    return app


def test_render_copies_a_marked_source(manifests: Path, tmp_path: Path) -> None:
    result = run(["render", str(manifests), "--cluster-name", CLUSTER], tmp_path)

    assert result.returncode == 0, result.stderr
    assert copies_of(documents(result.stdout)) == COPIED_TO


def test_explain_calls_a_marked_object_a_source(manifests: Path, tmp_path: Path) -> None:
    result = run(["explain", str(manifests), "--namespace", "team-a", "--cluster-name", CLUSTER], tmp_path)

    assert result.returncode == 0, result.stderr
    assert "its origin labels point at itself" in result.stdout


def test_the_krm_function_copies_a_marked_source(tmp_path: Path) -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}
    config["data"] = {"cluster-name": CLUSTER}
    body = {
        "apiVersion": "config.kubernetes.io/v1",
        "kind": "ResourceList",
        "items": [*NAMESPACES, SOURCE],
        "functionConfig": config,
    }

    result = run(["krm"], tmp_path, input=yaml.safe_dump(body))

    assert result.returncode == 0, result.stderr
    assert copies_of(yaml.safe_load(result.stdout)["items"]) == COPIED_TO


def test_the_argocd_plugin_copies_a_marked_source(manifests: Path, tmp_path: Path) -> None:
    env = {
        "ARGOCD_APP_NAME": "shared-config",
        "ARGOCD_APP_NAMESPACE": "demo",
        "ARGOCD_APP_PARAMETERS": json.dumps([{"name": "cluster-name", "string": CLUSTER}]),
    }

    result = run(["argocd", "generate"], tmp_path, cwd=manifests, env=env)

    assert result.returncode == 0, result.stderr
    assert copies_of(documents(result.stdout)) == COPIED_TO
