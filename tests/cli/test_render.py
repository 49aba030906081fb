"""``cfgsync render`` and ``cfgsync explain`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

import cfgsync
from cfgsync.testing import assert_golden

GOLDEN = Path(__file__).parent / "golden"
Run = Callable[..., subprocess.CompletedProcess[str]]


def test_render_examples_matches_golden_file(cfgsync_cli: Run) -> None:
    result = cfgsync_cli("render", "examples/basic")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert_golden(result.stdout, GOLDEN / "basic.yaml")


def test_render_is_byte_identical_whatever_the_path_order(cfgsync_cli: Run, repo: Path) -> None:
    files = sorted(str(p.relative_to(repo)) for p in (repo / "examples/basic").glob("*.yaml"))
    forward = cfgsync_cli("render", *files)
    backward = cfgsync_cli("render", *reversed(files))
    assert forward.returncode == backward.returncode == 0
    assert forward.stdout == backward.stdout
    assert forward.stdout == (GOLDEN / "basic.yaml").read_text()


def test_render_from_stdin(cfgsync_cli: Run, repo: Path) -> None:
    text = "\n---\n".join(p.read_text() for p in sorted((repo / "examples/basic").glob("*.yaml")))
    result = cfgsync_cli("render", "-", stdin=text)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (GOLDEN / "basic.yaml").read_text()


def test_render_json_is_a_list_of_the_same_objects(cfgsync_cli: Run) -> None:
    as_yaml = list(yaml.safe_load_all(cfgsync_cli("render", "examples/basic").stdout))
    as_json = json.loads(cfgsync_cli("render", "--format", "json", "examples/basic").stdout)
    assert as_json["kind"] == "List"
    assert as_json["items"] == as_yaml


def test_render_into_a_directory(cfgsync_cli: Run, tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    result = cfgsync_cli("render", "examples/basic", "-o", str(out), "--allow-secrets")
    assert result.returncode == 0, result.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert "team-a/secret-registry-pull.yaml" in files
    assert "legacy/configmap-trusted-ca.yaml" in files
    joined = [yaml.safe_load(p.read_text()) for p in sorted(out.rglob("*.yaml"))]
    streamed = list(yaml.safe_load_all(cfgsync_cli("render", "examples/basic").stdout))
    assert sorted(map(json.dumps, joined)) == sorted(map(json.dumps, streamed))


def test_bad_input_fails_with_file_and_line_and_writes_nothing(cfgsync_cli: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: demo\n"
        "  annotations:\n    kubed.appscode.com/sync: 'env in (a'\n"
    )
    out = tmp_path / "out"
    result = cfgsync_cli("render", str(bad), "-o", str(out))
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"ConfigMap demo/x ({bad}:1)" in result.stderr
    assert "kubed.appscode.com/sync" in result.stderr
    assert not out.exists()


def test_malformed_yaml_exit_code_and_message(cfgsync_cli: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: ConfigMap\nmetadata: {name: x\n")
    result = cfgsync_cli("render", str(bad))
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {bad}:3:")
    assert "malformed YAML" in result.stderr


def test_conflict_is_a_warning_and_strict_makes_it_fatal(cfgsync_cli: Run, tmp_path: Path) -> None:
    clash = tmp_path / "clash.yaml"
    clash.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: omni\n  namespace: team-b\ndata: {mine: 'yes'}\n"
    )
    relaxed = cfgsync_cli("render", "examples/basic", str(clash))
    assert relaxed.returncode == 0
    assert (
        "warning: conflict: copy of ConfigMap demo/omni not written: an unmanaged ConfigMap" in relaxed.stderr
    )
    docs = list(yaml.safe_load_all(relaxed.stdout))
    assert not any(d["metadata"]["namespace"] == "team-b" and d["metadata"]["name"] == "omni" for d in docs)
    strict = cfgsync_cli("render", "--strict", "examples/basic", str(clash))
    assert strict.returncode == 3
    assert strict.stdout == ""


def test_secret_data_never_reaches_stderr(cfgsync_cli: Run) -> None:
    result = cfgsync_cli("render", "examples/basic")
    assert "ZXhhbXBsZ" not in result.stderr
    assert "eyJhdXRocy" not in result.stderr


def test_explain(cfgsync_cli: Run) -> None:
    result = cfgsync_cli("explain", "examples/basic", "--namespace", "team-b")
    assert result.returncode == 0, result.stderr
    assert (
        "Secret demo/registry-pull does not land in team-b (annotation kubed.appscode.com/sync)\n"
        "  no: app=kubed (label app is absent)\n" in result.stdout
    )
    assert "ConfigMap demo/omni lands in team-b" in result.stdout
    assert "  no: name matches the exclusion team-b" in result.stdout


def test_explain_unknown_namespace(cfgsync_cli: Run) -> None:
    result = cfgsync_cli("explain", "examples/basic", "-n", "nowhere")
    assert result.returncode == 1
    assert "namespace 'nowhere' is not in the input" in result.stderr


def test_version(cfgsync_cli: Run) -> None:
    result = cfgsync_cli("--version")
    assert result.stdout.strip() == f"cfgsync, version {cfgsync.__version__}"
