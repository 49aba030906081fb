"""Command-line tools written in Go (helm), built once from the Go module proxy and cached.

I/O: runs ``go install`` and writes under the tool cache (``$CFGSYNC_TOOLS_CACHE``, else
``$XDG_CACHE_HOME/cfgsync-tools``, else ``~/.cache/cfgsync-tools``), one directory per tool and version,
so a new pin builds a new entry and an old one is reused, even without Go. Generic on purpose: any
test that needs another Go tool describes it with a :class:`GoTool` and calls :func:`ensure_tool`.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from controlplane.build import find_go

_PROGRESS_EVERY = 20.0  # seconds between progress lines while a build runs
_BUILD_TIMEOUT = 1200.0  # seconds; a cold build fetches ~150 modules and compiles ~1000 packages

Progress = Callable[[str], None]


class ToolBuildError(RuntimeError):
    """A tool could not be built; the message says why and quotes the end of the build's output."""


class NoGoError(ToolBuildError):
    """The tool is not cached and there is no Go toolchain to build it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GoTool:
    """A program installed with ``go install MODULE@VERSION``."""

    name: str
    """The binary's name, e.g. ``helm``."""
    package: str
    """The main package, e.g. ``helm.sh/helm/v3/cmd/helm``."""
    version: str
    """The pinned module version, e.g. ``v3.22.0``."""
    ldflags: tuple[str, ...] = ()
    """Linker flags, as the tool's own release build passes them (version stamps)."""

    @property
    def binary(self) -> Path:
        """Where the cached binary lives: ``<cache>/<name>-<version>/<name>``."""
        return tool_cache() / f"{self.name}-{self.version}" / self.name


HELM_VERSION = "v3.22.0"
HELM_KUBE_MINOR = "37"
"""helm v3.22.0 is built against k8s.io/client-go v0.37; its release build stamps 1.37 as the Kubernetes
version ``helm template`` and ``helm lint`` assume (an unstamped build says 1.20)."""

HELM = GoTool(
    name="helm",
    package="helm.sh/helm/v3/cmd/helm",
    version=HELM_VERSION,
    ldflags=(
        "-s",
        "-w",
        f"-X=helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
        *(
            f"-X=helm.sh/helm/v3/pkg/{package}.k8sVersion{part}={value}"
            for package in ("chartutil", "lint/rules")
            for part, value in (("Major", "1"), ("Minor", HELM_KUBE_MINOR))
        ),
    ),
)
"""The pinned helm (v3: the major version users of kubed's chart run)."""

KUSTOMIZE = GoTool(name="kustomize", package="sigs.k8s.io/kustomize/kustomize/v5", version="v5.8.2")
"""The kustomize the GitOps tests pin (same cache entry), for the "without Helm" path of docs/install.md."""


def tool_cache() -> Path:
    """``$CFGSYNC_TOOLS_CACHE``, else ``$XDG_CACHE_HOME/cfgsync-tools``, else ``~/.cache/cfgsync-tools``."""
    if explicit := os.environ.get("CFGSYNC_TOOLS_CACHE"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "cfgsync-tools"


def is_cached(tool: GoTool) -> bool:
    """Whether the tool's binary is already built."""
    return os.access(tool.binary, os.X_OK)


def _stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_tool(tool: GoTool, progress: Progress | None = None) -> Path:
    """Return the cached binary of ``tool``, building it first if needed (once, under a file lock).

    Raises :class:`NoGoError` when a build is needed and no Go toolchain exists, :class:`ToolBuildError`
    when the build fails. Progress lines go to ``progress`` (default: stderr): a cold build takes minutes.
    """
    if is_cached(tool):
        return tool.binary
    report = progress or _stderr_progress
    target = tool.binary.parent
    with _locked(target.with_name(target.name + ".lock")):
        if is_cached(tool):  # built by a concurrent run while this one waited
            return tool.binary
        go = find_go()
        if go is None:
            raise NoGoError(
                f"{tool.name} {tool.version} is not cached in {target} and there is no Go toolchain "
                "(`go` on PATH, in $GOROOT/bin or /usr/local/go/bin) to build it"
            )
        _install(go, tool, target, report)
    return tool.binary


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _install(go: Path, tool: GoTool, target: Path, report: Progress) -> None:
    """``go install`` into a staging directory, then rename it into place (a half build is never used)."""
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    env = {
        **os.environ,
        "GOBIN": str(staging),
        "CGO_ENABLED": "0",  # a static binary: no C toolchain needed, nothing to link at run time
        "GOTOOLCHAIN": "local",  # build with the Go at hand; never download another toolchain
        "GOFLAGS": "",
        "GOWORK": "off",
    }
    command = [
        str(go),
        "install",
        "-v",
        "-trimpath",
        f"-ldflags={' '.join(tool.ldflags)}",
        f"{tool.package}@{tool.version}",
    ]
    report(f"[{tool.name}] building {tool.package}@{tool.version} with {go} (once; takes a few minutes)")
    started = last = time.monotonic()
    downloads = packages = 0
    tail: collections.deque[str] = collections.deque(maxlen=30)
    with subprocess.Popen(
        command,
        cwd=tool_cache(),
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
            if now - last >= _PROGRESS_EVERY:
                last = now
                elapsed = now - started
                report(f"[{tool.name}]   {downloads} modules, {packages} packages, {elapsed:.0f}s")
            if now - started > _BUILD_TIMEOUT:
                proc.kill()
                break
        code = proc.wait()
    if code != 0 or not os.access(staging / tool.name, os.X_OK):
        shutil.rmtree(staging, ignore_errors=True)
        details = "\n".join(tail)
        raise ToolBuildError(f"`go install {tool.package}@{tool.version}` failed (exit {code}):\n{details}")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    report(f"[{tool.name}] built in {time.monotonic() - started:.0f}s -> {tool.binary}")
