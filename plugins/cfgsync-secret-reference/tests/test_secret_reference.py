"""The example plugin, loaded the way cfgsync loads every plugin: through its entry point."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import cfgsync
from cfgsync.testing import assert_golden, config_map, namespace, plan, secret

HERE = Path(__file__).parent
REPO = HERE.parents[2]
VALUE = base64.b64encode(b"never-in-git").decode()
SPACES = [namespace("vault"), namespace("web")]


def hooks() -> cfgsync.PluginHooks:
    return cfgsync.load_plugin_hooks(only={"secret-reference"})


def test_found_through_the_entry_point() -> None:
    assert "secret-reference" in hooks().names


def test_a_secret_copy_becomes_an_external_secret_reading_the_source() -> None:
    source = secret(
        "vault",
        "db",
        {"password": VALUE},
        type="kubernetes.io/basic-auth",
        labels={"team": "data"},
        annotations={"kubed.appscode.com/sync": ""},
    )
    (copy,) = plan([source], SPACES).copies

    reference = hooks().tree_object(copy, source=source)

    assert reference is not None
    assert reference["kind"] == "ExternalSecret"
    assert reference["metadata"] == {
        "name": "db",
        "namespace": "web",
        "labels": dict(copy.labels),
        "annotations": dict(copy.annotations),
    }
    spec = reference["spec"]
    assert isinstance(spec, dict)
    assert spec["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "cfgsync-vault"}
    assert spec["target"]["template"]["type"] == "kubernetes.io/basic-auth"
    assert spec["data"] == [{"secretKey": "password", "remoteRef": {"key": "db", "property": "password"}}]
    assert VALUE not in repr(reference)


def test_renamed_keys_refer_to_the_source_key_and_the_store_can_be_named() -> None:
    source = secret(
        "vault",
        "tls",
        {"tls.crt": "Y2VydA==", "tls.key": "a2V5"},
        annotations={
            "kubed.appscode.com/sync": "",
            "cfgsync.io/rename-keys": "tls.crt=cert.pem",
            "secret-reference.cfgsync.io/store": "shared-store",
        },
    )
    (copy,) = plan([source], SPACES).copies

    reference = hooks().tree_object(copy, source=source)

    assert reference is not None
    spec = reference["spec"]
    assert isinstance(spec, dict)
    assert spec["secretStoreRef"]["name"] == "shared-store"
    assert spec["data"] == [
        {"secretKey": "cert.pem", "remoteRef": {"key": "tls", "property": "tls.crt"}},
        {"secretKey": "tls.key", "remoteRef": {"key": "tls", "property": "tls.key"}},
    ]


def test_configmap_copies_are_left_alone() -> None:
    source = config_map("vault", "settings", {"a": "b"}, annotations={"kubed.appscode.com/sync": ""})
    (copy,) = plan([source], SPACES).copies

    assert hooks().tree_object(copy, source=source) is None


def test_render_into_a_directory_writes_references_instead_of_secrets(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    env = {**os.environ, "CFGSYNC_PLUGINS": "secret-reference"}
    result = subprocess.run(  # the test runs the real command line, as a user does
        [sys.executable, "-m", "cfgsync", "render", "examples/basic", "-o", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert "team-a/externalsecret-registry-pull.yaml" in files
    assert not [f for f in files if "/secret-" in f]
    assert_golden(
        (out / "team-a/externalsecret-registry-pull.yaml").read_text(), HERE / "golden/registry-pull.yaml"
    )
    written = "".join(p.read_text() for p in out.rglob("*.yaml"))
    dockerconfig = b'{"auths":{"registry.example.internal":{"auth":"ZXhhbXBsZTpleGFtcGxl"}}}'
    assert base64.b64encode(dockerconfig).decode() not in written  # the Secret's value is in no file
    assert "kind: Secret\n" not in written
