"""Run an image recipe's build stage without a container engine, and the final stage's environment.

Does I/O: copies the build context, runs pip and the recipe's RUN steps in subprocesses. A recipe must
reach ``/src``, ``/wheels``, ``/opt/build`` and ``/opt/cfgsync`` only through the variables ``SRC``,
``WHEELS``, ``BUILD_VENV`` and ``VENV`` its build stage sets, so moving those moves everything its steps
touch; ``python`` is the interpreter running the tests. The build runs as an air-gapped user runs it:
``PIP_NO_INDEX=1``, every dependency from ``./wheelhouse``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from deploy.dockerfile import Stage, context_files, read_stages, read_target

REPO = Path(__file__).resolve().parents[2]
IMAGE_PATHS = {"SRC": "/src", "WHEELS": "/wheels", "BUILD_VENV": "/opt/build", "VENV": "/opt/cfgsync"}
"""Where the recipes put things, by the variable their RUN steps use for each."""
_STEP_TIMEOUT = 400


@dataclass(frozen=True, slots=True, kw_only=True)
class Built:
    """A recipe's build stage, run."""

    build: Stage
    """The build stage."""
    final: Stage
    """The target (the image), with the stages it builds on."""
    venv: Path
    """Where ``/opt/cfgsync`` went."""

    def runtime_env(self, tmp: Path) -> dict[str, str]:
        """The final stage's ``ENV`` with ``/opt/cfgsync`` moved, on top of a bare environment."""
        env = {
            key: value.replace(IMAGE_PATHS["VENV"], str(self.venv)).replace("$PATH", "/usr/bin:/bin")
            for key, value in self.final.env().items()
        }
        return {"TMPDIR": str(tmp), "HOME": str(tmp), **env}


def make_wheelhouse(target: Path, *projects: Path) -> Path:
    """What a user builds on a connected machine: the wheels of ``projects``' dependencies and hatchling.

    The projects' own wheels are left out, so a build can only get them from its sources.
    """
    work = target.parent / f"{target.name}-build"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--wheel-dir",
            str(work),
            *map(str, projects),
            "hatchling",
        ],
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        check=True,
        timeout=_STEP_TIMEOUT,
    )
    target.mkdir(parents=True)
    own = {_wheel_stem(p) for p in projects}
    for wheel in work.glob("*.whl"):
        if wheel.name.split("-")[0].lower() not in own:
            shutil.copy2(wheel, target / wheel.name)
    shutil.rmtree(work)
    return target


def _wheel_stem(project: Path) -> str:
    """The distribution name as wheel file names spell it (``cfgsync_key_prefix``)."""
    import tomllib

    name: str = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
    return name.replace("-", "_").lower()


def run_build_stage(
    dockerfile: Path,
    work: Path,
    *,
    target: str,
    wheelhouse: Path,
    wheels: tuple[Path, ...] = (),
    args: dict[str, str],
) -> Built:
    """Run ``dockerfile``'s ``build`` stage verbatim into ``work``, offline, with build arguments ``args``,
    for the image ``target``.

    The context is the repository as ``.dockerignore`` admits it, plus ``./wheelhouse`` holding
    ``wheelhouse``'s wheels and ``wheels`` (e.g. a plugin's).
    """
    stages = read_stages(dockerfile)
    build = next(s for s in stages if s.name == "build")
    moved = {name: work / path.strip("/").replace("/", "-") for name, path in IMAGE_PATHS.items()}
    if {name: build.env().get(name) for name in IMAGE_PATHS} != IMAGE_PATHS:
        raise AssertionError(f"{dockerfile}: the build stage must set {IMAGE_PATHS} with ENV")
    if [c for c in build.arguments("RUN") for p in IMAGE_PATHS.values() if p in c]:
        raise AssertionError(f"{dockerfile}: a RUN step names an image path instead of its variable")
    context = moved["SRC"]
    for relative in context_files(REPO):
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, context / relative)
    shutil.copytree(wheelhouse, context / "wheelhouse", dirs_exist_ok=True)
    for wheel in wheels:
        shutil.copy2(wheel, context / "wheelhouse" / wheel.name)
    shims = work / "bin"
    shims.mkdir()
    (shims / "python").symlink_to(sys.executable)
    env = {
        "PATH": f"{shims}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(work / "home"),
        "TMPDIR": str(work),
        **build.args(),
        **args,
        **build.env(),
        **{name: str(path) for name, path in moved.items()},
    }
    for command in build.arguments("RUN"):
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=context,
            env=env,
            capture_output=True,
            text=True,
            timeout=_STEP_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"RUN {command}\n{done.stdout}\n{done.stderr}")
    return Built(build=build, final=read_target(dockerfile, target), venv=moved["VENV"])
