"""Planning copies into other clusters (kubed's ``kubed.appscode.com/sync-contexts``).

Pure: no I/O. A source whose rule names kubeconfig contexts is copied into each of those clusters,
into the context's namespace, else the namespace of the source's own name; namespaces are never
created (a missing one is a warning), and copies are removed from clusters no longer named. The copy is
made by the planner's own pieces (metadata, transforms, vetoes, comparison), so a copy in another
cluster is exactly the copy the same rule would make in this one.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from cfgsync import errors
from cfgsync._core import origin, planner
from cfgsync._core.model import (
    SOURCE_KINDS,
    Action,
    ActionKind,
    ConfigObject,
    Copy,
    Namespace,
    ObjectRef,
    Plan,
    Problem,
    Veto,
)
from cfgsync._core.rules import Rule, is_copy


def plan_context_copies(
    sources: Iterable[ConfigObject],
    *,
    context: str,
    context_namespace: str | None,
    namespaces: Iterable[Namespace],
    existing: Iterable[ConfigObject] = (),
    rules: Iterable[Rule] = (),
    settings: planner.PlanSettings = planner.DEFAULT_SETTINGS,
    hooks: planner.CopyHooks,
) -> Plan:
    """Plan the copies that belong in the cluster of ``context``.

    ``namespaces`` are that cluster's namespaces (only the ones copies would go to are needed);
    ``existing`` is what that cluster holds at the copies' names and every copy there made for
    ``settings.cluster_name``. Managed copies there that no rule names this context for are deleted.
    """
    by_ref = {
        obj.ref: obj
        for obj in sources
        if obj.ref.kind in SOURCE_KINDS
        and not is_copy(obj.labels)
        and settings.source_namespace in {None, obj.ref.namespace}
    }
    found, problems, warnings = planner.collect_rules(by_ref, rules)
    spaces = {ns.name: ns for ns in namespaces}
    wanted: dict[ObjectRef, list[Copy]] = {}
    vetoes: list[Veto] = []
    for rule in found:
        if context not in rule.contexts:
            continue
        source = by_ref[rule.source]
        target = context_namespace or source.ref.namespace
        ns = spaces.get(target)
        if ns is None or ns.terminating:
            warnings.append(
                Problem(
                    subject=source.describe(),
                    ref=source.ref,
                    message=f"namespace {target} does not exist in context {context} (or is being deleted); "
                    f"cfgsync never creates namespaces, create it there",
                )
            )
            continue
        if any(fnmatchcase(target, p) for p in settings.excluded_namespaces):
            continue
        labels, annotations = planner.copy_metadata(source, settings.cluster_name)
        # The planner's own private pieces, shared on purpose: one way to make and compare a copy.
        base = planner._Base(rule=rule, source=source, labels=labels, annotations=annotations)
        try:
            copy, veto = planner._make_copy(base, ns, hooks)
        except errors.CfgsyncError as exc:
            problems.append(Problem(subject=source.describe(), ref=source.ref, message=str(exc)))
            continue
        if veto is not None:
            vetoes.append(veto)
        else:
            wanted.setdefault(copy.ref, []).append(copy)
    observed = {obj.ref: obj for obj in existing if obj.ref.kind in SOURCE_KINDS}
    actions, conflicts = planner._reconcile(wanted, observed, settings.cluster_name)
    for ref, obj in observed.items():
        owner = origin.owner_of(obj, settings.cluster_name)
        if owner is None or ref in wanted:
            continue
        if owner not in by_ref:
            reason = f"its source {owner} no longer exists"
        else:
            reason = f"context {context} is no longer named in its source's sync-contexts"
        actions.append(Action(kind=ActionKind.DELETE, ref=ref, source=owner, observed=obj, reason=reason))
    actions.sort(key=lambda a: a.ref.sort_key)
    return Plan(
        actions=tuple(actions),
        conflicts=tuple(sorted(conflicts, key=lambda c: c.ref.sort_key)),
        vetoes=tuple(sorted(vetoes, key=lambda v: v.ref.sort_key)),
        problems=tuple(problems),
        warnings=tuple(warnings),
    )
