"""``render -o DIR`` a repository can trust: crashes, readers, links, mounts, modes, files of others.

Crashes are real: a ``cfgsync render`` process is stopped by SIGKILL or SIGTERM at a chosen step of
the write (the step hook of :mod:`cfgsync._adapters.tree_disk`), and the next run must finish or roll
back what it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cfgsync import errors
from cfgsync._adapters import tree, tree_disk

SOURCES_V1 = """\
apiVersion: v1
kind: Namespace
metadata: {name: web, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {env: prod}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: ca
  namespace: platform
  annotations: {kubed.appscode.com/sync: "env=prod"}
data: {ca.crt: "one"}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: flags
  namespace: platform
  annotations: {kubed.appscode.com/sync: "env=prod"}
data: {debug: "false"}
"""
# v2: ca changed, flags gone, proxy new.
SOURCES_V2 = (
    SOURCES_V1.replace('"one"', '"two"').replace("name: flags", "name: proxy").replace("debug", "url")
)

_CRASHING_RENDER = """
import os, signal, sys
from cfgsync._adapters import tree_disk
step, signame = sys.argv[1], sys.argv[2]
def stop(reached):
    if reached == step:
        os.kill(os.getpid(), getattr(signal, signame))
tree_disk.checkpoint = stop
from cfgsync.cli import main
sys.argv = ["cfgsync", "render", *sys.argv[3:]]
main()
"""


def render(
    source: Path, out: Path, *, stop_at: str | None = None, signame: str = "SIGKILL"
) -> subprocess.CompletedProcess[str]:
    """``cfgsync render SOURCE -o OUT`` in a fresh process, stopped by ``signame`` at step ``stop_at``."""
    args = [str(source), "-o", str(out)]
    env = {**os.environ, "CFGSYNC_PLUGINS": ""}
    command = [sys.executable, "-c", _CRASHING_RENDER, stop_at or "-", signame, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def contents(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (links not followed), journal included."""
    return {rel: (root / rel).read_bytes() for rel in tree_disk.walk_files(root)} | {
        f"{tree_disk.JOURNAL}/{p.relative_to(root / tree_disk.JOURNAL).as_posix()}": p.read_bytes()
        for p in (root / tree_disk.JOURNAL).rglob("*")
        if p.is_file()
    }


def stamps(root: Path) -> dict[str, tuple[int, int]]:
    return {
        rel: ((root / rel).stat().st_ino, (root / rel).stat().st_mtime_ns)
        for rel in tree_disk.walk_files(root)
    }


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Path, Path]:
    v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    v1.write_text(SOURCES_V1)
    v2.write_text(SOURCES_V2)
    return v1, v2


def expected_tree(tmp_path: Path, source: Path) -> dict[str, bytes]:
    reference = tmp_path / f"reference-{source.stem}"
    done = render(source, reference)
    assert done.returncode == 0, done.stderr
    return contents(reference)


STEPS = ["staged", "committed", "applied 1", "applied 3", "done"]


@pytest.mark.parametrize("signame", ["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("step", STEPS)
def test_a_render_killed_at_any_step_is_finished_by_the_next(
    tmp_path: Path, sources: tuple[Path, Path], step: str, signame: str
) -> None:
    v1, v2 = sources
    want_v1, want_v2 = expected_tree(tmp_path, v1), expected_tree(tmp_path, v2)
    out = tmp_path / "repo" / "rendered"
    assert render(v1, out).returncode == 0
    beside = sorted(p.name for p in out.parent.iterdir())

    crashed = render(v2, out, stop_at=step, signame=signame)

    assert crashed.returncode == -getattr(signal, signame), crashed.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == beside  # nothing left outside DIR
    if step == "staged":  # before the commit point, the tree is as it was
        assert {k: v for k, v in contents(out).items() if not k.startswith(tree_disk.JOURNAL)} == want_v1
    again = render(v2, out)
    assert again.returncode == 0, again.stderr
    assert contents(out) == want_v2
    if step != "done":
        assert "finished an interrupted render" in again.stderr


def test_a_render_killed_before_its_commit_point_is_rolled_back(
    tmp_path: Path, sources: tuple[Path, Path]
) -> None:
    v1, v2 = sources
    out = tmp_path / "rendered"
    render(v1, out)
    before = stamps(out)
    assert render(v2, out, stop_at="staged").returncode == -signal.SIGKILL
    assert tree_disk.has_journal(out)

    again = render(v1, out)

    assert again.returncode == 0, again.stderr
    assert not tree_disk.has_journal(out)
    assert stamps(out) == before  # rolled back: not one file of the tree was touched


def test_a_reader_never_finds_the_directory_missing(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    first = [(f"ns-{i}/configmap-a.yaml", f"a: {i}\n") for i in range(20)]
    second = [(f"ns-{i}/configmap-b.yaml", f"b: {i}\n") for i in range(20)]
    tree.write_tree(out, first)
    misses: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            if not (out / tree.MARKER).is_file():
                misses.append(1)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_ in range(60):
            tree.write_tree(out, second if round_ % 2 else first)
    finally:
        stop.set()
        reader.join()
    assert misses == []


def test_mode_owner_group_and_setgid_of_the_directory_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    out.mkdir()
    os.chmod(out, 0o2775)  # noqa: S103 -- a shared, group-writable tree is the case under test
    os.chown(out, 4242, 4343)

    tree.write_tree(out, [("web/configmap-a.yaml", "a\n")])
    tree.write_tree(out, [("web/configmap-b.yaml", "b\n"), ("shop/configmap-a.yaml", "a\n")])

    info = out.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o2775, 4242, 4343)
    assert (out / "shop").stat().st_gid == 4343  # new folders take the group, as setgid says
    assert (out / "shop/configmap-a.yaml").stat().st_gid == 4343


def test_a_linked_directory_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "rendered"
    link.symlink_to(real)

    tree.write_tree(link, [("web/configmap-a.yaml", "a\n")])
    tree.write_tree(link, [("web/configmap-a.yaml", "a2\n")])

    assert link.is_symlink()
    assert (real / "web/configmap-a.yaml").read_text() == "a2\n"


@contextlib.contextmanager
def mounted_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_mount_point_directory_works(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "rendered", "4m") as out:
        tree.write_tree(out, [("web/configmap-a.yaml", "a\n")])
        result = tree.write_tree(out, [("web/configmap-b.yaml", "b\n")])
        assert (result.written, result.removed) == (1, 1)
        assert sorted(tree_disk.walk_files(out)) == [".cfgsync", "web/configmap-b.yaml"]


def test_a_full_file_system_is_an_error_and_the_tree_is_left_as_it_was(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "rendered", "64k") as out:
        tree.write_tree(out, [("web/configmap-a.yaml", "a\n")])
        before = contents(out)
        big = [(f"ns-{i}/configmap-x.yaml", "x" * 4000) for i in range(40)]
        with pytest.raises(errors.OutputError, match="No space left on device; free space"):
            tree.write_tree(out, big)
        assert contents(out) == before


def test_files_cfgsync_did_not_write_are_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    tree.write_tree(out, [("web/configmap-a.yaml", "a\n"), ("web/configmap-b.yaml", "b\n")])
    (out / "OWNERS").write_text("platform-team\n")
    (out / "web/NOTES.md").write_text("notes\n")
    (out / ".git").mkdir()
    (out / ".git/HEAD").write_text("ref: refs/heads/main\n")

    result = tree.write_tree(out, [("shop/configmap-a.yaml", "a\n")])

    assert result.removed == 2
    assert sorted(tree_disk.walk_files(out)) == [
        ".cfgsync",
        ".git/HEAD",
        "OWNERS",
        "shop/configmap-a.yaml",
        "web/NOTES.md",
    ]
    assert tree_disk.read_inventory(out) == {"shop/configmap-a.yaml"}


def test_a_file_of_someone_else_where_a_copy_goes_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    tree.write_tree(out, [("web/configmap-a.yaml", "a\n")])
    (out / "shop").mkdir()
    (out / "shop/configmap-a.yaml").write_text("mine\n")
    before = contents(out)

    with pytest.raises(errors.OutputError, match="a file cfgsync did not write"):
        tree.write_tree(out, [("web/configmap-a.yaml", "a2\n"), ("shop/configmap-a.yaml", "a\n")])

    assert contents(out) == before


def test_a_tree_written_before_the_inventory_keeps_its_other_files(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    (out / "web").mkdir(parents=True)
    (out / ".cfgsync").write_text(
        "This directory is written by `cfgsync render -o`; files in it are replaced on every render.\n"
    )
    (out / "web/configmap-a.yaml").write_text("a\n")
    (out / "kustomization.yaml").write_text("resources: [web/configmap-a.yaml]\n")
    (out / "OWNERS").write_text("me\n")

    result = tree.write_tree(out, [("web/configmap-b.yaml", "b\n")])

    assert result.removed == 2
    assert sorted(tree_disk.walk_files(out)) == [".cfgsync", "OWNERS", "web/configmap-b.yaml"]


def test_a_link_inside_the_tree_is_never_written_through(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "rendered"
    tree.write_tree(out, [("web/configmap-a.yaml", "a\n")])
    (out / "shop").symlink_to(elsewhere)

    with pytest.raises(errors.OutputError, match="a symbolic link inside the tree"):
        tree.write_tree(out, [("shop/configmap-a.yaml", "a\n")])

    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("target", ["/proc/self/environ", "/dev/zero"])
def test_diff_never_reads_through_a_link(tmp_path: Path, target: str) -> None:
    out = tmp_path / "rendered"
    tree.write_tree(out, [("web/configmap-a.yaml", "a\n")])
    (out / "web/configmap-a.yaml").unlink()
    (out / "web/configmap-a.yaml").symlink_to(target)

    with pytest.raises(errors.OutputError, match="a symbolic link inside the tree"):
        tree.diff_tree(out, [("web/configmap-a.yaml", "a\n")])


def test_an_inventory_naming_paths_outside_the_tree_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim.yaml"
    victim.write_text("precious\n")
    out = tmp_path / "rendered"
    tree.write_tree(out, [("web/configmap-a.yaml", "a\n")])
    (out / ".cfgsync").write_text("# list\n../victim.yaml\n")

    with pytest.raises(errors.OutputError, match=r"\.cfgsync:2: '../victim.yaml' is not a path inside"):
        tree.write_tree(out, [("web/configmap-a.yaml", "a\n")])

    assert victim.read_text() == "precious\n"


def test_a_file_name_too_long_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    with pytest.raises(errors.OutputError, match="over the 255 a file system allows; shorten"):
        tree.write_tree(tmp_path / "out", [(f"web/configmap-{'a' * 253}.yaml", "a\n")])
    assert not (tmp_path / "out" / "web").exists()


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory every user may enter (pytest's own is root's alone)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="cfgsync-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def run_as_nobody(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is needed to run as another user")
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "cfgsync"]
    env = {**os.environ, "CFGSYNC_PLUGINS": "", "HOME": str(home)}
    return subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_a_directory_it_may_not_write_is_an_error_not_a_traceback(shared_tmp: Path) -> None:
    source = shared_tmp / "sources.yaml"
    source.write_text(SOURCES_V1)
    source.chmod(0o644)
    out = shared_tmp / "rendered"
    out.mkdir(mode=0o755)

    done = run_as_nobody("render", str(source), "-o", str(out), home=shared_tmp)

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "Permission denied; give the user running cfgsync write access" in done.stderr
    assert list(out.iterdir()) == []


def test_an_input_it_may_not_read_is_an_error_not_a_traceback(shared_tmp: Path) -> None:
    source = shared_tmp / "sources.yaml"
    source.write_text(SOURCES_V1)
    source.chmod(0o600)

    done = run_as_nobody("render", str(source), home=shared_tmp)

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"error: {source}: cannot be read: Permission denied" in done.stderr


def test_a_render_killed_while_finishing_another_is_finished_by_the_next(
    tmp_path: Path, sources: tuple[Path, Path]
) -> None:
    v1, v2 = sources
    want_v2 = expected_tree(tmp_path, v2)
    out = tmp_path / "rendered"
    render(v1, out)
    assert render(v2, out, stop_at="committed").returncode == -signal.SIGKILL
    # The next run is killed too, half-way through carrying out the first one's plan.
    assert render(v2, out, stop_at="applied 2").returncode == -signal.SIGKILL

    again = render(v2, out)

    assert again.returncode == 0, again.stderr
    assert contents(out) == want_v2


def test_two_renders_into_one_directory_at_once_the_second_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    tree.write_tree(out, [("web/configmap-a.yaml", "a\n")])

    with tree_disk.locked(out), pytest.raises(errors.OutputError, match="another cfgsync render is writing"):
        tree.write_tree(out, [("web/configmap-a.yaml", "b\n")])

    assert (out / "web/configmap-a.yaml").read_text() == "a\n"
