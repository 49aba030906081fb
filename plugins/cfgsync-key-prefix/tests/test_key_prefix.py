"""The example plugin, loaded the way cfgsync loads every plugin: through its entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cfgsync
from cfgsync.testing import config_map, namespace

SOURCE = config_map(
    "platform",
    "ca",
    {"ca.crt": "C", "notes": "N"},
    annotations={"kubed.appscode.com/sync": "", "key-prefix.cfgsync.io/prefix": "app-"},
)
SPACES = [
    namespace("platform"),
    namespace("web"),
    namespace("quiet", {"key-prefix.cfgsync.io/opt-out": "true"}),
]


def test_found_through_the_entry_point() -> None:
    hooks = cfgsync.load_plugin_hooks(only={"key-prefix"})
    assert hooks.names == ("builtin", "key-prefix")


def test_prefixes_keys_after_builtin_filtering_and_drops_its_annotation() -> None:
    source = config_map(
        "platform",
        "ca",
        dict(SOURCE.data),
        annotations={**SOURCE.annotations, "cfgsync.io/exclude-keys": "notes"},
    )
    plan = cfgsync.plan_copies([source], SPACES, plugins=cfgsync.load_plugin_hooks(only={"key-prefix"}))
    (copy,) = plan.copies
    assert str(copy.ref) == "ConfigMap web/ca"
    assert dict(copy.data) == {"app-ca.crt": "C"}
    assert "key-prefix.cfgsync.io/prefix" not in copy.annotations


def test_opted_out_namespace_is_vetoed_with_the_plugin_name() -> None:
    plan = cfgsync.plan_copies([SOURCE], SPACES, plugins=cfgsync.load_plugin_hooks(only={"key-prefix"}))
    (veto,) = plan.vetoes
    assert (veto.plugin, veto.ref.namespace) == ("key-prefix", "quiet")
    assert "opted out" in veto.reason


def test_not_loaded_when_left_out() -> None:
    plan = cfgsync.plan_copies([SOURCE], SPACES, plugins=cfgsync.load_plugin_hooks(only=set()))
    assert {c.ref.namespace for c in plan.copies} == {"web", "quiet"}
    assert dict(plan.copies[0].data) == {"ca.crt": "C", "notes": "N"}


def test_used_by_the_render_command(tmp_path: Path) -> None:
    manifest = tmp_path / "in.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ca\n  namespace: platform\n  annotations:\n"
        "    kubed.appscode.com/sync: ''\n    key-prefix.cfgsync.io/prefix: app-\ndata:\n  ca.crt: C\n"
        "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "cfgsync", "render", str(manifest)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"CFGSYNC_PLUGINS": "key-prefix", "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    assert "  app-ca.crt: C\n" in result.stdout
