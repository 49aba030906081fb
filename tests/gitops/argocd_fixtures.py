"""pytest plugin: Argo CD's plugin server and client, built once, and one server per test session.

Loaded by ``tests/conftest.py``. A test that uses ``argocd`` (directly or through ``cmp_server``) runs
Argo CD's own code and is marked ``e2e``. The programs are built after collection and before the first
test, so a cold build is not charged to any test's timeout; its progress is printed even while output
is captured. Without a Go toolchain (and nothing cached) those tests are skipped with the reason; any
other build failure makes them error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import gotools

from .argocd_cmp import ARGOCD, PluginServer, running_server

ARGOCD_FIXTURES = frozenset({"argocd", "cmp_server"})
"""Tests whose fixture closure includes one of these run Argo CD's programs, and are marked e2e."""
_built = pytest.StashKey[Path | gotools.ToolBuildError]()


@dataclass(frozen=True, slots=True, kw_only=True)
class ArgoCD:
    """The built programs."""

    cmp_server: Path
    """``argocd-cmp-server``, the plugin sidecar's command."""
    client: Path
    """``cmp-client``: calls plugin servers as ``argocd-repo-server`` does."""
    version: str
    """The Argo CD release they come from."""


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _needs_argocd(item):
            item.add_marker(pytest.mark.e2e)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build (or find cached) the programs before any test runs, if a selected test needs them."""
    config = session.config
    if config.option.collectonly or not any(_needs_argocd(item) for item in session.items):
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    shown = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
    with shown:
        _build(config)


@pytest.fixture(scope="session")
def argocd(pytestconfig: pytest.Config) -> ArgoCD:
    """Argo CD's ``argocd-cmp-server`` and the repo-server-like client, at the pinned release."""
    built = pytestconfig.stash.get(_built, None) or _build(pytestconfig)
    if isinstance(built, gotools.NoGoError):
        pytest.skip(str(built))
    if isinstance(built, gotools.ToolBuildError):
        raise built
    return ArgoCD(cmp_server=built / "argocd-cmp-server", client=built / "cmp-client", version=ARGOCD.version)


@pytest.fixture(scope="session")
def cmp_server(argocd: ArgoCD, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginServer]:
    """The session's plugin server with the repository's plugin.yaml, as cfgsync's sidecar runs it."""
    with running_server(argocd.cmp_server, tmp_path_factory.mktemp("cmp-server")) as server:
        yield server


def _needs_argocd(item: pytest.Item) -> bool:
    return not ARGOCD_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


def _build(config: pytest.Config) -> Path | gotools.ToolBuildError:
    try:
        built: Path | gotools.ToolBuildError = gotools.ensure_module(ARGOCD)
    except gotools.ToolBuildError as exc:
        built = exc
    config.stash[_built] = built
    return built
