"""``cfgsync render -o`` for git, and ``cfgsync diff --against``: as a user and a CI job run them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import cfgsync
from cfgsync import errors
from cfgsync.testing import config_map, namespace, plan, secret

from .helpers import REPO, tool_env

SECRET_B64 = "c2VjcmV0LXZhbHVl"


def cfgsync_run(tmp_path: Path, *args: str, plugins: str = "") -> subprocess.CompletedProcess[str]:
    # CFGSYNC_PLUGINS="" loads no installed plugin: the plain behaviour, whatever is installed.
    return subprocess.run(
        ["cfgsync", *args],
        cwd=REPO,
        env=tool_env(tmp_path, {"CFGSYNC_PLUGINS": plugins}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def test_secret_copies_are_refused_by_default_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    result = cfgsync_run(tmp_path, "render", "examples/basic", "-o", str(out))

    assert result.returncode == 1
    assert not out.exists()
    assert "refusing to write 1 Secret copy in plain form (team-a/registry-pull)" in result.stderr
    assert "--allow-secrets" in result.stderr


def test_stdout_output_is_not_affected(tmp_path: Path) -> None:
    result = cfgsync_run(tmp_path, "render", "examples/basic")

    assert result.returncode == 0, result.stderr
    assert "kind: Secret" in result.stdout


def test_rendered_tree_with_kustomization_and_an_unchanged_rerender_touches_nothing(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    args = ("render", "examples/basic", "-o", str(out), "--allow-secrets", "--kustomization")
    first = cfgsync_run(tmp_path, *args)
    before = snapshot(out)
    again = cfgsync_run(tmp_path, *args)

    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert snapshot(out) == before  # no byte and no mtime changed
    assert "0 written, 9 unchanged, 0 removed" in again.stderr
    listed = (out / "kustomization.yaml").read_text()
    files = sorted(p for p in before if p not in {".cfgsync", "kustomization.yaml"})
    assert listed == (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
        + "".join(f"- {f}\n" for f in files)
    )
    assert files[:2] == [
        "legacy/configmap-omni.yaml",
        "legacy/configmap-trusted-ca.yaml",
    ]  # grouped by namespace


def test_diff_is_quiet_and_zero_when_up_to_date(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    cfgsync_run(tmp_path, "render", "examples/basic", "-o", str(out), "--allow-secrets")

    result = cfgsync_run(tmp_path, "diff", "examples/basic", "--against", str(out), "--allow-secrets")

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_diff_shows_changes_exits_one_and_never_prints_secret_values(tmp_path: Path) -> None:
    source = tmp_path / "input"
    shutil.copytree(REPO / "examples/basic", source)
    out = tmp_path / "rendered"
    cfgsync_run(tmp_path, "render", str(source), "-o", str(out), "--allow-secrets")
    kubed = source / "kubed-sources.yaml"
    kubed.write_text(
        kubed.read_text()
        .replace('live: "once"', 'live: "twice"')
        .replace('"app=kubed,!legacy"', '"env=dev"')
        .replace("ZXhhbXBsZTpleGFtcGxl", SECRET_B64)
    )
    before = snapshot(out)

    result = cfgsync_run(tmp_path, "diff", str(source), "--against", str(out), "--allow-secrets")

    assert result.returncode == 1
    assert snapshot(out) == before  # diff only reads
    assert (
        f"--- {out}/team-a/configmap-omni.yaml\n+++ {out}/team-a/configmap-omni.yaml (rendered)\n"
        in result.stdout
    )
    assert "-  live: once\n+  live: twice\n" in result.stdout
    assert f"removed: {out}/team-a/secret-registry-pull.yaml (a Secret: contents not shown)" in result.stdout
    assert f"added: {out}/team-b/secret-registry-pull.yaml (a Secret: contents not shown)" in result.stdout
    assert SECRET_B64 not in result.stdout + result.stderr
    assert "1 to add, 4 to change, 1 to remove" in result.stderr


def test_diff_quiet_names_files_and_a_missing_tree_is_all_added(tmp_path: Path) -> None:
    result = cfgsync_run(
        tmp_path, "diff", "examples/basic", "--against", str(tmp_path / "none"), "-q", "--allow-secrets"
    )

    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 8
    assert all(line.startswith("added: ") for line in result.stdout.splitlines())


def test_diff_against_a_directory_cfgsync_did_not_write_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/notes.txt").write_text("mine\n")

    result = cfgsync_run(
        tmp_path, "diff", "examples/basic", "--against", str(tmp_path / "mine"), "--allow-secrets"
    )

    assert result.returncode == 2
    assert "no .cfgsync marker" in result.stderr


class _Replacer:
    """A plugin writing a ConfigMap reference in place of every Secret copy."""

    __name__ = "replacer"

    @cfgsync.hookimpl
    def cfgsync_tree_object(self, copy: cfgsync.Copy) -> dict[str, object] | None:
        if copy.ref.kind != "Secret":
            return None
        meta = {"name": f"{copy.ref.name}-ref", "namespace": copy.ref.namespace}
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            "data": {"keys": ",".join(copy.data)},
        }


def test_a_plugin_writes_another_object_instead_of_a_secret_copy(tmp_path: Path) -> None:
    from cfgsync._adapters import tree

    hooks = cfgsync.load_plugin_hooks(only=(), extra=[_Replacer()])
    source = secret("demo", "token", {"token": SECRET_B64}, annotations={"kubed.appscode.com/sync": ""})
    copies = plan([source], [namespace("demo"), namespace("web")]).copies

    files = tree.copy_files(copies, replace=lambda c: hooks.tree_object(c, source=source))

    assert list(files) == [
        (
            "web/configmap-token-ref.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: token-ref\n  namespace: web\n"
            "data:\n  keys: token\n",
        )
    ]


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ({"kind": "ConfigMap", "metadata": {"name": "x"}}, "returned no Kubernetes object"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "other"}}, "moved"),
    ],
)
def test_a_plugin_returning_a_bad_object_is_named(returned: dict[str, object], message: str) -> None:
    class Bad:
        __name__ = "bad"

        @cfgsync.hookimpl
        def cfgsync_tree_object(self) -> dict[str, object]:
            return returned

    hooks = cfgsync.load_plugin_hooks(only=(), extra=[Bad()])
    source = config_map("demo", "cm", {"a": "b"}, annotations={"kubed.appscode.com/sync": ""})
    (copy,) = plan([source], [namespace("demo"), namespace("web")]).copies

    with pytest.raises(errors.PluginError, match=message) as raised:
        hooks.tree_object(copy, source=source)
    assert "'bad'" in str(raised.value)
