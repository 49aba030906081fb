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


def owner_of(obj: ConfigObject | Mapping[str, str], cluster_name: str, kind: str = "") -> ObjectRef | None:
    """The source that ``obj`` is a copy of, if it is a copy made for ``cluster_name``; else None.

    The origin labels decide. When the name label was shortened, the origin annotation gives the full
    name, and it must agree with the label, so an edited annotation cannot claim another source.
    """
    if isinstance(obj, ConfigObject):
        labels, annotations, kind = obj.labels, obj.annotations, obj.ref.kind
    else:
        labels, annotations = obj, {}
    name = labels.get(vocabulary.ORIGIN_NAME)
    namespace = labels.get(vocabulary.ORIGIN_NAMESPACE)
    if not name or not namespace or labels.get(vocabulary.ORIGIN_CLUSTER, "") != cluster_name:
        return None
    if len(name) == names.LABEL_VALUE_MAX:
        full = _annotated_name(annotations.get(vocabulary.ORIGIN, ""))
        if full is not None and names.shorten_label_value(full) == name:
            name = full
    return ObjectRef(kind=kind, namespace=namespace, name=name)


def _annotated_name(text: str) -> str | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    name = value.get("name") if isinstance(value, dict) else None
    return name if isinstance(name, str) else None
