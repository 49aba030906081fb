"""Writing rendered copies into a directory tree: crash-safe, in place, without touching unchanged files.

I/O: reads and writes files (through :mod:`cfgsync._adapters.tree_disk`). Layout (docs/git.md)::

    DIR/.cfgsync                     inventory: the files below that cfgsync wrote
    DIR/<namespace>/<kind>-<name>.yaml   one copy per file, kind in lower case
    DIR/kustomization.yaml           optional (--kustomization): every file above, sorted

Changed files are staged in a journal inside DIR and then renamed into place, one file at a time;
DIR itself is never replaced, and files cfgsync did not write are never touched. A run that changes
nothing touches nothing at all.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cfgsync import errors
from cfgsync._adapters import output, tree_disk
from cfgsync._core import manifests
from cfgsync._core.model import Copy, ObjectRef

MARKER = tree_disk.INVENTORY
"""The inventory that marks a directory as cfgsync's output and lists the files it wrote there."""
KUSTOMIZATION: Final = "kustomization.yaml"
"""The optional kustomization listing every file of the tree."""
_SHOWN: Final = 5  # refused Secrets named in the error; the rest are counted
Replacer = Callable[[Copy], Mapping[str, object] | None]
"""Gives the object to write instead of a copy (the ``cfgsync_tree_object`` hook), or None."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeResult:
    """What a write did."""

    written: int
    """Files created or changed."""
    unchanged: int
    """Files left exactly as they were."""
    removed: int
    """Files of copies that no longer exist."""
    recovered: bool = False
    """True when an earlier render had stopped half-way and this one first finished or rolled it back."""


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


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


def diff_tree(root: Path, files: Iterable[tuple[str, str]]) -> tuple[FileChange, ...]:
    """What :func:`write_tree` would change in ``root``, sorted by path; reads only, never follows a link."""
    root = Path(os.path.abspath(root))
    if not os.path.lexists(root):
        return tuple(FileChange(path=rel, old=None, new=new) for rel, new in sorted(files))
    with tree_disk.os_errors(root):
        if not root.is_dir():
            raise errors.OutputError(f"{root}: exists and is not a directory; name the rendered tree")
        if tree_disk.has_journal(root):
            raise errors.OutputError(
                f"{root}: a render into it stopped half-way ({tree_disk.JOURNAL} is there); run "
                f"`cfgsync render -o {root}` to finish it, then diff again"
            )
        owned = _owned(root)
        changes: list[FileChange] = []
        for rel, new in files:
            tree_disk.check_relative(rel, where=str(root))
            old = tree_disk.read_file(root, rel)
            if old is not None and rel not in owned:
                raise _foreign(root, rel)
            owned.discard(rel)
            if _text(old) != new:
                changes.append(FileChange(path=rel, old=_text(old), new=new))
        for rel in owned:
            old = tree_disk.read_file(root, rel)
            if old is not None:
                changes.append(FileChange(path=rel, old=_text(old), new=None))
    return tuple(sorted(changes, key=lambda change: change.path))


def _owned(root: Path) -> set[str]:
    owned = tree_disk.read_inventory(root)
    if owned is None:
        tree_disk.require_unclaimed(root)
        return set()
    return owned


def _foreign(root: Path, rel: str) -> errors.OutputError:
    return errors.OutputError(
        f"{root / rel}: a file cfgsync did not write (it is not in {root / MARKER}) is where a copy goes; "
        f"move it away, or render elsewhere. cfgsync never replaces files it did not write"
    )


def write_tree(root: Path, files: Iterable[tuple[str, str]]) -> TreeResult:
    """Make ``root`` hold ``files`` (relative path, text) among whatever else is there that is not cfgsync's.

    ``root`` is made if missing and never replaced (a link stays a link, a mount point works, its mode,
    owner and group stay). Files of an earlier render that are no longer wanted are removed.
    """
    root = Path(os.path.abspath(root))
    with tree_disk.os_errors(root):
        if os.path.lexists(root) and not root.is_dir():
            raise errors.OutputError(f"{root}: exists and is not a directory; choose a directory for -o")
        created = not os.path.lexists(root)
        root.mkdir(parents=True, exist_ok=True)
        try:
            with tree_disk.locked(root):
                recovered = tree_disk.has_journal(root)
                tree_disk.carry_out(root)
                return _write(root, files, recovered=recovered)
        except BaseException:
            if created:
                with contextlib.suppress(OSError):
                    root.rmdir()  # made for this render, which wrote nothing: leave no trace
            raise


def _write(root: Path, files: Iterable[tuple[str, str]], *, recovered: bool) -> TreeResult:
    inventory = tree_disk.read_file(root, MARKER)
    owned = _owned(root)
    journal = tree_disk.Journal(root=root)
    written = unchanged = 0
    try:
        wanted: list[str] = []
        for rel, text in files:
            tree_disk.check_relative(rel, where=str(root))
            data = text.encode()
            old = tree_disk.read_file(root, rel, known=journal.known)
            if rel not in owned and old is not None:
                raise _foreign(root, rel)
            wanted.append(rel)
            if old == data:
                unchanged += 1
            else:
                journal.stage(rel, data)
                written += 1
        removals = sorted(owned - set(wanted))
        listing = tree_disk.inventory_text(wanted).encode()
        if written == 0 and not removals and inventory == listing:
            return TreeResult(written=0, unchanged=unchanged, removed=0, recovered=recovered)
        journal.stage(MARKER, listing)
        journal.commit(removals)
    except BaseException:
        if not journal.committed:
            journal.discard()
        raise
    return TreeResult(written=written, unchanged=unchanged, removed=len(removals), recovered=recovered)
