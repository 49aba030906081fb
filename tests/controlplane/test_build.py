"""The build recipe: pins read from go.mod, cache entries keyed by them, a clear error without Go."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from controlplane import GoNotFoundError, build, ensure_binaries, pinned_versions


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
