"""Example cfgsync plugin: in a rendered tree, an ExternalSecret stands in for each Secret copy.

Pure: builds the reference from the copy and its source, as every hook must. ``cfgsync render -o``
writes a directory meant for git, where a Secret's values must not go. This plugin writes, in place
of each Secret copy, an `external-secrets.io/v1` ``ExternalSecret`` that makes the External Secrets
Operator create the very same Secret in the cluster by reading the source Secret through a
``ClusterSecretStore`` (its Kubernetes provider). The values never leave the cluster.

The store is ``cfgsync-<source namespace>`` unless the source names another one in its
``secret-reference.cfgsync.io/store`` annotation. Output on stdout (pipelines, ArgoCD, KRM) is
unaffected: cfgsync calls this hook only for files it writes.
"""

from __future__ import annotations

from collections.abc import Mapping

import cfgsync

STORE_ANNOTATION = "secret-reference.cfgsync.io/store"
"""On a source Secret: the ClusterSecretStore to read it through (default ``cfgsync-<namespace>``)."""
REFRESH_INTERVAL = "1h"
"""How often the operator reads the source again."""


@cfgsync.hookimpl
def cfgsync_tree_object(copy: cfgsync.Copy, source: cfgsync.ConfigObject) -> Mapping[str, object] | None:
    """An ExternalSecret for a Secret copy; None for ConfigMaps (they are written as they are)."""
    if copy.ref.kind != "Secret":
        return None
    annotations = {k: v for k, v in copy.annotations.items() if k != STORE_ANNOTATION}
    metadata: dict[str, object] = {"name": copy.ref.name, "namespace": copy.ref.namespace}
    if copy.labels:
        metadata["labels"] = dict(copy.labels)
    if annotations:
        metadata["annotations"] = annotations
    # The Secret the operator creates carries the copy's labels and annotations, so cfgsync (and kubed)
    # recognise it as a copy of its source.
    template_meta = {k: v for k, v in metadata.items() if k in {"labels", "annotations"}}
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": metadata,
        "spec": {
            "refreshInterval": REFRESH_INTERVAL,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": store_name(source)},
            "target": {
                "name": copy.ref.name,
                "creationPolicy": "Owner",
                "template": {"type": copy.type or "Opaque", "metadata": template_meta},
            },
            "data": [
                {
                    "secretKey": key,
                    "remoteRef": {"key": source.ref.name, "property": source_key(key, copy, source)},
                }
                for key in sorted(copy.data)
            ],
        },
    }


def store_name(source: cfgsync.ConfigObject) -> str:
    """The ClusterSecretStore the source is read through."""
    return source.annotations.get(STORE_ANNOTATION) or f"cfgsync-{source.ref.namespace}"


def source_key(key: str, copy: cfgsync.Copy, source: cfgsync.ConfigObject) -> str:
    """The source key a copy's key holds the value of.

    Rules and plugins may rename keys on the way to the copy, and a copy does not record how; the
    source key holding the same value is the one it came from. When several source keys hold that
    value, any of them gives the same bytes, so the first (in sorted order) is taken.
    """
    value = copy.data[key]
    if source.data.get(key) == value:
        return key
    same = sorted(k for k, v in source.data.items() if v == value)
    return same[0] if same else key
