"""Fixtures of the deploy tests: helm and kustomize, built once before the first test that needs them."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

import gotools
from deploy.chart import Helm
from live.conftest import (  # noqa: F401 -- the live tests' fixtures, shared here
    core,
    make_namespace,
    second_control_plane,
)

TOOLS = {"helm": gotools.HELM, "kustomize": gotools.KUSTOMIZE}
"""Fixture name -> the Go tool it provides."""
_built = pytest.StashKey[dict[str, Path | gotools.ToolBuildError]]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the tools (or find them cached) after collection, so no test's timeout pays for a cold build."""
    config = session.config
    if config.option.collectonly:
        return
    wanted = {name for item in session.items for name in getattr(item, "fixturenames", ()) if name in TOOLS}
    if not wanted:
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    shown = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
    with shown:
        for name in sorted(wanted):
            _build(config, name)


def _build(config: pytest.Config, name: str) -> Path | gotools.ToolBuildError:
    built = config.stash.setdefault(_built, {})
    if name not in built:
        try:
            built[name] = gotools.ensure_tool(TOOLS[name])
        except gotools.ToolBuildError as exc:
            built[name] = exc
    return built[name]


def _binary(config: pytest.Config, name: str) -> Path:
    built = _build(config, name)
    if isinstance(built, gotools.NoGoError):
        pytest.skip(str(built))
    if isinstance(built, gotools.ToolBuildError):
        raise built
    return built


@pytest.fixture(scope="session")
def helm(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The pinned helm, with its config, cache and data directories of its own (no user settings leak in)."""
    return Helm(binary=_binary(pytestconfig, "helm"), home=tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def kustomize(pytestconfig: pytest.Config) -> Path:
    """The pinned kustomize binary."""
    return _binary(pytestconfig, "kustomize")
