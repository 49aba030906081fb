"""cfgsync's own pull vocabulary: a target asks, the source allows.

Pure: no I/O. A ConfigMap or Secret asks for the data of a source of its own kind with
``cfgsync.io/copy-from: "<namespace>/<name>"``; the source allows it with
``cfgsync.io/allow-pull-namespaces`` (names or globs) and/or ``cfgsync.io/allow-pull-namespace-selector``
(a label selector on the target's namespace): either suffices, and without both nothing is allowed.
The peers' pull vocabularies (replicator's ``replicate-from``, reflector's ``reflects``) are read the
same way by :mod:`cfgsync._core.vocabularies`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from cfgsync import errors
from cfgsync._core import names, vocabulary
from cfgsync._core.model import ConfigObject, Namespace, ObjectRef
from cfgsync._core.rules import check_namespace_patterns, split_list
from cfgsync._core.selectors import LabelSelector


@dataclass(frozen=True, slots=True, kw_only=True)
class PullRequest:
    """A target asking for a source's data."""

    target: ObjectRef
    """The object that asks (its data is what cfgsync writes)."""
    source: ObjectRef
    """The source it names (same kind as the target)."""
    key: str
    """The annotation it asks with."""
    vocabulary: str
    """Whose vocabulary that annotation is (``cfgsync``, ``replicator``, ``reflector``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """Whether a source allows a namespace to pull it, and why, in words."""

    allowed: bool
    """True when it does."""
    reason: str
    """The annotation and entry that decided."""


def parse_request(target: ConfigObject, key: str, vocabulary_name: str) -> PullRequest:
    """The request ``target`` makes with annotation ``key``; :class:`RuleError` when malformed."""
    value = target.annotations[key].strip()
    namespace, sep, name = value.partition("/")
    if not sep or not names.is_namespace_name(namespace) or not names.is_object_name(name):
        raise errors.RuleError(
            f"{target.describe()}: annotation {key}: {value!r} does not name a source; write "
            f"<namespace>/<name>, e.g. 'platform/shared-settings'"
        )
    source = ObjectRef(kind=target.ref.kind, namespace=namespace, name=name)
    if source == target.ref:
        raise errors.RuleError(f"{target.describe()}: annotation {key}: an object cannot pull itself")
    return PullRequest(target=target.ref, source=source, key=key, vocabulary=vocabulary_name)


def allows(source: ConfigObject, namespace: Namespace) -> Verdict | None:
    """Whether ``source`` lets ``namespace`` pull it in cfgsync's vocabulary; None when it says nothing.

    Raises :class:`RuleError` naming the annotation when one is invalid.
    """
    ann = source.annotations
    listed = ann.get(vocabulary.ALLOW_PULL_NAMESPACES)
    selector_text = ann.get(vocabulary.ALLOW_PULL_NAMESPACE_SELECTOR)
    if listed is None and selector_text is None:
        return None
    where = f"{source.describe()}: annotation"
    reasons = []
    if listed is not None:
        globs = check_namespace_patterns(
            split_list(listed), where=f"{where} {vocabulary.ALLOW_PULL_NAMESPACES}"
        )
        hit = next((p for p in globs if fnmatchcase(namespace.name, p)), None)
        if hit is not None:
            return Verdict(
                allowed=True,
                reason=f"{namespace.name} matches {hit} ({vocabulary.ALLOW_PULL_NAMESPACES}: {listed})",
            )
        reasons.append(f"{namespace.name} matches none of {vocabulary.ALLOW_PULL_NAMESPACES}: {listed}")
    if selector_text is not None:
        try:
            selector = LabelSelector.parse(selector_text)
        except errors.SelectorError as exc:
            raise errors.RuleError(f"{where} {vocabulary.ALLOW_PULL_NAMESPACE_SELECTOR}: {exc}") from exc
        if selector.matches(namespace.labels):
            return Verdict(
                allowed=True,
                reason=f"the labels of {namespace.name} match "
                f"{vocabulary.ALLOW_PULL_NAMESPACE_SELECTOR} {selector}",
            )
        reasons.append(
            f"the labels of {namespace.name} do not match "
            f"{vocabulary.ALLOW_PULL_NAMESPACE_SELECTOR} {selector}"
        )
    return Verdict(allowed=False, reason="; ".join(reasons))
