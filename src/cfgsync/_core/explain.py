"""Why a source does or does not land in a namespace (``cfgsync explain``).

Pure: reads the same rules and plan the planner uses, so the explanation cannot drift from what
the planner does. Every vocabulary is explained: a push rule names the annotation (and so the tool)
it comes from, and each object in the namespace that asks for a source (a pull) gets the checks the
planner made for it, the source's allowance included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from cfgsync import errors
from cfgsync._core import origin, pulls, vocabularies, vocabulary
from cfgsync._core.model import ConfigObject, Namespace, ObjectRef, Plan
from cfgsync._core.planner import DEFAULT_SETTINGS, PlanSettings, collect_rules, select_sources
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
    objects = tuple(objects)
    sources = {o.ref: o for o in objects if not origin.is_copy(o.ref, o.labels, settings.cluster_name)}
    disabled = settings.disabled_vocabularies
    found, problems, _ = collect_rules(sources, rules, None, disabled)
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
    taken = {
        a.source: a.reason for a in plan.actions if a.ref.namespace == namespace and "taken over" in a.reason
    }
    result: list[Explanation] = []
    ruled = {rule.source for rule in found}
    for rule in sorted(found, key=lambda r: (r.source.sort_key, r.origin)):
        reasons = _rule_lines(rule, sources.get(rule.source), spaces, target, settings)
        reasons += _outcome_lines(rule.source, taken, left, contested, blocked, vetoed)
        result.append(
            Explanation(
                source=rule.source, rule=rule.origin, lands=rule.source in landed, reasons=tuple(reasons)
            )
        )
    pulled = _pulls(namespace, objects, spaces, plan, settings)
    result.extend(pulled)
    asked = {item.source for item in pulled}
    invalid = {p.ref: p.message for p in problems if p.ref is not None}
    for ref in sorted(set(sources) - ruled, key=lambda r: r.sort_key):
        allowance = _allowance(sources[ref], target, disabled) if ref not in invalid else None
        if allowance is not None:
            if ref not in asked:
                result.append(allowance)
            continue
        reason = f"no: invalid rule: {invalid[ref]}" if ref in invalid else "no: the object has no sync rule"
        result.append(Explanation(source=ref, rule="", lands=False, reasons=(reason,)))
    return tuple(result)


def _rule_lines(
    rule: Rule,
    source: ConfigObject | None,
    spaces: dict[str, Namespace],
    target: Namespace,
    settings: PlanSettings,
) -> list[str]:
    """What the source, the policy and the rule say about ``target``."""
    reasons: list[str] = []
    policy = settings.policy
    if source is not None and origin.points_at_itself(source.ref, source.labels, settings.cluster_name):
        reasons.append(
            "yes: its origin labels point at itself (kubed marks its sources so when it restarts); "
            "it is a source, not a copy"
        )
    if settings.source_namespace is not None and rule.source.namespace != settings.source_namespace:
        reasons.append(f"no: only sources in {settings.source_namespace} count (--source-namespace)")
    if source is not None:
        reasons.extend(_source_policy(source, spaces.get(source.ref.namespace), policy))
    if rule.source.namespace == target.name:
        reasons.append("no: this is the source's own namespace")
    hit = [p for p in settings.excluded_namespaces if fnmatchcase(target.name, p)]
    if hit:
        reasons.append(f"no: excluded for every rule ({', '.join(hit)})")
    elif settings.excluded(target.name) is not None:
        reasons.append(f"no: excluded for every rule ({settings.excluded(target.name)})")
    reasons.extend(rule.targets.explain(target))
    reasons.extend(_target_policy(rule.source, target, policy))
    return reasons


def _outcome_lines(ref: ObjectRef, *found: Mapping[ObjectRef, object]) -> list[str]:
    """What the plan did about the source's copy here: taken over, left alone, contested, blocked, vetoed."""
    taken, left, contested, blocked, vetoed = found
    lines = []
    if ref in taken:
        lines.append(f"yes: its copy here was made by another tool and is {taken[ref]}")
    if ref in left:
        lines.append(f"no: its existing copy is {getattr(left[ref], 'reason', left[ref])}")
    if ref in contested:
        lines.append(f"yes: it has the copy another source also wants: {contested[ref]}")
    if ref in blocked:
        lines.append(f"no: {blocked[ref]}")
    if ref in vetoed:
        lines.append(f"no: vetoed by {vetoed[ref]}")
    return lines


def _pulls(
    namespace: str,
    objects: tuple[ConfigObject, ...],
    spaces: dict[str, Namespace],
    plan: Plan,
    settings: PlanSettings,
) -> list[Explanation]:
    """One explanation per object in ``namespace`` that asks for a source: the planner's own checks."""
    disabled = settings.disabled_vocabularies
    by_ref, refused = select_sources(objects, settings, spaces)
    ctx = pulls.PullContext(
        sources=by_ref,
        refused=refused,
        namespaces=spaces,
        policy=settings.policy,
        cluster_name=settings.cluster_name,
        source_namespace=settings.source_namespace,
        excluded=settings.excluded,
        disabled=disabled,
    )
    written = {a.ref for a in plan.actions if a.desired is not None and a.desired.pulled}
    vetoed = {v.ref: f"plugin {v.plugin}: {v.reason}" for v in plan.vetoes}
    found: list[Explanation] = []
    for target in sorted((o for o in objects if o.ref.namespace == namespace), key=lambda o: o.ref.sort_key):
        try:
            request = vocabularies.request_of(target, disabled)
        except errors.RuleError as exc:
            found.append(Explanation(source=target.ref, rule="", lands=False, reasons=(f"no: {exc}",)))
            continue
        if request is None:
            continue
        check = pulls.evaluate(request, target, ctx)
        reasons = list(check.reasons)
        if target.ref in vetoed:
            reasons.append(f"no: vetoed by {vetoed[target.ref]}")
        found.append(
            Explanation(
                source=request.source,
                rule=f"annotation {request.key} on {target.ref}",
                lands=target.ref in written,
                reasons=tuple(reasons),
            )
        )
    return found


def _allowance(source: ConfigObject, target: Namespace, disabled: frozenset[str]) -> Explanation | None:
    """For a source that only allows pulls: does it allow this namespace, and does anything here ask."""
    try:
        said = vocabularies.allowances(source, target, disabled)
    except errors.RuleError as exc:
        return Explanation(
            source=source.ref, rule="", lands=False, reasons=(f"no: invalid allowance: {exc}",)
        )
    if not said:
        return None
    reasons = [f"{'yes' if verdict.allowed else 'no'}: {key}: {verdict.reason}" for key, verdict in said]
    asking = ", ".join(vocabularies.request_keys(disabled))
    reasons.append(f"no: no {source.ref.kind} in {target.name} asks for it ({asking})")
    return Explanation(
        source=source.ref, rule=f"pull allowance {said[0][0]}", lands=False, reasons=tuple(reasons)
    )


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
