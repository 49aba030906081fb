"""Writing rendered copies into a directory tree, atomically and without touching unchanged files.

I/O: reads and writes files. Layout (documented in docs/git.md)::

    DIR/.cfgsync                     marker: this directory is written by cfgsync
    DIR/<namespace>/<kind>-<name>.yaml   one copy per file, kind in lower case
    DIR/kustomization.yaml           optional (--kustomization): every file above, sorted

The new tree is staged beside DIR; unchanged files are hard-linked into it (same inode, same mtime),
then the staged tree takes DIR's place. Nothing in DIR changes until everything has been staged,
and a run that changes nothing touches nothing at all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cfgsync import errors
from cfgsync._adapters import output
from cfgsync._core import manifests
from cfgsync._core.model import Copy, ObjectRef

MARKER = ".cfgsync"
"""The file that marks a directory as cfgsync's own output."""
KUSTOMIZATION: Final = "kustomization.yaml"
"""The optional kustomization listing every file of the tree."""
_SHOWN: Final = 5  # refused Secrets named in the error; the rest are counted
Replacer = Callable[[Copy], Mapping[str, object] | None]
"""Gives the object to write instead of a copy (the ``cfgsync_tree_object`` hook), or None."""
_MARKER_TEXT = "This directory is written by `cfgsync render -o`; files in it are replaced on every render.\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeResult:
    """What a write did."""

    written: int
    """Files created or changed."""
    unchanged: int
    """Files left exactly as they were."""
    removed: int
    """Files of copies that no longer exist."""


def copy_path(namespace: str, kind: str, name: str) -> str:
    """The relative path of one copy's file."""
    return f"{namespace}/{kind.lower()}-{name}.yaml"


def copy_files(
    copies: Iterable[Copy],
    *,
    replace: Replacer,
    emit: Callable[[Copy], str] | None = None,
    allow_secrets: bool = False,
    kustomization: bool = False,
) -> Iterator[tuple[str, str]]:
    """The files of a rendered tree: one per copy, or per object a plugin writes instead.

    ``emit`` gives a copy's YAML (default: its manifest, dumped). Raises :class:`CfgsyncError` naming
    the Secret copies that would be written in plain form unless ``allow_secrets``: a tree is made to
    be committed, and a Secret in git is readable by everyone who can read the repository. Every check
    is made before this returns; the texts are then produced one file at a time, in path order, so a
    tree of 100,000 copies is never held in memory at once.
    """
    entries: dict[str, tuple[Copy, Mapping[str, object] | None]] = {}
    refused: list[ObjectRef] = []
    for copy in copies:
        obj = replace(copy)
        kind, name = (str(obj["kind"]), str(_meta(obj)["name"])) if obj else (copy.ref.kind, copy.ref.name)
        if kind == "Secret" and not allow_secrets:
            refused.append(copy.ref)
            continue
        path = copy_path(copy.ref.namespace, kind, name)
        if path in entries:
            raise errors.CfgsyncError(f"two objects would be written to {path}; the second is for {copy.ref}")
        entries[path] = (copy, obj)
    if refused:
        named = ", ".join(f"{r.namespace}/{r.name}" for r in refused[:_SHOWN])
        more = f" and {len(refused) - _SHOWN} more" if len(refused) > _SHOWN else ""
        raise errors.CfgsyncError(
            f"refusing to write {len(refused)} Secret {'copy' if len(refused) == 1 else 'copies'} in plain "
            f"form ({named}{more}): a rendered tree is made to be committed, and anyone who can read the "
            f"repository could read them. Pass --allow-secrets to write them anyway, install a plugin that "
            f"writes a reference instead (such as cfgsync-secret-reference, see docs/git.md), or leave the "
            f"Secrets out of the input"
        )
    return _texts(entries, emit=emit, kustomization=kustomization)


def _texts(
    entries: dict[str, tuple[Copy, Mapping[str, object] | None]],
    *,
    emit: Callable[[Copy], str] | None,
    kustomization: bool,
) -> Iterator[tuple[str, str]]:
    paths = sorted(entries)
    for path in paths:
        copy, obj = entries[path]
        if obj is not None:
            yield path, output.dump_yaml(_unshared(obj))
        else:
            yield path, emit(copy) if emit is not None else output.dump_yaml(manifests.to_manifest(copy))
    if kustomization:
        listing: dict[str, object] = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": paths,
        }
        yield KUSTOMIZATION, output.dump_yaml(listing)


def _unshared(obj: Mapping[str, object]) -> dict[str, object]:
    """A fresh copy, so that values a plugin shares between places are written out, not as YAML aliases."""

    def fresh(value: object) -> object:
        if isinstance(value, Mapping):
            return {str(k): fresh(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [fresh(v) for v in value]
        return value

    return {str(k): fresh(v) for k, v in obj.items()}


def _meta(obj: Mapping[str, object]) -> Mapping[str, object]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


@dataclass(frozen=True, slots=True, kw_only=True)
class FileChange:
    """One file that differs between a rendered tree on disk and a new render."""

    path: str
    """Relative path in the tree."""
    old: str | None
    """The text on disk; None when the file would be added."""
    new: str | None
    """The new text; None when the file would be removed."""


def diff_tree(root: Path, files: Iterable[tuple[str, str]]) -> tuple[FileChange, ...]:
    """What :func:`write_tree` would change in ``root``, sorted by path; reads only."""
    before = _existing_files(root) - {MARKER}
    changes: list[FileChange] = []
    for rel, new in files:
        old = (root / rel).read_text(encoding="utf-8", errors="replace") if rel in before else None
        before.discard(rel)
        if old != new:
            changes.append(FileChange(path=rel, old=old, new=new))
    for rel in before:
        changes.append(
            FileChange(path=rel, old=(root / rel).read_text(encoding="utf-8", errors="replace"), new=None)
        )
    return tuple(sorted(changes, key=lambda change: change.path))


def _existing_files(root: Path) -> set[str]:
    if not root.exists():
        return set()
    if not root.is_dir():
        raise errors.CfgsyncError(f"{root}: exists and is not a directory; choose a directory for -o")
    # os.walk rather than Path.rglob: a tree of 100,000 copies is walked in a fraction of the memory.
    found: set[str] = set()
    for folder, folders, filenames in os.walk(root):
        prefix = os.path.relpath(folder, root)
        prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
        found.update(prefix + filename for filename in filenames)
        # A link to a directory is not walked into, but it is something in the tree all the same.
        found.update(prefix + name for name in folders if os.path.islink(os.path.join(folder, name)))
    if found and MARKER not in found:
        raise errors.CfgsyncError(
            f"{root}: holds files cfgsync did not write (no {MARKER} marker); render into a new or empty "
            f"directory, so that no file of yours is replaced or removed"
        )
    return found


def write_tree(root: Path, files: Iterable[tuple[str, str]]) -> TreeResult:
    """Make ``root`` hold exactly ``files`` (relative path, text) plus the marker."""
    root = root.absolute()
    before = _existing_files(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.staging-", dir=root.parent))
    written = unchanged = 0
    try:
        wanted = {MARKER}
        for rel, text in [(MARKER, _MARKER_TEXT), *files]:
            wanted.add(rel)
            data = text.encode()
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            old = root / rel
            if rel in before and old.stat().st_size == len(data) and old.read_bytes() == data:
                os.link(old, target)
                unchanged += 1 if rel != MARKER else 0
            else:
                target.write_bytes(data)
                written += 1 if rel != MARKER else 0
        removed = len(before - wanted)
        if written == 0 and removed == 0 and (MARKER in before):
            shutil.rmtree(staging)
            return TreeResult(written=0, unchanged=unchanged, removed=0)
        _swap(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return TreeResult(written=written, unchanged=unchanged, removed=removed)


def _swap(staging: Path, root: Path) -> None:
    if not root.exists():
        staging.rename(root)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
    old.rmdir()
    root.rename(old)
    try:
        staging.rename(root)
    except OSError:
        old.rename(root)
        raise
    shutil.rmtree(old, ignore_errors=True)
