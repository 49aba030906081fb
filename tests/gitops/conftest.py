"""The GitOps tests' tools: the pinned kustomize, built once and cached like the control plane."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

KUSTOMIZE_VERSION = "v5.8.2"
"""The pinned kustomize release (its API module v0.21.2 builds with the Go this project uses)."""
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"


def tool_cache() -> Path:
    """``$CFGSYNC_TOOLS_CACHE``, else ``$XDG_CACHE_HOME/cfgsync-tools``, else ``~/.cache/cfgsync-tools``."""
    if explicit := os.environ.get("CFGSYNC_TOOLS_CACHE"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "cfgsync-tools"


def _find_go() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    fallback = Path("/usr/local/go/bin/go")
    return str(fallback) if os.access(fallback, os.X_OK) else None


def _lock(path: Path) -> contextlib.AbstractContextManager[None]:
    @contextlib.contextmanager
    def held() -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    return held()


@pytest.fixture(scope="session")
def kustomize(pytestconfig: pytest.Config) -> Path:
    """The pinned kustomize, built once with ``go install`` from the Go module proxy and cached."""
    target = tool_cache() / f"kustomize-{KUSTOMIZE_VERSION}"
    binary = target / "kustomize"
    if os.access(binary, os.X_OK):
        return binary
    go = _find_go()
    if go is None:
        pytest.skip("kustomize is not cached and there is no Go toolchain to build it")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    shown = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
    with _lock(target.with_name(target.name + ".lock")), shown:
        if not os.access(binary, os.X_OK):
            print(
                f"[kustomize] building {KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION} (once, ~1-2 minutes)",
                file=sys.stderr,
            )
            staging = target.with_name(target.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            subprocess.run(
                [go, "install", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"],
                env={**os.environ, "GOBIN": str(staging), "GOTOOLCHAIN": "local"},
                check=True,
                timeout=900,
            )
            staging.rename(target)
            print(f"[kustomize] cached in {target}", file=sys.stderr)
    return binary
