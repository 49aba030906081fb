"""The plugin images, the Dockerfile's targets ``cmp`` and ``krm``, checked without Docker.

Each target must build cfgsync from the repository (never ``pip install cfgsync`` from an index, where
anyone could publish that name), install only from the wheelhouse its first stage builds, leave no pip
in the image, take its base image from a build argument, and run as a numeric non-root user. The build
stage runs verbatim, offline, as in test_image_recipe.py; the KRM image's entrypoint then transforms a
ResourceList, and Argo CD's own plugin server, started with the Argo CD image's environment, generates
an Application's manifests with the cfgsync the recipe installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import cfgsync
from deploy.dockerfile import read_stages, read_target
from deploy.recipe import REPO, Built, make_wheelhouse, run_build_stage
from gitops.argocd_cmp import basic_app_request, call, running_server
from gitops.argocd_fixtures import ArgoCD

pytestmark = pytest.mark.timeout(900)

DOCKERFILE = REPO / "Dockerfile"
RECIPES = {"argocd": ("cmp", "999:999"), "krm": ("krm", "65532:65532")}
"""Each plugin image's target, with the user it runs as (ArgoCD's for the sidecar)."""
PLUGIN = REPO / "plugins/cfgsync-key-prefix"
"""An example plugin, installed into the image the way docs/argocd.md tells users to add theirs."""


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dependencies' wheels, as an air-gapped user brings them (no cfgsync wheel among them)."""
    return make_wheelhouse(tmp_path_factory.mktemp("deps") / "wheelhouse", REPO, PLUGIN)


@pytest.fixture(scope="module")
def plugin_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin's wheel, built from its sources."""
    out = tmp_path_factory.mktemp("plugin-wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(PLUGIN)],
        check=True,
        timeout=300,
    )
    return next(out.glob("*.whl"))


@pytest.fixture(scope="module")
def build_recipe(
    wheelhouse: Path, plugin_wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Built]:
    """Run a recipe's build stage offline (once per module), with the example plugin as an extra package."""
    done: dict[str, Built] = {}

    def build(name: str) -> Built:
        if name not in done:
            done[name] = run_build_stage(
                DOCKERFILE,
                tmp_path_factory.mktemp(name),
                target=RECIPES[name][0],
                wheelhouse=wheelhouse,
                wheels=(plugin_wheel,),
                args={"PIP_NO_INDEX": "1", "EXTRA_PACKAGES": "cfgsync-key-prefix"},
            )
        return done[name]

    return build


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_builds_cfgsync_from_source_and_installs_from_its_wheelhouse_only(name: str) -> None:
    target, user = RECIPES[name]
    text = DOCKERFILE.read_text(encoding="utf-8")
    build = next(s for s in read_stages(DOCKERFILE) if s.name == "build")
    final = read_target(DOCKERFILE, target)
    steps = " ".join(build.arguments("RUN") + final.arguments("RUN"))

    assert not re.search(r"cfgsync\s*==", text)  # never resolved by name from an index
    installs = re.findall(r"pip\b[^&;]*?\binstall\b[^&;]*", steps)
    assert installs
    assert all("--no-index" in step for step in installs), installs
    assert "pip wheel" in " ".join(build.arguments("RUN"))
    assert '"$SRC"' in " ".join(build.arguments("RUN"))  # cfgsync's own wheel comes from the sources
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+-slim-\w+$", text, re.MULTILINE)
    assert re.search(r"^ARG RUNTIME_IMAGE=\$\{PYTHON_IMAGE\}$", text, re.MULTILINE)
    # One build argument swaps in a mirror; the Debian-built bases need both (docs/install.md).
    assert (build.base, final.base) == ("${PYTHON_IMAGE}", "${RUNTIME_IMAGE}")
    assert final.arguments("USER") == [user]
    assert final.arguments("COPY") == ["--from=build /opt/cfgsync /opt/cfgsync"]
    # The final stage's one step removes package managers (test_runtime_stage.py runs it).
    assert [json.loads(step)[:2] for step in final.arguments("RUN")] == [["python", "-c"]]
    assert "venv --without-pip" in steps


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_versions_follow_the_package(name: str) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    final = read_target(DOCKERFILE, RECIPES[name][0])

    assert f"VERSION={version}" in final.arguments("ARG")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_installs_cfgsync_and_plugins_without_pip(
    build_recipe: Callable[[str], Built], name: str
) -> None:
    venv = build_recipe(name).venv
    python = venv / "bin" / "python"

    assert list(venv.glob("lib/python3*/site-packages/cfgsync/__init__.py"))  # installed, not linked
    assert not list(venv.glob("lib/python3*/site-packages/pip"))
    assert not (venv / "bin" / "pip").exists()
    no_pip = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True, check=False)
    assert no_pip.returncode != 0
    assert "No module named pip" in no_pip.stderr
    plugins = subprocess.run(
        [
            python,
            "-c",
            "import importlib.metadata as m; print(sorted(e.name for e in m.entry_points(group='cfgsync')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert plugins.stdout.strip() == "['builtin', 'key-prefix']"


def test_krm_image_entrypoint_adds_the_copies(build_recipe: Callable[[str], Built], tmp_path: Path) -> None:
    built = build_recipe("krm")
    items = [
        d
        for name in ("namespaces.yaml", "sources.yaml")
        for d in yaml.safe_load_all((REPO / "examples/kustomize" / name).read_text(encoding="utf-8"))
        if d
    ]
    resource_list = {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": items}
    env = built.runtime_env(tmp_path) | {"HOME": "/nonexistent"}  # kustomize runs it as nobody
    entrypoint = json.loads(built.final.arguments("ENTRYPOINT")[0])
    executable = shutil.which(entrypoint[0], path=env["PATH"])

    assert executable == str(built.venv / "bin" / "cfgsync")
    done = subprocess.run(
        [executable, *entrypoint[1:]],
        input=yaml.safe_dump(resource_list),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    output = yaml.safe_load(done.stdout)
    assert output["kind"] == "ResourceList"
    copies = [
        i for i in output["items"] if "kubed.appscode.com/origin" in i["metadata"].get("annotations", {})
    ]
    assert {c["metadata"]["name"] for c in copies} == {"company-ca"}  # the source annotated in sources.yaml
    assert len(output["items"]) == len(items) + len(copies)
    assert (
        cfgsync.__version__
        in subprocess.run(
            [executable, "--version"], env=env, capture_output=True, text=True, check=True
        ).stdout
    )


def test_argocd_image_serves_argocds_plugin_server(
    build_recipe: Callable[[str], Built], argocd: ArgoCD, tmp_path: Path
) -> None:
    built = build_recipe("argocd")
    image_env = built.runtime_env(tmp_path)
    request = basic_app_request(tmp_path / "repo")

    assert shutil.which("cfgsync", path=image_env["PATH"]) == str(built.venv / "bin" / "cfgsync")
    with running_server(argocd.cmp_server, tmp_path / "sidecar", image_env=image_env) as server:
        reply = call(argocd.client, server, request)

    assert reply.code == 0, reply.error
    golden = REPO / "tests/gitops/golden/argocd-basic.yaml"
    assert reply.body["objects"] == [d for d in yaml.safe_load_all(golden.read_text(encoding="utf-8")) if d]
