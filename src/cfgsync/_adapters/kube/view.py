"""How objects read from the API server are shown to the planner.

Pure data shaping (no I/O). The planner compares the managed fields of an observed copy with the
desired copy. Server-side apply never removes labels or annotations that other field managers own
(another controller's annotation, a label added by hand), so comparing them would make every resync
write again, forever. The planner is therefore shown a *view* of each observed copy: its data,
binaryData, type and immutable in full (a copy's payload must equal the source's, so a key added by
hand is removed), but only the labels and annotations that cfgsync's field manager owns, plus kubed's
origin labels and annotation, plus any key a copy must never carry (the GitOps tools' ownership marks and
the operator's keys to strip: whoever wrote them, the planner removes them). Objects without
managedFields are shown whole.

Large values are shared: copies of one source carry equal mappings, so an :class:`Interner` lets
thousands of cached copies point at one data mapping instead of one each.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Final

from cfgsync._core import manifests, origin, rules, vocabulary
from cfgsync._core.model import ConfigObject, Namespace, ObjectRef, frozen
from cfgsync._core.policy import DEFAULT_POLICY, Policy

MANAGER: Final = "cfgsync"
"""cfgsync's field manager name, for server-side apply and every other write."""
ALWAYS_SHOWN_LABELS: Final = frozenset(vocabulary.ORIGIN_LABELS)
"""Labels the planner always sees: they say who manages the copy."""
ALWAYS_SHOWN_ANNOTATIONS: Final = frozenset({vocabulary.ORIGIN})
"""Annotations the planner always sees."""
_INTERN_LIMIT: Final = 8192


class Interner:
    """Hands out one shared read-only mapping per distinct content (not thread-safe: lock around it)."""

    def __init__(self) -> None:
        self._table: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}

    def mapping(self, value: Mapping[str, str]) -> Mapping[str, str]:
        """The shared mapping equal to ``value``."""
        if not value:
            return frozen(None)
        key = tuple(sorted(value.items()))
        found = self._table.get(key)
        if found is None:
            if len(self._table) >= _INTERN_LIMIT:
                # Forget the table, not the mappings: objects holding them keep them alive.
                self._table.clear()
            found = self._table[key] = frozen(dict(key))
        return found

    def intern(self, obj: ConfigObject) -> ConfigObject:
        """``obj`` with its mappings and names shared."""
        ref = ObjectRef(
            kind=sys.intern(obj.ref.kind),
            namespace=sys.intern(obj.ref.namespace),
            name=sys.intern(obj.ref.name),
        )
        return ConfigObject(
            ref=ref,
            labels=self.mapping(obj.labels),
            annotations=self.mapping(obj.annotations),
            data=self.mapping(obj.data),
            binary_data=self.mapping(obj.binary_data),
            type=obj.type,
            immutable=obj.immutable,
            uid=obj.uid,
            resource_version=obj.resource_version,
            api_version=obj.api_version,
        )


def metadata(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """``raw["metadata"]``, or an empty mapping."""
    meta = raw.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def string_map(meta: Mapping[str, Any], field: str) -> dict[str, str]:
    """``meta[field]`` as a dict of strings (labels, annotations)."""
    value = meta.get(field)
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def namespace_of(raw: Mapping[str, Any]) -> Namespace:
    """A Namespace from a full object or its metadata alone (a deletionTimestamp means terminating)."""
    meta = metadata(raw)
    status = raw.get("status")
    phase = status.get("phase") if isinstance(status, Mapping) else None
    return Namespace(
        name=sys.intern(str(meta.get("name", ""))),
        labels=frozen(string_map(meta, "labels")),
        terminating=phase == "Terminating" or bool(meta.get("deletionTimestamp")),
        accept_from=manifests.accept_from(string_map(meta, "annotations")),
    )


def owned_keys(
    meta: Mapping[str, Any], manager: str = MANAGER
) -> tuple[frozenset[str], frozenset[str]] | None:
    """Label and annotation keys that ``manager`` owns (by any operation); None without managedFields."""
    entries = meta.get("managedFields")
    if not isinstance(entries, list) or not entries:
        return None
    labels: set[str] = set()
    annotations: set[str] = set()
    for entry in entries:
        if not isinstance(entry, Mapping) or entry.get("manager") != manager:
            continue
        fields = entry.get("fieldsV1")
        fields_meta = fields.get("f:metadata") if isinstance(fields, Mapping) else None
        if not isinstance(fields_meta, Mapping):
            continue
        for target, key in ((labels, "f:labels"), (annotations, "f:annotations")):
            owned = fields_meta.get(key)
            if isinstance(owned, Mapping):
                target.update(k[2:] for k in owned if k.startswith("f:"))
    return frozenset(labels), frozenset(annotations)


def observed_copy(
    raw: Mapping[str, Any], interner: Interner | None = None, *, policy: Policy = DEFAULT_POLICY
) -> ConfigObject:
    """The planner's view of an existing copy (see the module docstring)."""
    obj = manifests.parse_config_object(raw)
    owned = owned_keys(metadata(raw))
    if owned is not None:
        show_labels = owned[0] | ALWAYS_SHOWN_LABELS
        show_annotations = owned[1] | ALWAYS_SHOWN_ANNOTATIONS
        obj = dataclasses.replace(
            obj,
            labels=frozen({k: v for k, v in obj.labels.items() if k in show_labels or policy.strips(k)}),
            annotations=frozen(
                {k: v for k, v in obj.annotations.items() if k in show_annotations or policy.strips(k)}
            ),
        )
    return interner.intern(obj) if interner is not None else obj


def observed_source(raw: Mapping[str, Any]) -> ConfigObject:
    """A source, in full."""
    return manifests.parse_config_object(raw)


def light_object(kind: str, meta: Mapping[str, Any]) -> ConfigObject:
    """An object that is neither a source nor a copy, as far as the planner cares: who owns the name.

    Only the origin labels and annotation are kept, so holding many of them costs little; the planner
    needs no more to see that the name is taken.
    """
    labels = {k: v for k, v in string_map(meta, "labels").items() if k in ALWAYS_SHOWN_LABELS}
    annotations = {k: v for k, v in string_map(meta, "annotations").items() if k in ALWAYS_SHOWN_ANNOTATIONS}
    uid, version = meta.get("uid"), meta.get("resourceVersion")
    return ConfigObject(
        ref=ObjectRef(kind=kind, namespace=str(meta.get("namespace", "")), name=str(meta.get("name", ""))),
        labels=frozen(labels),
        annotations=frozen(annotations),
        uid=uid if isinstance(uid, str) else None,
        resource_version=version if isinstance(version, str) else None,
    )


def declares_rule(meta: Mapping[str, Any], cluster_name: str) -> bool:
    """True when an object's annotations declare a sync rule (kubed's or cfgsync's); copies never do."""
    ref = ObjectRef(kind="", namespace=str(meta.get("namespace", "")), name=str(meta.get("name", "")))
    if origin.is_copy(ref, string_map(meta, "labels"), cluster_name):
        return False
    return rules.declares_rule(string_map(meta, "annotations"))


def live_sources(sources: Iterable[ConfigObject], namespaces: Mapping[str, Namespace]) -> list[ConfigObject]:
    """Sources whose namespace exists and is not being deleted: a deleted namespace takes its copies along."""
    result = []
    for source in sources:
        ns = namespaces.get(source.ref.namespace)
        if ns is not None and not ns.terminating:
            result.append(source)
    return result
