"""Every label and annotation key cfgsync reads or writes, in one place.

Pure: constants only. The kubed keys are kubed's contract, unchanged; the ``cfgsync.io/`` keys are
cfgsync's own; the ``replicator.v1.mittwald.de/`` and ``reflector.v1.k8s.emberstack.com/`` keys are
mittwald kubernetes-replicator's and emberstack kubernetes-reflector's, read as those tools read them
(all documented in docs/annotations.md).
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
COPY_FROM: Final = PREFIX + "copy-from"
"""On a target (pull): ``<namespace>/<name>`` of the source of the same kind whose data it wants."""
ALLOW_PULL_NAMESPACES: Final = PREFIX + "allow-pull-namespaces"
"""On a source: the namespaces (names or globs) whose objects may pull it with ``copy-from``."""
ALLOW_PULL_NAMESPACE_SELECTOR: Final = PREFIX + "allow-pull-namespace-selector"
"""On a source: namespaces whose labels match may pull it too (either this or the list suffices)."""
COPIED_FROM: Final = PREFIX + "copied-from"
"""Written by cfgsync on a pulled target: the source its data came from, as JSON in the origin
annotation's format. Never read as a rule."""
PULL_ALLOWANCE_ANNOTATIONS: Final = frozenset({ALLOW_PULL_NAMESPACES, ALLOW_PULL_NAMESPACE_SELECTOR})
"""The keys by which a source allows pulls (cfgsync's vocabulary)."""
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
"""Every cfgsync push rule annotation."""
KNOWN_ANNOTATIONS: Final = RULE_ANNOTATIONS | PULL_ALLOWANCE_ANNOTATIONS | {COPY_FROM, COPIED_FROM}
"""Every ``cfgsync.io/`` key an object may carry; an unknown one is an error (likely a typo)."""

REPLICATOR_PREFIX: Final = "replicator.v1.mittwald.de/"
"""Prefix of kubernetes-replicator's annotations."""
REPLICATE_TO: Final = REPLICATOR_PREFIX + "replicate-to"
"""replicator, on a source: comma list of regexes; namespaces matching one receive a copy."""
REPLICATE_TO_MATCHING: Final = REPLICATOR_PREFIX + "replicate-to-matching"
"""replicator, on a source: a label selector; namespaces matching it receive a copy."""
REPLICATE_FROM: Final = REPLICATOR_PREFIX + "replicate-from"
"""replicator, on a target (pull): ``<namespace>/<name>`` of its source."""
REPLICATION_ALLOWED: Final = REPLICATOR_PREFIX + "replication-allowed"
"""replicator, on a source: ``"true"`` lets targets pull it (with the namespaces below)."""
REPLICATION_ALLOWED_NAMESPACES: Final = REPLICATOR_PREFIX + "replication-allowed-namespaces"
"""replicator, on a source: comma list of regexes: the namespaces whose targets may pull it."""
STRIP_LABELS: Final = REPLICATOR_PREFIX + "strip-labels"
"""replicator, on a source: ``"true"``: its copies carry none of its labels."""
KEEP_OWNER_REFERENCES: Final = REPLICATOR_PREFIX + "keep-owner-references"
"""replicator, on a source: copy its ownerReferences (read, not honoured; see the migration guide)."""
REPLICATED_AT: Final = REPLICATOR_PREFIX + "replicated-at"
"""replicator's mark on what it wrote: when."""
REPLICATED_FROM_VERSION: Final = REPLICATOR_PREFIX + "replicated-from-version"
"""replicator's mark on what it wrote: the source's resourceVersion."""
REPLICATED_KEYS: Final = REPLICATOR_PREFIX + "replicated-keys"
"""replicator's mark on what it wrote: the data keys it wrote, sorted, comma-separated."""
REPLICATOR_SOURCE_ANNOTATIONS: Final = frozenset(
    {REPLICATE_TO, REPLICATE_TO_MATCHING, REPLICATION_ALLOWED, REPLICATION_ALLOWED_NAMESPACES}
)
"""The replicator keys that make an object a source."""

REFLECTOR_PREFIX: Final = "reflector.v1.k8s.emberstack.com/"
"""Prefix of kubernetes-reflector's annotations."""
REFLECTION_ALLOWED: Final = REFLECTOR_PREFIX + "reflection-allowed"
"""reflector, on a source: ``"true"`` lets mirrors reflect it."""
REFLECTION_ALLOWED_NAMESPACES: Final = REFLECTOR_PREFIX + "reflection-allowed-namespaces"
"""reflector, on a source: comma list of regexes, each matching a whole namespace name; empty: all."""
REFLECTION_ALLOWED_NAMESPACES_SELECTOR: Final = REFLECTOR_PREFIX + "reflection-allowed-namespaces-selector"
"""reflector, on a source: a label selector, OR'd with the list."""
REFLECTION_AUTO_ENABLED: Final = REFLECTOR_PREFIX + "reflection-auto-enabled"
"""reflector, on a source: ``"true"``: mirrors are made in every allowed (and auto) namespace."""
REFLECTION_AUTO_NAMESPACES: Final = REFLECTOR_PREFIX + "reflection-auto-namespaces"
"""reflector, on a source: regexes limiting the automatic mirrors; empty: every allowed namespace."""
REFLECTION_AUTO_NAMESPACES_SELECTOR: Final = REFLECTOR_PREFIX + "reflection-auto-namespaces-selector"
"""reflector, on a source: a label selector, OR'd with the auto list."""
REFLECTS: Final = REFLECTOR_PREFIX + "reflects"
"""reflector, on a mirror: ``<namespace>/<name>`` of its source (a manual mirror asks with it)."""
AUTO_REFLECTS: Final = REFLECTOR_PREFIX + "auto-reflects"
"""reflector's mark: ``"True"`` on the mirrors it made automatically."""
REFLECTED_VERSION: Final = REFLECTOR_PREFIX + "reflected-version"
"""reflector's mark: the source's resourceVersion it last reflected."""
REFLECTED_AT: Final = REFLECTOR_PREFIX + "reflected-at"
"""reflector's mark: when it last reflected."""
REFLECTOR_SOURCE_ANNOTATIONS: Final = frozenset(
    {
        REFLECTION_ALLOWED,
        REFLECTION_ALLOWED_NAMESPACES,
        REFLECTION_ALLOWED_NAMESPACES_SELECTOR,
        REFLECTION_AUTO_ENABLED,
        REFLECTION_AUTO_NAMESPACES,
        REFLECTION_AUTO_NAMESPACES_SELECTOR,
    }
)
"""The reflector keys that make an object a source."""

PULL_REQUESTS: Final = (COPY_FROM, REPLICATE_FROM, REFLECTS)
"""The keys by which a target asks for a source, one per vocabulary."""
PEER_PREFIXES: Final = (REPLICATOR_PREFIX, REFLECTOR_PREFIX)
"""Prefixes of the peers' keys: a copy never carries them (a peer still running would act on them)."""

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
