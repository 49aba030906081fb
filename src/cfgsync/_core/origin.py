"""Origin metadata: how a copy points back to its source, and how copies are recognised.

Pure: no I/O. The format is kubed's, so copies made by kubed and by cfgsync are interchangeable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cfgsync._core import names, vocabulary
from cfgsync._core.model import ConfigObject, ObjectRef


def origin_labels(source: ObjectRef, cluster_name: str) -> dict[str, str]:
    """The three labels copies are found by; the name is shortened past 63 characters."""
    return {
        vocabulary.ORIGIN_CLUSTER: cluster_name,
        vocabulary.ORIGIN_NAME: names.shorten_label_value(source.name),
        vocabulary.ORIGIN_NAMESPACE: source.namespace,
    }


def origin_annotation(source: ConfigObject) -> str:
    """kubed's origin reference: compact JSON, kubed's key order, empty fields left out."""
    fields = {
        "kind": source.ref.kind,
        "namespace": source.ref.namespace,
        "name": source.ref.name,
        "uid": source.uid,
        "apiVersion": source.api_version,
        "resourceVersion": source.resource_version,
    }
    return json.dumps({k: v for k, v in fields.items() if v}, separators=(",", ":"))


def owner_of(obj: ConfigObject, cluster_name: str, *, elsewhere: bool = False) -> ObjectRef | None:
    """The source that ``obj`` is a copy of, if it is a copy made for ``cluster_name``; else None.

    The origin labels decide, all three of them (the API server selects copies by all three). When the
    name label was shortened, the origin annotation gives the full
    name, and it must agree with the label, so an edited annotation cannot claim another source.

    An object of the source's own cluster whose origin points at itself is a source, not a copy (see
    :func:`points_at_itself`); ``elsewhere`` says ``obj`` lives in another cluster (a
    ``sync-contexts`` target), where a copy keeps its source's namespace and name.
    """
    labels = obj.labels
    name = labels.get(vocabulary.ORIGIN_NAME)
    namespace = labels.get(vocabulary.ORIGIN_NAMESPACE)
    if not name or not namespace or labels.get(vocabulary.ORIGIN_CLUSTER) != cluster_name:
        return None
    if not elsewhere and points_at_itself(obj.ref, labels, cluster_name):
        return None
    if len(name) == names.LABEL_VALUE_MAX:
        full = _annotated_name(obj.annotations.get(vocabulary.ORIGIN, ""))
        if full is not None and names.shorten_label_value(full) == name:
            name = full
    return ObjectRef(kind=obj.ref.kind, namespace=namespace, name=name)


def points_at_itself(ref: ObjectRef, labels: Mapping[str, str], cluster_name: str) -> bool:
    """True when ``labels`` name the object ``ref`` itself as its origin, in this cluster.

    kubed 0.13 writes its origin labels onto its own sources when it restarts (its namespace handler
    does not skip the source's namespace). No copy ever lands in its source's namespace under the
    source's name, so such an object is a source. The cluster label must be this cluster's: a copy
    another cluster's syncer put here keeps its source's namespace and name, and stays a copy.
    """
    return (
        labels.get(vocabulary.ORIGIN_NAMESPACE) == ref.namespace
        and labels.get(vocabulary.ORIGIN_NAME) == names.shorten_label_value(ref.name)
        and labels.get(vocabulary.ORIGIN_CLUSTER) == cluster_name
    )


def is_copy(ref: ObjectRef, labels: Mapping[str, str], cluster_name: str) -> bool:
    """True when the object ``ref`` is somebody's copy, and so never a source.

    An object is a copy when it carries the origin labels, whichever cluster made it, unless they point
    at the object itself in this cluster (:func:`points_at_itself`). A sync annotation added to a copy
    does not make it a source: whoever may patch a copy could otherwise freeze it or spread it.
    """
    if vocabulary.ORIGIN_NAME not in labels or vocabulary.ORIGIN_NAMESPACE not in labels:
        return False
    return not points_at_itself(ref, labels, cluster_name)


ORIGIN_ANNOTATION_MAX = 1024
"""Longest origin annotation read: a real one is a short object reference (about 200 characters)."""


def _annotated_name(text: str) -> str | None:
    # Whoever can write the object writes this text: a long or deeply nested one is refused unread
    # (json.loads recurses, and a few thousand brackets end in RecursionError).
    if len(text) > ORIGIN_ANNOTATION_MAX or not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    name = value.get("name") if isinstance(value, dict) else None
    return name if isinstance(name, str) else None
