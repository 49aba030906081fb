"""The one planner: from what exists to what copies should exist, and what to do about it.

Pure: no I/O. Every mode (render, ArgoCD, KRM, apply, controller) calls :func:`plan_copies` and
carries out the :class:`Plan` it returns. Transforms and vetoes come in through ``hooks`` (the plugin
manager in practice), so the planner never imports the plugin machinery.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Final, Protocol

import jsonpatch

from cfgsync import errors
from cfgsync._core import manifests, names, origin, pulls, vocabularies, vocabulary
from cfgsync._core.model import (
    SOURCE_KINDS,
    Action,
    ActionKind,
    ConfigObject,
    Conflict,
    Copy,
    LeftAlone,
    Namespace,
    ObjectRef,
    Plan,
    Problem,
    Veto,
    frozen,
)
from cfgsync._core.patterns import NamespaceRegex
from cfgsync._core.policy import DEFAULT_POLICY, SYSTEM_NAMESPACES_POLICY, Policy, Refusal
from cfgsync._core.rules import Rule


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
    policy: Policy = field(default_factory=lambda: DEFAULT_POLICY)
    """The operator's policy: protected sources, source namespaces, system namespaces, consent,
    metadata copies never carry (see :mod:`cfgsync._core.policy`)."""
    excluded_namespace_regexes: tuple[NamespaceRegex, ...] = ()
    """Namespaces matching one of these regexes anywhere (replicator's ``--exclude-namespaces``) never
    receive copies, whatever a rule says."""
    disabled_vocabularies: frozenset[str] = frozenset()
    """Vocabularies switched off (``replicator``, ``reflector``): their annotations mean nothing."""

    def excluded(self, name: str) -> str | None:
        """The global exclusion that names namespace ``name`` (for messages), or None."""
        return pulls.excluded_by(self.excluded_namespaces, self.excluded_namespace_regexes)(name)


UNREADABLE_SOURCE: Final = "unreadable-source"
"""Why a copy is left alone when its source exists but cannot be read (:attr:`LeftAlone.policy`)."""

EMPTY_AGES: Mapping[ObjectRef, str | None] = MappingProxyType({})
"""No creation times known (render mode, usually)."""


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


def copy_metadata(
    source: ConfigObject,
    cluster_name: str,
    policy: Policy = DEFAULT_POLICY,
    strip: tuple[str, ...] = (),
    rule: Rule | None = None,
) -> tuple[Mapping[str, str], Mapping[str, str]]:
    """Labels and annotations of a copy of ``source``: kubed's contract, less what the copy never carries.

    The GitOps tools' ownership marks, the operator's and the rule's ``strip`` keys are left out; the
    origin labels and annotation are added last, so nothing strips them. ``rule`` may say that copies
    carry none of the source's labels or annotations (replicator's and reflector's copies).
    """
    labels = {
        **(policy.stripped(source.labels, strip) if rule is None or rule.copy_source_labels else {}),
        **origin.origin_labels(source.ref, cluster_name),
    }
    shown = source.annotations if rule is None or rule.copy_source_annotations else {}
    annotations = {
        k: v
        for k, v in policy.stripped(shown, strip).items()
        if k not in vocabulary.NOT_COPIED_ANNOTATIONS and not k.startswith(vocabulary.PREFIX)
    }
    annotations[vocabulary.ORIGIN] = origin.origin_annotation(source)
    return frozen(labels), frozen(annotations)


def collect_rules(
    sources: Mapping[ObjectRef, ConfigObject],
    documents: Iterable[Rule],
    refused: Mapping[ObjectRef, object] | None = None,
    disabled: frozenset[str] = frozenset(),
) -> tuple[list[Rule], list[Problem], list[Problem]]:
    """Every rule (annotations of every enabled vocabulary first, then SyncRule documents), the
    problems, and the warnings.

    A SyncRule naming a source the policy ``refused`` is left out silently (the refusal is reported).
    """
    found: list[Rule] = []
    problems: list[Problem] = []
    warnings: list[Problem] = []
    for source in sources.values():
        try:
            declared, unheeded = vocabularies.rules_of(source, disabled)
        except errors.RuleError as exc:
            problems.append(Problem(subject=source.describe(), ref=source.ref, message=str(exc)))
            continue
        found.extend(declared)
        warnings.extend(unheeded)
    for rule in documents:
        if rule.source in sources:
            found.append(rule)
        elif refused is None or rule.source not in refused:
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
    pull_targets: Iterable[ConfigObject] | None = None,
    unreadable: Collection[ObjectRef] = (),
) -> Plan:
    """Plan the copies that should exist and the actions that make ``existing`` match.

    ``sources`` may hold any ConfigMaps and Secrets: those without a rule, and copies (objects with
    origin labels), are not sources. ``rules`` are SyncRule documents; annotation rules are read from
    the sources. ``existing`` is what is already there (empty for a pure render); objects in it that
    cfgsync does not manage are never touched, and a copy that would replace one is a conflict, unless
    a peer's marks say the peer made it for a source that wants it there (it is taken over in place).
    ``pull_targets`` are the objects that may ask for a source (pull); None: those among ``sources``.
    ``unreadable`` are sources that exist but could not be read: their copies are left as they are
    (reported in ``left_alone``), never deleted as if the source were gone.
    """
    sources, rules = tuple(sources), tuple(rules)
    disabled = settings.disabled_vocabularies
    spaces = sorted(namespaces, key=lambda ns: ns.name)
    by_name = {ns.name: ns for ns in spaces}
    by_ref, refused = select_sources(sources, settings, by_name)
    found, problems, warnings = collect_rules(by_ref, rules, refused, disabled)
    warnings.extend(refused_warnings(refused, rules, disabled))
    warnings.extend(_excluded_by_name(found, settings.excluded_namespaces))
    warnings.extend(marked_by_another_cluster(sources, settings.cluster_name))
    warnings.extend(vocabularies.namespace_warnings(found, spaces))
    policy = settings.policy
    # Namespaces every source is refused (excluded, or system namespaces) are left out once, here;
    # consent depends on the source, so it is checked per copy, and only in consent mode.
    allowed = [ns for ns in spaces if settings.excluded(ns.name) is None and not policy.leaves_alone(ns.name)]
    consent = policy.require_consent

    def targets(rule: Rule, source: ConfigObject) -> Iterator[Namespace]:
        return (
            ns
            for ns in allowed
            if ns.name != source.ref.namespace
            and rule.targets.selects(ns)
            and (not consent or policy.target_refusal(source.ref, ns) is None)
        )

    wanted, vetoes = desired_copies(
        found, by_ref, targets=targets, settings=settings, hooks=hooks, problems=problems
    )
    ruled = {rule.source for rule in found}
    asking = (
        [o for o in sources if vocabularies.asks(o.annotations, disabled)]
        if pull_targets is None
        else pull_targets
    )
    pulled = pulls.plan_pulls(
        asking,
        pulls.PullContext(
            sources=by_ref,
            refused=refused,
            namespaces=by_name,
            policy=policy,
            cluster_name=settings.cluster_name,
            source_namespace=settings.source_namespace,
            excluded=settings.excluded,
            disabled=disabled,
        ),
        transform=functools.partial(_shaped, hooks),
        problems=problems,
    )
    plan = complete_plan(
        wanted,
        vetoes,
        existing,
        cluster_name=settings.cluster_name,
        policy=policy,
        problems=problems,
        warnings=warnings,
        delete_reason=lambda owner, ref: (
            _delete_reason(owner, ref, by_ref, ruled, refused)
            or _target_refused(owner, by_name.get(ref.namespace), policy)
            or _no_longer_selected(ref)
        ),
        created={ref: obj.created for ref, obj in by_ref.items()},
        takeover=disabled,
        unreadable=frozenset(unreadable),
    )
    return _with_pulls(plan, pulled)


def _with_pulls(plan: Plan, pulled: pulls.PulledCopies) -> Plan:
    """``plan`` with the pulled targets' actions and refusals merged in."""
    if not (pulled.copies or pulled.refusals or pulled.vetoes):
        return plan
    differ = _Differ()
    actions = list(plan.actions)
    for copy, target in pulled.copies:
        action = _compare(copy, target, differ)
        if action.kind is ActionKind.UPDATE:
            action = replace(action, reason=f"{copy.rule}: {action.reason}")
        actions.append(action)
    return replace(
        plan,
        actions=tuple(sorted(actions, key=lambda a: a.ref.sort_key)),
        vetoes=tuple(sorted((*plan.vetoes, *pulled.vetoes), key=lambda v: v.ref.sort_key)),
        pull_refusals=tuple(sorted(pulled.refusals, key=lambda r: r.target.sort_key)),
    )


Refused = dict[ObjectRef, tuple[ConfigObject, Refusal]]
"""Objects that would be sources but that the policy refuses, with the refusal."""


def select_sources(
    sources: Iterable[ConfigObject], settings: PlanSettings, namespaces: Mapping[str, Namespace]
) -> tuple[dict[ObjectRef, ConfigObject], Refused]:
    """The objects that may be sources (ConfigMaps and Secrets, not copies, in the source namespace,
    allowed by the policy), and those the policy refuses."""
    selected: dict[ObjectRef, ConfigObject] = {}
    refused: Refused = {}
    for obj in sources:
        if (
            obj.ref.kind not in SOURCE_KINDS
            or origin.is_copy(obj.ref, obj.labels, settings.cluster_name)
            or settings.source_namespace not in {None, obj.ref.namespace}
        ):
            continue
        refusal = settings.policy.source_refusal(obj, namespaces.get(obj.ref.namespace))
        if refusal is None:
            selected[obj.ref] = obj
        else:
            refused[obj.ref] = (obj, refusal)
    return selected, refused


def refused_warnings(
    refused: Refused, documents: Iterable[Rule], disabled: frozenset[str] = frozenset()
) -> Iterator[Problem]:
    """A warning for each refused object that declares a rule, or that a SyncRule names."""
    named = {rule.source: rule.origin for rule in documents}
    for ref, (obj, refusal) in sorted(refused.items(), key=lambda item: item[0].sort_key):
        if vocabularies.declares_rule(obj.annotations, disabled) or ref in named:
            yield Problem(
                subject=obj.describe(),
                ref=ref,
                message=f"not synced: {refusal}",
            )


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
            and vocabularies.declares_rule(obj.annotations)
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
        labels, annotations = copy_metadata(
            source, settings.cluster_name, settings.policy, rule.strip_metadata, rule
        )
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
    policy: Policy = DEFAULT_POLICY,
    problems: list[Problem],
    warnings: list[Problem],
    delete_reason: Callable[[ObjectRef, ObjectRef], str],
    elsewhere: bool = False,
    created: Mapping[ObjectRef, str | None] = EMPTY_AGES,
    takeover: frozenset[str] | None = None,
    unreadable: frozenset[ObjectRef] = frozenset(),
) -> Plan:
    """Compare the wanted copies with what exists; delete managed copies no rule wants any more.

    When several sources want one copy, :func:`arbitrate` says which one has it. Managed copies in a
    namespace the policy leaves alone are neither written nor deleted: they are reported. ``elsewhere``
    says ``existing`` is in another cluster than the sources (``sync-contexts``); ``created`` gives the
    sources' creation times, for arbitration. With ``takeover`` (the vocabularies switched off), an
    object a peer made as a copy of a source that wants it there is that source's to update in place
    (:func:`cfgsync._core.vocabularies.taken_over`). The copies of ``unreadable`` sources (they exist,
    but could not be read) are reported, not deleted.
    """
    observed = {obj.ref: obj for obj in existing if obj.ref.kind in SOURCE_KINDS}
    differ = _Differ()

    def owner_of(obj: ConfigObject) -> ObjectRef | None:
        return origin.owner_of(obj, cluster_name, elsewhere=elsewhere)

    held: dict[tuple[ObjectRef, str, str], str] | None = None  # found when first needed
    actions: list[Action] = []
    conflicts: list[Conflict] = []
    left_alone: list[LeftAlone] = []
    for ref, candidates in wanted.items():
        found = observed.get(ref)
        owner = owner_of(found) if found is not None else None
        adopted = False
        if found is not None and owner is None and takeover is not None:
            owner = vocabularies.taken_over(found, candidates, takeover)
            adopted = owner is not None
        if (
            len(candidates) == 1
            and (owner is None or owner == candidates[0].source)
            and (found is None or owner)
        ):
            # the common case: one source, its own copy
            actions.append(
                _adopted(_compare(candidates[0], found, differ))
                if adopted
                else _compare(candidates[0], found, differ)
            )
            continue
        if found is not None and owner is None:
            conflicts.append(_unmanaged_conflict(ref, candidates, found))
            continue
        contenders = (
            [candidates[0].source]
            if len(candidates) == 1
            else sorted({c.source for c in candidates}, key=lambda s: (s.namespace, s.name, s.kind))
        )
        if found is not None and owner is not None and owner not in contenders:
            # A copy belongs to one source for its whole life: a stale copy is deleted by the usual
            # path, and only then may another source create its own there (on the next pass).
            _drop_stale(found, owner, unreadable, delete_reason, actions=actions, left_alone=left_alone)
            conflicts.append(_stale_conflict(ref, contenders, owner))
            continue
        if owner is None and len(contenders) > 1 and held is None:
            held = _first_held(observed.values(), owner_of)
        winner = arbitrate(ref, contenders, owner=owner, held=held or {}, created=created)
        mine = [c for c in candidates if c.source == winner]
        if len(mine) > 1:
            conflicts.append(_double_conflict(ref, candidates))
            continue
        compared = _compare(mine[0], found, differ)
        actions.append(_adopted(compared) if adopted else compared)
        if len(contenders) > 1:
            conflicts.append(_contest(ref, candidates, winner, kept=owner is not None))
    for ref, obj in observed.items():
        if ref in wanted:
            continue
        owner = owner_of(obj)
        if owner is None:
            continue
        left = _left_alone(ref, owner, policy, unreadable)
        if left is not None:
            left_alone.append(left)
            continue
        reason = delete_reason(owner, ref)
        actions.append(Action(kind=ActionKind.DELETE, ref=ref, source=owner, observed=obj, reason=reason))
    return Plan(
        actions=tuple(sorted(actions, key=lambda a: a.ref.sort_key)),
        conflicts=tuple(sorted(conflicts, key=lambda c: c.ref.sort_key)),
        vetoes=tuple(sorted(vetoes, key=lambda v: v.ref.sort_key)),
        problems=tuple(problems),
        warnings=tuple(warnings),
        left_alone=tuple(sorted(left_alone, key=lambda x: x.ref.sort_key)),
    )


def arbitrate(
    ref: ObjectRef,
    contenders: list[ObjectRef],
    *,
    owner: ObjectRef | None,
    held: Mapping[tuple[ObjectRef, str, str], str],
    created: Mapping[ObjectRef, str | None] = EMPTY_AGES,
) -> ObjectRef:
    """The source whose copy ``ref`` is, when ``contenders`` all want it.

    1. The copy's current owner keeps it: a copy belongs to one source for its whole life.
    2. No copy yet: the source that has held a copy of this kind and name elsewhere the longest (its
       oldest such copy is the oldest), so a rival cannot win the new namespaces of an established
       source, however many copies it makes meanwhile.
    3. Else the older source (``creationTimestamp``), else the first by namespace, then name.

    ``held`` maps (source, kind, name) to the creation time of that source's oldest copy of that name
    (empty when unknown); ``created`` the sources' creation times. Every mode applies the same rule to
    what it sees; existing copies never change hands, so nothing flaps.
    """
    if owner is not None:
        return owner

    def rank(source: ObjectRef) -> tuple[bool, bool, str, bool, str, str, str]:
        first = held.get((source, ref.kind, ref.name))
        born = created.get(source)
        # Unknown times sort after known ones: whoever can prove it came first, wins.
        return (first is None, not first, first or "", not born, born or "", source.namespace, source.name)

    return min(contenders, key=rank)


def _first_held(
    observed: Iterable[ConfigObject], owner_of: Callable[[ConfigObject], ObjectRef | None]
) -> dict[tuple[ObjectRef, str, str], str]:
    """(owner, kind, name) -> creation time of its oldest copy of that name ('' when none is known)."""
    first: dict[tuple[ObjectRef, str, str], str] = {}
    for obj in observed:
        owner = owner_of(obj)
        if owner is None:
            continue
        key = (owner, obj.ref.kind, obj.ref.name)
        created = obj.created or ""
        known = first.get(key)
        if known is None or (created and (not known or created < known)):
            first[key] = created
    return first


def _adopted(action: Action) -> Action:
    """The update that takes a peer's copy over in place (same object, same uid)."""
    tool = (
        "reflector"
        if action.desired is not None and action.desired.vocabulary == "reflector"
        else "replicator"
    )
    if action.kind is ActionKind.UNCHANGED:
        return action
    return replace(action, reason=f"taken over in place from {tool} (same object, same uid): {action.reason}")


def _drop_stale(
    found: ConfigObject,
    owner: ObjectRef,
    unreadable: frozenset[ObjectRef],
    delete_reason: Callable[[ObjectRef, ObjectRef], str],
    *,
    actions: list[Action],
    left_alone: list[LeftAlone],
) -> None:
    """Delete ``found``, a copy its owner no longer wants where others want one; a source that cannot
    be read still owns its copies, so they are kept, not yielded to the others."""
    if owner in unreadable:
        left_alone.append(_kept_for_unreadable(found.ref, owner))
        return
    reason = delete_reason(owner, found.ref)
    actions.append(Action(kind=ActionKind.DELETE, ref=found.ref, source=owner, observed=found, reason=reason))


def _kept_for_unreadable(ref: ObjectRef, owner: ObjectRef) -> LeftAlone:
    return LeftAlone(
        ref=ref,
        source=owner,
        policy=UNREADABLE_SOURCE,
        reason=f"its source {owner} exists but cannot be read (see the report on it), so its copies "
        f"stay as they are: fix the source, or delete it to delete its copies",
    )


def _left_alone(
    ref: ObjectRef, owner: ObjectRef, policy: Policy, unreadable: frozenset[ObjectRef]
) -> LeftAlone | None:
    """Why the managed copy ``ref`` that no rule wants is kept rather than deleted; None: it is not."""
    if owner in unreadable:
        return _kept_for_unreadable(ref, owner)
    if not policy.leaves_alone(ref.namespace):
        return None
    return LeftAlone(
        ref=ref,
        source=owner,
        policy=SYSTEM_NAMESPACES_POLICY,
        reason=f"{ref.namespace} is a system namespace, where cfgsync writes and deletes nothing unless "
        f"the operator allows system namespaces (--allow-system-namespaces; then it is managed again). "
        f"It stays as it is: delete it by hand if no workload there needs it",
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
        vocabulary=base.rule.vocabulary,
        labels=base.labels,
        annotations=base.annotations,
        data=source.data,
        binary_data=source.binary_data,
        type=source.type,
        immutable=source.immutable,
    )
    copy = hooks.transform(copy, source=source, namespace=ns, rule=base.rule)
    return copy, hooks.veto(copy, source=source, namespace=ns, rule=base.rule)


def _shaped(
    hooks: CopyHooks, copy: Copy, source: ConfigObject, namespace: Namespace, rule: Rule
) -> tuple[Copy, Veto | None]:
    """``copy`` as the plugins' transforms leave it, and the first veto."""
    copy = hooks.transform(copy, source=source, namespace=namespace, rule=rule)
    return copy, hooks.veto(copy, source=source, namespace=namespace, rule=rule)


def _double_conflict(ref: ObjectRef, candidates: list[Copy]) -> Conflict:
    sources = tuple(sorted({c.source for c in candidates}))
    described = "; ".join(f"{c.source} by {c.rule}" for c in candidates)
    return Conflict(
        ref=ref,
        sources=sources,
        reason=f"{len(candidates)} rules want to write {ref} ({described}); neither is written. "
        f"Narrow one rule's namespaces or give one copy another name ({vocabulary.COPY_NAME})",
    )


def _described(candidates: list[Copy]) -> str:
    return "; ".join(f"{c.source} by {c.rule}" for c in sorted(candidates, key=lambda c: c.source))


def _contest(ref: ObjectRef, candidates: list[Copy], winner: ObjectRef, *, kept: bool) -> Conflict:
    sources = tuple(sorted({c.source for c in candidates}))
    why = (
        "it holds the copy already, and a copy never changes hands"
        if kept
        else "no copy exists yet, and it has held a copy of that name elsewhere the longest, else it is the "
        "older source, else it sorts first by namespace and name"
    )
    losers = ", ".join(str(s) for s in sources if s != winner)
    return Conflict(
        ref=ref,
        sources=sources,
        winner=winner,
        reason=f"{len(sources)} sources want {ref} ({_described(candidates)}); {winner} has it because "
        f"{why}. Not written for {losers}: narrow its namespaces or give its copies another name "
        f"({vocabulary.COPY_NAME})",
    )


def _stale_conflict(ref: ObjectRef, contenders: list[ObjectRef], owner: ObjectRef) -> Conflict:
    wanting = ", ".join(str(s) for s in contenders)
    return Conflict(
        ref=ref,
        sources=tuple(contenders),
        reason=f"{ref} holds a copy of {owner}, which no longer wants it; that copy is deleted first "
        f"(a copy never changes hands), then the copy of {wanting} is created on the next pass",
    )


def _unmanaged_conflict(ref: ObjectRef, candidates: list[Copy], found: ConfigObject) -> Conflict:
    sources = tuple(sorted({c.source for c in candidates}))
    wanting = ", ".join(str(s) for s in sources)
    return Conflict(
        ref=ref,
        sources=sources,
        reason=f"copy of {wanting} not written: an unmanaged {found.ref.kind} with that name exists in "
        f"namespace {ref.namespace}; cfgsync leaves it untouched. Delete or rename it, or choose another "
        f"copy name ({vocabulary.COPY_NAME})",
    )


def _compare(copy: Copy, observed: ConfigObject | None, differ: _Differ) -> Action:
    """The action that makes ``observed`` (a copy of ``copy``'s own source, or nothing) match ``copy``."""
    if observed is None:
        return Action(
            kind=ActionKind.CREATE,
            ref=copy.ref,
            source=copy.source,
            desired=copy,
            reason=f"selected by {copy.rule}",
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
    fields = sorted({str(op["path"]).split("/")[1] + _sub(op) for op in patch})
    replace = bool(observed.immutable) and (payload_changed or copy.immutable is not True)
    return Action(
        kind=ActionKind.REPLACE if replace else ActionKind.UPDATE,
        ref=copy.ref,
        source=copy.source,
        desired=copy,
        observed=observed,
        patch=patch,
        reason=(
            "immutable copy differs, so it is deleted and created again: " if replace else "copy differs: "
        )
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
    owner: ObjectRef,
    ref: ObjectRef,
    sources: Mapping[ObjectRef, ConfigObject],
    ruled: set[ObjectRef],
    refused: Refused,
) -> str:
    """Why a copy goes because of its source, or empty when the source still wants copies."""
    del ref
    if owner in refused:
        return f"its source {owner} is not synced: {refused[owner][1]}"
    if owner not in sources:
        return f"its source {owner} no longer exists"
    if owner not in ruled:
        return f"its source {owner} no longer has a sync rule"
    return ""


def _target_refused(owner: ObjectRef, namespace: Namespace | None, policy: Policy) -> str:
    refusal = policy.target_refusal(owner, namespace) if namespace is not None else None
    return f"its namespace is {refusal}" if refusal is not None else ""


def _no_longer_selected(ref: ObjectRef) -> str:
    return f"namespace {ref.namespace} is no longer selected (or the copy was vetoed or renamed)"
