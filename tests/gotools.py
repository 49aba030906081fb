"""Go programs the tests need, built once from the Go module proxy and cached outside the work tree.

Does I/O: finds the ``go`` command, runs builds with progress lines on stderr, and writes under cache
directories. The test control plane (``controlplane.build``) ``go build``s its own main modules with
:func:`run_build`; the command-line tools pinned here (helm, kustomize) are ``go install``ed by
:func:`ensure_tool` into ``$CFGSYNC_TOOLS_CACHE`` (else ``$XDG_CACHE_HOME/cfgsync-tools``, else
``~/.cache/cfgsync-tools``), one directory per tool and version, so a new pin builds a new entry and an
old one is reused, even without Go. Any test that needs another Go tool describes it with a
:class:`GoTool`; a main module of the tests' own around an upstream release (Argo CD's plugin server)
is a :class:`GoModule`, built by :func:`ensure_module` into the same cache, one entry per version and
digest of its files. Standard library only: ``python -m controlplane`` imports it without a virtualenv.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

PROGRESS_EVERY = 20.0
"""Seconds between progress lines while a build runs."""
_TAIL_LINES = 40  # of a failed build's output, quoted in the error
_TOOL_BUILD_TIMEOUT = 1200.0  # seconds; a cold build fetches ~150 modules and compiles ~1000 packages

Progress = Callable[[str], None]
"""Receives one human-readable line at a time."""


def print_progress(message: str) -> None:
    """The default :data:`Progress`: one line on stderr, flushed (a cold build is silent for minutes)."""
    print(message, file=sys.stderr, flush=True)


def find_go() -> Path | None:
    """The ``go`` command: from ``PATH``, else ``$GOROOT/bin``, else the usual ``/usr/local/go/bin``."""
    on_path = shutil.which("go")
    if on_path:
        return Path(on_path)
    candidates = [Path(os.environ["GOROOT"]) / "bin" / "go"] if os.environ.get("GOROOT") else []
    candidates.append(Path("/usr/local/go/bin/go"))
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


def cache_root(variable: str, name: str) -> Path:
    """``$variable``, else ``$XDG_CACHE_HOME/name``, else ``~/.cache/name``."""
    if explicit := os.environ.get(variable):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / name


@contextlib.contextmanager
def locked(entry: Path) -> Iterator[None]:
    """Hold the file lock ``<entry>.lock``, so concurrent runs wait for one build instead of racing."""
    lock_path = entry.with_name(entry.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildRun:
    """How a build ended."""

    code: int
    """The exit status (negative: killed by that signal, e.g. at the timeout)."""
    output: str
    """The last lines of its output, to quote when it failed."""
    seconds: float
    """How long it ran."""


def run_build(
    go: Path,
    verb: str,
    *args: str,
    ldflags: str,
    cwd: Path,
    env: Mapping[str, str],
    what: str,
    report: Progress,
    timeout: float | None = None,
) -> BuildRun:
    """Run ``go VERB -v -trimpath -ldflags=LDFLAGS ARGS...``, reporting progress as packages compile.

    The build is static (``CGO_ENABLED=0``: no C toolchain, nothing to link at run time) and ignores any
    ``go.work``; ``env`` adds to or overrides that and the process environment. Every ``PROGRESS_EVERY``
    seconds ``report`` gets a line counting modules fetched and packages compiled (``what`` names the
    build). Past ``timeout`` seconds the build is killed.
    """
    command = [str(go), verb, "-v", "-trimpath", f"-ldflags={ldflags}", *args]
    full_env = {**os.environ, "CGO_ENABLED": "0", "GOWORK": "off", **env}
    started = last_report = time.monotonic()
    downloads = packages = 0
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=full_env,
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
            if now - last_report >= PROGRESS_EVERY:
                last_report = now
                elapsed = now - started
                report(f"  {what}: {downloads} modules fetched, {packages} packages compiled, {elapsed:.0f}s")
            if timeout is not None and now - started > timeout:
                proc.kill()
                break
        code = proc.wait()
    return BuildRun(code=code, output="\n".join(tail), seconds=time.monotonic() - started)


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
"""The pinned helm (v3: the major version users of kubed's chart run), for the deploy tests."""

KUSTOMIZE = GoTool(name="kustomize", package="sigs.k8s.io/kustomize/kustomize/v5", version="v5.8.2")
"""The pinned kustomize (its API module v0.21.2 builds with the Go this project uses), for the GitOps
tests and the "without Helm" path of docs/install.md."""


def tool_cache() -> Path:
    """``$CFGSYNC_TOOLS_CACHE``, else ``$XDG_CACHE_HOME/cfgsync-tools``, else ``~/.cache/cfgsync-tools``."""
    return cache_root("CFGSYNC_TOOLS_CACHE", "cfgsync-tools")


def is_cached(tool: GoTool) -> bool:
    """Whether the tool's binary is already built."""
    return os.access(tool.binary, os.X_OK)


def ensure_tool(tool: GoTool, progress: Progress | None = None) -> Path:
    """Return the cached binary of ``tool``, building it first if needed (once, under a file lock).

    Raises :class:`NoGoError` when a build is needed and no Go toolchain exists, :class:`ToolBuildError`
    when the build fails. Progress lines go to ``progress`` (default: stderr): a cold build takes minutes.
    """
    if is_cached(tool):
        return tool.binary
    report = progress or print_progress
    target = tool.binary.parent
    with locked(target):
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


def _install(go: Path, tool: GoTool, target: Path, report: Progress) -> None:
    """``go install`` into a staging directory, then rename it into place (a half build is never used)."""
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    env = {
        "GOBIN": str(staging),
        "GOTOOLCHAIN": "local",  # build with the Go at hand; never download another toolchain
        "GOFLAGS": "",
    }
    report(f"[{tool.name}] building {tool.package}@{tool.version} with {go} (once; takes a few minutes)")
    run = run_build(
        go,
        "install",
        f"{tool.package}@{tool.version}",
        ldflags=" ".join(tool.ldflags),
        cwd=tool_cache(),
        env=env,
        what=tool.name,
        report=report,
        timeout=_TOOL_BUILD_TIMEOUT,
    )
    if run.code != 0 or not os.access(staging / tool.name, os.X_OK):
        shutil.rmtree(staging, ignore_errors=True)
        raise ToolBuildError(
            f"`go install {tool.package}@{tool.version}` failed (exit {run.code}):\n{run.output}"
        )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    report(f"[{tool.name}] built in {run.seconds:.0f}s -> {tool.binary}")


@dataclass(frozen=True, slots=True, kw_only=True)
class GoModule:
    """A main module of the tests' own that wraps an upstream release: ``go build`` of its ``cmd/*``.

    Built like the test control plane: exactly what its ``go.sum`` pins (``-mod=readonly``), into a cache
    entry named after the upstream version and a digest of the module's files and linker flags, so an
    edit or a new pin builds a new entry while an unchanged module reuses the old one, even without Go.
    """

    name: str
    """The cache entry's prefix, e.g. ``argocd``."""
    directory: Path
    """The module: ``go.mod``, ``go.sum`` and one ``cmd/<program>/`` per program."""
    upstream: str
    """The module path of the wrapped release, whose pinned version names the entry."""
    ldflags: tuple[str, ...] = ()
    """Linker flags for every program (strip, version stamps)."""

    @property
    def programs(self) -> tuple[str, ...]:
        """The programs built, one per directory under ``cmd/``."""
        return tuple(sorted(p.name for p in (self.directory / "cmd").iterdir() if p.is_dir()))

    @property
    def version(self) -> str:
        """The version of ``upstream`` that ``go.mod`` requires."""
        text = (self.directory / "go.mod").read_text(encoding="utf-8")
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["require"]:
                words = words[1:]
            if len(words) >= 2 and words[0] == self.upstream:
                return words[1]
        raise ToolBuildError(f"{self.directory / 'go.mod'}: {self.upstream} is not required")

    @property
    def entry(self) -> Path:
        """The cache entry: ``<tool cache>/<name>-<version>_<digest>``."""
        digest = hashlib.sha256(" ".join(self.ldflags).encode())
        for path in sorted(self.directory.rglob("*")):
            if path.name in {"go.mod", "go.sum"} or path.suffix == ".go":
                digest.update(f"\0{path.relative_to(self.directory).as_posix()}\0".encode())
                digest.update(path.read_bytes())
        return tool_cache() / f"{self.name}-{self.version}_{digest.hexdigest()[:12]}"

    def binary(self, program: str) -> Path:
        """Where ``program`` lives once built."""
        return self.entry / program


def ensure_module(module: GoModule, progress: Progress | None = None) -> Path:
    """Return the cache entry holding every program of ``module``, building them first if needed.

    As :func:`ensure_tool`: once, under a file lock, with progress lines; :class:`NoGoError` without
    Go, :class:`ToolBuildError` when the build fails.
    """
    target = module.entry
    if _module_built(module, target):
        return target
    report = progress or print_progress
    with locked(target):
        if _module_built(module, target):
            return target
        go = find_go()
        if go is None:
            raise NoGoError(
                f"{module.name} {module.version} is not cached in {target} and there is no Go toolchain "
                "(`go` on PATH, in $GOROOT/bin or /usr/local/go/bin) to build it"
            )
        staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        env = {
            "GOTOOLCHAIN": "local",
            "GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=readonly".strip(),
        }
        programs = ", ".join(module.programs)
        report(f"[{module.name}] building {programs} of {module.upstream}@{module.version} with {go} (once)")
        run = run_build(
            go,
            "build",
            "-o",
            f"{staging}{os.sep}",  # a directory: one binary per main package
            "./cmd/...",
            ldflags=" ".join(module.ldflags),
            cwd=module.directory,
            env=env,
            what=module.name,
            report=report,
            timeout=_TOOL_BUILD_TIMEOUT,
        )
        built = all(os.access(staging / p, os.X_OK) for p in module.programs)
        if run.code != 0 or not built:
            shutil.rmtree(staging, ignore_errors=True)
            raise ToolBuildError(
                f"`go build ./cmd/...` in {module.directory} failed (exit {run.code}):\n{run.output}"
            )
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        report(f"[{module.name}] built {programs} in {run.seconds:.0f}s -> {target}")
    return target


def _module_built(module: GoModule, target: Path) -> bool:
    return all(os.access(target / p, os.X_OK) for p in module.programs)
