"""Writing a rendered tree: atomic, removes stale files, leaves unchanged files alone, keeps user files."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfgsync import errors
from cfgsync._adapters import tree


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
        for p in root.rglob("*")
        if p.is_file()
    }


def test_first_write_then_unchanged_rewrite_touches_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = [("a/configmap-x.yaml", "x: 1\n"), ("b/secret-y.yaml", "y: 2\n")]
    first = tree.write_tree(out, files)
    assert (first.written, first.unchanged, first.removed) == (2, 0, 0)
    before = snapshot(out)
    assert set(before) == {".cfgsync", "a/configmap-x.yaml", "b/secret-y.yaml"}
    again = tree.write_tree(out, files)
    assert (again.written, again.unchanged, again.removed) == (0, 2, 0)
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging left behind


def test_changed_and_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    tree.write_tree(out, [("a/configmap-x.yaml", "x: 1\n"), ("b/secret-y.yaml", "y: 2\n")])
    kept = snapshot(out)["a/configmap-x.yaml"]
    result = tree.write_tree(out, [("a/configmap-x.yaml", "x: 1\n"), ("c/configmap-z.yaml", "z: 3\n")])
    assert (result.written, result.unchanged, result.removed) == (1, 1, 1)
    after = snapshot(out)
    assert set(after) == {".cfgsync", "a/configmap-x.yaml", "c/configmap-z.yaml"}
    assert after["a/configmap-x.yaml"][1:] == kept[1:]  # same mtime and inode


def test_failure_while_staging_leaves_the_directory_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "out"
    tree.write_tree(out, [("a/configmap-x.yaml", "x: 1\n")])
    before = snapshot(out)

    def files() -> object:
        yield ("a/configmap-x.yaml", "x: 2\n")
        raise errors.PluginError("a plugin failed half-way")

    with pytest.raises(errors.PluginError):
        tree.write_tree(out, files())  # type: ignore[arg-type]
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_directory_with_foreign_files_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("precious")
    with pytest.raises(errors.CfgsyncError, match="holds files cfgsync did not write"):
        tree.write_tree(out, [("a/configmap-x.yaml", "x\n")])
    assert (out / "mine.txt").read_text() == "precious"
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]


def test_copy_path_layout() -> None:
    assert tree.copy_path("team-a", "ConfigMap", "ca") == "team-a/configmap-ca.yaml"


def test_a_failed_first_render_leaves_no_directory_behind(tmp_path: Path) -> None:
    def files() -> object:
        yield ("a/configmap-x.yaml", "x: 2\n")
        raise errors.PluginError("a plugin failed half-way")

    with pytest.raises(errors.PluginError):
        tree.write_tree(tmp_path / "out", files())  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
