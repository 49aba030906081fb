"""Writing rendered copies into a directory tree, atomically and without touching unchanged files.

I/O: writes files. Layout (documented in docs/render.md)::

    DIR/.cfgsync                     marker: this directory is written by cfgsync
    DIR/<namespace>/<kind>-<name>.yaml   one copy per file, kind in lower case

The new tree is staged beside DIR; unchanged files are hard-linked into it (same inode, same mtime),
then the staged tree takes DIR's place. Nothing in DIR changes until everything has been staged,
and a run that changes nothing touches nothing at all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cfgsync import errors

MARKER = ".cfgsync"
"""The file that marks a directory as cfgsync's own output."""
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


def _existing_files(root: Path) -> set[str]:
    if not root.exists():
        return set()
    if not root.is_dir():
        raise errors.CfgsyncError(f"{root}: exists and is not a directory; choose a directory for -o")
    found = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}
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
