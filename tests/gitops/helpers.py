"""Helpers for the GitOps tests: a bare environment like the hosts give, YAML streams read back."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
"""The repository root (examples and deploy/ live under it)."""
VENV_BIN = Path(sys.executable).parent
"""Where ``cfgsync`` is installed; put first on PATH, as the sidecar image has it."""


def tool_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A bare environment (as a CMP server or CI job has): PATH with cfgsync first, HOME, and ``extra``."""
    return {"PATH": f"{VENV_BIN}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": str(home), **(extra or {})}


def documents(text: str) -> list[dict[str, Any]]:
    """The YAML documents of a stream, empty ones left out."""
    return [d for d in yaml.safe_load_all(text) if d is not None]
