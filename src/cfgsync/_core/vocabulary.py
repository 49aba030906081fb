"""Every label and annotation key cfgsync reads or writes, in one place.

Pure: constants only. The kubed keys are kubed's contract, unchanged; the ``cfgsync.io/`` keys are
cfgsync's own (documented in docs/annotations.md).
"""

from __future__ import annotations

from typing import Final

KUBED_SYNC: Final = "kubed.appscode.com/sync"
"""kubed: ``""``/``"true"`` = every namespace but the source's; otherwise a namespace label selector."""
KUBED_SYNC_CONTEXTS: Final = "kubed.appscode.com/sync-contexts"
"""kubed: comma-separated kubeconfig contexts to copy into (other clusters)."""
ORIGIN_NAME: Final = "kubed.appscode.com/origin.name"
"""Label on copies: the source's name (shortened when over 63 characters)."""
ORIGIN_NAMESPACE: Final = "kubed.appscode.com/origin.namespace"
"""Label on copies: the source's namespace."""
ORIGIN_CLUSTER: Final = "kubed.appscode.com/origin.cluster"
"""Label on copies: the cluster name of the syncer that made them (``--cluster-name``)."""
ORIGIN: Final = "kubed.appscode.com/origin"
"""Annotation on copies: the full source reference as compact JSON."""
ORIGIN_LABELS: Final = (ORIGIN_NAME, ORIGIN_NAMESPACE, ORIGIN_CLUSTER)
"""The three labels copies are found by."""

PREFIX: Final = "cfgsync.io/"
"""Prefix of cfgsync's own annotations."""
NAMESPACES: Final = PREFIX + "namespaces"
"""Target namespaces by name or glob, comma-separated (``*`` = all)."""
NAMESPACE_SELECTOR: Final = PREFIX + "namespace-selector"
"""Target namespaces by label selector."""
EXCLUDE_NAMESPACES: Final = PREFIX + "exclude-namespaces"
"""Namespaces (names or globs) never to copy into."""
INCLUDE_KEYS: Final = PREFIX + "include-keys"
"""Only data keys matching one of these globs are copied."""
EXCLUDE_KEYS: Final = PREFIX + "exclude-keys"
"""Data keys matching one of these globs are not copied."""
RENAME_KEYS: Final = PREFIX + "rename-keys"
"""Data key renames, ``old=new`` comma-separated."""
COPY_NAME: Final = PREFIX + "copy-name"
"""The name copies get instead of the source's."""
STRIP_METADATA: Final = PREFIX + "strip-metadata"
"""Label and annotation keys (names or globs) of the source that its copies do not carry."""
RULE_ANNOTATIONS: Final = frozenset(
    {
        NAMESPACES,
        NAMESPACE_SELECTOR,
        EXCLUDE_NAMESPACES,
        INCLUDE_KEYS,
        EXCLUDE_KEYS,
        RENAME_KEYS,
        COPY_NAME,
        STRIP_METADATA,
    }
)
"""Every cfgsync rule annotation; an unknown ``cfgsync.io/`` key is an error (likely a typo)."""

ACCEPT_FROM: Final = PREFIX + "accept-from"
"""On a Namespace, read in consent mode: the source namespaces (names or globs) it accepts copies from."""

LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"
"""kubectl's bookkeeping; never copied."""
NOT_COPIED_ANNOTATIONS: Final = frozenset({KUBED_SYNC, KUBED_SYNC_CONTEXTS, LAST_APPLIED, ORIGIN})
"""Source annotations a copy does not carry (besides every ``cfgsync.io/`` rule annotation)."""

SYNC_RULE_API_VERSION: Final = "cfgsync.io/v1alpha1"
"""apiVersion of SyncRule documents."""
SYNC_RULE_KIND: Final = "SyncRule"
"""kind of SyncRule documents."""
