"""Shared pytest configuration and fixtures for the whole suite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# The real control plane (etcd + kube-apiserver) and its fixtures: control_plane, kube_api, namespace;
# Argo CD's plugin server and a client that calls it as the repo server does: argocd, cmp_server.
pytest_plugins = ["controlplane.fixtures", "gitops.argocd_fixtures"]

REPO = Path(__file__).resolve().parents[1]

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def repo() -> Path:
    """The repository root (examples live under it)."""
    return REPO


@pytest.fixture
def cfgsync_cli() -> Run:
    """Run ``python -m cfgsync ARGS`` as a user does; return the completed process, whatever its exit code."""

    def run(
        *args: str, stdin: str | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cfgsync", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cwd or REPO,
            timeout=120,
            check=False,
            # No installed plugin loads: the example plugins installed beside cfgsync (one replaces
            # Secret copies in rendered trees) must not change what these tests of cfgsync itself see.
            env={**os.environ, "CFGSYNC_PLUGINS": ""},
        )

    return run
