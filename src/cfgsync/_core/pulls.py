"""Planning pulls: a target asked for a source; does it get the source's data, and if not, why.

Pure: no I/O. The same policy as push applies (protected sources, source namespaces, system namespaces,
consent mode, excluded namespaces), and the source must allow the target's namespace in one of the
enabled vocabularies. A target that is allowed gets the source's data (after the source's key
filters and renames and the plugins' transforms), its type checked, plus the ``cfgsync.io/copied-from``
annotation; cfgsync never creates a target and never deletes one. A target that is refused keeps
whatever data it has, and the refusal is reported (a warning; an Event on the target under ``run``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from cfgsync import errors
from cfgsync._core import origin, patterns, reflector, replicator, rules, vocabularies, vocabulary
from cfgsync._core.model import (
    ConfigObject,
    Copy,
    Namespace,
    ObjectRef,
    Problem,
    PullRefusal,
    Veto,
    frozen,
)
from cfgsync._core.policy import Policy, Refusal
from cfgsync._core.pull import PullRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class PullCheck:
    """Every check of one request, in words, and the verdict."""

    request: PullRequest
    """What was asked."""
    reasons: tuple[str, ...]
    """Each check, ``yes: ...`` or ``no: ...``, in order."""
    refusal: str | None
    """Why nothing is copied (the first failed check); None when the target gets the data."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PullContext:
    """What every request is checked against (the planner's inputs, once per plan)."""

    sources: Mapping[ObjectRef, ConfigObject]
    """Objects that may be sources (not copies, allowed by the policy)."""
    refused: Mapping[ObjectRef, tuple[ConfigObject, Refusal]]
    """Objects the policy refuses as sources, with the refusal."""
    namespaces: Mapping[str, Namespace]
    """Every namespace, by name."""
    policy: Policy
    """The operator's policy."""
    cluster_name: str
    """This cluster's name (whose origin labels mark copies)."""
    source_namespace: str | None
    """kubed's one source namespace, when set."""
    excluded: Callable[[str], str | None]
    """The global exclusion that names a namespace, if any."""
    disabled: frozenset[str]
    """Vocabularies switched off."""


def evaluate(request: PullRequest, target: ConfigObject, ctx: PullContext) -> PullCheck:
    """Check one request against the policy and the source's allowances (see the module docstring)."""
    lines = [f"yes: {target.ref} asks for it ({request.key})"]
    refusal = _source_refusal(request, target, ctx) or _namespace_refusal(request, target, ctx, lines)
    if refusal is None:
        refusal = _allowance_refusal(request, target, ctx, lines) or _target_refusal(request, target, ctx)
    if refusal is not None:
        lines.append(f"no: {refusal}")
    return PullCheck(request=request, reasons=tuple(lines), refusal=refusal)


def _source_refusal(request: PullRequest, target: ConfigObject, ctx: PullContext) -> str | None:
    """Why the source cannot be pulled at all, or None."""
    source = request.source
    if origin.is_copy(target.ref, target.labels, ctx.cluster_name):
        return f"{target.ref} is a copy (it carries origin labels); a copy never pulls, its source decides"
    if ctx.source_namespace is not None and source.namespace != ctx.source_namespace:
        return f"only sources in {ctx.source_namespace} count (--source-namespace)"
    if source in ctx.refused:
        return f"{source} is not a source, {ctx.refused[source][1]}"
    if source not in ctx.sources:
        return f"{source} does not exist (or is a copy); the target keeps the data it has"
    return None


def _namespace_refusal(
    request: PullRequest, target: ConfigObject, ctx: PullContext, lines: list[str]
) -> str | None:
    """Why nothing may go into the target's namespace (the policy, exclusions), or None."""
    namespace = ctx.namespaces.get(target.ref.namespace)
    if namespace is None or namespace.terminating:
        return f"namespace {target.ref.namespace} is gone or terminating"
    hit = ctx.excluded(namespace.name)
    if hit is not None:
        return f"namespace {namespace.name} is excluded for every rule ({hit})"
    refusal = ctx.policy.target_refusal(request.source, namespace)
    if refusal is not None:
        return str(refusal)
    if ctx.policy.require_consent:
        lines.append(
            f"yes: namespace {namespace.name} accepts copies from {request.source.namespace} "
            f"({vocabulary.ACCEPT_FROM})"
        )
    return None


def _allowance_refusal(
    request: PullRequest, target: ConfigObject, ctx: PullContext, lines: list[str]
) -> str | None:
    """Why the source does not allow the target's namespace, or None (and the allowing line)."""
    source = ctx.sources[request.source]
    namespace = ctx.namespaces[target.ref.namespace]
    try:
        said = vocabularies.allowances(source, namespace, ctx.disabled)
    except errors.RuleError as exc:
        return f"its allowance is invalid: {exc}"
    if not said:
        keys = [vocabulary.ALLOW_PULL_NAMESPACES]
        keys += [vocabulary.REPLICATION_ALLOWED] if replicator.NAME not in ctx.disabled else []
        keys += [vocabulary.REFLECTION_ALLOWED] if reflector.NAME not in ctx.disabled else []
        return f"{source.ref} allows no pulls (it carries none of {', '.join(keys)})"
    allowing = next((verdict for _, verdict in said if verdict.allowed), None)
    if allowing is None:
        reasons = "; ".join(verdict.reason for _, verdict in said)
        return f"{source.ref} does not allow {namespace.name}: {reasons}"
    lines.append(f"yes: {source.ref} allows it: {allowing.reason}")
    return None


def _target_refusal(request: PullRequest, target: ConfigObject, ctx: PullContext) -> str | None:
    """Why the target cannot take the data (its type, keys of its own), or None."""
    source = ctx.sources[request.source]
    if target.ref.kind == "Secret" and source.type is not None and target.type not in {None, source.type}:
        return (
            f"{target.ref} is of type {target.type} and {source.ref} of type {source.type}; a Secret's "
            f"type cannot change: make the target with type {source.type}"
        )
    if request.vocabulary == replicator.NAME and replicator.wrote(target.annotations):
        own = replicator.own_keys(target) if target.content_digest is None else frozenset()
        if own:
            return (
                f"{target.ref} holds keys of its own besides those replicator wrote "
                f"({', '.join(sorted(own))}); cfgsync makes a target's data the source's and would "
                f"remove them: move them elsewhere"
            )
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class PulledCopies:
    """What the targets get: desired copies with the target they go onto, and refusals."""

    copies: tuple[tuple[Copy, ConfigObject], ...] = ()
    """Each allowed target's desired state, with the target as observed."""
    refusals: tuple[PullRefusal, ...] = ()
    """Targets that get nothing."""
    vetoes: tuple[Veto, ...] = ()
    """Pulled copies a plugin refused."""


Transform = Callable[[Copy, ConfigObject, Namespace, rules.Rule], tuple[Copy, Veto | None]]
"""The plugins' transforms and vetoes, applied to one copy (the planner passes its hooks)."""


def plan_pulls(
    targets: Iterable[ConfigObject],
    ctx: PullContext,
    *,
    transform: Transform,
    problems: list[Problem],
) -> PulledCopies:
    """The data every target that asks should hold, or why it gets none."""
    copies: list[tuple[Copy, ConfigObject]] = []
    refusals: list[PullRefusal] = []
    vetoes: list[Veto] = []
    for target in targets:
        try:
            request = vocabularies.request_of(target, ctx.disabled)
        except errors.RuleError as exc:
            problems.append(Problem(subject=target.describe(), ref=target.ref, message=str(exc)))
            continue
        if request is None:
            continue
        check = evaluate(request, target, ctx)
        if check.refusal is not None:
            refusals.append(
                PullRefusal(
                    target=target.ref, source=request.source, request=request.key, reason=check.refusal
                )
            )
            continue
        source = ctx.sources[request.source]
        namespace = ctx.namespaces[target.ref.namespace]
        try:
            copy, veto = transform(
                desired(request, source, target), source, namespace, rule_for(request, source)
            )
        except errors.CfgsyncError as exc:
            problems.append(Problem(subject=source.describe(), ref=source.ref, message=str(exc)))
            continue
        if veto is not None:
            vetoes.append(veto)
        elif copy.ref != target.ref:
            problems.append(
                Problem(
                    subject=target.describe(),
                    ref=source.ref,
                    message=f"a plugin renamed the data pulled into {target.ref} to {copy.ref}; a pulled "
                    f"target keeps its own name",
                )
            )
        else:
            copies.append((copy, target))
    return PulledCopies(copies=tuple(copies), refusals=tuple(refusals), vetoes=tuple(vetoes))


def rule_for(request: PullRequest, source: ConfigObject) -> rules.Rule:
    """The rule the plugins see for a pull: exactly the target's namespace and name, the source's keys."""
    return rules.Rule(
        source=source.ref,
        origin=f"annotation {request.key} on {request.target}",
        targets=rules.NamespaceTargets(names=(request.target.namespace,)),
        keys=rules.key_transforms(source),
        copy_name=request.target.name,
        vocabulary=request.vocabulary,
    )


def desired(request: PullRequest, source: ConfigObject, target: ConfigObject) -> Copy:
    """The target as it should be: its own metadata, the source's payload, and where it came from."""
    annotations = {k: v for k, v in target.annotations.items() if k != vocabulary.LAST_APPLIED}
    annotations[vocabulary.COPIED_FROM] = origin.origin_annotation(source)
    return Copy(
        ref=target.ref,
        source=source.ref,
        rule=f"annotation {request.key} on {request.target}",
        vocabulary=request.vocabulary,
        labels=target.labels,
        annotations=frozen(annotations),
        data=source.data,
        binary_data=source.binary_data,
        type=target.type,
        immutable=target.immutable,
        pulled=True,
    )


def excluded_by(
    globs: tuple[str, ...], regexes: tuple[patterns.NamespaceRegex, ...]
) -> Callable[[str], str | None]:
    """The global exclusion that names a namespace (``--exclude-namespace`` globs, then regexes)."""

    def excluded(name: str) -> str | None:
        glob = next((p for p in globs if fnmatchcase(name, p)), None)
        if glob is not None:
            return f"--exclude-namespace {glob}"
        regex = patterns.any_matches(regexes, name)
        return f"--exclude-namespace-regex {regex}" if regex is not None else None

    return excluded
