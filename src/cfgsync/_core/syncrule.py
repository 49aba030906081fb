"""``SyncRule`` documents (``cfgsync.io/v1alpha1``): rules kept apart from the source object.

Pure: validates an already-parsed document (plain JSON-like data) and builds a :class:`Rule`.
Every error names the document and the field path, e.g. ``spec.keys.rename.tls.crt``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from cfgsync import errors
from cfgsync._core import names, rules, vocabulary
from cfgsync._core.model import SOURCE_KINDS, ObjectRef
from cfgsync._core.selectors import LabelSelector

T = TypeVar("T")

_SPEC_FIELDS = frozenset(
    {"source", "namespaces", "namespaceSelector", "excludeNamespaces", "keys", "copyName", "stripMetadata"}
)
_SOURCE_FIELDS = frozenset({"kind", "name", "namespace"})
_KEYS_FIELDS = frozenset({"include", "exclude", "rename"})


class _Doc:
    """Typed access to a JSON-like document with errors that name the field."""

    def __init__(self, subject: str) -> None:
        self.subject = subject

    def fail(self, path: str, message: str) -> errors.RuleError:
        return errors.RuleError(f"{self.subject}: {path}: {message}", field=path)

    def checked(self, path: str, check: Callable[[], T]) -> T:
        """``check()``, its :class:`RuleError` given the field path ``path``."""
        try:
            return check()
        except errors.RuleError as exc:
            if exc.field is not None:
                raise
            raise errors.RuleError(str(exc), field=path) from exc

    def mapping(self, value: object, path: str) -> Mapping[str, object]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"must be a mapping, got {type(value).__name__}")
        odd = [k for k in value if not isinstance(k, str)]
        if odd:
            raise self.fail(path, f"key {odd[0]!r} is not a string; every field name is text")
        return value

    def string(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"must be a non-empty string, got {value!r}")
        return value

    def strings(self, value: object, path: str) -> tuple[str, ...]:
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise self.fail(path, f"must be a list of strings, got {type(value).__name__}")
        return tuple(self.string(item, f"{path}[{i}]") for i, item in enumerate(value))

    def only(self, mapping: Mapping[str, object], allowed: frozenset[str], path: str) -> None:
        unknown = sorted(set(mapping) - allowed)
        if unknown:
            raise self.fail(f"{path}.{unknown[0]}", f"unknown field; allowed: {', '.join(sorted(allowed))}")


def rule_from_document(document: Mapping[str, object], *, where: str = "") -> rules.Rule:
    """Validate a SyncRule document and return its rule.

    The source lives in the rule's namespace: a SyncRule can only copy objects from its own
    namespace, so whoever may create SyncRules in a namespace cannot copy another namespace's Secrets.
    """
    meta = document.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name, namespace = meta.get("name"), meta.get("namespace")
    subject = f"SyncRule {namespace or '?'}/{name or '?'}" + (f" ({where})" if where else "")
    doc = _Doc(subject)
    if document.get("apiVersion") != vocabulary.SYNC_RULE_API_VERSION:
        raise doc.fail("apiVersion", f"must be {vocabulary.SYNC_RULE_API_VERSION}")
    name = doc.string(name, "metadata.name")
    spec = doc.mapping(document.get("spec"), "spec")
    doc.only(spec, _SPEC_FIELDS, "spec")
    source = doc.mapping(spec.get("source"), "spec.source")
    doc.only(source, _SOURCE_FIELDS, "spec.source")
    kind = doc.string(source.get("kind"), "spec.source.kind")
    if kind not in SOURCE_KINDS:
        raise doc.fail("spec.source.kind", f"must be ConfigMap or Secret, got {kind!r}")
    source_name = doc.string(source.get("name"), "spec.source.name")
    if not names.is_object_name(source_name):
        raise doc.fail("spec.source.name", f"{source_name!r} is not a valid object name")
    source_ns = source.get("namespace")
    if namespace is None and source_ns is None:
        raise doc.fail("metadata.namespace", "is required (the namespace of the source)")
    if namespace is not None and source_ns is not None and namespace != source_ns:
        raise doc.fail(
            "spec.source.namespace",
            f"must equal metadata.namespace ({namespace}); a SyncRule copies sources of its own namespace",
        )
    namespace = doc.string(namespace if namespace is not None else source_ns, "metadata.namespace")
    doc.subject = f"SyncRule {namespace}/{name}" + (f" ({where})" if where else "")

    patterns: tuple[str, ...] | None = None
    if "namespaces" in spec:
        patterns = doc.strings(spec["namespaces"], "spec.namespaces")
        if not patterns:
            raise doc.fail("spec.namespaces", "is empty; list names or globs, or ['*'] for every namespace")
        doc.checked(
            "spec.namespaces",
            lambda: rules.check_namespace_patterns(patterns or (), where=f"{doc.subject}: spec.namespaces"),
        )
    selector = _selector(doc, spec["namespaceSelector"]) if "namespaceSelector" in spec else None
    if patterns is None and selector is None:
        raise doc.fail("spec", "set namespaces (['*'] for every namespace) or namespaceSelector")
    exclude = doc.strings(spec.get("excludeNamespaces", []), "spec.excludeNamespaces")
    doc.checked(
        "spec.excludeNamespaces",
        lambda: rules.check_namespace_patterns(exclude, where=f"{doc.subject}: spec.excludeNamespaces"),
    )

    keys = doc.mapping(spec.get("keys", {}), "spec.keys")
    doc.only(keys, _KEYS_FIELDS, "spec.keys")
    include = doc.strings(keys.get("include", []), "spec.keys.include")
    excluded_keys = doc.strings(keys.get("exclude", []), "spec.keys.exclude")
    rename_map = doc.mapping(keys.get("rename", {}), "spec.keys.rename")
    renames = tuple((old, doc.string(new, f"spec.keys.rename.{old}")) for old, new in rename_map.items())
    key_where = f"{doc.subject}: spec.keys"
    copy_name = spec.get("copyName")
    strip = doc.strings(spec.get("stripMetadata", []), "spec.stripMetadata")
    return rules.Rule(
        source=ObjectRef(kind=kind, namespace=namespace, name=source_name),
        origin=doc.subject,
        targets=rules.NamespaceTargets(names=patterns, selector=selector, exclude=exclude),
        keys=rules.KeyTransforms(
            include=doc.checked(
                "spec.keys.include", lambda: rules.check_key_patterns(include, where=f"{key_where}.include")
            ),
            exclude=doc.checked(
                "spec.keys.exclude",
                lambda: rules.check_key_patterns(excluded_keys, where=f"{key_where}.exclude"),
            ),
            rename=doc.checked(
                "spec.keys.rename", lambda: rules.check_renames(renames, where=f"{key_where}.rename")
            ),
        ),
        copy_name=(
            doc.checked(
                "spec.copyName",
                lambda: rules.check_copy_name(
                    doc.string(copy_name, "spec.copyName"), where=f"{doc.subject}: spec.copyName"
                ),
            )
            if copy_name is not None
            else None
        ),
        strip_metadata=rules.check_metadata_patterns(strip, where=f"{doc.subject}: spec.stripMetadata"),
    )


def _selector(doc: _Doc, value: object) -> LabelSelector:
    path = "spec.namespaceSelector"
    try:
        if isinstance(value, str):
            return LabelSelector.parse(value)
        selector = doc.mapping(value, path)
        doc.only(selector, frozenset({"matchLabels", "matchExpressions"}), path)
        labels = doc.mapping(selector.get("matchLabels", {}), f"{path}.matchLabels")
        exprs = selector.get("matchExpressions", [])
        if not isinstance(exprs, Sequence) or isinstance(exprs, str):
            raise doc.fail(f"{path}.matchExpressions", "must be a list")
        match_labels = {k: _label_value(doc, v, f"{path}.matchLabels.{k}") for k, v in labels.items()}
        items = [doc.mapping(e, f"{path}.matchExpressions[{i}]") for i, e in enumerate(exprs)]
        return LabelSelector.from_structured(match_labels, items, where=f"{doc.subject}: {path}")
    except errors.SelectorError as exc:
        raise doc.fail(path, str(exc)) from exc


def _label_value(doc: _Doc, value: object, path: str) -> str:
    if not isinstance(value, str):
        raise doc.fail(path, f"must be a string, got {value!r}")
    return value
