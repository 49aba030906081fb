"""emberstack kubernetes-reflector's vocabulary (``reflector.v1.k8s.emberstack.com/*``) as cfgsync rules.

Pure: no I/O. A source allows mirrors with ``reflection-allowed: "true"``, limited to the namespaces of
``reflection-allowed-namespaces`` (regexes; the first match must span the whole name) or of
``reflection-allowed-namespaces-selector`` (either suffices; with neither, every namespace). With
``reflection-auto-enabled: "true"`` it is copied into every allowed namespace that also matches
``reflection-auto-namespaces`` / ``-selector`` (same rules; with neither, every allowed one). A mirror
made by hand asks with ``reflects: "<namespace>/<name>"``. As reflector does, copies carry the
source's data and type only, none of its labels or annotations.

reflector marks its automatic mirrors ``reflects`` + ``auto-reflects: "True"``, which names the
source exactly: cfgsync takes such a mirror over in place when that source wants a copy there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cfgsync import errors
from cfgsync._core import patterns, vocabulary
from cfgsync._core.model import ConfigObject, Namespace, ObjectRef
from cfgsync._core.patterns import Matching, NamespaceRegex
from cfgsync._core.pull import Verdict
from cfgsync._core.rules import Rule
from cfgsync._core.selectors import LabelSelector

NAME: Final = "reflector"
"""The vocabulary's name, for switches and messages."""


def is_true(value: str | None) -> bool:
    """True when ``value`` is true the way reflector reads booleans (.NET ``bool.TryParse``)."""
    return value is not None and value.strip().lower() == "true"


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceMatch:
    """A regex list and a selector, OR'd; with neither, every namespace (reflector's ``MatchNamespace``)."""

    key: str
    """The list's annotation, for messages (the selector's is ``key + "-selector"``)."""
    entries: tuple[NamespaceRegex, ...] = ()
    """The regexes; empty when the annotation is absent or empty."""
    selector: LabelSelector | None = None
    """The selector; None when absent or empty."""

    def matches(self, namespace: Namespace) -> bool:
        """True when ``namespace`` matches (see the class docstring)."""
        if not self.entries and self.selector is None:
            return True
        if patterns.any_matches(self.entries, namespace.name) is not None:
            return True
        return self.selector is not None and self.selector.matches(namespace.labels)

    def reason(self, namespace: Namespace) -> str:
        """Why :meth:`matches` says what it says."""
        if not self.entries and self.selector is None:
            return f"{self.key} and its selector are empty: every namespace"
        parts = []
        hit = patterns.any_matches(self.entries, namespace.name)
        if hit is not None:
            return f"{namespace.name} matches {hit} ({self.key})"
        if self.entries:
            parts.append(f"{namespace.name} matches none of {self.key}: {', '.join(map(str, self.entries))}")
        if self.selector is not None:
            verdict = "match" if self.selector.matches(namespace.labels) else "do not match"
            parts.append(f"its labels {verdict} {self.key}-selector {self.selector}")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReflectorTargets:
    """Automatic mirrors: allowed namespaces that are also auto namespaces."""

    allowed: NamespaceMatch
    """``reflection-allowed-namespaces`` (+ selector)."""
    auto: NamespaceMatch
    """``reflection-auto-namespaces`` (+ selector)."""

    @property
    def names(self) -> tuple[str, ...] | None:
        """Always None: reflector names namespaces by regex."""
        return None

    @property
    def selector(self) -> LabelSelector | None:
        """Always None: the allowed and auto selectors are each OR'd with a list (see ``allowed``)."""
        return None

    def selects(self, namespace: Namespace) -> bool:
        """True when ``namespace`` is allowed and auto (and not terminating)."""
        return not namespace.terminating and self.allowed.matches(namespace) and self.auto.matches(namespace)

    def explain(self, namespace: Namespace) -> tuple[str, ...]:
        """Each check of :meth:`selects`, ``yes:``/``no:``."""
        lines = ["no: the namespace is terminating"] if namespace.terminating else []
        for match in (self.allowed, self.auto):
            lines.append(f"{'yes' if match.matches(namespace) else 'no'}: {match.reason(namespace)}")
        return tuple(lines)


def _match(source: ConfigObject, key: str, selector_key: str) -> NamespaceMatch:
    ann = source.annotations
    where = f"{source.describe()}: annotation"
    entries = patterns.compile_list(ann.get(key, ""), Matching.FIRST_MATCH_SPANS_NAME, where=f"{where} {key}")
    selector = None
    text = ann.get(selector_key, "").strip()
    if text:
        try:
            selector = LabelSelector.parse(text)
        except errors.SelectorError as exc:
            raise errors.RuleError(f"{where} {selector_key}: {exc}") from exc
    return NamespaceMatch(key=key, entries=entries, selector=selector)


def allowed_namespaces(source: ConfigObject) -> NamespaceMatch:
    """``reflection-allowed-namespaces`` (+ selector) of ``source``; :class:`RuleError` when invalid."""
    return _match(
        source, vocabulary.REFLECTION_ALLOWED_NAMESPACES, vocabulary.REFLECTION_ALLOWED_NAMESPACES_SELECTOR
    )


def auto_rule(source: ConfigObject) -> Rule | None:
    """The rule of ``reflection-auto-enabled`` (with ``reflection-allowed``), or None."""
    ann = source.annotations
    if not (
        is_true(ann.get(vocabulary.REFLECTION_ALLOWED))
        and is_true(ann.get(vocabulary.REFLECTION_AUTO_ENABLED))
    ):
        return None
    auto = _match(
        source, vocabulary.REFLECTION_AUTO_NAMESPACES, vocabulary.REFLECTION_AUTO_NAMESPACES_SELECTOR
    )
    return Rule(
        source=source.ref,
        origin=f"annotation {vocabulary.REFLECTION_AUTO_ENABLED}",
        targets=ReflectorTargets(allowed=allowed_namespaces(source), auto=auto),
        vocabulary=NAME,
        copy_source_labels=False,
        copy_source_annotations=False,
    )


def allows(source: ConfigObject, namespace: Namespace) -> Verdict | None:
    """Whether ``source`` lets a mirror in ``namespace`` reflect it; None when it says nothing."""
    ann = source.annotations
    if not any(k in ann for k in vocabulary.REFLECTOR_SOURCE_ANNOTATIONS):
        return None
    value = ann.get(vocabulary.REFLECTION_ALLOWED)
    if not is_true(value):
        shown = f'is {value!r}, not "true"' if value is not None else "is missing"
        return Verdict(allowed=False, reason=f"{vocabulary.REFLECTION_ALLOWED} {shown}")
    match = allowed_namespaces(source)
    return Verdict(allowed=match.matches(namespace), reason=match.reason(namespace))


def auto_mirror_of(annotations: Mapping[str, str], kind: str) -> ObjectRef | None:
    """The source an automatic mirror names (``reflects`` + ``auto-reflects: "True"``), else None."""
    if not is_true(annotations.get(vocabulary.AUTO_REFLECTS)):
        return None
    namespace, sep, name = annotations.get(vocabulary.REFLECTS, "").strip().partition("/")
    if not sep or not namespace or not name:
        return None
    return ObjectRef(kind=kind, namespace=namespace, name=name)


def is_manual_mirror(annotations: Mapping[str, str]) -> bool:
    """True when ``reflects`` asks for a source (a mirror made by hand, not by reflector)."""
    return vocabulary.REFLECTS in annotations and not is_true(annotations.get(vocabulary.AUTO_REFLECTS))
