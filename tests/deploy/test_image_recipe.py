"""The Dockerfile's recipe, run without Docker: its own RUN steps, then its entrypoint against an API server.

No Docker engine is needed (nor available in CI). The build context is assembled as ``.dockerignore``
admits it; a wheelhouse is made from the package index, as docs/install.md tells an air-gapped user
to do on a connected machine; then the Dockerfile's RUN lines run verbatim with ``PIP_NO_INDEX=1``
(the air-gapped build argument), with ``/src``, ``/wheels`` and ``/opt/cfgsync`` moved into a temporary
directory through the variables the Dockerfile itself uses. The installed entrypoint must then report
the version the image is labelled with, serve ``/healthz`` against the test API server, stop cleanly on
SIGTERM, and write nothing into its installation (the image runs with a read-only root filesystem).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import cfgsync
from controlplane import ControlPlane
from deploy.chart import CHART
from deploy.dockerfile import Stage, context_files, read_stages, read_target
from deploy.running import free_port, http_status, stop, tail
from live.helpers import wait_for

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[2]
IMAGE_PATHS = {"SRC": "/src", "WHEELS": "/wheels", "BUILD_VENV": "/opt/build", "VENV": "/opt/cfgsync"}
"""Where the Dockerfile puts things, by the variable its RUN steps use for each."""


def build_stage_and_final() -> tuple[Stage, Stage]:
    """The build stage, and the default target (the last stage: the controller) with what it builds on."""
    stages = read_stages(REPO / "Dockerfile")
    build = next(s for s in stages if s.name == "build")
    assert stages[-1].name == "controller"  # `docker build .` builds the controller
    return build, read_target(REPO / "Dockerfile", "controller")


def exec_form(arguments: str) -> list[str]:
    """The list of an exec-form instruction (``["cfgsync"]``)."""
    words: list[str] = json.loads(arguments)
    return words


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
        if not p.is_dir()
    }


def test_dockerfile_pins_its_base_runs_unprivileged_and_is_labelled() -> None:
    build, final = build_stage_and_final()
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)

    assert base is not None
    assert re.fullmatch(r"python:3\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1))
    assert re.search(r"^ARG RUNTIME_IMAGE=\$\{PYTHON_IMAGE\}$", text, re.MULTILINE)  # one base by default
    assert (build.base, final.base) == ("${PYTHON_IMAGE}", "${RUNTIME_IMAGE}")
    assert final.arguments("USER") == ["65532:65532"]  # numeric: runAsNonRoot can check it
    # Nothing built or installed in the final stage: one step only removes package managers.
    assert [json.loads(step)[:2] for step in final.arguments("RUN")] == [["python", "-c"]]
    assert final.arguments("COPY") == ["--from=build /opt/cfgsync /opt/cfgsync"]
    assert exec_form(final.arguments("ENTRYPOINT")[0]) == ["cfgsync"]
    labels = " ".join(final.arguments("LABEL"))
    for key in ("version", "source", "title", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_image_chart_and_package_versions_agree() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    chart = (CHART / "Chart.yaml").read_text(encoding="utf-8")
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")

    assert cfgsync.__version__ == pyproject
    assert f'appVersion: "{pyproject}"' in chart
    assert f"ARG VERSION={pyproject}\n" in dockerfile


def test_build_context_holds_the_sources_and_nothing_else() -> None:
    files = {p.as_posix() for p in context_files(REPO)}

    assert {"pyproject.toml", "README.md", "src/cfgsync/__init__.py", "src/cfgsync/cli/live.py"} <= files
    assert {f.split("/")[0] for f in files} <= {"pyproject.toml", "README.md", "src", "wheelhouse"}
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]


def test_recipe_installs_an_entrypoint_that_runs_the_controller(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    build, final = build_stage_and_final()
    # The RUN steps reach /src, /wheels, /opt/build and /opt/cfgsync only through these variables, so
    # moving them below moves everything the steps touch.
    assert {name: build.env()[name] for name in IMAGE_PATHS} == IMAGE_PATHS
    assert not [c for c in build.arguments("RUN") for p in IMAGE_PATHS.values() if p in c]
    work = {name: tmp_path / path.strip("/").replace("/", "-") for name, path in IMAGE_PATHS.items()}
    context = work["SRC"]
    for relative in context_files(REPO):
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, context / relative)
    # `python` is the image's interpreter; here, the one running the tests.
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "python").symlink_to(sys.executable)
    base_env = {
        "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }

    # On a connected machine (docs/install.md): a wheelhouse holding every wheel, the build backend too.
    subprocess.run(
        [
            "python",
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--wheel-dir",
            str(context / "wheelhouse"),
            str(context),
            "hatchling",
        ],
        env=base_env,
        check=True,
        timeout=400,
    )

    # The build stage, verbatim, offline: only the wheelhouse is used.
    build_env = base_env | build.env() | {k: str(v) for k, v in work.items()} | {"PIP_NO_INDEX": "1"}
    for command in build.arguments("RUN"):
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            check=False,
            cwd=context,
            env=build_env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert done.returncode == 0, f"RUN {command}\n{done.stdout}\n{done.stderr}"
    venv = work["VENV"]
    assert list(venv.glob("lib/python3*/site-packages/cfgsync/__init__.py"))  # installed, not linked

    # The final stage: its environment (with /opt/cfgsync moved) and its entrypoint.
    runtime_env = {
        key: value.replace(IMAGE_PATHS["VENV"], str(venv)).replace("$PATH", os.environ["PATH"])
        for key, value in final.env().items()
    } | {"HOME": "/nonexistent", "TMPDIR": str(tmp_path)}
    entrypoint = exec_form(final.arguments("ENTRYPOINT")[0])
    default_args = exec_form(final.arguments("CMD")[0])
    assert default_args == ["run"]
    executable = shutil.which(entrypoint[0], path=runtime_env["PATH"])
    assert executable == str(venv / "bin" / "cfgsync")

    version = subprocess.run(
        [*entrypoint, "--version"], env=runtime_env, capture_output=True, text=True, timeout=60, check=True
    )
    assert version.stdout.strip() == f"cfgsync, version {cfgsync.__version__}"

    installed = tree(venv)
    port = free_port()
    log = tmp_path / "run.log"
    args = [
        *default_args,
        f"--kubeconfig={control_plane.kubeconfig}",
        "--health-address=127.0.0.1",
        f"--health-port={port}",
        "--no-leader-elect",
    ]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [str(executable), *args], env=runtime_env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:

        def healthy() -> bool:
            assert proc.poll() is None, tail(log)
            return http_status(port, "/healthz") == 200 and http_status(port, "/readyz") == 200

        wait_for(healthy, timeout=60, what=f"{shlex.join(['cfgsync', *args])} to answer /healthz")
    finally:
        code = stop(proc)
    assert code == 0, tail(log)
    assert tree(venv) == installed  # nothing written next to the code: a read-only root is fine
