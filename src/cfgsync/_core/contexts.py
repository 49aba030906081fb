"""Planning copies into other clusters (kubed's ``kubed.appscode.com/sync-contexts``).

Pure: no I/O. A source whose rule names kubeconfig contexts is copied into each of those clusters,
into the context's namespace, else the namespace of the source's own name; namespaces are never
created (a missing one is a warning), and copies are removed from clusters no longer named. The copy is
made by the planner's own pieces (metadata, transforms, vetoes, comparison), so a copy in another
cluster is exactly the copy the same rule would make in this one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    source_namespaces: Mapping[str, Namespace] | None = None,
) -> Plan:
    """Plan the copies that belong in the cluster of ``context``.

    ``namespaces`` are that cluster's namespaces (only the ones copies would go to are needed);
    ``existing`` is what that cluster holds at the copies' names and every copy there made for
    ``settings.cluster_name``. Managed copies there that no rule names this context for are deleted.
    ``source_namespaces`` are this cluster's namespaces, which the policy reads to decide which
    namespaces may hold sources (by their labels).
    """
    sources, rules = tuple(sources), tuple(rules)
    spaces = {ns.name: ns for ns in namespaces}
    by_ref, refused = planner.select_sources(sources, settings, source_namespaces or {})
    found, problems, warnings = planner.collect_rules(by_ref, rules, refused)
    warnings.extend(planner.refused_warnings(refused, rules))

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
        if any(fnmatchcase(target, p) for p in settings.excluded_namespaces):
            return []
        refusal = settings.policy.target_refusal(source.ref, ns)
        if refusal is not None:
            warnings.append(
                Problem(
                    subject=source.describe(),
                    ref=source.ref,
                    message=f"no copy into namespace {target} of context {context}: {refusal}",
                )
            )
            return []
        return [ns]

    wanted, vetoes = planner.desired_copies(
        found, by_ref, targets=targets, settings=settings, hooks=hooks, problems=problems
    )

    def delete_reason(owner: ObjectRef, ref: ObjectRef) -> str:
        if owner in refused:
            return f"its source {owner} is not synced: {refused[owner][1]}"
        if owner not in by_ref:
            return f"its source {owner} no longer exists"
        ns = spaces.get(ref.namespace)
        refusal = settings.policy.target_refusal(owner, ns) if ns is not None else None
        if refusal is not None:
            return f"its namespace in context {context} is {refusal}"
        return f"context {context} is no longer named in its source's sync-contexts"

    return planner.complete_plan(
        wanted,
        vetoes,
        existing,
        cluster_name=settings.cluster_name,
        policy=settings.policy,
        problems=problems,
        warnings=warnings,
        delete_reason=delete_reason,
        elsewhere=True,
        created={ref: obj.created for ref, obj in by_ref.items()},
    )
