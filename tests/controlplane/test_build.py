"""The build recipe: pins read from go.mod, cache entries keyed by them, a clear error without Go."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from controlplane import GoNotFoundError, build, ensure_binaries, pinned_versions

TESTS_DIR = Path(__file__).resolve().parents[1]


def test_pins_come_from_the_go_modules() -> None:
    versions = pinned_versions()

    assert re.fullmatch(r"v1\.(3[4-9]|[4-9]\d)\.\d+", versions["kube-apiserver"])
    assert re.fullmatch(r"v3\.[5-9]\.\d+", versions["etcd"])


def test_every_staging_module_is_replaced_at_the_matching_release() -> None:
    gomod = (build.GO_DIR / "kube-apiserver" / "go.mod").read_text(encoding="utf-8")
    staging = "v0." + pinned_versions()["kube-apiserver"].removeprefix("v1.")

    replaced = dict(re.findall(r"^\s*(k8s\.io/[\w-]+) => \1 (v\S+)$", gomod, re.MULTILINE))
    required = set(re.findall(r"^\s*(k8s\.io/[\w-]+) v0\.\d+\.\d+(?:\s|$)", gomod, re.MULTILINE))

    assert len(replaced) >= 30
    assert "k8s.io/apiserver" in required
    assert set(replaced.values()) == {staging}
    assert required <= set(replaced)  # no staging module resolved outside the replace block


def test_cache_entry_is_named_after_the_pins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CFGSYNC_CONTROLPLANE_CACHE", str(tmp_path))
    versions = pinned_versions()

    entry = build.cache_dir()

    assert entry.parent == tmp_path
    assert entry.name.startswith(f"k8s-{versions['kube-apiserver']}_etcd-{versions['etcd']}_")
    assert build.cache_dir() == entry  # stable: an unchanged tree reuses its build


def test_without_go_or_cache_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CFGSYNC_CONTROLPLANE_CACHE", str(tmp_path))
    monkeypatch.setattr(build, "find_go", lambda: None)

    with pytest.raises(GoNotFoundError, match=r"install Go >= 1\.26"):
        ensure_binaries(progress=lambda _: None)


def test_without_go_the_e2e_tests_are_skipped_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from controlplane import build\nbuild.find_go = lambda: None  # a machine without Go\n",
        encoding="utf-8",
    )
    (tmp_path / "test_needs_cluster.py").write_text(
        "def test_needs_cluster(kube_api):\n    raise AssertionError('must not run')\n", encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR), "CFGSYNC_CONTROLPLANE_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "pytest", "-p", "controlplane.fixtures", "-p", "no:cacheprovider",
               "-rs", "--rootdir", str(tmp_path), "-c", os.devnull, "test_needs_cluster.py"]  # fmt: skip

    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=60
    )

    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "no control plane: cannot build the test control plane: no `go` on PATH" in result.stdout
