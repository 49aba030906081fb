"""What the three image recipes share: one build stage, and one step that removes package managers.

The controller (Dockerfile), the Argo CD sidecar (deploy/argocd/Dockerfile) and the KRM function
(deploy/krm/Dockerfile) are built from the same wheelhouse with the same build arguments, so their build
stages must not drift apart; buildah and Docker then also share that stage's layers between them. The
final stage's step must leave no apt, dpkg or pip (nor ensurepip) whichever Debian-based Python base it
runs on: here it runs on a tree laid out like the official ``python:3.12-slim-bookworm``, moved under a
temporary directory. The images built for real (test_airgapped_install.py) run on the Debian-built base,
where the step finds nothing to remove.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from deploy.dockerfile import read_stages
from deploy.images import RECIPES

SLIM_LAYOUT = {
    "removed": [
        "usr/bin/apt",
        "usr/bin/apt-get",
        "usr/bin/dpkg",
        "usr/bin/dpkg-query",
        "usr/sbin/dpkg-reconfigure",
        "usr/lib/apt/methods/http",
        "usr/lib/dpkg/methods/apt/install",
        "etc/apt/sources.list.d/debian.sources",
        "var/lib/apt/lists/lock",
        "var/cache/apt/pkgcache.bin",
        "usr/local/bin/pip",
        "usr/local/bin/pip3.12",
        "usr/local/lib/python3.12/site-packages/pip/__init__.py",
        "usr/local/lib/python3.12/site-packages/pip-25.0.dist-info/RECORD",
        "usr/local/lib/python3.12/ensurepip/_bundled/pip-25.0-py3-none-any.whl",
        "usr/lib/python3.11/ensurepip/__init__.py",
        "usr/share/python-wheels/pip-23.0.1-py3-none-any.whl",
    ],
    "kept": [
        "usr/local/bin/python3.12",
        "usr/local/lib/python3.12/venv/__init__.py",
        "usr/local/lib/python3.12/site-packages/README.txt",
        "usr/bin/perl",
        "var/lib/dpkg/status",  # what image scanners read
        "etc/passwd",
    ],
}
"""Files of a python:3.12-slim-like tree (with Debian's pip layout too), by what must become of them."""


def strip_step(dockerfile: Path) -> str:
    """The Python code of the final stage's one RUN step."""
    (step,) = read_stages(dockerfile)[-1].arguments("RUN")
    words: list[str] = json.loads(step)
    assert words[:2] == ["python", "-c"]  # exec form: the Debian-built base has no shell
    return words[2]


def test_recipes_share_one_build_stage() -> None:
    stages = {name: next(s for s in read_stages(path) if s.name == "build") for name, path in RECIPES.items()}

    assert len({stage.instructions for stage in stages.values()}) == 1
    assert {stage.base for stage in stages.values()} == {"${PYTHON_IMAGE}"}


def test_recipes_share_one_step_removing_package_managers() -> None:
    assert len({strip_step(path) for path in RECIPES.values()}) == 1


def test_the_step_leaves_no_package_manager_in_a_slim_python_base(tmp_path: Path) -> None:
    code = strip_step(RECIPES["cfgsync"])
    for relative in SLIM_LAYOUT["removed"] + SLIM_LAYOUT["kept"]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x", encoding="utf-8")
    (tmp_path / "usr/bin/python3").symlink_to("/usr/bin/python3.11")  # a link is never followed
    # Every path the step names is absolute, in a quoted tuple: move them all under tmp_path.
    moved = re.sub(r"'/", f"'{tmp_path}/", code)
    assert moved.count(str(tmp_path)) == code.count("'/") >= 10

    subprocess.run([sys.executable, "-c", moved], check=True, timeout=60)

    left = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if not p.is_dir()}
    assert left == {*SLIM_LAYOUT["kept"], "usr/bin/python3"}
