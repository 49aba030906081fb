"""The one planner: from what exists to what copies should exist, and what to do about it.

Pure: no I/O. Every mode (render, ArgoCD, KRM, apply, controller) calls :func:`plan_copies` and
carries out the :class:`Plan` it returns. Transforms and vetoes come in through ``hooks`` (the plugin
manager in practice), so the planner never imports the plugin machinery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Protocol

import jsonpatch

from cfgsync import errors
from cfgsync._core import manifests, names, origin, vocabulary
from cfgsync._core.model import (
    SOURCE_KINDS,
    Action,
    ActionKind,
    ConfigObject,
    Conflict,
    Copy,
    Namespace,
    ObjectRef,
    Plan,
    Problem,
    Veto,
    frozen,
)
from cfgsync._core.rules import Rule, declares_rule, rules_from_annotations


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanSettings:
    """Settings every mode passes to the planner."""

    cluster_name: str = ""
    """Value of the ``origin.cluster`` label (kubed's ``--cluster-name``).

    Only copies carrying this value are cfgsync's to update or delete."""
    source_namespace: str | None = None
    """When set, only sources in this namespace count (kubed's ``--config-source-namespace``)."""
    excluded_namespaces: tuple[str, ...] = ()
    """Namespaces (names or globs) that never receive copies, whatever a rule says."""


class CopyHooks(Protocol):
    """What the planner needs from plugins: shape a copy, or refuse it."""

    def transform(self, copy: Copy, *, source: ConfigObject, namespace: Namespace, rule: Rule) -> Copy:
        """Return the copy as every transform leaves it."""

    def veto(self, copy: Copy, *, source: ConfigObject, namespace: Namespace, rule: Rule) -> Veto | None:
        """Return the first veto, or None when the copy may be written."""


@dataclass(frozen=True, slots=True)
class _Base:
    """What every copy of one rule shares, computed once per rule rather than once per namespace."""

    rule: Rule
    source: ConfigObject
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


def copy_metadata(source: ConfigObject, cluster_name: str) -> tuple[Mapping[str, str], Mapping[str, str]]:
    """Labels and annotations of a copy of ``source``: kubed's contract."""
    labels = {**source.labels, **origin.origin_labels(source.ref, cluster_name)}
    annotations = {
        k: v
        for k, v in source.annotations.items()
        if k not in vocabulary.NOT_COPIED_ANNOTATIONS and not k.startswith(vocabulary.PREFIX)
    }
    annotations[vocabulary.ORIGIN] = origin.origin_annotation(source)
    return frozen(labels), frozen(annotations)


def collect_rules(
    sources: Mapping[ObjectRef, ConfigObject], documents: Iterable[Rule]
) -> tuple[list[Rule], list[Problem], list[Problem]]:
    """Every rule (annotations first, then SyncRule documents), the problems, and the warnings."""
    found: list[Rule] = []
    problems: list[Problem] = []
    warnings: list[Problem] = []
    for source in sources.values():
        try:
            found.extend(rules_from_annotations(source))
        except errors.RuleError as exc:
            problems.append(Problem(subject=source.describe(), ref=source.ref, message=str(exc)))
    for rule in documents:
        if rule.source in sources:
            found.append(rule)
        else:
            warnings.append(Problem(subject=rule.origin, message=f"its source {rule.source} does not exist"))
    return found, problems, warnings


DEFAULT_SETTINGS = PlanSettings()
"""Settings with every default: cluster name ``""``, all source namespaces, no exclusions."""


def plan_copies(
    sources: Iterable[ConfigObject],
    namespaces: Iterable[Namespace],
    existing: Iterable[ConfigObject] = (),
    *,
    rules: Iterable[Rule] = (),
    settings: PlanSettings = DEFAULT_SETTINGS,
    hooks: CopyHooks,
) -> Plan:
    """Plan the copies that should exist and the actions that make ``existing`` match.

    ``sources`` may hold any ConfigMaps and Secrets: those without a rule, and copies (objects with
    origin labels), are not sources. ``rules`` are SyncRule documents; annotation rules are read from
    the sources. ``existing`` is what is already there (empty for a pure render); objects in it that
    cfgsync does not manage are never touched, and a copy that would replace one is a conflict.
    """
    sources = tuple(sources)
    by_ref = select_sources(sources, settings)
    found, problems, warnings = collect_rules(by_ref, rules)
    warnings.extend(_excluded_by_name(found, settings.excluded_namespaces))
    warnings.extend(marked_by_another_cluster(sources, settings.cluster_name))
    allowed = [
        ns
        for ns in sorted(namespaces, key=lambda ns: ns.name)
        if not any(fnmatchcase(ns.name, p) for p in settings.excluded_namespaces)
    ]

    def targets(rule: Rule, source: ConfigObject) -> Iterator[Namespace]:
        return (ns for ns in allowed if ns.name != source.ref.namespace and rule.targets.selects(ns))

    wanted, vetoes = desired_copies(
        found, by_ref, targets=targets, settings=settings, hooks=hooks, problems=problems
    )
    ruled = {rule.source for rule in found}
    return complete_plan(
        wanted,
        vetoes,
        existing,
        cluster_name=settings.cluster_name,
        problems=problems,
        warnings=warnings,
        delete_reason=lambda owner, ref: _delete_reason(owner, ref, by_ref, ruled),
    )


def select_sources(sources: Iterable[ConfigObject], settings: PlanSettings) -> dict[ObjectRef, ConfigObject]:
    """The objects that may be sources: ConfigMaps and Secrets, not copies, in the source namespace."""
    return {
        obj.ref: obj
        for obj in sources
        if obj.ref.kind in SOURCE_KINDS
        and not origin.is_copy(obj.ref, obj.labels, settings.cluster_name)
        and settings.source_namespace in {None, obj.ref.namespace}
    }


def marked_by_another_cluster(sources: Iterable[ConfigObject], cluster_name: str) -> Iterator[Problem]:
    """Warn about sources kubed marked with its origin labels under another cluster name.

    Such an object looks like a copy made by another cluster, so it is not a source here; most likely
    kubed ran with a ``--cluster-name`` that cfgsync was not given.
    """
    for obj in sources:
        labels = obj.labels
        cluster = labels.get(vocabulary.ORIGIN_CLUSTER, "")
        if (
            cluster != cluster_name
            and origin.points_at_itself(obj.ref, labels, cluster)
            and declares_rule(obj.annotations)
        ):
            yield Problem(
                subject=obj.describe(),
                ref=obj.ref,
                message=f"its origin labels point at itself with cluster name {cluster!r}, so it is taken "
                f"for a copy made by that cluster and not synced. If kubed ran here with --cluster-name "
                f"{cluster!r}, give cfgsync the same --cluster-name",
            )


Targets = Callable[[Rule, ConfigObject], Iterable[Namespace]]
"""The namespaces one rule copies its source into."""


def desired_copies(
    found: list[Rule],
    sources: Mapping[ObjectRef, ConfigObject],
    *,
    targets: Targets,
    settings: PlanSettings,
    hooks: CopyHooks,
    problems: list[Problem],
) -> tuple[dict[ObjectRef, list[Copy]], list[Veto]]:
    """Every copy each rule wants, by where it would go (several when rules collide)."""
    wanted: dict[ObjectRef, list[Copy]] = {}
    vetoes: list[Veto] = []
    for rule in found:
        source = sources[rule.source]
        labels, annotations = copy_metadata(source, settings.cluster_name)
        base = _Base(rule=rule, source=source, labels=labels, annotations=annotations)
        for ns in targets(rule, source):
            try:
                copy, veto = _make_copy(base, ns, hooks)
            except errors.CfgsyncError as exc:
                problems.append(Problem(subject=source.describe(), ref=source.ref, message=str(exc)))
                continue
            if veto is not None:
                vetoes.append(veto)
            else:
                wanted.setdefault(copy.ref, []).append(copy)
    return wanted, vetoes


def complete_plan(
    wanted: dict[ObjectRef, list[Copy]],
    vetoes: list[Veto],
    existing: Iterable[ConfigObject],
    *,
    cluster_name: str,
    problems: list[Problem],
    warnings: list[Problem],
    delete_reason: Callable[[ObjectRef, ObjectRef], str],
    elsewhere: bool = False,
) -> Plan:
    """Compare the wanted copies with what exists; delete managed copies no rule wants any more.

    ``elsewhere`` says ``existing`` is in another cluster than the sources (``sync-contexts``).
    """
    observed = {obj.ref: obj for obj in existing if obj.ref.kind in SOURCE_KINDS}
    differ = _Differ()
    actions: list[Action] = []
    conflicts: list[Conflict] = []
    for ref, candidates in wanted.items():
        if len(candidates) > 1:
            conflicts.append(_double_conflict(ref, candidates))
            continue
        outcome = _compare(candidates[0], observed.get(ref), cluster_name, elsewhere=elsewhere, differ=differ)
        if isinstance(outcome, Conflict):
            conflicts.append(outcome)
        else:
            actions.append(outcome)
    for ref, obj in observed.items():
        owner = origin.owner_of(obj, cluster_name, elsewhere=elsewhere)
        if owner is None or ref in wanted:
            continue
        reason = delete_reason(owner, ref)
        actions.append(Action(kind=ActionKind.DELETE, ref=ref, source=owner, observed=obj, reason=reason))
    return Plan(
        actions=tuple(sorted(actions, key=lambda a: a.ref.sort_key)),
        conflicts=tuple(sorted(conflicts, key=lambda c: c.ref.sort_key)),
        vetoes=tuple(sorted(vetoes, key=lambda v: v.ref.sort_key)),
        problems=tuple(problems),
        warnings=tuple(warnings),
    )


def _excluded_by_name(found: Iterable[Rule], excluded: tuple[str, ...]) -> Iterator[Problem]:
    """A rule that names a globally excluded namespace outright is told so, not silently ignored."""
    for rule in found:
        for name in rule.targets.names or ():
            hit = next((p for p in excluded if not names.is_glob(name) and fnmatchcase(name, p)), None)
            if hit is not None:
                yield Problem(
                    subject=rule.origin,
                    ref=rule.source,
                    message=f"{rule.source} names namespace {name}, which is excluded for every rule "
                    f"(--exclude-namespace {hit}); no copy goes there. Remove it from the rule or the "
                    f"exclusion",
                )


def _make_copy(base: _Base, ns: Namespace, hooks: CopyHooks) -> tuple[Copy, Veto | None]:
    source = base.source
    copy = Copy(
        ref=ObjectRef(kind=source.ref.kind, namespace=ns.name, name=source.ref.name),
        source=source.ref,
        rule=base.rule.origin,
        labels=base.labels,
        annotations=base.annotations,
        data=source.data,
        binary_data=source.binary_data,
        type=source.type,
        immutable=source.immutable,
    )
    copy = hooks.transform(copy, source=source, namespace=ns, rule=base.rule)
    return copy, hooks.veto(copy, source=source, namespace=ns, rule=base.rule)


def _double_conflict(ref: ObjectRef, candidates: list[Copy]) -> Conflict:
    sources = tuple(sorted({c.source for c in candidates}))
    described = "; ".join(f"{c.source} by {c.rule}" for c in candidates)
    return Conflict(
        ref=ref,
        sources=sources,
        reason=f"{len(candidates)} rules want to write {ref} ({described}); neither is written. "
        f"Narrow one rule's namespaces or give one copy another name ({vocabulary.COPY_NAME})",
    )


def _compare(
    copy: Copy, observed: ConfigObject | None, cluster_name: str, *, elsewhere: bool, differ: _Differ
) -> Action | Conflict:
    if observed is None:
        return Action(
            kind=ActionKind.CREATE,
            ref=copy.ref,
            source=copy.source,
            desired=copy,
            reason=f"selected by {copy.rule}",
        )
    owner = origin.owner_of(observed, cluster_name, elsewhere=elsewhere)
    if owner is None:
        return Conflict(
            ref=copy.ref,
            sources=(copy.source,),
            reason=f"copy of {copy.source} not written: an unmanaged {observed.ref.kind} with that name "
            f"exists in namespace {copy.ref.namespace}; cfgsync leaves it untouched. Delete or rename it, "
            f"or choose another copy name ({vocabulary.COPY_NAME})",
        )
    patch, payload_changed = differ.diff(observed, copy)
    if not patch:
        return Action(
            kind=ActionKind.UNCHANGED,
            ref=copy.ref,
            source=copy.source,
            desired=copy,
            observed=observed,
            reason="copy is up to date",
        )
    # A managed copy of a source that no longer wants it (else two rules would collide) is ours to reuse.
    taken_over = f"takes over a stale copy of {owner}; " if owner != copy.source else ""
    fields = sorted({str(op["path"]).split("/")[1] + _sub(op) for op in patch})
    replace = bool(observed.immutable) and (payload_changed or copy.immutable is not True)
    return Action(
        kind=ActionKind.REPLACE if replace else ActionKind.UPDATE,
        ref=copy.ref,
        source=copy.source,
        desired=copy,
        observed=observed,
        patch=patch,
        reason=taken_over
        + ("immutable copy differs, so it is deleted and created again: " if replace else "copy differs: ")
        + ", ".join(fields),
    )


class _Differ:
    """Compares copies with what exists, once per distinct pair of contents.

    The copies of one source differ only in their namespace, and the controller's cache shares the
    mappings of equal copies, so a plan over 1,000 namespaces compares a handful of distinct pairs,
    not 1,000 (a JSON patch of two manifests is the dearest step of a plan). Keys hold the identities
    of mappings that stay alive for the whole plan.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[object, ...], tuple[tuple[Mapping[str, object], ...], bool]] = {}
        self._digests: dict[tuple[int, int], str] = {}

    def diff(self, observed: ConfigObject, copy: Copy) -> tuple[tuple[Mapping[str, object], ...], bool]:
        """RFC 6902 operations from ``observed`` to ``copy`` (empty when equal), and whether the payload
        differs. An observed object holding only a digest of its payload (the controller's cache) is
        compared on everything else field by field, and on the payload by digest."""
        key = (
            *(id(m) for m in (observed.labels, observed.annotations, observed.data, observed.binary_data)),
            observed.type,
            observed.immutable,
            observed.content_digest,
            *(id(m) for m in (copy.labels, copy.annotations, copy.data, copy.binary_data)),
            copy.type,
            copy.immutable,
        )
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = self._diff(observed, copy)
        return found

    def _diff(self, observed: ConfigObject, copy: Copy) -> tuple[tuple[Mapping[str, object], ...], bool]:
        before: dict[str, object] = dict(manifests.to_manifest(observed))
        after: dict[str, object] = dict(manifests.to_manifest(copy))
        if observed.content_digest is None:
            changed = observed.data != copy.data or observed.binary_data != copy.binary_data
            return tuple(jsonpatch.make_patch(before, after).patch), changed
        for payload in ("data", "binaryData"):
            after.pop(payload, None)
        changed = self._digest(copy) != observed.content_digest
        return tuple(jsonpatch.make_patch(before, after).patch) + _payload_ops(copy, changed), changed

    def _digest(self, copy: Copy) -> str:
        key = (id(copy.data), id(copy.binary_data))
        found = self._digests.get(key)
        if found is None:
            found = self._digests[key] = manifests.payload_digest(copy)
        return found


def _payload_ops(copy: Copy, changed: bool) -> tuple[Mapping[str, object], ...]:
    """Patch operations setting the payload, when it changed and the observed one was only a digest."""
    if not changed:
        return ()
    return tuple(
        {"op": "add", "path": f"/{field}", "value": dict(values)}
        for field, values in (("data", copy.data), ("binaryData", copy.binary_data))
        if values
    )


def _sub(op: Mapping[str, object]) -> str:
    parts = str(op["path"]).split("/")
    return f".{parts[2]}" if parts[1] == "metadata" and len(parts) > 2 else ""


def _delete_reason(
    owner: ObjectRef, ref: ObjectRef, sources: Mapping[ObjectRef, ConfigObject], ruled: set[ObjectRef]
) -> str:
    if owner not in sources:
        return f"its source {owner} no longer exists"
    if owner not in ruled:
        return f"its source {owner} no longer has a sync rule"
    return f"namespace {ref.namespace} is no longer selected (or the copy was vetoed or renamed)"
