"""Namespace regexes as the peers read them: replicator's, reflector's, and the exclusion flag's.

Pure: no I/O. Regexes come from annotations that any tenant who may write a ConfigMap can set, and
are matched against every namespace name, so they run on RE2 (google-re2): matching takes time linear
in the name whatever the pattern, where a backtracking engine lets ``(a*)*b`` stall the controller. RE2
is also the syntax of Go's ``regexp``, which replicator uses; reflector's .NET patterns are read in
the same syntax, and the few .NET-only constructs (lookaround, backreferences) are refused with an
error naming the annotation.

Three ways of matching, one per place a peer uses regexes (docs/annotations.md has the table):

- :attr:`Matching.WHOLE_NAME`: the entry must match the whole namespace name, as ``^(?:entry)$``.
  cfgsync reads replicator's lists (``replicate-to``, ``replication-allowed-namespaces``) this way.
  replicator itself adds ``^`` and ``$`` only where the entry lacks them, so ``a|b`` becomes
  ``^a|b$``: any name starting with ``a`` or ending with ``b``. :func:`replicator_reading` computes
  that reading, and a rule whose entries read differently for a namespace that exists is reported.
- :attr:`Matching.FIRST_MATCH_SPANS_NAME`: reflector's: the first match must span the whole name
  (``a|ab`` does not match ``ab``: the first match is ``a``). Never wider than the whole-name reading.
- :attr:`Matching.ANYWHERE`: replicator's ``--exclude-namespaces``: a match anywhere excludes.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

from cfgsync import errors

_OPTIONS: Any = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every parse error on stderr; cfgsync reports it itself


class Matching(enum.Enum):
    """How an entry is matched against a namespace name (see the module docstring)."""

    WHOLE_NAME = "whole name"
    """The entry matches the entire name."""
    FIRST_MATCH_SPANS_NAME = "first match spans the name"
    """reflector's: the leftmost match must be the entire name."""
    ANYWHERE = "anywhere"
    """A match anywhere in the name counts (an exclusion)."""


@dataclass(frozen=True, slots=True)
class NamespaceRegex:
    """One entry of a regex list, compiled, with the way it is matched."""

    text: str
    """The entry as written (spaces trimmed)."""
    matching: Matching
    """How it is matched."""
    _compiled: Any = field(compare=False, repr=False)

    def matches(self, name: str) -> bool:
        """True when namespace ``name`` matches this entry.

        Remembered per (entry, way, name): many sources carry the same entries (one annotation copied
        onto a hundred sources), and each is matched against every namespace on every plan."""
        return _matches(self.text, self.matching, name, self._compiled)

    def __str__(self) -> str:
        return self.text


@functools.lru_cache(maxsize=1 << 16)
def _matches(text: str, matching: Matching, name: str, compiled: Any) -> bool:
    """The match itself (``compiled`` is ``text`` compiled: equal texts give equal answers)."""
    del text  # part of the key only
    if matching is Matching.WHOLE_NAME:
        return compiled.fullmatch(name) is not None
    found = compiled.search(name)
    if found is None:
        return False
    if matching is Matching.ANYWHERE:
        return True
    return bool(found.start() == 0 and found.end() == len(name))


def compile_entry(text: str, matching: Matching, *, where: str) -> NamespaceRegex:
    """Compile one entry; raise :class:`RuleError` naming ``where`` when RE2 cannot read it."""
    entry = text.strip()
    try:
        compiled = re2.compile(entry, _OPTIONS)
    except UnicodeEncodeError as exc:
        # A lone surrogate (from a JSON escape or undecodable bytes in an argument) is no text at all.
        raise errors.RuleError(
            f"{where}: {entry!r} holds a character that is not valid Unicode text; write the pattern in UTF-8"
        ) from exc
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise errors.RuleError(
            f"{where}: {entry!r} is not a regular expression cfgsync can use ({detail}); write it in Go's "
            f"regexp (RE2) syntax: no lookaround, no backreferences"
        ) from exc
    return NamespaceRegex(entry, matching, compiled)


def compile_list(value: str, matching: Matching, *, where: str) -> tuple[NamespaceRegex, ...]:
    """A comma-separated list of entries (blank entries dropped), compiled."""
    return tuple(compile_entry(item, matching, where=where) for item in value.split(",") if item.strip())


def any_matches(entries: Iterable[NamespaceRegex], name: str) -> NamespaceRegex | None:
    """The first entry ``name`` matches, or None."""
    return next((entry for entry in entries if entry.matches(name)), None)


def replicator_reading(text: str) -> str:
    """The regex replicator matches for entry ``text``: ``^`` and ``$`` added only where missing."""
    entry = text.strip()
    if not entry.startswith("^"):
        entry = "^" + entry
    if not entry.endswith("$"):
        entry += "$"
    return entry


def replicator_matches(text: str, name: str) -> bool:
    """True when replicator's reading of entry ``text`` matches ``name`` (for reports and tests)."""
    try:
        return re2.search(replicator_reading(text), name, _OPTIONS) is not None
    except re2.error:
        return False  # replicator logs a bad entry and skips it
