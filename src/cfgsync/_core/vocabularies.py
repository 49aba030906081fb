"""Every vocabulary cfgsync reads, in one place: which rules a source declares, what a target asks for,
whether a source allows it, and which peer-made copies cfgsync takes over.

Pure: no I/O. Four vocabularies: kubed's and cfgsync's (always read), mittwald kubernetes-replicator's
and emberstack kubernetes-reflector's (read by default, so a migration needs no manifest edit; each can
be switched off, ``--disable-vocabulary``). A switched-off vocabulary's annotations mean nothing: its
rules, requests and allowances are not read, and the copies its tool made are not taken over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from cfgsync import errors
from cfgsync._core import pull, reflector, replicator, rules, vocabulary
from cfgsync._core.model import ConfigObject, Copy, Namespace, ObjectRef, Problem
from cfgsync._core.pull import PullRequest, Verdict

SWITCHABLE: Final = (replicator.NAME, reflector.NAME)
"""The vocabularies an operator can switch off (the peers')."""


def check_disabled(names: Iterable[str], *, where: str) -> frozenset[str]:
    """The vocabularies to switch off; :class:`RuleError` naming ``where`` for an unknown one."""
    found = frozenset(n.strip() for n in names if n.strip())
    unknown = sorted(found - set(SWITCHABLE))
    if unknown:
        raise errors.RuleError(
            f"{where}: {unknown[0]!r} is not a vocabulary that can be switched off; choose from "
            f"{', '.join(SWITCHABLE)}"
        )
    return found


def rules_of(
    source: ConfigObject, disabled: frozenset[str] = frozenset()
) -> tuple[list[rules.Rule], list[Problem]]:
    """Every push rule ``source`` declares in any enabled vocabulary, and what is read but not done.

    Raises :class:`RuleError` naming the object and the annotation when one is invalid.
    """
    found = list(rules.rules_from_annotations(source))
    warnings: list[Problem] = []
    if replicator.NAME not in disabled:
        rule = replicator.push_rule(source)
        if rule is not None:
            found.append(rule)
        warnings.extend(replicator.rule_warnings(source))
    if reflector.NAME not in disabled:
        rule = reflector.auto_rule(source)
        if rule is not None:
            found.append(rule)
    return found, warnings


def declares_rule(annotations: Mapping[str, str], disabled: frozenset[str] = frozenset()) -> bool:
    """True when these annotations make their object a source: a rule or a pull allowance in any
    enabled vocabulary (a malformed one too, so that it is reported)."""
    if rules.declares_rule(annotations):
        return True
    keys = set(annotations)
    if replicator.NAME not in disabled and keys & vocabulary.REPLICATOR_SOURCE_ANNOTATIONS:
        return True
    return reflector.NAME not in disabled and bool(keys & vocabulary.REFLECTOR_SOURCE_ANNOTATIONS)


def _request_keys(annotations: Mapping[str, str], disabled: frozenset[str]) -> list[tuple[str, str]]:
    found = []
    if vocabulary.COPY_FROM in annotations:
        found.append((vocabulary.COPY_FROM, "cfgsync"))
    if replicator.NAME not in disabled and vocabulary.REPLICATE_FROM in annotations:
        found.append((vocabulary.REPLICATE_FROM, replicator.NAME))
    if reflector.NAME not in disabled and reflector.is_manual_mirror(annotations):
        found.append((vocabulary.REFLECTS, reflector.NAME))
    return found


def request_keys(disabled: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The annotations a target may ask with, in the enabled vocabularies."""
    keys = [vocabulary.COPY_FROM]
    keys += [vocabulary.REPLICATE_FROM] if replicator.NAME not in disabled else []
    keys += [vocabulary.REFLECTS] if reflector.NAME not in disabled else []
    return tuple(keys)


def asks(annotations: Mapping[str, str], disabled: frozenset[str] = frozenset()) -> bool:
    """True when these annotations ask for a source (the object is a pull target)."""
    return bool(_request_keys(annotations, disabled))


def request_of(target: ConfigObject, disabled: frozenset[str] = frozenset()) -> PullRequest | None:
    """What ``target`` asks for, or None; :class:`RuleError` when malformed or asked twice."""
    keys = _request_keys(target.annotations, disabled)
    if not keys:
        return None
    if len(keys) > 1:
        both = " and ".join(k for k, _ in keys)
        raise errors.RuleError(f"{target.describe()}: asks for a source with both {both}; keep one of them")
    key, name = keys[0]
    return pull.parse_request(target, key, name)


def allowances(
    source: ConfigObject, namespace: Namespace, disabled: frozenset[str] = frozenset()
) -> list[tuple[str, Verdict]]:
    """What each enabled vocabulary on ``source`` says about a pull into ``namespace`` (the first key of
    the vocabulary, and its verdict). Any one allowing suffices: each is the source owner's consent.

    Raises :class:`RuleError` naming the annotation when one is invalid.
    """
    said: list[tuple[str, Verdict]] = []
    verdict = pull.allows(source, namespace)
    if verdict is not None:
        said.append((vocabulary.ALLOW_PULL_NAMESPACES, verdict))
    if replicator.NAME not in disabled:
        verdict = replicator.allows(source, namespace)
        if verdict is not None:
            said.append((vocabulary.REPLICATION_ALLOWED, verdict))
    if reflector.NAME not in disabled:
        verdict = reflector.allows(source, namespace)
        if verdict is not None:
            said.append((vocabulary.REFLECTION_ALLOWED, verdict))
    return said


def peer_made(annotations: Mapping[str, str], disabled: frozenset[str] = frozenset()) -> bool:
    """True when a peer's marks say it made this object as a push copy (cfgsync may take it over)."""
    if replicator.NAME not in disabled and replicator.wrote(annotations):
        return vocabulary.REPLICATE_FROM not in annotations
    return reflector.NAME not in disabled and reflector.auto_mirror_of(annotations, "") is not None


def taken_over(found: ConfigObject, candidates: Sequence[Copy], disabled: frozenset[str]) -> ObjectRef | None:
    """The source among ``candidates`` (copies wanted where ``found`` is) whose peer-made copy ``found``
    is, so that cfgsync takes it over in place; None when ``found`` is nobody's copy.

    reflector's automatic mirror names its source; replicator's push copy does not, so it goes to the
    one source wanting it by replicator's own annotations, and only when it holds no data of its own.
    """
    if reflector.NAME not in disabled:
        named = reflector.auto_mirror_of(found.annotations, found.ref.kind)
        if named is not None:
            return named if any(c.source == named for c in candidates) else None
    if replicator.NAME not in disabled:
        theirs = {c.source for c in candidates if c.vocabulary == replicator.NAME}
        if len(theirs) == 1:
            source = next(iter(theirs))
            if replicator.may_take_over(found, source):
                return source
    return None


def namespace_warnings(found: Iterable[rules.Rule], namespaces: Sequence[Namespace]) -> list[Problem]:
    """Rules whose peer reads them differently for a namespace that exists (replicator's anchoring)."""
    return [p for rule in found for p in replicator.reading_differences(rule, namespaces)]
