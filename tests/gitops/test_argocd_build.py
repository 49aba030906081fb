"""The Argo CD build recipe: its pins, a cache entry keyed by them and the sources, a skip without Go."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gotools

from .argocd_cmp import ARGOCD, GO_MODULE

TESTS_DIR = Path(__file__).resolve().parents[1]


def test_the_pin_is_a_release_whose_gitops_engine_resolves() -> None:
    gomod = (GO_MODULE / "go.mod").read_text(encoding="utf-8")

    # v3.0 to v3.2 depend on github.com/argoproj/gitops-engine; later releases on a module path that
    # the Go module proxy does not serve (docs/development.md).
    assert re.fullmatch(r"v3\.[0-2]\.\d+", ARGOCD.version)
    assert re.search(r"^\s*github\.com/argoproj/gitops-engine v\S+$", gomod, re.MULTILINE)
    assert f"-X=github.com/argoproj/argo-cd/v3/common.version={ARGOCD.version[1:]}" in ARGOCD.ldflags


def test_every_staging_module_is_replaced_at_the_kubernetes_release_argo_cd_uses() -> None:
    gomod = (GO_MODULE / "go.mod").read_text(encoding="utf-8")
    kubernetes = re.search(r"^\s*k8s\.io/kubernetes v1\.(\d+)\.\d+ // indirect$", gomod, re.MULTILINE)

    replaced = dict(re.findall(r"^\s*(k8s\.io/[\w-]+) => \1 (v\S+)$", gomod, re.MULTILINE))
    required = set(re.findall(r"^\s*(k8s\.io/[\w-]+) v0\.\d+\.\d+(?:\s|$)", gomod, re.MULTILINE))

    assert kubernetes is not None
    assert len(replaced) >= 30
    assert set(replaced.values()) == {f"v0.{kubernetes.group(1)}.0"}
    assert {"k8s.io/api", "k8s.io/client-go"} <= required <= set(replaced)


def test_cache_entry_is_named_after_the_pin_and_follows_the_sources(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CFGSYNC_TOOLS_CACHE", str(tmp_path / "cache"))
    edited = tmp_path / "argocd"
    shutil.copytree(GO_MODULE, edited)
    main = edited / "cmd" / "cmp-client" / "main.go"
    main.write_text(main.read_text(encoding="utf-8") + "\n// changed\n", encoding="utf-8")

    entry = ARGOCD.entry

    assert entry.parent == tmp_path / "cache"
    assert entry.name.startswith(f"argocd-{ARGOCD.version}_")
    assert ARGOCD.entry == entry  # stable: an unchanged module reuses its build
    assert dataclasses.replace(ARGOCD, directory=edited).entry != entry
    assert dataclasses.replace(ARGOCD, ldflags=()).entry != entry
    assert ARGOCD.programs == ("argocd-cmp-server", "cmp-client")


def test_without_go_or_cache_the_error_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CFGSYNC_TOOLS_CACHE", str(tmp_path))
    monkeypatch.setattr(gotools, "find_go", lambda: None)

    with pytest.raises(gotools.NoGoError, match=r"argocd v3\.\d+\.\d+ is not cached in .* no Go toolchain"):
        gotools.ensure_module(ARGOCD, progress=lambda _: None)


def test_without_go_the_argocd_tests_are_skipped_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "import gotools\ngotools.find_go = lambda: None  # a machine without Go\n", encoding="utf-8"
    )
    (tmp_path / "test_needs_argocd.py").write_text(
        "def test_needs_argocd(cmp_server):\n    raise AssertionError('must not run')\n", encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR), "CFGSYNC_TOOLS_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "pytest", "-p", "gitops.argocd_fixtures", "-p", "no:cacheprovider",
               "-rs", "--rootdir", str(tmp_path), "-c", os.devnull, "test_needs_argocd.py"]  # fmt: skip

    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=60
    )

    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "is not cached in" in result.stdout
    assert "there is no Go toolchain" in result.stdout
