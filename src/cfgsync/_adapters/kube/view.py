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
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Final

from cfgsync import errors
from cfgsync._core import manifests, origin, replicator, vocabularies, vocabulary
from cfgsync._core.model import ConfigObject, Copy, Namespace, ObjectRef, frozen, is_source_kind
from cfgsync._core.policy import DEFAULT_POLICY, Policy

MANAGER: Final = "cfgsync"
"""cfgsync's field manager name, for server-side apply and every other write."""
ALWAYS_SHOWN_LABELS: Final = frozenset(vocabulary.ORIGIN_LABELS)
"""Labels the planner always sees: they say who manages the copy."""
ALWAYS_SHOWN_ANNOTATIONS: Final = frozenset({vocabulary.ORIGIN})
"""Annotations the planner always sees."""
_INTERN_LIMIT: Final = 8192
_RECENT: Final = 64


class Interner:
    """Hands out one shared read-only mapping per distinct content (not thread-safe: lock around it)."""

    def __init__(self) -> None:
        self._table: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}
        self._recent: OrderedDict[int, tuple[Mapping[str, str], Mapping[str, str]]] = OrderedDict()

    def mapping(self, value: Mapping[str, str]) -> Mapping[str, str]:
        """The shared mapping equal to ``value``."""
        if not value:
            return frozen(None)
        # A mapping seen a moment ago (the desired labels of a thousand copies written in a row) is
        # found by identity, without sorting it again. Only the last few are remembered: an entry keeps
        # its mapping alive (so its id cannot be reused meanwhile), and every watch event brings a new one.
        seen = self._recent.get(id(value))
        if seen is not None and seen[0] is value:
            return seen[1]
        key = tuple(sorted(value.items()))
        found = self._table.get(key)
        if found is None:
            if len(self._table) >= _INTERN_LIMIT:
                # Forget the table, not the mappings: objects holding them keep them alive.
                self._table.clear()
            found = self._table[key] = frozen(dict(key))
        self._recent[id(value)] = (value, found)
        if len(self._recent) > _RECENT:
            self._recent.popitem(last=False)
        return found

    def intern(self, obj: ConfigObject) -> ConfigObject:
        """``obj`` with its mappings and names shared."""
        ref = ObjectRef(
            kind=sys.intern(obj.ref.kind),
            namespace=sys.intern(obj.ref.namespace),
            name=sys.intern(obj.ref.name),
        )
        # Built field by field rather than with dataclasses.replace: this runs for every copy written.
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
            created=obj.created,
            api_version=obj.api_version,
            content_digest=sys.intern(obj.content_digest) if obj.content_digest is not None else None,
            where=obj.where,
        )


def _created(meta: Mapping[str, Any]) -> str | None:
    created = meta.get("creationTimestamp")
    return created if isinstance(created, str) else None


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


def cached_copy(raw: Mapping[str, Any], *, policy: Policy = DEFAULT_POLICY) -> ConfigObject:
    """The controller's view of a copy from its watch: like :func:`observed_copy`, with the payload
    replaced by its digest and not validated (a copy is rewritten from its source whatever it holds).

    Cheap on purpose: every write of a copy comes back as a watch event. Raises
    :class:`~cfgsync.errors.ManifestError` when the object is not even shaped like a ConfigMap or Secret.
    """
    meta = metadata(raw)
    kind, name, namespace = raw.get("kind"), meta.get("name"), meta.get("namespace")
    data, binary = raw.get("data") or {}, raw.get("binaryData") or {}
    if not isinstance(name, str) or not isinstance(namespace, str) or not is_source_kind(kind):
        raise errors.ManifestError(f"{manifests.describe(raw, '')}: not a ConfigMap or Secret with a name")
    if not isinstance(data, Mapping) or not isinstance(binary, Mapping):
        raise errors.ManifestError(f"{manifests.describe(raw, '')}: data must be a mapping of strings")
    labels, annotations = string_map(meta, "labels"), string_map(meta, "annotations")
    owned = owned_keys(meta)
    if owned is not None:
        show_labels, show_annotations = owned[0] | ALWAYS_SHOWN_LABELS, owned[1] | ALWAYS_SHOWN_ANNOTATIONS
        labels = {k: v for k, v in labels.items() if k in show_labels or policy.strips(k)}
        annotations = {k: v for k, v in annotations.items() if k in show_annotations or policy.strips(k)}
    secret_type = raw.get("type", "Opaque") if kind == "Secret" else None
    immutable = raw.get("immutable")
    uid, version = meta.get("uid"), meta.get("resourceVersion")
    return ConfigObject(
        ref=ObjectRef(kind=kind, namespace=namespace, name=name),
        labels=frozen(labels),
        annotations=frozen(annotations),
        type=str(secret_type) if secret_type is not None else None,
        immutable=immutable if isinstance(immutable, bool) else None,
        uid=uid if isinstance(uid, str) else None,
        resource_version=version if isinstance(version, str) else None,
        created=_created(meta),
        content_digest=manifests.content_digest(data, binary),
    )


def written_copy(raw: Mapping[str, Any], copy: Copy) -> ConfigObject:
    """The controller's view of a copy it has just written, from the API server's answer.

    After a forced server-side apply of ``copy``, cfgsync's field manager owns exactly its labels and
    annotations, so they are shown as ``copy``'s own (shared) mappings; the payload is the answer's.
    """
    meta = metadata(raw)
    uid, version = meta.get("uid"), meta.get("resourceVersion")
    data, binary = raw.get("data") or {}, raw.get("binaryData") or {}
    return ConfigObject(
        ref=copy.ref,
        labels=copy.labels,
        annotations=copy.annotations,
        type=copy.type,
        immutable=copy.immutable,
        uid=uid if isinstance(uid, str) else None,
        resource_version=version if isinstance(version, str) else None,
        created=_created(meta),
        content_digest=manifests.content_digest(
            data if isinstance(data, Mapping) else {}, binary if isinstance(binary, Mapping) else {}
        ),
    )


def observed_or_bare(raw: Mapping[str, Any], *, policy: Policy = DEFAULT_POLICY) -> ConfigObject:
    """The planner's view of an existing object; one that cannot be read is shown bare (its name only).

    A bare object belongs to nobody, so the planner leaves it alone and reports a conflict."""
    try:
        return observed_copy(raw, policy=policy)
    except errors.CfgsyncError:
        return ConfigObject(ref=header(raw).ref)


def observed_source(raw: Mapping[str, Any]) -> ConfigObject:
    """A source, in full."""
    return manifests.parse_config_object(raw)


def header(raw: Mapping[str, Any]) -> ConfigObject:
    """A ConfigMap's or Secret's metadata as the Store reads it: identity, labels, annotations, version.

    ``raw`` is a full object or its ``PartialObjectMetadata``, with ``kind`` set."""
    meta = metadata(raw)
    uid, version = meta.get("uid"), meta.get("resourceVersion")
    return ConfigObject(
        ref=ObjectRef(
            kind=str(raw.get("kind", "")),
            namespace=sys.intern(str(meta.get("namespace", ""))),
            name=str(meta.get("name", "")),
        ),
        labels=frozen(string_map(meta, "labels")),
        annotations=frozen(string_map(meta, "annotations")),
        uid=uid if isinstance(uid, str) else None,
        resource_version=version if isinstance(version, str) else None,
        created=_created(meta),
    )


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
        created=_created(meta),
    )


def declares_rule(meta: Mapping[str, Any], cluster_name: str, disabled: frozenset[str] = frozenset()) -> bool:
    """True when an object's annotations declare a sync rule or a pull allowance in an enabled
    vocabulary; copies never do."""
    ref = ObjectRef(kind="", namespace=str(meta.get("namespace", "")), name=str(meta.get("name", "")))
    if origin.is_copy(ref, string_map(meta, "labels"), cluster_name):
        return False
    return vocabularies.declares_rule(string_map(meta, "annotations"), disabled)


def replicator_wrote(obj: ConfigObject) -> bool:
    """True when replicator's marks are on ``obj`` (its payload is then kept whole: which keys are the
    owner's own decides whether it may be taken over)."""
    return replicator.wrote(obj.annotations)


def target_view(raw: Mapping[str, Any]) -> ConfigObject:
    """The controller's view of a pull target: what it asks for, cfgsync's mark on it, its type, and a
    digest of its payload; the rest of its metadata (kubectl's last applied state of a Secret among it)
    is not kept. Raises :class:`~cfgsync.errors.ManifestError` when it is not a readable object."""
    obj = manifests.parse_config_object(raw)
    keep = {*vocabulary.PULL_REQUESTS, vocabulary.COPIED_FROM, vocabulary.AUTO_REFLECTS}
    keep |= {vocabulary.REPLICATED_AT, vocabulary.REPLICATED_FROM_VERSION, vocabulary.REPLICATED_KEYS}
    digest = obj if replicator_wrote(obj) else manifests.digested(obj)
    return dataclasses.replace(
        digest,
        labels=frozen({k: v for k, v in obj.labels.items() if k in ALWAYS_SHOWN_LABELS}),
        annotations=frozen({k: v for k, v in obj.annotations.items() if k in keep}),
    )


def live_sources(sources: Iterable[ConfigObject], namespaces: Mapping[str, Namespace]) -> list[ConfigObject]:
    """Sources whose namespace exists and is not being deleted: a deleted namespace takes its copies along."""
    result = []
    for source in sources:
        ns = namespaces.get(source.ref.namespace)
        if ns is not None and not ns.terminating:
            result.append(source)
    return result
