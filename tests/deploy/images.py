"""Container images built for real, without a Docker engine: buildah, skopeo and a Debian-built base.

Does I/O: runs ``buildah``, ``skopeo``, ``mmdebstrap`` (through ``deploy/base/python-base.sh``) and bash,
and writes under ``$CFGSYNC_IMAGES_CACHE`` (else ``$XDG_CACHE_HOME/cfgsync-images``, else
``~/.cache/cfgsync-images``): a containers-storage of its own (the ``vfs`` driver, which needs no
kernel overlay support), the base images keyed by a digest of the script that makes them, the built
images keyed by a digest of everything they are built from, and a wheelhouse keyed by the dependencies'
declarations. Each entry is made once, under a file lock, with progress lines on stderr. The commands
that build are the ones docs/install.md shows: this module runs that document's blocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gotools
from deploy.dockerfile import context_files
from deploy.recipe import REPO, make_wheelhouse

INSTALL_DOC = REPO / "docs" / "install.md"
BASE_SCRIPT = REPO / "deploy" / "base" / "python-base.sh"
DOCKERFILE = REPO / "Dockerfile"
RECIPES = {"cfgsync": "controller", "cfgsync-cmp": "cmp", "cfgsync-krm": "krm"}
"""Each image, by the name docs/install.md tags it with, and its target in the Dockerfile."""
TOOLS = {
    "buildah": "buildah",
    "skopeo": "skopeo",
    "mmdebstrap": "mmdebstrap",
    "docker-registry": "docker-registry",
    "htpasswd": "apache2-utils",
}
"""The commands this path needs, each with the Debian package that has it (.ci/run installs them)."""
_STEP_TIMEOUT = 1200  # seconds for one block of commands (a cold base takes about three minutes)


class ImageBuildError(RuntimeError):
    """A documented command failed; the message quotes the end of its output."""


def missing_tools() -> dict[str, str]:
    """The commands of :data:`TOOLS` not on ``PATH``, with their Debian packages."""
    return {command: package for command, package in TOOLS.items() if shutil.which(command) is None}


def cache() -> Path:
    """``$CFGSYNC_IMAGES_CACHE``, else ``$XDG_CACHE_HOME/cfgsync-images``, else ``~/.cache/...``."""
    return gotools.cache_root("CFGSYNC_IMAGES_CACHE", "cfgsync-images")


def storage_conf(root: Path) -> Path:
    """A containers-storage configuration for a store under ``root`` (``vfs`` driver); its path."""
    root.mkdir(parents=True, exist_ok=True)
    conf = root / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{root / "graph"}"\nrunroot = "{root / "run"}"\n',
        encoding="utf-8",
    )
    return conf


def doc_block(name: str) -> str:
    """The shell block of docs/install.md under the marker ``<!-- tested: NAME -->``."""
    text = INSTALL_DOC.read_text(encoding="utf-8")
    found = re.findall(rf"<!-- tested: {re.escape(name)} -->\n```sh\n(.*?)```", text, re.DOTALL)
    if len(found) != 1:
        raise AssertionError(f"docs/install.md: no single ```sh block marked <!-- tested: {name} -->")
    block: str = found[0]
    return block


def run_block(
    name: str, *, cwd: Path, env: Mapping[str, str], prelude: str = "", what: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run docs/install.md's block ``name`` with bash (``set -eu``), streaming its lines as progress.

    ``prelude`` is shell the test puts before the block (a function wrapping a command, say); the
    block itself runs verbatim.
    """
    script = f"set -eu\n{prelude}\n{doc_block(name)}"
    label = what or name
    started = time.monotonic()
    lines: list[str] = []
    with subprocess.Popen(
        ["bash", "-c", script],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if _worth_showing(line):
                gotools.print_progress(f"  [{label}] {line.rstrip()[:160]}")
            if time.monotonic() - started > _STEP_TIMEOUT:
                proc.kill()
                break
        code = proc.wait()
    output = "\n".join(lines)
    if code != 0:
        tail = "\n".join(lines[-40:])
        raise ImageBuildError(f"docs/install.md block {name!r} failed (exit {code}):\n{tail}")
    gotools.print_progress(f"  [{label}] done in {time.monotonic() - started:.0f}s")
    return subprocess.CompletedProcess(["bash", "-c", script], code, output, "")


def _worth_showing(line: str) -> bool:
    """Step headers and the base script's own lines: enough to see a cold build move, not every file."""
    return line.startswith(("STEP ", "[1/2] STEP", "[2/2] STEP", "python-base:", "Pulled:", "Pushed:"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Storage:
    """A containers-storage and the environment that points buildah and skopeo at it."""

    conf: Path
    """Its ``storage.conf``."""

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with ``CONTAINERS_STORAGE_CONF`` set."""
        return {**(base if base is not None else os.environ), "CONTAINERS_STORAGE_CONF": str(self.conf)}

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """A command (``buildah ...``, ``skopeo ...``) against this storage."""
        done = subprocess.run(
            list(args), env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise ImageBuildError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done

    def has_image(self, name: str) -> bool:
        """Whether ``name`` is an image in this storage."""
        return self.run("buildah", "inspect", "--type", "image", name, check=False).returncode == 0

    def inspect(self, name: str) -> dict[str, Any]:
        """``buildah inspect`` of the image ``name``."""
        found: dict[str, Any] = json.loads(self.run("buildah", "inspect", "--type", "image", name).stdout)
        return found

    def unpacked_size(self, name: str) -> int:
        """The image's files, unpacked, in bytes (what ``buildah images`` reports, as an exact count)."""
        container = self.run("buildah", "from", "--pull=never", "--quiet", name).stdout.strip()
        try:
            root = Path(self.run("buildah", "mount", container).stdout.strip())
            return sum(p.lstat().st_size for p in root.rglob("*") if not p.is_dir() or p.is_symlink())
        finally:
            self.run("buildah", "umount", container, check=False)
            self.run("buildah", "rm", container, check=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltImages:
    """The three images, built from this checkout into the cached storage."""

    storage: Storage
    """Where they are."""
    version: str
    """Their tag (the package's version)."""
    base: str
    """The base images' name (``<base>:build`` and ``<base>:run``)."""
    built_now: bool
    """Whether this run built them (else they came from the cache)."""
    context: Path
    """The build context they were built from: a copy of the checkout with ./wheelhouse and the chart."""

    def local_name(self, image: str) -> str:
        """``localhost/IMAGE:VERSION``, as buildah names an image tagged ``IMAGE:VERSION``."""
        return f"localhost/{image}:{self.version}"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def ensure_base(storage: Storage) -> str:
    """The base images' name, ``localhost/cfgsync-python-<digest of the script>``, built if missing."""
    key = _digest(BASE_SCRIPT.read_bytes(), doc_block("base").encode())
    name = f"localhost/cfgsync-python-{key}"
    entry = cache() / f"base-{key}"
    if storage.has_image(f"{name}:build") and storage.has_image(f"{name}:run"):
        return name
    with gotools.locked(entry):
        if not (storage.has_image(f"{name}:build") and storage.has_image(f"{name}:run")):
            gotools.print_progress(f"[images] building {name}:build and :run from Debian's packages (once)")
            run_block("base", cwd=REPO, env=storage.env() | {"BASE": name}, what="base")
    return name


def wheelhouse() -> Path:
    """The dependencies' wheels (cfgsync's own left out), as a connected machine makes them; cached."""
    key = _digest((REPO / "pyproject.toml").read_bytes())
    target = cache() / f"wheelhouse-{key}"
    if target.is_dir():
        return target
    with gotools.locked(target):
        if not target.is_dir():
            gotools.print_progress("[images] making the wheelhouse (pip wheel; once per pyproject.toml)")
            staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            make_wheelhouse(staging / "wheelhouse", REPO)
            (staging / "wheelhouse").rename(target)
            shutil.rmtree(staging)
    return target


def build_context(target: Path, wheels: Path) -> Path:
    """A copy of the checkout as the build sees it: the context, the recipe, the chart, ./wheelhouse."""
    files = [*context_files(REPO), DOCKERFILE.relative_to(REPO)]
    files += [p.relative_to(REPO) for p in (REPO / "deploy" / "helm").rglob("*") if p.is_file()]
    for relative in [*files, Path(".dockerignore")]:
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target / relative)
    shutil.copytree(wheels, target / "wheelhouse")
    return target


def ensure_images(storage: Storage, *, work: Path, version: str) -> BuiltImages:
    """The three images of docs/install.md's ``build`` block, built unless their inputs are cached.

    The key covers every file of the build context, the recipe, the block itself and the base images'
    IDs, so any change to what goes into an image builds all three again (about three minutes). Old
    builds stay in the storage, which test sessions may share: docs/install.md says how to prune it.
    """
    base = ensure_base(storage)
    wheels = wheelhouse()
    context = build_context(work / "context", wheels)
    inputs = sorted(p for p in context.rglob("*") if p.is_file() and "helm" not in p.parts)
    base_ids = [storage.inspect(f"{base}:{kind}")["FromImageID"].encode() for kind in ("build", "run")]
    key = _digest(
        doc_block("build").encode(),
        version.encode(),
        *base_ids,
        *(str(p.relative_to(context)).encode() + p.read_bytes() for p in inputs),
    )
    stamp = cache() / f"images-{key}.json"
    built = BuiltImages(storage=storage, version=version, base=base, built_now=False, context=context)

    def cached() -> bool:
        if not stamp.is_file():
            return False
        ids: dict[str, str] = json.loads(stamp.read_text(encoding="utf-8"))
        return all(
            storage.has_image(built.local_name(image))
            and storage.inspect(built.local_name(image))["FromImageID"] == ids.get(image)
            for image in RECIPES
        )

    if cached():
        return built
    with gotools.locked(stamp):
        if cached():
            return built
        gotools.print_progress(f"[images] building {', '.join(RECIPES)} {version} with buildah (key {key})")
        run_block("build", cwd=context, env=storage.env() | {"BASE": base, "VERSION": version}, what="build")
        ids = {image: storage.inspect(built.local_name(image))["FromImageID"] for image in RECIPES}
        stamp.write_text(json.dumps(ids, indent=2) + "\n", encoding="utf-8")
    return BuiltImages(storage=storage, version=version, base=base, built_now=True, context=context)
