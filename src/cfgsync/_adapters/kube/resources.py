"""Where each kind lives in the API: collection and object paths.

Pure path arithmetic; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import quote


@dataclass(frozen=True, slots=True, kw_only=True)
class Resource:
    """One API resource: its kind, group/version prefix and plural."""

    kind: str
    """``ConfigMap``, ``Secret``, ``Namespace``..."""
    prefix: str
    """``/api/v1`` for the core group, ``/apis/<group>/<version>`` otherwise."""
    plural: str
    """The resource name in paths."""
    namespaced: bool = True
    """False for cluster-scoped resources (namespaces)."""
    api_version: str = "v1"
    """apiVersion of its objects."""

    def collection(self, namespace: str | None = None) -> str:
        """The collection path, across all namespaces when ``namespace`` is None."""
        if namespace is None or not self.namespaced:
            return f"{self.prefix}/{self.plural}"
        return f"{self.prefix}/namespaces/{quote(namespace, safe='')}/{self.plural}"

    def item(self, name: str, namespace: str | None = None) -> str:
        """The path of one object."""
        return f"{self.collection(namespace)}/{quote(name, safe='')}"


CONFIGMAPS: Final = Resource(kind="ConfigMap", prefix="/api/v1", plural="configmaps")
"""Core ConfigMaps."""
SECRETS: Final = Resource(kind="Secret", prefix="/api/v1", plural="secrets")
"""Core Secrets."""
NAMESPACES: Final = Resource(kind="Namespace", prefix="/api/v1", plural="namespaces", namespaced=False)
"""Core Namespaces."""
EVENTS: Final = Resource(kind="Event", prefix="/api/v1", plural="events")
"""Core Events (the ones ``kubectl describe`` shows)."""
SYNC_RULES: Final = Resource(
    kind="SyncRule", prefix="/apis/cfgsync.io/v1alpha1", plural="syncrules", api_version="cfgsync.io/v1alpha1"
)
"""cfgsync's SyncRule custom resource (present only when its CRD is installed)."""

BY_KIND: Final = {r.kind: r for r in (CONFIGMAPS, SECRETS)}
"""The resources of the kinds cfgsync copies."""
