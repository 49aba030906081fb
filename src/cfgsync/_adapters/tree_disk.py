"""A rendered tree on disk: which files are cfgsync's, reads that never follow links, a crash-safe journal.

I/O: reads, writes and removes files inside one directory (``DIR``), and never anything outside it.

- **Ownership.** ``DIR/.cfgsync`` lists, one per line, every file cfgsync wrote there. Only those are
  ever replaced or removed; anything else (OWNERS, notes, ``.git/``) is left alone, and a render
  that would overwrite such a file refuses.
- **No links followed.** Every path is checked component by component below ``DIR``: a symbolic link,
  a device, a FIFO is refused, so a committed link to ``/proc/self/environ`` or ``/dev/zero`` is
  never read and a link to a directory elsewhere is never written through. ``DIR`` itself may be a
  link (it is kept as one) or a mount point: it is never renamed or replaced.
- **Journal.** New contents are staged in ``DIR/.cfgsync-journal/`` (files without a ``.yaml``
  ending, so no tool reading the tree takes them for manifests). Writing the journal's ``plan`` is
  the commit point: a run killed before it leaves the tree as it was, and the next run deletes the
  staged files (roll back); a run killed after it leaves a plan that the next run carries out to the
  end (roll forward). Each file is replaced by one ``rename``, so a reader sees the old or the new
  file, never a half-written one, and ``DIR`` is never missing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cfgsync import errors

INVENTORY: Final = ".cfgsync"
"""The inventory (and marker): the files cfgsync wrote in this directory, one relative path a line."""
JOURNAL: Final = ".cfgsync-journal"
"""Where a render stages its files and its plan until it is done."""
_PLAN: Final = "plan"
_STAGED: Final = "new"
_NAME_MAX: Final = 255  # bytes in one file name on Linux file systems
_INVENTORY_HEADER: Final = (
    "# Written by `cfgsync render -o`. The files listed below are cfgsync's: it replaces and removes\n"
    "# only these. Every other file in this directory is left alone. cfgsync rewrites this list.\n"
)
_LEGACY_MARKER: Final = (
    "This directory is written by `cfgsync render -o`; files in it are replaced on every render.\n"
)
# What the renderer writes: <namespace>/<kind>-<name>.yaml, and kustomization.yaml at the top.
_LEGACY_LAYOUT: Final = re.compile(r"[a-z0-9][-a-z0-9]*/[^/]+\.yaml|kustomization\.yaml")
_PLAIN_PATH: Final = re.compile(r"(?:[^/\x00\n\r\t]+/)*[^/\x00\n\r\t]+")
_OWN: Final = frozenset({INVENTORY, JOURNAL})
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

checkpoint: Callable[[str], None] = lambda step: None  # noqa: E731 -- a replaceable no-op
"""Called at each step of a write (``staged``, ``committed``, ``applied <n>``, ``done``).

A test replaces it to stop the process at a chosen point, which is how crash safety is tested.
"""


def check_relative(rel: str, *, where: str) -> None:
    """Raise :class:`OutputError` unless ``rel`` is a plain relative path in the tree, not cfgsync's own."""
    parts = rel.split("/")
    if _PLAIN_PATH.fullmatch(rel) is None or parts[0] in _OWN or "." in parts or ".." in parts:
        raise errors.OutputError(
            f"{where}: {rel!r} is not a path inside the tree (empty, absolute, '..', or cfgsync's own "
            f"file); a plugin or a name produced it: fix the object's kind or name"
        )
    if len(rel) > _NAME_MAX or len(rel.encode()) > _NAME_MAX:
        for part in parts:
            if len(part.encode()) > _NAME_MAX:
                raise errors.OutputError(
                    f"{where}: the file name {part[:40]}... is {len(part.encode())} bytes, over the "
                    f"{_NAME_MAX} a file system allows; shorten the copy's name (cfgsync.io/copy-name or a "
                    f"SyncRule's copyName)"
                )


def _os_error(exc: OSError, root: Path) -> errors.OutputError:
    hints = {
        errno.ENOSPC: "free space on that file system",
        errno.EDQUOT: "raise the disk quota or free space",
        errno.EACCES: "give the user running cfgsync write access to the directory",
        errno.EPERM: "give the user running cfgsync write access to the directory",
        errno.EROFS: "the file system is read-only: render somewhere writable",
        errno.ENAMETOOLONG: "shorten the copy's name (cfgsync.io/copy-name or a SyncRule's copyName)",
    }
    hint = hints.get(exc.errno or 0, "fix the cause")
    where = exc.filename or root
    return errors.OutputError(
        f"{where}: {exc.strerror or exc}; {hint}, then render again (a render that stopped half-way is "
        f"finished or rolled back by the next one)"
    )


@contextlib.contextmanager
def os_errors(root: Path) -> Iterator[None]:
    """Turn an ``OSError`` into an :class:`OutputError` naming the path and the fix."""
    try:
        yield
    except OSError as exc:
        raise _os_error(exc, root) from exc


def _check_parents(root: Path, rel: str, *, create: bool = False, known: set[str] | None = None) -> bool:
    """True when every directory of ``rel`` below ``root`` exists (made if ``create``) and none is a link.

    ``known`` holds folders already checked during this (locked) run, so each is checked once.
    """
    cut = rel.rfind("/")
    if cut == -1:
        return True
    parent = rel[:cut]
    if known is not None and parent in known:
        return True
    folder = str(root)
    for part in parent.split("/"):
        folder = f"{folder}/{part}"
        try:
            info = os.lstat(folder)
        except FileNotFoundError:
            if not create:
                return False
            os.mkdir(folder)
            continue
        if stat.S_ISLNK(info.st_mode):
            raise errors.OutputError(
                f"{folder}: a symbolic link inside the tree; cfgsync never follows links in {root}. "
                f"Replace it with a directory (or remove it)"
            )
        if not stat.S_ISDIR(info.st_mode):
            raise errors.OutputError(f"{folder}: not a directory; remove it or render elsewhere")
    if known is not None:
        known.add(parent)
    return True


def read_file(root: Path, rel: str, *, known: set[str] | None = None) -> bytes | None:
    """The bytes of ``root/rel`` if it exists; never follows a link, never reads a device or FIFO.

    Nothing there (not even a dangling link) is None; a link, device, FIFO or folder is an error.
    """
    if not _check_parents(root, rel, known=known):
        return None
    path = f"{root}/{rel}"
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise errors.OutputError(
                f"{path}: a symbolic link inside the tree; cfgsync never follows links in {root}. "
                f"Remove it: cfgsync writes plain files only"
            ) from exc
        raise
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise errors.OutputError(
                f"{path}: not a regular file (a folder, device, FIFO or socket); cfgsync reads and writes "
                f"plain files only. Remove it"
            )
        return handle.read()


def read_inventory(root: Path) -> set[str] | None:
    """The files cfgsync wrote in ``root`` (from ``.cfgsync``); None when ``root`` has no inventory."""
    data = read_file(root, INVENTORY)
    if data is None:
        return None
    text = data.decode("utf-8", errors="replace")
    if text == _LEGACY_MARKER:
        # Trees written before the inventory: cfgsync's files are those of its layout.
        return {rel for rel in walk_files(root) if _LEGACY_LAYOUT.fullmatch(rel)}
    owned: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if line and not line.startswith("#"):
            check_relative(line, where=f"{root / INVENTORY}:{number}")
            owned.add(line)
    return owned


def inventory_text(paths: list[str]) -> str:
    """The inventory listing ``paths`` (sorted)."""
    return _INVENTORY_HEADER + "".join(f"{rel}\n" for rel in sorted(paths))


def walk_files(root: Path) -> list[str]:
    """Every file (and link) below ``root``, relative, without following links; the journal left out."""
    found: list[str] = []
    for folder, folders, filenames in os.walk(root):
        prefix = os.path.relpath(folder, root)
        prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
        if not prefix:
            folders[:] = [name for name in folders if name != JOURNAL]
        found.extend(prefix + name for name in filenames)
        # A link to a directory is not walked into, but it is something in the tree all the same.
        found.extend(prefix + name for name in folders if os.path.islink(os.path.join(folder, name)))
    return found


def require_unclaimed(root: Path) -> None:
    """Raise unless ``root`` (which has no inventory) holds no file at all: it is not cfgsync's to fill."""
    if walk_files(root):
        raise errors.OutputError(
            f"{root}: holds files cfgsync did not write (no {INVENTORY} marker); render into a new or "
            f"empty directory, so that no file of yours is replaced or removed (files added after the "
            f"first render are left alone)"
        )


def has_journal(root: Path) -> bool:
    """True when a render into ``root`` stopped before it was done."""
    return os.path.lexists(root / JOURNAL)


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``root`` (the directory itself: no lock file is left behind)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise errors.OutputError(
                f"{root}: another cfgsync render is writing this directory; wait for it to finish"
            ) from exc
        yield
    finally:
        os.close(fd)


def _write_new(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@dataclass(slots=True)
class Journal:
    """One render's staged files and plan, inside ``root``; the tree is not touched before :meth:`commit`."""

    root: Path
    """The tree."""
    writes: list[tuple[int, str]] = field(default_factory=list)
    """Staged file number and the relative path it goes to, in staging order."""
    committed: bool = False
    """True once the plan is written: from then on the render is finished, now or by the next run."""
    known: set[str] = field(default_factory=set)
    """Folders of the tree checked (or made) during this run."""

    @property
    def folder(self) -> Path:
        """``root/.cfgsync-journal``."""
        return self.root / JOURNAL

    def stage(self, rel: str, data: bytes) -> None:
        """Write ``data`` into the journal, to replace ``rel`` on :meth:`commit`."""
        if not self.writes:
            self.folder.mkdir(mode=0o700)  # it may hold Secret copies until they are in place
            (self.folder / _STAGED).mkdir(mode=0o700)
        number = len(self.writes)
        _write_new(f"{self.root}/{JOURNAL}/{_STAGED}/{number}", data)
        self.writes.append((number, rel))

    def commit(self, removals: list[str]) -> None:
        """Write the plan (the commit point), then carry it out and delete the journal.

        The inventory is always among the staged files, so the journal's folder exists by now.
        """
        # The inventory goes in last: until then, the old one still lists every file being removed.
        ordered = [w for w in self.writes if w[1] != INVENTORY]
        lines = [f"write\t{n}\t{rel}\n" for n, rel in ordered]
        lines += [f"remove\t{rel}\n" for rel in removals]
        lines += [f"write\t{n}\t{rel}\n" for n, rel in self.writes if rel == INVENTORY]
        draft = self.folder / f"{_PLAN}.draft"
        with open(draft, "w", encoding="utf-8") as handle:
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())
        checkpoint("staged")
        os.replace(draft, self.folder / _PLAN)
        self.committed = True
        checkpoint("committed")
        carry_out(self.root, known=self.known)

    def discard(self) -> None:
        """Delete what was staged (the tree was not touched)."""
        if self.writes or os.path.lexists(self.folder):
            shutil.rmtree(self.folder, ignore_errors=True)


def carry_out(root: Path, *, known: set[str] | None = None) -> None:
    """Finish the journal in ``root``: roll forward a committed plan, roll back anything else."""
    folder = root / JOURNAL
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        raise errors.OutputError(f"{folder}: not a journal cfgsync wrote (not a directory); remove it")
    plan = read_file(folder, _PLAN)
    if plan is not None:
        for step, line in enumerate(plan.decode("utf-8", errors="replace").splitlines()):
            _apply(
                root, line, where=f"{folder / _PLAN}:{step + 1}", known=known if known is not None else set()
            )
            checkpoint(f"applied {step + 1}")
    shutil.rmtree(folder)
    checkpoint("done")


def _apply(root: Path, line: str, *, where: str, known: set[str]) -> None:
    """One step of a plan; each is safe to repeat (a run killed half-way repeats some)."""
    action, *args = line.split("\t")
    if action == "write" and len(args) == 2 and args[0].isdigit():
        number, rel = args
        if rel != INVENTORY:
            check_relative(rel, where=where)
        source = f"{root}/{JOURNAL}/{_STAGED}/{number}"
        if not os.path.lexists(source):
            return  # moved into place before the run stopped
        _check_parents(root, rel, create=True, known=known)
        os.replace(source, f"{root}/{rel}")
    elif action == "remove" and len(args) == 1:
        (rel,) = args
        check_relative(rel, where=where)
        if not _check_parents(root, rel, known=known):
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{root}/{rel}")
        if _remove_empty_parents(root, rel):
            known.clear()  # a folder checked before may be gone now
    else:
        raise errors.OutputError(f"{where}: not a step cfgsync writes; remove {root / JOURNAL} by hand")


def _remove_empty_parents(root: Path, rel: str) -> bool:
    """Remove the folders ``rel`` leaves empty; True when any was removed."""
    parts = rel.split("/")[:-1]
    removed = False
    while parts:
        try:
            os.rmdir(f"{root}/{'/'.join(parts)}")
        except OSError:
            return removed  # not empty (a file of someone else's, or another copy): it stays
        removed = True
        parts.pop()
    return removed
