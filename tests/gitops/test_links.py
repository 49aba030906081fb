"""A repository cannot make ``diff`` or ``argocd generate`` read outside it through a committed link."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CANARY = "cfgsync-canary-7f3a9"
SOURCE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: flags
  namespace: platform
  annotations: {kubed.appscode.com/sync: ""}
data: {a: b}
---
apiVersion: v1
kind: Namespace
metadata: {name: web}
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CFGSYNC_PLUGINS": "", "LEAK_CANARY": CANARY, "ARGOCD_APP_NAMESPACE": "platform"}
    return subprocess.run(
        [sys.executable, "-m", "cfgsync", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def app(tmp_path: Path) -> Path:
    path = tmp_path / "repo" / "app"
    path.mkdir(parents=True)
    (path / "sources.yaml").write_text(SOURCE)
    return path


@pytest.mark.parametrize("target", ["/proc/self/environ", "/dev/zero"])
@pytest.mark.parametrize("command", ["diff", "argocd"])
def test_a_link_out_of_the_directory_is_refused_not_read(
    app: Path, tmp_path: Path, target: str, command: str
) -> None:
    (app / "leak.yaml").symlink_to(target)
    args = (
        ["diff", str(app), "--against", str(tmp_path / "out")]
        if command == "diff"
        else ["argocd", "generate", str(app)]
    )

    done = run(*args)

    assert done.returncode == (2 if command == "diff" else 1)
    assert f"{app / 'leak.yaml'}: a symbolic link out of {app}" in done.stderr
    assert CANARY not in done.stdout + done.stderr


def test_a_link_to_another_file_of_the_directory_is_read(app: Path) -> None:
    (app / "more").mkdir()
    (app / "more/flags.yml").symlink_to(app / "sources.yaml")
    (app / "sources.yaml").rename(app / "sources.txt")
    (app / "more/flags.yml").unlink()
    (app / "more/flags.yml").symlink_to(app / "sources.txt")

    done = run("render", str(app))

    assert done.returncode == 0, done.stderr
    assert "namespace: web" in done.stdout


def test_a_linked_directory_out_of_the_tree_is_not_walked(app: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: [broken\n")
    (app / "elsewhere").symlink_to(outside)

    done = run("argocd", "generate", str(app))

    assert done.returncode == 0, done.stderr
