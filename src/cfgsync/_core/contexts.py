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

from cfgsync._core import planner
from cfgsync._core.model import ConfigObject, Namespace, ObjectRef, Plan, Problem
from cfgsync._core.rules import Rule


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
    by_ref = planner.select_sources(sources, settings)
    found, problems, warnings = planner.collect_rules(by_ref, rules)
    spaces = {ns.name: ns for ns in namespaces}

    def targets(rule: Rule, source: ConfigObject) -> list[Namespace]:
        if context not in rule.contexts:
            return []
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
            return []
        return [] if any(fnmatchcase(target, p) for p in settings.excluded_namespaces) else [ns]

    wanted, vetoes = planner.desired_copies(
        found, by_ref, targets=targets, settings=settings, hooks=hooks, problems=problems
    )

    def delete_reason(owner: ObjectRef, ref: ObjectRef) -> str:
        if owner not in by_ref:
            return f"its source {owner} no longer exists"
        return f"context {context} is no longer named in its source's sync-contexts"

    return planner.complete_plan(
        wanted,
        vetoes,
        existing,
        cluster_name=settings.cluster_name,
        problems=problems,
        warnings=warnings,
        delete_reason=delete_reason,
        elsewhere=True,
    )
