"""``cfgsync krm``: a ResourceList in on stdin, the same list plus the copies out on stdout."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import tool_env

ID = "config.k8s.io/id"
INTERNAL_INDEX = "internal.config.kubernetes.io/index"


def resource_list(
    items: list[dict[str, Any]], function_config: dict[str, Any] | None = None, version: str = "v1"
) -> str:
    body: dict[str, Any] = {
        "apiVersion": f"config.kubernetes.io/{version}",
        "kind": "ResourceList",
        "items": items,
    }
    if function_config is not None:
        body["functionConfig"] = function_config
    return yaml.safe_dump(body, sort_keys=False)


def run_krm(text: str, tmp_path: Path) -> tuple[int, dict[str, Any] | None, str]:
    result = subprocess.run(
        ["cfgsync", "krm"],
        input=text,
        env=tool_env(tmp_path, {"CFGSYNC_PLUGINS": ""}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, yaml.safe_load(result.stdout) if result.stdout else None, result.stderr


def namespace(name: str, labels: dict[str, str] | None = None, index: int = 0) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "annotations": {ID: str(index + 1), INTERNAL_INDEX: str(index)}}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


SOURCE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "ca",
        "namespace": "platform",
        "annotations": {
            "kubed.appscode.com/sync": "env=prod",
            ID: "9",
            "internal.config.kubernetes.io/path": "base/ca.yaml",
            "config.kubernetes.io/path": "base/ca.yaml",
            "kustomize.config.k8s.io/id": "kind: ConfigMap\nname: ca\n",
        },
    },
    "data": {"ca.crt": "line one\nline two\n", "version": "1.10"},
}
ITEMS = [namespace("platform"), namespace("web", {"env": "prod"}, 1), namespace("dev", index=2), SOURCE]


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_items_come_back_unchanged_with_the_copies_added(tmp_path: Path, version: str) -> None:
    code, out, stderr = run_krm(resource_list(ITEMS, version=version), tmp_path)

    assert code == 0, stderr
    assert out is not None
    assert out["apiVersion"] == f"config.kubernetes.io/{version}"
    assert out["items"][: len(ITEMS)] == ITEMS  # bookkeeping annotations and values as they were
    (copy,) = out["items"][len(ITEMS) :]
    assert (copy["metadata"]["namespace"], copy["metadata"]["name"]) == ("web", "ca")
    assert copy["data"] == SOURCE["data"]
    assert copy["metadata"]["annotations"] == {
        "kubed.appscode.com/origin": (
            '{"kind":"ConfigMap","namespace":"platform","name":"ca","apiVersion":"v1"}'
        ),
        # Its own file for kpt and kustomize; none of the source's bookkeeping (kustomize would
        # otherwise take the copy for the source).
        "config.kubernetes.io/path": "copies/web/configmap-ca.yaml",
        "config.kubernetes.io/index": "0",
        "internal.config.kubernetes.io/path": "copies/web/configmap-ca.yaml",
        "internal.config.kubernetes.io/index": "0",
    }
    assert "results" not in out


def test_function_config_carries_settings_and_extra_rules(tmp_path: Path) -> None:
    plain = {**SOURCE, "metadata": {"name": "flags", "namespace": "platform"}, "data": {"a": "b"}}
    config = {
        "apiVersion": "cfgsync.io/v1alpha1",
        "kind": "SyncSettings",
        "metadata": {"name": "cfgsync"},
        "spec": {
            "clusterName": "east",
            "excludeNamespaces": ["dev"],
            "rules": [
                {
                    "apiVersion": "cfgsync.io/v1alpha1",
                    "kind": "SyncRule",
                    "metadata": {"name": "flags", "namespace": "platform"},
                    "spec": {"source": {"kind": "ConfigMap", "name": "flags"}, "namespaces": ["*"]},
                }
            ],
        },
    }

    code, out, stderr = run_krm(resource_list([*ITEMS[:3], plain], config), tmp_path)

    assert code == 0, stderr
    assert out is not None
    copies = [(i["metadata"]["namespace"], i["metadata"]["labels"]) for i in out["items"][4:]]
    assert [ns for ns, _ in copies] == ["web"]  # dev is excluded, platform is the source's own
    assert copies[0][1]["kubed.appscode.com/origin.cluster"] == "east"


def test_a_configmap_function_config_works_too(tmp_path: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"cluster-name": "west"},
    }

    code, out, stderr = run_krm(resource_list(ITEMS, config), tmp_path)

    assert code == 0, stderr
    assert out is not None
    assert out["items"][-1]["metadata"]["labels"]["kubed.appscode.com/origin.cluster"] == "west"


def test_unknown_settings_are_errors(tmp_path: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"clustername": "x"},
    }

    code, out, stderr = run_krm(resource_list(ITEMS, config), tmp_path)

    assert code == 1
    assert out is None
    assert "unknown setting 'clustername'" in stderr


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("deny-source-types", ["kubernetes.io/tls"]),  # as a list it would be read as one odd type
        ("exclude-namespaces-regex", ["kube"]),  # as a list it would be the regex ['kube']
        ("exclude-namespaces", ["dev"]),
        ("allow-system-namespaces", ["true"]),
        ("require-consent", {"a": 1}),
        ("cluster-name", 5),
    ],
)
def test_a_configmap_function_config_holds_strings_only(tmp_path: Path, key: str, value: object) -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {key: value}}

    code, out, stderr = run_krm(resource_list(ITEMS, config), tmp_path)

    assert code == 1
    assert out is None
    assert f"functionConfig data.{key}: must be a string, got {type(value).__name__}" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("api_version", ["v1", "cfgsync.io/v9"])
def test_a_rule_in_the_function_config_under_another_api_version_is_refused(
    tmp_path: Path, api_version: str
) -> None:
    rule = {"apiVersion": api_version, "kind": "SyncRule", "metadata": {"name": "r"}, "spec": {}}
    config = {
        "apiVersion": "cfgsync.io/v1alpha1",
        "kind": "SyncSettings",
        "metadata": {"name": "s"},
        "spec": {"rules": [rule]},
    }

    code, out, stderr = run_krm(resource_list(ITEMS, config), tmp_path)

    assert code == 1
    assert out is None
    assert "functionConfig spec.rules[0]: must be a cfgsync.io/v1alpha1 SyncRule" in stderr


def test_problems_are_error_results_naming_the_object_and_its_file(tmp_path: Path) -> None:
    broken = {
        **SOURCE,
        "metadata": {
            **SOURCE["metadata"],
            "annotations": {**SOURCE["metadata"]["annotations"], "cfgsync.io/namespace": "x"},
        },
    }

    code, out, stderr = run_krm(resource_list([*ITEMS[:3], broken]), tmp_path)

    assert code == 1
    assert out is not None
    assert out["items"] == [*ITEMS[:3], broken]  # nothing added when the function fails
    (result,) = out["results"]
    assert result["severity"] == "error"
    assert "cfgsync.io/namespace" in result["message"]
    assert result["resourceRef"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "ca",
        "namespace": "platform",
    }
    assert result["file"] == {"path": "base/ca.yaml", "index": 0}
    assert "error:" in stderr


def test_invalid_items_are_error_results(tmp_path: Path) -> None:
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name", "namespace": "platform"}}

    code, out, _ = run_krm(resource_list([*ITEMS, bad]), tmp_path)

    assert code == 1
    assert out is not None
    (result,) = out["results"]
    assert "Bad_Name" in result["message"]
    assert result["message"].startswith("ConfigMap platform/Bad_Name (items[4])")


def test_conflicts_are_warnings_and_the_rest_is_still_added(tmp_path: Path) -> None:
    foreign = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ca", "namespace": "web"},
        "data": {"x": "y"},
    }
    prod2 = namespace("shop", {"env": "prod"}, 3)

    code, out, stderr = run_krm(resource_list([*ITEMS, prod2, foreign]), tmp_path)

    assert code == 0, stderr
    assert out is not None
    (result,) = out["results"]
    assert result["severity"] == "warning"
    assert result["resourceRef"]["namespace"] == "web"
    assert [i["metadata"]["namespace"] for i in out["items"][6:]] == ["shop"]
    assert out["items"][5] == foreign  # left untouched


def test_stdin_that_is_not_a_resource_list_is_refused(tmp_path: Path) -> None:
    code, out, stderr = run_krm("apiVersion: v1\nkind: List\nitems: []\n", tmp_path)

    assert code == 1
    assert out is None
    assert "not a ResourceList" in stderr


MIRRORED: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "app",
        "namespace": "web",
        "labels": {"app": "shop"},
        "annotations": {"reflector.v1.k8s.emberstack.com/reflects": "platform/shared", ID: "7"},
    },
}
SHARED: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "shared",
        "namespace": "platform",
        "annotations": {"reflector.v1.k8s.emberstack.com/reflection-allowed": "true", ID: "8"},
    },
    "data": {"k": "v"},
}


@pytest.mark.parametrize(
    "config",
    [
        None,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"disable-vocabularies": "replicator"},
        },
    ],
    ids=["defaults", "replicator-off"],
)
def test_a_pulled_target_replaces_its_item_in_place(tmp_path: Path, config: dict[str, Any] | None) -> None:
    code, out, stderr = run_krm(resource_list([*ITEMS, SHARED, MIRRORED], config), tmp_path)

    assert code == 0, stderr
    assert out is not None
    apps = [i for i in out["items"] if i["metadata"]["name"] == "app"]
    assert len(apps) == 1  # emitted once: the target, with the data it pulled
    (app,) = apps
    assert app["data"] == {"k": "v"}
    assert app["metadata"]["labels"] == {"app": "shop"}
    assert app["metadata"]["annotations"][ID] == "7"  # kustomize still recognises its item
    assert "cfgsync.io/copied-from" in app["metadata"]["annotations"]


def test_a_pulled_target_with_an_unquoted_integer_annotation_key_is_filled(tmp_path: Path) -> None:
    annotations = {**MIRRORED["metadata"]["annotations"], 9000: "port"}  # written `9000: port`
    target = {**MIRRORED, "metadata": {**MIRRORED["metadata"], "annotations": annotations}}

    code, out, stderr = run_krm(resource_list([*ITEMS, SHARED, target], None), tmp_path)

    assert code == 0, stderr
    assert out is not None
    (app,) = [i for i in out["items"] if i["metadata"]["name"] == "app"]
    assert app["data"] == {"k": "v"}
    assert app["metadata"]["annotations"]["9000"] == "port"


def test_a_switched_off_vocabulary_in_the_function_config(tmp_path: Path) -> None:
    config = {
        "apiVersion": "cfgsync.io/v1alpha1",
        "kind": "SyncSettings",
        "metadata": {"name": "s"},
        "spec": {"disableVocabularies": ["reflector"], "excludeNamespacesRegex": ["^we"]},
    }

    code, out, stderr = run_krm(resource_list([*ITEMS, SHARED, MIRRORED], config), tmp_path)

    assert code == 0, stderr
    assert out is not None
    (app,) = [i for i in out["items"] if i["metadata"]["name"] == "app"]
    assert "data" not in app
    assert not [
        i for i in out["items"] if i["metadata"].get("namespace") == "web" and i["metadata"]["name"] == "ca"
    ]
