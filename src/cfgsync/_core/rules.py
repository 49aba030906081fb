"""Sync rules: which source goes to which namespaces, and how the copy is shaped.

Pure: no I/O. Rules come from kubed annotations, cfgsync annotations (both read here), SyncRule
documents (``syncrule.py``) and the peers' annotations (``replicator.py``, ``reflector.py``); all
produce the same :class:`Rule`, so they share one semantics. Which namespaces a rule selects is a
:class:`Targets`: names, globs and selectors here, the peers' regexes in their modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Protocol

from cfgsync import errors
from cfgsync._core import names, vocabulary
from cfgsync._core.model import ConfigObject, Namespace, ObjectRef
from cfgsync._core.selectors import LabelSelector


class Targets(Protocol):
    """Which namespaces a rule copies into (the caller excludes the source's own namespace)."""

    @property
    def names(self) -> tuple[str, ...] | None:
        """Names or globs the rule lists, when it selects by name that way; None otherwise."""

    @property
    def selector(self) -> LabelSelector | None:
        """The label selector the rule reads namespace labels with, when it has one of its own."""

    def selects(self, namespace: Namespace) -> bool:
        """True when ``namespace`` is a target."""

    def explain(self, namespace: Namespace) -> tuple[str, ...]:
        """Every reason ``selects`` gives for ``namespace``, ``yes: ...`` or ``no: ...``, one line each."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceTargets:
    """Which namespaces a rule copies into.

    A namespace is a target when it is not the source's, is not terminating, matches ``names`` (if
    given) and ``selector`` (if given), and matches no ``exclude`` pattern. With neither ``names`` nor
    ``selector`` every namespace matches (kubed's ``sync: ""``).
    """

    names: tuple[str, ...] | None = None
    """Names or globs; None when the rule does not select by name."""
    selector: LabelSelector | None = None
    """Label selector; None when the rule does not select by labels."""
    exclude: tuple[str, ...] = ()
    """Names or globs that are never targets."""

    def selects(self, namespace: Namespace) -> bool:
        """True when ``namespace`` is a target (the caller excludes the source's own namespace)."""
        if namespace.terminating:
            return False
        name = namespace.name
        if self.names is not None and not any(fnmatchcase(name, p) for p in self.names):
            return False
        if self.selector is not None and not self.selector.matches(namespace.labels):
            return False
        return not any(fnmatchcase(name, p) for p in self.exclude)

    def explain(self, namespace: Namespace) -> tuple[str, ...]:
        """Every reason ``selects`` gives for ``namespace``, matched or not, one line each."""
        lines: list[str] = []
        if namespace.terminating:
            lines.append("no: the namespace is terminating")
        if self.names is None and self.selector is None:
            lines.append("yes: the rule selects every namespace")
        if self.names == ():
            lines.append("no: the rule copies only into other clusters (kubed.appscode.com/sync-contexts)")
        elif self.names is not None:
            hit = [p for p in self.names if fnmatchcase(namespace.name, p)]
            verdict = f"yes: name matches {', '.join(hit)}" if hit else "no: name matches none of"
            lines.append(f"{verdict} (names: {', '.join(self.names)})")
        if self.selector is not None:
            for result in self.selector.explain(namespace.labels):
                lines.append(f"{'yes' if result.matched else 'no'}: {result.requirement} ({result.reason})")
        for pattern in self.exclude:
            if fnmatchcase(namespace.name, pattern):
                lines.append(f"no: name matches the exclusion {pattern}")
        return tuple(lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyTransforms:
    """How data keys are filtered and renamed on the way to a copy."""

    include: tuple[str, ...] = ()
    """Globs; when given, only matching keys are copied."""
    exclude: tuple[str, ...] = ()
    """Globs; matching keys are not copied (applied after ``include``)."""
    rename: tuple[tuple[str, str], ...] = ()
    """``(old, new)`` pairs, applied after filtering."""

    @property
    def is_identity(self) -> bool:
        """True when the transforms change nothing."""
        return not (self.include or self.exclude or self.rename)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One sync rule for one source."""

    source: ObjectRef
    """The source object."""
    origin: str
    """Where the rule was declared, for messages: ``annotation kubed.appscode.com/sync`` or
    ``SyncRule ns/name (file:line)``."""
    targets: Targets
    """Target namespaces."""
    keys: KeyTransforms = KeyTransforms()
    """Key filtering and renaming."""
    copy_name: str | None = None
    """Name of the copies; None keeps the source's name."""
    contexts: tuple[str, ...] = ()
    """Other clusters' kubeconfig contexts to copy into (kubed's ``sync-contexts``)."""
    strip_metadata: tuple[str, ...] = ()
    """Label and annotation keys (names or globs) of the source that its copies do not carry."""
    vocabulary: str = "cfgsync"
    """Whose annotations declared it: ``kubed``, ``cfgsync``, ``replicator`` or ``reflector``."""
    copy_source_labels: bool = True
    """False when copies carry none of the source's labels (replicator's ``strip-labels``, reflector)."""
    copy_source_annotations: bool = True
    """False when copies carry none of the source's annotations (replicator and reflector copy none)."""


def split_list(value: str) -> tuple[str, ...]:
    """Split a comma-separated annotation value, dropping blanks and surrounding spaces."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def check_namespace_patterns(patterns: tuple[str, ...], *, where: str) -> tuple[str, ...]:
    """Validate namespace names/globs, raising :class:`RuleError` naming ``where``."""
    for pattern in patterns:
        valid = names.GLOB.fullmatch(pattern) if names.is_glob(pattern) else names.is_namespace_name(pattern)
        if not valid:
            raise errors.RuleError(
                f"{where}: {pattern!r} is not a namespace name or glob; use lower-case names like "
                f"'team-a' or globs like 'team-*'"
            )
    return patterns


def check_key_patterns(patterns: tuple[str, ...], *, where: str) -> tuple[str, ...]:
    """Validate key globs (key characters plus glob syntax)."""
    for pattern in patterns:
        stripped = pattern.translate(str.maketrans("", "", "*?[]!"))
        if stripped and not names.CONFIG_KEY.fullmatch(stripped):
            raise errors.RuleError(
                f"{where}: {pattern!r} is not a key glob; keys use letters, digits, '-', '_' and '.', "
                f"e.g. '*.crt'"
            )
    return patterns


_METADATA_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./*?[]!")


def check_metadata_patterns(patterns: tuple[str, ...], *, where: str) -> tuple[str, ...]:
    """Validate label/annotation keys or globs (``team``, ``example.com/*``), naming ``where``."""
    for pattern in patterns:
        if not pattern or set(pattern) - _METADATA_KEY_CHARS or pattern.count("/") > 1:
            raise errors.RuleError(
                f"{where}: {pattern!r} is not a label or annotation key or glob; keys look like "
                f"'team' or 'example.com/team', globs like 'example.com/*'"
            )
    return patterns


def check_renames(pairs: tuple[tuple[str, str], ...], *, where: str) -> tuple[tuple[str, str], ...]:
    """Validate ``(old, new)`` key renames: valid keys, no key renamed twice, no two keys to one name."""
    olds = [old for old, _ in pairs]
    news = [new for _, new in pairs]
    for key in olds + news:
        if not names.is_config_key(key):
            raise errors.RuleError(
                f"{where}: {key!r} is not a valid data key; keys use letters, digits, '-', '_' and '.'"
            )
    for label, keys in (("renamed twice", olds), ("the target of two renames", news)):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise errors.RuleError(f"{where}: key {dupes[0]!r} is {label}; give each key one rename")
    return pairs


def check_copy_name(name: str, *, where: str) -> str:
    """Validate a copy name."""
    if not names.is_object_name(name):
        raise errors.RuleError(
            f"{where}: {name!r} is not a valid object name; use lower-case letters, digits, '-' and '.'"
        )
    return name


def parse_renames(value: str, *, where: str) -> tuple[tuple[str, str], ...]:
    """Parse ``old=new,old2=new2``."""
    pairs: list[tuple[str, str]] = []
    for item in split_list(value):
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise errors.RuleError(f"{where}: {item!r} is not a rename; write old=new, e.g. 'tls.crt=ca.crt'")
        pairs.append((old.strip(), new.strip()))
    return check_renames(tuple(pairs), where=where)


def _selector(text: str, *, subject: ConfigObject, key: str) -> LabelSelector:
    try:
        return LabelSelector.parse(text)
    except errors.SelectorError as exc:
        raise errors.RuleError(f"{subject.describe()}: annotation {key}: {exc}") from exc


def rules_from_annotations(source: ConfigObject) -> tuple[Rule, ...]:
    """The rule a source's kubed or cfgsync annotations declare (none when it is not annotated).

    Raises :class:`RuleError` naming the object and the annotation when one is invalid.
    """
    ann = source.annotations
    unknown = sorted(
        k for k in ann if k.startswith(vocabulary.PREFIX) and k not in vocabulary.KNOWN_ANNOTATIONS
    )
    if unknown:
        known = ", ".join(sorted(vocabulary.KNOWN_ANNOTATIONS))
        raise errors.RuleError(f"{source.describe()}: unknown annotation {unknown[0]}; known ones: {known}")
    kubed = vocabulary.KUBED_SYNC in ann
    own = vocabulary.NAMESPACES in ann or vocabulary.NAMESPACE_SELECTOR in ann
    if kubed and own:
        raise errors.RuleError(
            f"{source.describe()}: both {vocabulary.KUBED_SYNC} and {vocabulary.NAMESPACES}/"
            f"{vocabulary.NAMESPACE_SELECTOR} choose target namespaces; keep one of them"
        )
    only_contexts = not (kubed or own) and vocabulary.KUBED_SYNC_CONTEXTS in ann
    if not (kubed or own or only_contexts):
        modifiers = sorted(k for k in ann if k in vocabulary.RULE_ANNOTATIONS)
        if modifiers and not any(k in ann for k in vocabulary.PULL_ALLOWANCE_ANNOTATIONS):
            raise errors.RuleError(
                f"{source.describe()}: {modifiers[0]} is set but no rule says where to copy; add "
                f"{vocabulary.KUBED_SYNC} or {vocabulary.NAMESPACES}"
            )
        return ()
    where = f"{source.describe()}: annotation"
    origin: str
    patterns: tuple[str, ...] | None
    selector: LabelSelector | None
    if only_contexts:
        # As in kubed, sync-contexts alone copies into the other clusters and nowhere in this one.
        origin, patterns, selector = f"annotation {vocabulary.KUBED_SYNC_CONTEXTS}", (), None
    elif kubed:
        origin, patterns, selector = _kubed_targets(source)
    else:
        origin, patterns, selector = _own_targets(source, where)
    exclude = check_namespace_patterns(
        split_list(ann.get(vocabulary.EXCLUDE_NAMESPACES, "")),
        where=f"{where} {vocabulary.EXCLUDE_NAMESPACES}",
    )
    keys = key_transforms(source)
    copy_name = ann.get(vocabulary.COPY_NAME)
    if copy_name is not None:
        copy_name = check_copy_name(copy_name.strip(), where=f"{where} {vocabulary.COPY_NAME}")
    strip = check_metadata_patterns(
        split_list(ann.get(vocabulary.STRIP_METADATA, "")), where=f"{where} {vocabulary.STRIP_METADATA}"
    )
    return (
        Rule(
            source=source.ref,
            origin=origin,
            targets=NamespaceTargets(names=patterns, selector=selector, exclude=exclude),
            keys=keys,
            copy_name=copy_name,
            contexts=split_list(ann.get(vocabulary.KUBED_SYNC_CONTEXTS, "")),
            strip_metadata=strip,
            vocabulary="kubed" if kubed or only_contexts else "cfgsync",
        ),
    )


def key_transforms(source: ConfigObject) -> KeyTransforms:
    """The source's ``cfgsync.io/`` key filters and renames (they shape pushed and pulled copies alike)."""
    ann = source.annotations
    where = f"{source.describe()}: annotation"
    return KeyTransforms(
        include=check_key_patterns(
            split_list(ann.get(vocabulary.INCLUDE_KEYS, "")), where=f"{where} {vocabulary.INCLUDE_KEYS}"
        ),
        exclude=check_key_patterns(
            split_list(ann.get(vocabulary.EXCLUDE_KEYS, "")), where=f"{where} {vocabulary.EXCLUDE_KEYS}"
        ),
        rename=parse_renames(ann.get(vocabulary.RENAME_KEYS, ""), where=f"{where} {vocabulary.RENAME_KEYS}"),
    )


_Targets = tuple[str, tuple[str, ...] | None, LabelSelector | None]


def _kubed_targets(source: ConfigObject) -> _Targets:
    value = source.annotations[vocabulary.KUBED_SYNC].strip()
    # kubed's contract: "" and "true" mean every namespace; anything else ("false" too) is a selector.
    selector = None if value in {"", "true"} else _selector(value, subject=source, key=vocabulary.KUBED_SYNC)
    return f"annotation {vocabulary.KUBED_SYNC}", None, selector


def _own_targets(source: ConfigObject, where: str) -> _Targets:
    ann = source.annotations
    patterns: tuple[str, ...] | None = None
    if vocabulary.NAMESPACES in ann:
        listed = split_list(ann[vocabulary.NAMESPACES])
        if not listed:
            raise errors.RuleError(f"{where} {vocabulary.NAMESPACES} is empty; list names or globs, or '*'")
        patterns = check_namespace_patterns(listed, where=f"{where} {vocabulary.NAMESPACES}")
    selector = None
    if vocabulary.NAMESPACE_SELECTOR in ann:
        selector = _selector(
            ann[vocabulary.NAMESPACE_SELECTOR], subject=source, key=vocabulary.NAMESPACE_SELECTOR
        )
    key = vocabulary.NAMESPACES if patterns is not None else vocabulary.NAMESPACE_SELECTOR
    return f"annotation {key}", patterns, selector


_NOT_RULES = frozenset({vocabulary.COPY_FROM, vocabulary.COPIED_FROM, vocabulary.ACCEPT_FROM})


def declares_rule(annotations: Mapping[str, str]) -> bool:
    """True when these annotations declare a sync rule or a pull allowance: kubed's sync keys or any
    ``cfgsync.io/`` key but a pull request and cfgsync's mark on a pulled target (the peers' keys are
    :func:`cfgsync._core.vocabularies.declares_rule`'s)."""
    return any(
        key in (vocabulary.KUBED_SYNC, vocabulary.KUBED_SYNC_CONTEXTS)
        or (key.startswith(vocabulary.PREFIX) and key not in _NOT_RULES)
        for key in annotations
    )
