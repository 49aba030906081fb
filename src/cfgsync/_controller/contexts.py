"""Copies into other clusters: the controller's side of ``kubed.appscode.com/sync-contexts``.

I/O: reads and writes in the clusters of a kubeconfig's contexts. Those clusters are not watched:
they are read when a source is reconciled (its copies there, found by their origin labels, and what
holds the copy's name), so a copy edited there is restored at the next resync at the latest. A context
is only asked about sources that name it, or that had copies there, or that it has not been asked
about since start-up (to find copies left behind while cfgsync was down).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cfgsync import errors
from cfgsync._adapters.kube import connection, diff, reading, resources, view
from cfgsync._adapters.kube.connection import METADATA, ApiError, Kube
from cfgsync._adapters.kube.writing import Writer
from cfgsync._controller.reconciler import ExtraResult
from cfgsync._core import contexts, diagnostics, origin, planner, vocabulary
from cfgsync._core.model import ConfigObject, Namespace, ObjectRef
from cfgsync._core.rules import Rule, rules_from_annotations

log = logging.getLogger("cfgsync.contexts")


@dataclass(slots=True)
class Context:
    """One other cluster, as a kubeconfig context names it."""

    name: str
    """The context's name (what ``sync-contexts`` lists)."""
    namespace: str | None
    """The context's namespace; copies go there, else to the source's namespace name."""
    kube: Kube
    """The connection to its API server."""
    writer: Writer
    """Writes there."""
    placed: set[ObjectRef] = field(default_factory=set)
    """Sources with copies there (as last seen)."""
    checked: set[ObjectRef] = field(default_factory=set)
    """Sources already looked up there since start-up."""


class ContextPlanner:
    """Plans and writes the copies of sources into the clusters of other contexts."""

    def __init__(
        self,
        found: list[Context],
        *,
        settings: planner.PlanSettings,
        hooks: planner.CopyHooks,
    ) -> None:
        self.contexts = found
        self.settings = settings
        self.hooks = hooks
        self.source_namespaces: Callable[[], Mapping[str, Namespace]] = dict
        """This cluster's namespaces, which the policy reads (set by the controller)."""
        self._lock = threading.Lock()

    @classmethod
    def from_kubeconfig(
        cls,
        path: str,
        local: Kube,
        settings: planner.PlanSettings,
        hooks: planner.CopyHooks,
        *,
        identity: str = "",
    ) -> ContextPlanner:
        """One connection per context of the kubeconfig file at ``path`` (read here; no API call).

        Two contexts on the same API server are an error (as in kubed): their copies would fight.
        """
        found: list[Context] = []
        servers: dict[str, str] = {}
        for name, namespace in connection.list_contexts(path):
            kube = connection.connect(
                connection.ConnectionSettings(kubeconfig=(path,), context=name),
                pool_size=8,
                identity=identity,
            )
            if kube.server in servers:
                raise errors.ApplyError(
                    f"{path}: contexts {servers[kube.server]} and {name} both point at {kube.server}; "
                    f"keep one context per cluster"
                )
            servers[kube.server] = name
            found.append(Context(name=name, namespace=namespace, kube=kube, writer=Writer(kube)))
        log.info("syncing to contexts: %s", ", ".join(c.name for c in found) or "(none)")
        return cls(found, settings=settings, hooks=hooks)

    def fence(self, may_write: Callable[[], bool], on_write: Callable[[str, str], None]) -> None:
        """Let every write to the other clusters through only while ``may_write`` says so, counted."""
        for context in self.contexts:
            context.kube.fence = may_write
            context.kube.on_write = on_write

    def close(self) -> None:
        """Close every connection."""
        for context in self.contexts:
            context.writer.close()
            context.kube.close()

    def reconcile(
        self, sources: dict[ObjectRef, ConfigObject], rules: list[Rule], group: set[ObjectRef]
    ) -> ExtraResult:
        """Bring the copies of ``group`` in every context in line with their rules."""
        named: dict[ObjectRef, set[str]] = {}
        for source in sources.values():
            try:
                for rule in rules_from_annotations(source):
                    named.setdefault(source.ref, set()).update(rule.contexts)
            except errors.RuleError:
                continue
        retry = False
        failures = writes = 0
        for context in self.contexts:
            with self._lock:
                ask = {
                    ref
                    for ref in group
                    if context.name in named.get(ref, ())
                    or ref in context.placed
                    or ref not in context.checked
                }
            if not ask:
                continue
            try:
                result = self._reconcile_one(
                    context, {r: sources[r] for r in ask if r in sources}, rules, ask
                )
            except ApiError as exc:
                log.warning("context %s: %s", context.name, exc, extra={"context": context.name})
                retry = True
                continue
            retry |= result.retry
            failures += result.failures
            writes += result.writes
        return ExtraResult(retry=retry, failures=failures, writes=writes)

    def _observe(
        self,
        context: Context,
        sources: dict[ObjectRef, ConfigObject],
        rules: list[Rule],
        group: set[ObjectRef],
    ) -> tuple[dict[ObjectRef, ConfigObject], list[Namespace]]:
        """The copies of ``group`` in that cluster, what holds the copies' names, and their namespaces.

        Copies are found by their origin labels; whatever else holds a copy's name is read as metadata
        only (it is nobody's copy: a conflict), so no other Secret there is ever read in full."""
        kube = context.kube
        existing: dict[ObjectRef, ConfigObject] = {}
        for ref in group:
            selector = ",".join(
                f"{k}={v}" for k, v in origin.origin_labels(ref, self.settings.cluster_name).items()
            )
            resource = resources.BY_KIND[ref.kind]
            for raw in reading.list_all(
                kube, resource.collection(), label_selector=selector, kind=ref.kind
            ).items:
                copy = view.observed_or_bare(raw, policy=self.settings.policy)
                existing[copy.ref] = copy
        namespaces: list[Namespace] = []
        for source in sources.values():
            target = context.namespace or source.ref.namespace
            for name in _copy_names(source, rules):
                ref = ObjectRef(kind=source.ref.kind, namespace=target, name=name)
                if ref not in existing:
                    held = reading.get_object(kube, ref, accept=METADATA)
                    if held is not None:
                        existing[ref] = view.light_object(ref.kind, view.metadata(held))
            try:
                raw_ns = kube.request("GET", resources.NAMESPACES.item(target))
                namespaces.append(view.namespace_of(raw_ns))
            except ApiError as exc:
                if exc.status != 404:
                    raise
        return existing, namespaces

    def _reconcile_one(
        self,
        context: Context,
        sources: dict[ObjectRef, ConfigObject],
        rules: list[Rule],
        group: set[ObjectRef],
    ) -> ExtraResult:
        existing, namespaces = self._observe(context, sources, rules, group)
        plan = contexts.plan_context_copies(
            sources.values(),
            context=context.name,
            context_namespace=context.namespace,
            namespaces=namespaces,
            existing=existing.values(),
            rules=rules,
            settings=self.settings,
            hooks=self.hooks,
            source_namespaces=self.source_namespaces(),
        )
        outcomes = context.writer.execute([a for a in plan.changes if a.source in group])
        for outcome in outcomes:
            fields = {
                "context": context.name,
                "copy": str(outcome.action.ref),
                "source": str(outcome.action.source),
            }
            if outcome.ok:
                log.info(diff.describe(outcome.action, context.name), extra=fields)
            else:
                log.error(outcome.message, extra={**fields, "status": outcome.status})
        for finding in diagnostics.diagnose(plan):
            log.warning("context %s: %s", context.name, finding, extra={"context": context.name})
        with self._lock:
            context.checked |= group
            for ref in group:
                if any(a.source == ref and a.desired is not None for a in plan.actions):
                    context.placed.add(ref)
                else:
                    context.placed.discard(ref)
        failed = [o for o in outcomes if not o.ok]
        return ExtraResult(retry=any(o.retriable for o in failed), failures=len(failed), writes=len(outcomes))


def _copy_names(source: ConfigObject, rules: list[Rule]) -> set[str]:
    """The names copies of ``source`` may take: its own, its copy-name annotation, its SyncRules'."""
    found = {source.ref.name}
    renamed = source.annotations.get(vocabulary.COPY_NAME, "").strip()
    if renamed:
        found.add(renamed)
    found.update(r.copy_name for r in rules if r.source == source.ref and r.copy_name)
    return found
