"""Build etcd and kube-apiserver from their Go modules, once, and cache the binaries.

Does I/O: runs ``go build`` and writes under the cache directory (``$CFGSYNC_CONTROLPLANE_CACHE``, else
``$XDG_CACHE_HOME/cfgsync-controlplane``, else ``~/.cache/cfgsync-controlplane``). The versions are pinned
in ``go/*/go.mod``; a cache entry is named after them and a digest of the Go sources, so changing a pin
(or a wrapper) builds a new entry while an unchanged tree reuses the old one, even without Go installed.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import gotools
from gotools import find_go  # a name of this module, so a test can stand in for a machine without Go

GO_DIR = Path(__file__).resolve().parent / "go"
"""The two Go main modules, one per program, each pinning its upstream release."""

COMPONENTS = ("etcd", "kube-apiserver")
"""The programs built, in build order; each is a directory under ``GO_DIR``."""

_PIN_PATTERNS = {
    "etcd": re.compile(r"^(?:require)?\s*go\.etcd\.io/etcd/server/v3 (v\S+)$", re.MULTILINE),
    "kube-apiserver": re.compile(r"^(?:require)?\s*k8s\.io/kubernetes (v\S+)$", re.MULTILINE),
}
_VERSION_PACKAGES = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
"""Where Kubernetes programs read their own version; upstream's release build stamps it via -X."""


class ControlPlaneError(RuntimeError):
    """The test control plane could not be built, started or stopped; the message says why."""


class GoNotFoundError(ControlPlaneError):
    """No Go toolchain was found and no cached binaries exist, so the control plane cannot be built."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Binaries:
    """Paths to the two built programs."""

    etcd: Path
    """The etcd server."""
    kube_apiserver: Path
    """The Kubernetes API server."""


def pinned_versions() -> dict[str, str]:
    """The upstream release of each program, as pinned in its ``go.mod`` (e.g. ``{"etcd": "v3.6.16"}``)."""
    versions = {}
    for name, pattern in _PIN_PATTERNS.items():
        gomod = GO_DIR / name / "go.mod"
        match = pattern.search(gomod.read_text(encoding="utf-8"))
        if match is None:
            raise ControlPlaneError(f"{gomod}: no pinned version found (expected {pattern.pattern!r})")
        versions[name] = match.group(1)
    return versions


def cache_root() -> Path:
    """The directory holding every cached build, one subdirectory per set of pinned versions."""
    return gotools.cache_root("CFGSYNC_CONTROLPLANE_CACHE", "cfgsync-controlplane")


def cache_dir() -> Path:
    """Where the binaries for the current pins live: ``<cache_root>/k8s-<v>_etcd-<v>_<digest>``."""
    digest = hashlib.sha256()
    for name in COMPONENTS:
        for source in sorted((GO_DIR / name).iterdir()):
            if source.name in {"go.mod", "go.sum"} or source.suffix == ".go":
                digest.update(f"{name}/{source.name}\0".encode())
                digest.update(source.read_bytes())
    versions = pinned_versions()
    for name in COMPONENTS:
        digest.update(_ldflags(name, versions[name]).encode())
    label = f"k8s-{versions['kube-apiserver']}_etcd-{versions['etcd']}_{digest.hexdigest()[:12]}"
    return cache_root() / label


def _stderr_progress(message: str) -> None:
    print(f"[controlplane] {message}", file=sys.stderr, flush=True)


def ensure_binaries(progress: gotools.Progress | None = None) -> Binaries:
    """Return the cached binaries for the pinned versions, building them first if they are missing.

    The build runs at most once per cache entry, even across concurrent test runs (a file lock guards
    it). Progress lines go to ``progress`` (default: stderr) because a cold build takes minutes.
    Raises ``GoNotFoundError`` when a build is needed and no Go toolchain exists, ``ControlPlaneError`` when
    the build fails.
    """
    report = progress or _stderr_progress
    target = cache_dir()
    binaries = Binaries(etcd=target / "etcd", kube_apiserver=target / "kube-apiserver")
    if _complete(binaries):
        return binaries
    target.mkdir(parents=True, exist_ok=True)
    with gotools.locked(target):
        if _complete(binaries):  # another run built it while we waited for the lock
            return binaries
        go = find_go()
        if go is None:
            raise GoNotFoundError(
                "cannot build the test control plane: no `go` on PATH, in $GOROOT/bin or /usr/local/go/bin;"
                " install Go >= 1.26 (see docs/development.md)"
            )
        versions = pinned_versions()
        for name in COMPONENTS:
            _build(go, name, versions[name], target / name, report)
    return binaries


def _complete(binaries: Binaries) -> bool:
    return all(os.access(path, os.X_OK) for path in (binaries.etcd, binaries.kube_apiserver))


def _ldflags(name: str, version: str) -> str:
    """Linker flags: strip symbols (smaller, faster to load), and stamp the Kubernetes version."""
    flags = ["-s", "-w"]
    if name == "kube-apiserver":
        major, minor = version.removeprefix("v").split(".")[:2]
        for package in _VERSION_PACKAGES:
            stamps = (f"gitVersion={version}", f"gitMajor={major}", f"gitMinor={minor}", "gitTreeState=clean")
            flags += [f"-X={package}.{stamp}" for stamp in stamps]
    return " ".join(flags)


def _build(go: Path, name: str, version: str, output: Path, report: gotools.Progress) -> None:
    """``go build`` one program into ``output`` atomically, reporting progress as packages compile."""
    partial = output.with_name(f".{output.name}.partial-{os.getpid()}")
    # Build exactly what go.sum pins and never rewrite go.mod (a later flag overrides an earlier one).
    env = {"GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=readonly".strip()}
    report(f"building {name} {version} with {go} (first use of these versions; this takes minutes)")
    run = gotools.run_build(
        go,
        "build",
        "-o",
        str(partial),
        ".",
        ldflags=_ldflags(name, version),
        cwd=GO_DIR / name,
        env=env,
        what=name,
        report=report,
    )
    if run.code != 0:
        partial.unlink(missing_ok=True)
        raise ControlPlaneError(
            f"`go build` of {name} {version} failed (exit {run.code}) in {GO_DIR / name}:\n{run.output}"
        )
    partial.replace(output)
    report(f"built {name} {version} in {run.seconds:.0f}s -> {output}")
