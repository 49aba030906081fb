"""The operator's policy: which objects may be sources, which namespaces may receive copies, and
which metadata a copy never carries.

Pure: no I/O. The planner applies the policy in every mode (render, explain, the ArgoCD plugin, the KRM
function, apply, run and copies into other clusters), so a copy the policy refuses is refused the same
way everywhere, and ``explain`` names the policy that refused it.

The defaults protect a cluster shared by several teams (docs/security.md):

- the system namespaces (``kube-system``, ``kube-public``, ``kube-node-lease``) receive no copies unless
  the operator allows them; copies already there (kubed's ``sync: ""`` put them there) are left as they
  are and reported, never deleted because of this default;
- credentials the cluster itself issues (service-account and bootstrap tokens) and Helm's release
  storage are never sources, whatever their annotations say;
- copies never carry the ownership and tracking marks of Argo CD, Flux or Helm, so those tools neither
  claim nor prune them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final

from cfgsync import errors
from cfgsync._core import vocabulary
from cfgsync._core.model import ConfigObject, Namespace, ObjectRef
from cfgsync._core.rules import check_metadata_patterns, check_namespace_patterns
from cfgsync._core.selectors import LabelSelector

SYSTEM_NAMESPACES: Final = ("kube-node-lease", "kube-public", "kube-system")
"""Namespaces Kubernetes itself uses: no copy goes there unless the operator allows it."""

PROTECTED_SECRET_TYPES: Final = (
    "bootstrap.kubernetes.io/token",
    "helm.sh/release.v1",
    "kubernetes.io/service-account-token",
)
"""Secret types that are never sources: tokens the cluster issues, and Helm 3's release records."""

HELM_STORAGE_LABELS: Final = (("owner", "helm"), ("OWNER", "TILLER"))
"""Labels by which Helm marks its release records (Helm 3's Secret and ConfigMap drivers set
``owner=helm``; Helm 2's Tiller set ``OWNER=TILLER``): such objects are never sources."""

GITOPS_KEYS: Final = (
    # Argo CD: the annotation of annotation tracking (the default since v3) and the label of label
    # tracking (common.LabelKeyAppInstance / AnnotationKeyAppInstance in argo-cd's common package).
    "argocd.argoproj.io/tracking-id",
    "app.kubernetes.io/instance",
    # Flux: kustomize-controller's and helm-controller's ownership labels.
    "kustomize.toolkit.fluxcd.io/name",
    "kustomize.toolkit.fluxcd.io/namespace",
    "helm.toolkit.fluxcd.io/name",
    "helm.toolkit.fluxcd.io/namespace",
    # Helm: what `helm install` checks before it adopts an existing object.
    "meta.helm.sh/release-name",
    "meta.helm.sh/release-namespace",
    "app.kubernetes.io/managed-by",
)
"""Label and annotation keys a copy never carries: with them, that tool would claim or prune the copy."""

_GITOPS_KEYS: Final = frozenset(GITOPS_KEYS)


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """Why the policy refuses a source, or a copy into a namespace."""

    policy: str
    """The policy's short name, as docs/security.md and ``explain`` give it."""
    reason: str
    """What the policy says, and which setting changes it."""

    def __str__(self) -> str:
        return f"refused by policy {self.policy}: {self.reason}"


SYSTEM_NAMESPACES_POLICY: Final = "system-namespaces"
PROTECTED_SOURCES_POLICY: Final = "protected-sources"
SOURCE_NAMESPACES_POLICY: Final = "source-namespaces"
CONSENT_POLICY: Final = "consent"


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The operator's policy (see the module docstring); the defaults are the safe ones."""

    allow_system_namespaces: bool = False
    """True restores kubed's behaviour: the system namespaces receive copies like any other."""
    denied_source_types: tuple[str, ...] = ()
    """Secret types that are never sources, besides :data:`PROTECTED_SECRET_TYPES`."""
    sources_from: tuple[str, ...] = ()
    """Names or globs of the namespaces that may hold sources; empty (and no selector): any namespace."""
    sources_from_selector: LabelSelector | None = None
    """Namespaces whose labels match may hold sources too (either this or ``sources_from`` suffices)."""
    require_consent: bool = False
    """Consent mode: a namespace receives copies only from the source namespaces its
    ``cfgsync.io/accept-from`` annotation names; a namespace without it receives none."""
    strip_metadata: tuple[str, ...] = ()
    """Label and annotation keys (names or globs) copies never carry, besides :data:`GITOPS_KEYS`."""

    # -- sources ------------------------------------------------------------------------------------

    def source_refusal(self, obj: ConfigObject, namespace: Namespace | None) -> Refusal | None:
        """Why ``obj`` may not be a source, or None. ``namespace`` is its namespace, when known."""
        if obj.ref.kind == "Secret" and obj.type is not None:
            if obj.type in PROTECTED_SECRET_TYPES:
                return Refusal(
                    policy=PROTECTED_SOURCES_POLICY,
                    reason=f"a Secret of type {obj.type} is never a source (cfgsync copies no credentials "
                    f"the cluster issues, nor Helm's release records), whatever its annotations say",
                )
            if obj.type in self.denied_source_types:
                return Refusal(
                    policy=PROTECTED_SOURCES_POLICY,
                    reason=f"a Secret of type {obj.type} is never a source here (--deny-source-type "
                    f"{obj.type})",
                )
        for key, value in HELM_STORAGE_LABELS:
            if obj.labels.get(key) == value:
                return Refusal(
                    policy=PROTECTED_SOURCES_POLICY,
                    reason=f"it is one of Helm's release records (label {key}={value}), never a source",
                )
        if not self.limits_sources or self.may_hold_sources(obj.ref.namespace, namespace):
            return None
        return Refusal(policy=SOURCE_NAMESPACES_POLICY, reason=self._sources_from_text(obj.ref.namespace))

    @property
    def limits_sources(self) -> bool:
        """True when only some namespaces may hold sources."""
        return bool(self.sources_from) or self.sources_from_selector is not None

    def may_hold_sources(self, name: str, namespace: Namespace | None) -> bool:
        """True when the namespace ``name`` (labels from ``namespace``) may hold sources."""
        if not self.limits_sources:
            return True
        if any(fnmatchcase(name, p) for p in self.sources_from):
            return True
        # A namespace nothing is known of matches no selector: a negative one ("!x") must not admit it.
        if namespace is None or self.sources_from_selector is None:
            return False
        return self.sources_from_selector.matches(namespace.labels)

    def _sources_from_text(self, name: str) -> str:
        allowed = []
        if self.sources_from:
            allowed.append(f"in {', '.join(self.sources_from)} (--allow-sources-from)")
        if self.sources_from_selector is not None:
            allowed.append(f"whose labels match {self.sources_from_selector} (--allow-sources-from-selector)")
        return f"sources may only live in namespaces {' or '.join(allowed)}; {name} is not one of them"

    # -- targets ------------------------------------------------------------------------------------

    def leaves_alone(self, namespace: str) -> bool:
        """True when copies in ``namespace`` are neither written nor deleted (a system namespace)."""
        return not self.allow_system_namespaces and namespace in SYSTEM_NAMESPACES

    def target_refusal(self, source: ObjectRef, namespace: Namespace) -> Refusal | None:
        """Why no copy of ``source`` may go into ``namespace``, or None."""
        if self.leaves_alone(namespace.name):
            return Refusal(
                policy=SYSTEM_NAMESPACES_POLICY,
                reason=f"{namespace.name} is a system namespace; no copy goes there unless the operator "
                f"allows system namespaces (--allow-system-namespaces)",
            )
        if not self.require_consent:
            return None
        accepted = namespace.accept_from
        if accepted is None:
            return Refusal(
                policy=CONSENT_POLICY,
                reason=f"namespace {namespace.name} has no {vocabulary.ACCEPT_FROM} annotation, so it "
                f"receives no copies (--require-consent)",
            )
        if any(fnmatchcase(source.namespace, p) for p in accepted):
            return None
        listed = ", ".join(accepted) if accepted else "no namespace"
        return Refusal(
            policy=CONSENT_POLICY,
            reason=f"namespace {namespace.name} accepts copies only from {listed} (annotation "
            f"{vocabulary.ACCEPT_FROM}), not from {source.namespace} (--require-consent)",
        )

    # -- copies' metadata ---------------------------------------------------------------------------

    def strips(self, key: str, extra: tuple[str, ...] = ()) -> bool:
        """True when a copy never carries the label or annotation ``key`` (``extra``: a rule's own keys).

        Besides the GitOps tools' marks, the peers' keys (replicator's, reflector's): a copy carrying
        ``replicate-to`` would make a replicator still running spread it further, and their marks on a
        copy taken over from them would say it is still theirs."""
        if key in _GITOPS_KEYS or key.startswith(vocabulary.PEER_PREFIXES):
            return True
        return any(fnmatchcase(key, p) for p in (*self.strip_metadata, *extra))

    def stripped(self, values: Mapping[str, str], extra: tuple[str, ...] = ()) -> dict[str, str]:
        """``values`` without the keys a copy never carries."""
        return {k: v for k, v in values.items() if not self.strips(k, extra)}


DEFAULT_POLICY: Final = Policy()
"""The safe defaults."""


def build_policy(
    *,
    allow_system_namespaces: bool = False,
    denied_source_types: tuple[str, ...] = (),
    sources_from: tuple[str, ...] = (),
    sources_from_selector: str | None = None,
    require_consent: bool = False,
    strip_metadata: tuple[str, ...] = (),
    where: str = "settings",
) -> Policy:
    """A policy from settings as every front end reads them; raises :class:`RuleError` naming ``where``."""
    for secret_type in denied_source_types:
        if not secret_type or any(c.isspace() for c in secret_type):
            raise errors.RuleError(
                f"{where}: deny-source-type {secret_type!r} is not a Secret type; write e.g. "
                f"'kubernetes.io/tls'"
            )
    check_namespace_patterns(sources_from, where=f"{where}: allow-sources-from")
    selector = None
    if sources_from_selector:
        try:
            selector = LabelSelector.parse(sources_from_selector)
        except errors.SelectorError as exc:
            raise errors.RuleError(f"{where}: allow-sources-from-selector: {exc}") from exc
    return Policy(
        allow_system_namespaces=allow_system_namespaces,
        denied_source_types=tuple(denied_source_types),
        sources_from=tuple(sources_from),
        sources_from_selector=selector,
        require_consent=require_consent,
        strip_metadata=check_metadata_patterns(tuple(strip_metadata), where=f"{where}: strip-metadata"),
    )
