"""mittwald kubernetes-replicator's vocabulary (``replicator.v1.mittwald.de/*``), read as cfgsync rules.

Pure: no I/O. What replicator's users wrote keeps working: ``replicate-to`` (regexes) and
``replicate-to-matching`` (a label selector) push copies; a target's ``replicate-from`` pulls, when
the source says ``replication-allowed: "true"`` and lists the target's namespace in
``replication-allowed-namespaces``; ``strip-labels`` keeps the source's labels off its copies.

Where cfgsync deliberately reads them otherwise (docs/migrating-from-replicator.md):

- an entry must match the whole namespace name (``a|b`` is ``^(?:a|b)$``); replicator anchors only the
  ends it finds unanchored, so it reads ``a|b`` as ``^a|b$``. A rule whose entries select other
  namespaces under replicator's reading is reported (:func:`reading_differences`);
- ``keep-owner-references`` is read but not honoured: an owner reference to an object in the
  source's namespace makes the garbage collector delete every copy in other namespaces, and cfgsync
  would make it again, for ever; the source's copies are reported;
- an entry that is no valid regex is an error for its source, where replicator logs and skips it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from cfgsync import errors
from cfgsync._core import patterns, vocabulary
from cfgsync._core.model import ConfigObject, Namespace, ObjectRef, Problem
from cfgsync._core.patterns import Matching, NamespaceRegex
from cfgsync._core.pull import Verdict
from cfgsync._core.rules import Rule
from cfgsync._core.selectors import LabelSelector

NAME: Final = "replicator"
"""The vocabulary's name, for switches and messages."""
_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
"""What Go's ``strconv.ParseBool`` reads as true (replicator parses its flags with it)."""


def is_true(value: str | None) -> bool:
    """True when ``value`` is true the way replicator reads booleans."""
    return value is not None and value in _TRUE


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicatorTargets:
    """``replicate-to`` entries and/or a ``replicate-to-matching`` selector: a namespace matching either
    is a target (replicator acts on each annotation on its own)."""

    entries: tuple[NamespaceRegex, ...] | None = None
    """The ``replicate-to`` regexes, each matching whole names; None without that annotation."""
    selector: LabelSelector | None = None
    """The ``replicate-to-matching`` selector; None without that annotation."""

    @property
    def names(self) -> tuple[str, ...] | None:
        """Always None: replicator names namespaces by regex, not by name or glob."""
        return None

    def selects(self, namespace: Namespace) -> bool:
        """True when ``namespace`` matches an entry or the selector (and is not terminating)."""
        if namespace.terminating:
            return False
        if self.entries is not None and patterns.any_matches(self.entries, namespace.name) is not None:
            return True
        return self.selector is not None and self.selector.matches(namespace.labels)

    def explain(self, namespace: Namespace) -> tuple[str, ...]:
        """Each check of :meth:`selects`, ``yes:``/``no:``, one line each."""
        lines: list[str] = []
        if namespace.terminating:
            lines.append("no: the namespace is terminating")
        if self.entries is not None:
            listed = ", ".join(str(e) for e in self.entries)
            hit = patterns.any_matches(self.entries, namespace.name)
            if hit is not None:
                lines.append(f"yes: name matches the whole of {hit} ({vocabulary.REPLICATE_TO}: {listed})")
            else:
                lines.append(f"no: name matches the whole of none of {vocabulary.REPLICATE_TO}: {listed}")
            lines.extend(_reading_notes(self.entries, namespace.name, vocabulary.REPLICATE_TO))
        if self.selector is not None:
            results = self.selector.explain(namespace.labels)
            verdict = "yes" if all(r.matched for r in results) else "no"
            detail = "; ".join(f"{r.requirement} ({r.reason})" for r in results) or "selects every namespace"
            lines.append(f"{verdict}: {vocabulary.REPLICATE_TO_MATCHING} {self.selector}: {detail}")
        if self.entries is not None and self.selector is not None:
            lines.append("either annotation suffices (replicator reads each on its own)")
        return tuple(lines)


def _reading_notes(entries: Iterable[NamespaceRegex], name: str, key: str) -> list[str]:
    notes = []
    for entry in entries:
        theirs = patterns.replicator_matches(entry.text, name)
        if theirs != entry.matches(name):
            verb = "matches" if theirs else "does not match"
            notes.append(
                f"note: replicator reads {key} entry {entry} as {patterns.replicator_reading(entry.text)}, "
                f"which {verb} this name; cfgsync matches whole names (write ({entry.text}) to say so)"
            )
    return notes


def push_rule(source: ConfigObject) -> Rule | None:
    """The rule of ``replicate-to`` / ``replicate-to-matching``, or None; :class:`RuleError` when invalid."""
    ann = source.annotations
    if vocabulary.REPLICATE_TO not in ann and vocabulary.REPLICATE_TO_MATCHING not in ann:
        return None
    where = f"{source.describe()}: annotation"
    entries = None
    if vocabulary.REPLICATE_TO in ann:
        entries = patterns.compile_list(
            ann[vocabulary.REPLICATE_TO], Matching.WHOLE_NAME, where=f"{where} {vocabulary.REPLICATE_TO}"
        )
    selector = None
    if vocabulary.REPLICATE_TO_MATCHING in ann:
        try:
            selector = LabelSelector.parse(ann[vocabulary.REPLICATE_TO_MATCHING])
        except errors.SelectorError as exc:
            raise errors.RuleError(f"{where} {vocabulary.REPLICATE_TO_MATCHING}: {exc}") from exc
    key = vocabulary.REPLICATE_TO if entries is not None else vocabulary.REPLICATE_TO_MATCHING
    return Rule(
        source=source.ref,
        origin=f"annotation {key}",
        targets=ReplicatorTargets(entries=entries, selector=selector),
        vocabulary=NAME,
        copy_source_labels=not is_true(ann.get(vocabulary.STRIP_LABELS)),
        copy_source_annotations=False,
    )


def rule_warnings(source: ConfigObject) -> list[Problem]:
    """What cfgsync reads on the source but does not do (``keep-owner-references``)."""
    if not is_true(source.annotations.get(vocabulary.KEEP_OWNER_REFERENCES)):
        return []
    return [
        Problem(
            subject=source.describe(),
            ref=source.ref,
            message=f"{vocabulary.KEEP_OWNER_REFERENCES} is not honoured: copies carry no owner references "
            f"(an owner in {source.ref.namespace} would make the garbage collector delete every copy in "
            f"another namespace, and cfgsync make it again). Copies go when their source goes; remove "
            f"the annotation",
        )
    ]


def reading_differences(rule: Rule, namespaces: Iterable[Namespace]) -> list[Problem]:
    """A warning when replicator's reading of the rule's entries selects other existing namespaces."""
    targets = rule.targets
    if not isinstance(targets, ReplicatorTargets) or targets.entries is None:
        return []
    suspects = [e for e in targets.entries if "|" in e.text or e.text.startswith("^") or e.text.endswith("$")]
    if not suspects:
        return []
    differ = sorted(
        ns.name
        for ns in namespaces
        if ns.name != rule.source.namespace
        and any(patterns.replicator_matches(e.text, ns.name) != e.matches(ns.name) for e in suspects)
    )
    if not differ:
        return []
    shown = ", ".join(differ[:10]) + (f" and {len(differ) - 10} more" if len(differ) > 10 else "")
    readings = ", ".join(f"{e.text} as {patterns.replicator_reading(e.text)}" for e in suspects)
    return [
        Problem(
            subject=rule.origin,
            ref=rule.source,
            message=f"{rule.source}: replicator reads {vocabulary.REPLICATE_TO} {readings}, so it would "
            f"choose differently for namespaces {shown}; cfgsync matches each entry against the whole "
            f"name. Parenthesise the entry, or write the namespaces you mean",
        )
    ]


def allows(source: ConfigObject, namespace: Namespace) -> Verdict | None:
    """Whether ``source`` lets ``namespace`` pull it in replicator's vocabulary; None when it says nothing.

    Both annotations are needed, as in replicator: ``replication-allowed`` true, and
    ``replication-allowed-namespaces`` with an entry matching the whole namespace name.
    """
    ann = source.annotations
    allowed, listed = (
        ann.get(vocabulary.REPLICATION_ALLOWED),
        ann.get(vocabulary.REPLICATION_ALLOWED_NAMESPACES),
    )
    if allowed is None and listed is None:
        return None
    if not is_true(allowed):
        return Verdict(
            allowed=False,
            reason=f'{vocabulary.REPLICATION_ALLOWED} is {allowed!r}, not "true"'
            if allowed is not None
            else f"{vocabulary.REPLICATION_ALLOWED} is missing",
        )
    if listed is None:
        return Verdict(allowed=False, reason=f"{vocabulary.REPLICATION_ALLOWED_NAMESPACES} is missing")
    entries = patterns.compile_list(
        listed,
        Matching.WHOLE_NAME,
        where=f"{source.describe()}: annotation {vocabulary.REPLICATION_ALLOWED_NAMESPACES}",
    )
    hit = patterns.any_matches(entries, namespace.name)
    if hit is not None:
        return Verdict(
            allowed=True,
            reason=f"{namespace.name} matches the whole of {hit} "
            f"({vocabulary.REPLICATION_ALLOWED_NAMESPACES}: {listed})",
        )
    notes = _reading_notes(entries, namespace.name, vocabulary.REPLICATION_ALLOWED_NAMESPACES)
    return Verdict(
        allowed=False,
        reason=f"{namespace.name} matches the whole of none of {vocabulary.REPLICATION_ALLOWED_NAMESPACES}: "
        f"{listed}" + (f" ({'; '.join(notes)})" if notes else ""),
    )


def wrote(annotations: Mapping[str, str]) -> bool:
    """True when replicator's marks say it wrote this object (a push copy or a pulled target)."""
    return vocabulary.REPLICATED_AT in annotations or vocabulary.REPLICATED_FROM_VERSION in annotations


def own_keys(obj: ConfigObject) -> frozenset[str]:
    """Data keys ``obj`` holds besides those replicator wrote (``replicated-keys``): replicator merges
    into objects that existed before, and those keys are their owner's."""
    written = {k for k in obj.annotations.get(vocabulary.REPLICATED_KEYS, "").split(",") if k}
    return frozenset(set(obj.data) | set(obj.binary_data)) - written


def may_take_over(obj: ConfigObject, source: ObjectRef) -> bool:
    """True when ``obj`` is replicator's push copy of a source named like ``source`` and holds nothing
    of its own, so cfgsync may take it over in place (it carries no pointer back to its source)."""
    return (
        obj.ref.kind == source.kind
        and obj.ref.name == source.name
        and wrote(obj.annotations)
        and vocabulary.REPLICATE_FROM not in obj.annotations
        and obj.content_digest is None
        and not own_keys(obj)
    )
