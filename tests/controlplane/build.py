"""Build etcd and kube-apiserver from their Go modules, once, and cache the binaries.

Does I/O: runs ``go build`` and writes under the cache directory (``$CFGSYNC_CONTROLPLANE_CACHE``, else
``$XDG_CACHE_HOME/cfgsync-controlplane``, else ``~/.cache/cfgsync-controlplane``). The versions are pinned
in ``go/*/go.mod``; a cache entry is named after them and a digest of the Go sources, so changing a pin
(or a wrapper) builds a new entry while an unchanged tree reuses the old one, even without Go installed.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

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
_PROGRESS_EVERY = 20.0  # seconds between progress lines while a build runs

Progress = Callable[[str], None]


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
    if explicit := os.environ.get("CFGSYNC_CONTROLPLANE_CACHE"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "cfgsync-controlplane"


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


def find_go() -> Path | None:
    """The ``go`` command: from ``PATH``, else ``$GOROOT/bin``, else the usual ``/usr/local/go/bin``."""
    on_path = shutil.which("go")
    if on_path:
        return Path(on_path)
    candidates = [Path(os.environ["GOROOT"]) / "bin" / "go"] if os.environ.get("GOROOT") else []
    candidates.append(Path("/usr/local/go/bin/go"))
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


def _stderr_progress(message: str) -> None:
    print(f"[controlplane] {message}", file=sys.stderr, flush=True)


def ensure_binaries(progress: Progress | None = None) -> Binaries:
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
    with _locked(target.with_name(target.name + ".lock")):
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


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ldflags(name: str, version: str) -> str:
    """Linker flags: strip symbols (smaller, faster to load), and stamp the Kubernetes version."""
    flags = ["-s", "-w"]
    if name == "kube-apiserver":
        major, minor = version.removeprefix("v").split(".")[:2]
        for package in _VERSION_PACKAGES:
            stamps = (f"gitVersion={version}", f"gitMajor={major}", f"gitMinor={minor}", "gitTreeState=clean")
            flags += [f"-X={package}.{stamp}" for stamp in stamps]
    return " ".join(flags)


def _build(go: Path, name: str, version: str, output: Path, report: Progress) -> None:
    """``go build`` one program into ``output`` atomically, reporting progress as packages compile."""
    partial = output.with_name(f".{output.name}.partial-{os.getpid()}")
    env = {
        **os.environ,
        "CGO_ENABLED": "0",  # static binaries: no C toolchain needed, nothing to link at run time
        # Build exactly what go.sum pins and never rewrite go.mod (a later flag overrides an earlier one).
        "GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=readonly".strip(),
        "GOWORK": "off",
    }
    command = [
        str(go),
        "build",
        "-v",
        "-trimpath",
        f"-ldflags={_ldflags(name, version)}",
        "-o",
        str(partial),
        ".",
    ]
    report(f"building {name} {version} with {go} (first use of these versions; this takes minutes)")
    started = time.monotonic()
    last_report = started
    packages = downloads = 0
    tail: collections.deque[str] = collections.deque(maxlen=40)
    with subprocess.Popen(
        command,
        cwd=GO_DIR / name,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            if line.startswith("go: downloading"):
                downloads += 1
            else:
                packages += 1
            now = time.monotonic()
            if now - last_report >= _PROGRESS_EVERY:
                last_report = now
                elapsed = now - started
                report(f"  {name}: {downloads} modules fetched, {packages} packages compiled, {elapsed:.0f}s")
        code = proc.wait()
    if code != 0:
        partial.unlink(missing_ok=True)
        details = "\n".join(tail)
        raise ControlPlaneError(
            f"`go build` of {name} {version} failed (exit {code}) in {GO_DIR / name}:\n{details}"
        )
    partial.replace(output)
    report(f"built {name} {version} in {time.monotonic() - started:.0f}s -> {output}")
