"""Why a source does or does not land in a namespace (``cfgsync explain``).

Pure: reads the same rules and plan the planner uses, so the explanation cannot drift from what
the planner does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from cfgsync import errors
from cfgsync._core import origin, vocabulary
from cfgsync._core.model import ConfigObject, Namespace, ObjectRef, Plan
from cfgsync._core.planner import DEFAULT_SETTINGS, PlanSettings, collect_rules
from cfgsync._core.policy import Policy
from cfgsync._core.rules import Rule


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """The verdict for one source (and one of its rules) in one namespace."""

    source: ObjectRef
    """The source."""
    rule: str
    """Which rule (``annotation ...`` or ``SyncRule ...``); empty when the source has none."""
    lands: bool
    """True when a copy of the source is (or stays) in the namespace."""
    reasons: tuple[str, ...]
    """Each check, ``yes: ...`` or ``no: ...``, in order."""


def explain_namespace(
    namespace: str,
    objects: Iterable[ConfigObject],
    namespaces: Iterable[Namespace],
    plan: Plan,
    *,
    rules: Iterable[Rule] = (),
    settings: PlanSettings = DEFAULT_SETTINGS,
) -> tuple[Explanation, ...]:
    """Explain, for every ConfigMap and Secret that is not a copy, whether it lands in ``namespace``."""
    spaces = {ns.name: ns for ns in namespaces}
    target = spaces.get(namespace)
    if target is None:
        raise errors.CfgsyncError(
            f"namespace {namespace!r} is not in the input; add its Namespace object (with its labels)"
        )
    sources = {o.ref: o for o in objects if not origin.is_copy(o.ref, o.labels, settings.cluster_name)}
    found, problems, _ = collect_rules(sources, rules)
    policy = settings.policy
    landed = {a.source for a in plan.actions if a.desired is not None and a.ref.namespace == namespace}
    blocked = {
        c_source: c.reason
        for c in plan.conflicts
        if c.ref.namespace == namespace
        for c_source in c.sources
        if c_source != c.winner
    }
    contested = {c.winner: c.reason for c in plan.conflicts if c.ref.namespace == namespace and c.winner}
    left = {x.source: x for x in plan.left_alone if x.ref.namespace == namespace}
    vetoed = {v.source: f"plugin {v.plugin}: {v.reason}" for v in plan.vetoes if v.ref.namespace == namespace}
    result: list[Explanation] = []
    ruled = {rule.source for rule in found}
    for rule in sorted(found, key=lambda r: (r.source.sort_key, r.origin)):
        reasons: list[str] = []
        source = sources.get(rule.source)
        if source is not None and origin.points_at_itself(source.ref, source.labels, settings.cluster_name):
            reasons.append(
                "yes: its origin labels point at itself (kubed marks its sources so when it restarts); "
                "it is a source, not a copy"
            )
        if settings.source_namespace is not None and rule.source.namespace != settings.source_namespace:
            reasons.append(f"no: only sources in {settings.source_namespace} count (--source-namespace)")
        if source is not None:
            reasons.extend(_source_policy(source, spaces.get(source.ref.namespace), policy))
        if rule.source.namespace == namespace:
            reasons.append("no: this is the source's own namespace")
        hit = [p for p in settings.excluded_namespaces if fnmatchcase(namespace, p)]
        if hit:
            reasons.append(f"no: excluded for every rule ({', '.join(hit)})")
        reasons.extend(rule.targets.explain(target))
        reasons.extend(_target_policy(rule.source, target, policy))
        if rule.source in left:
            reasons.append(f"no: its existing copy is {left[rule.source].reason}")
        if rule.source in contested:
            reasons.append(f"yes: it has the copy another source also wants: {contested[rule.source]}")
        if rule.source in blocked:
            reasons.append(f"no: {blocked[rule.source]}")
        if rule.source in vetoed:
            reasons.append(f"no: vetoed by {vetoed[rule.source]}")
        result.append(
            Explanation(
                source=rule.source, rule=rule.origin, lands=rule.source in landed, reasons=tuple(reasons)
            )
        )
    invalid = {p.ref: p.message for p in problems if p.ref is not None}
    for ref in sorted(set(sources) - ruled, key=lambda r: r.sort_key):
        reason = f"no: invalid rule: {invalid[ref]}" if ref in invalid else "no: the object has no sync rule"
        result.append(Explanation(source=ref, rule="", lands=False, reasons=(reason,)))
    return tuple(result)


def _source_policy(source: ConfigObject, namespace: Namespace | None, policy: Policy) -> list[str]:
    refusal = policy.source_refusal(source, namespace)
    return [f"no: not a source, {refusal}"] if refusal is not None else []


def _target_policy(source: ObjectRef, target: Namespace, policy: Policy) -> list[str]:
    refusal = policy.target_refusal(source, target)
    if refusal is not None:
        return [f"no: {refusal}"]
    if policy.require_consent:
        return [
            f"yes: namespace {target.name} accepts copies from {source.namespace} "
            f"({vocabulary.ACCEPT_FROM}: {', '.join(target.accept_from or ())})"
        ]
    return []
