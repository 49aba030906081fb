"""``cfgsync krm``: items come back as the text they came as, and SyncRule errors name the rule and field."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import tool_env

HEADER = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n"
NAMESPACES = """\
- apiVersion: v1
  kind: Namespace
  metadata: {name: platform}
- apiVersion: v1
  kind: Namespace
  metadata: {name: web, labels: {env: prod}}
"""
SOURCE = """\
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: ca
    namespace: platform
    annotations: {kubed.appscode.com/sync: "env=prod"}
  data: {ca.crt: "x"}
"""


def krm(text: str, tmp_path: Path) -> tuple[int, str, str]:
    done = subprocess.run(
        ["cfgsync", "krm"],
        input=text,
        env=tool_env(tmp_path, {"CFGSYNC_PLUGINS": ""}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def test_items_go_out_as_the_text_they_came_as(tmp_path: Path) -> None:
    # Items indented under `items:` (dash at column 2), a comment, quoting, a keep-chomped block.
    deployment = """\
- apiVersion: apps/v1   # pinned
  kind: Deployment
  metadata:
    name: app
    namespace: web
    annotations:
      quoted: 'single'   # kept as written
      octal: 0755
      kept: |+
        trailing blank lines are the value's

  spec: {replicas: 2}
"""
    indented = "".join(
        f"  {line}" if line.strip() else line for line in (NAMESPACES + SOURCE + deployment).splitlines(True)
    )
    text = HEADER + "items:\n" + indented

    code, out, err = krm(text, tmp_path)

    assert code == 0, err
    assert "- apiVersion: apps/v1   # pinned\n" in out
    assert "      quoted: 'single'   # kept as written\n      octal: 0755\n" in out
    parsed_in = yaml.safe_load(text)["items"]
    parsed_out = yaml.safe_load(out)["items"]
    assert parsed_out[: len(parsed_in)] == parsed_in  # every value as it was, blank lines of |+ too
    assert parsed_in[-1]["metadata"]["annotations"]["kept"].endswith("value's\n\n")
    assert [i["metadata"]["namespace"] for i in parsed_out[len(parsed_in) :]] == ["web"]


def test_a_json_resource_list_works(tmp_path: Path) -> None:
    body: dict[str, Any] = {
        "apiVersion": "config.kubernetes.io/v1",
        "kind": "ResourceList",
        "items": yaml.safe_load(NAMESPACES + SOURCE),
        "functionConfig": {"apiVersion": "v1", "kind": "ConfigMap", "data": {"cluster-name": "east"}},
    }

    code, out, err = krm(json.dumps(body, indent=1), tmp_path)

    assert code == 0, err
    result = yaml.safe_load(out)
    assert result["items"][:3] == body["items"]
    assert result["functionConfig"] == body["functionConfig"]
    assert result["items"][3]["metadata"]["labels"]["kubed.appscode.com/origin.cluster"] == "east"


def test_an_item_written_as_a_single_pair_in_a_flow_list_stays_a_mapping(tmp_path: Path) -> None:
    items = '[{"kind": "Widget"}, "kind":{"a":"b"}, ? x : y, &a {k: v}, &b k: v, !!map {k: v}]'
    text = HEADER + f"items: {items}\n"

    code, out, err = krm(text, tmp_path)

    assert code == 0, err
    assert yaml.safe_load(out)["items"] == yaml.safe_load(text)["items"]


def test_a_field_after_an_explicit_key_comes_back_whole(tmp_path: Path) -> None:
    text = HEADER + "functionConfig:\n? extra\n: value\n? other\nitems: []\n"

    code, out, err = krm(text, tmp_path)

    assert code == 0, err
    assert yaml.safe_load(out) == yaml.safe_load(text)


@pytest.mark.parametrize(
    "key", ["?\n  extra\n", "?  # the key, below\n\n  # a note\n  extra\n", "? # on its line\n  extra\n"]
)
def test_an_explicit_key_on_a_line_below_its_question_mark_comes_back_with_its_comments(
    tmp_path: Path, key: str
) -> None:
    text = HEADER + f"functionConfig:\n{key}: value\nitems: []\n"

    code, out, err = krm(text, tmp_path)

    assert code == 0, err
    assert yaml.safe_load(out) == yaml.safe_load(text)
    assert out == text  # the text as it came: it was not written again by the emitter


@pytest.mark.parametrize("before", [" ", "--- ", "# a comment\n--- ", "---\n  "])
def test_a_json_resource_list_after_text_on_its_line_comes_back_as_valid_yaml(
    tmp_path: Path, before: str
) -> None:
    body = {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": []}

    code, out, err = krm(before + json.dumps(body), tmp_path)

    assert code == 0, err
    assert yaml.safe_load(out) == body


def test_a_sync_rule_error_names_the_rule_and_the_field(tmp_path: Path) -> None:
    rule = """\
- apiVersion: cfgsync.io/v1alpha1
  kind: SyncRule
  metadata:
    name: ca-rule
    namespace: platform
    annotations: {config.kubernetes.io/path: rules/ca.yaml, config.kubernetes.io/index: "0"}
  spec:
    source: {kind: ConfigMap, name: ca}
    namespaces: ["*"]
    keys: {rename: {ca.crt: "bad key!"}}
"""
    code, out, _ = krm(HEADER + "items:\n" + NAMESPACES + SOURCE + rule, tmp_path)

    assert code == 1
    (result,) = yaml.safe_load(out)["results"]
    assert result["resourceRef"] == {
        "apiVersion": "cfgsync.io/v1alpha1",
        "kind": "SyncRule",
        "name": "ca-rule",
        "namespace": "platform",
    }
    assert result["field"] == {"path": "spec.keys.rename"}
    assert result["file"] == {"path": "rules/ca.yaml", "index": 0}


def test_a_function_config_rule_error_names_the_rule_and_the_field(tmp_path: Path) -> None:
    config = """\
functionConfig:
  apiVersion: cfgsync.io/v1alpha1
  kind: SyncSettings
  metadata: {name: cfgsync}
  spec:
    rules:
    - apiVersion: cfgsync.io/v1alpha1
      kind: SyncRule
      metadata: {name: flags, namespace: platform}
      spec: {source: {kind: ConfigMap, name: ca}, namespaces: ["Not_A_Name"]}
"""
    code, out, _ = krm(HEADER + "items:\n" + NAMESPACES + SOURCE + config, tmp_path)

    assert code == 1
    (result,) = yaml.safe_load(out)["results"]
    assert result["resourceRef"]["kind"] == "SyncRule"
    assert result["resourceRef"]["name"] == "flags"
    assert result["field"] == {"path": "spec.namespaces"}


def test_an_invalid_cluster_name_in_the_function_config_is_an_error(tmp_path: Path) -> None:
    config = "functionConfig: {apiVersion: v1, kind: ConfigMap, data: {cluster-name: 'east/1'}}\n"

    code, _, err = krm(HEADER + "items:\n" + NAMESPACES + SOURCE + config, tmp_path)

    assert code == 1
    assert "functionConfig data.cluster-name 'east/1' is invalid" in err
