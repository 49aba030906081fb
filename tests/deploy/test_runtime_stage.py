"""What the three images share: the Dockerfile's runtime stage, whose one step removes package managers.

The controller, the Argo CD sidecar and the KRM function are targets of one Dockerfile, built on one
runtime stage from one build stage, so their recipes cannot drift apart and buildah and Docker share
those layers between them. The runtime stage's step must leave no apt, dpkg or pip (nor ensurepip)
whichever Debian-based Python base it runs on: here it runs on a tree laid out like the official
``python:3.12-slim-bookworm``, moved under a temporary directory. The images built for real
(test_airgapped_install.py) run on the Debian-built base, where the step finds nothing to remove.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from deploy.dockerfile import read_stages, read_target
from deploy.images import DOCKERFILE, RECIPES

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


def strip_step(target: str) -> str:
    """The Python code of the one RUN step of ``target``'s runtime."""
    (step,) = read_target(DOCKERFILE, target).arguments("RUN")
    words: list[str] = json.loads(step)
    assert words[:2] == ["python", "-c"]  # exec form: the Debian-built base has no shell
    return words[2]


def test_every_target_builds_on_the_runtime_stage_and_adds_no_step() -> None:
    stages = {stage.name: stage for stage in read_stages(DOCKERFILE)}

    assert set(RECIPES.values()) == set(stages) - {"build", "runtime"}
    for target in RECIPES.values():
        assert stages[target].base == "runtime"
        assert not stages[target].arguments("RUN")
        assert not stages[target].arguments("COPY")
        assert strip_step(target) == strip_step("controller")
    assert (stages["build"].base, stages["runtime"].base) == ("${PYTHON_IMAGE}", "${RUNTIME_IMAGE}")


def test_the_step_leaves_no_package_manager_in_a_slim_python_base(tmp_path: Path) -> None:
    code = strip_step("controller")
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
