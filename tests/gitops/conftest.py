"""The GitOps tests' tools: the pinned kustomize, built once and cached like the control plane."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

import gotools


@pytest.fixture(scope="session")
def kustomize(pytestconfig: pytest.Config) -> Path:
    """The pinned kustomize, built once with ``go install`` from the Go module proxy and cached."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    shown = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
    try:
        with shown:  # a cold build reports progress for minutes: let it through
            return gotools.ensure_tool(gotools.KUSTOMIZE)
    except gotools.NoGoError as exc:
        pytest.skip(str(exc))
