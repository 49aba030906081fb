"""Running the real ``cfgsync`` command as a user would: a fresh process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def repo() -> Path:
    """The repository root (examples live under it)."""
    return REPO


@pytest.fixture
def cfgsync_cli() -> Run:
    """Run ``python -m cfgsync ARGS`` and return the completed process (never raises on exit codes)."""

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
        )

    return run
