"""``cfgsync run``: wiring the watches, the store, the work queue, the workers and the lease together.

I/O: threads; API calls through the adapters. Start-up order matters for safety: nothing is
reconciled before every cache holds its first list (a partial picture of namespaces would make copies
look unwanted), and nothing is written unless this replica holds the lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from cfgsync._adapters.kube import reading, resources, view
from cfgsync._adapters.kube.connection import METADATA, METADATA_LIST, ApiError, Kube
from cfgsync._adapters.kube.events import EventRecorder
from cfgsync._adapters.kube.leader import ElectionSettings, LeaderElector
from cfgsync._adapters.kube.writing import Writer
from cfgsync._controller.contexts import ContextPlanner
from cfgsync._controller.first_pass import FirstPass, PassResult
from cfgsync._controller.health import HealthServer
from cfgsync._controller.informer import Handlers, Informer
from cfgsync._controller.metrics import Metrics
from cfgsync._controller.queue import WorkQueue
from cfgsync._controller.reconciler import ExtraPlanner, Reconciler, Result
from cfgsync._controller.store import Store
from cfgsync._core import planner
from cfgsync._core.guard import DeleteGuard
from cfgsync._core.model import Action, ConfigObject, ObjectRef

log = logging.getLogger("cfgsync.controller")


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerSettings:
    """Everything ``cfgsync run`` is told on its command line, apart from the connection."""

    plan: planner.PlanSettings = planner.DEFAULT_SETTINGS
    """Cluster name, source namespace, excluded namespaces."""
    resync_period: float = 600.0
    """Seconds between re-plans of every source (kubed's ``--resync-period``, 10m)."""
    workers: int = 2
    """Sources reconciled at once."""
    write_concurrency: int = 16
    """Write requests in flight at once."""
    health_address: str = "0.0.0.0"  # noqa: S104 -- probes and scrapes come from outside the pod
    """Address of the health and metrics server."""
    health_port: int = 8080
    """Port of the health and metrics server (0: any free one)."""
    election: ElectionSettings | None = None
    """Leader election; None when this is the only replica."""
    drain_timeout: float = 30.0
    """Seconds a shutdown waits for reconciles in progress."""
    contexts_kubeconfig: str | None = None
    """Kubeconfig whose contexts are the other clusters of ``sync-contexts``."""
    delete_guard: DeleteGuard = field(default_factory=DeleteGuard)
    """Limits on the deletes of the first pass after start or gaining the lease."""


class Controller:
    """One controller instance: :meth:`run` until :meth:`stop` (or the lease is lost)."""

    def __init__(
        self,
        kube: Kube,
        settings: ControllerSettings,
        *,
        hooks: planner.CopyHooks,
        metrics: Metrics | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.metrics = metrics or Metrics()
        kube.on_write = self.metrics.count_write
        self.queue: WorkQueue[ObjectRef] = WorkQueue()
        self.store = Store(
            cluster_name=settings.plan.cluster_name,
            source_namespace=settings.plan.source_namespace,
            on_change=self._enqueue,
            policy=settings.plan.policy,
        )
        self.leading = threading.Event()
        self.writer = Writer(
            kube,
            workers=settings.write_concurrency,
            may_write=self.leading.is_set,
            forbidden_for=settings.resync_period,
        )
        identity = settings.election.identity if settings.election else "cfgsync"
        self.contexts = (
            ContextPlanner.from_kubeconfig(
                settings.contexts_kubeconfig,
                kube,
                settings.plan,
                hooks,
                may_write=self.leading.is_set,
                on_write=self.metrics.count_write,
            )
            if settings.contexts_kubeconfig
            else None
        )
        if self.contexts is not None:
            self.contexts.source_namespaces = lambda: self.store.namespaces
        extra: list[ExtraPlanner] = [self.contexts] if self.contexts is not None else []
        self.events = EventRecorder(kube, instance=identity)
        self.first_pass = FirstPass(settings.delete_guard, managed=lambda: self.store.managed_copies)
        self.reconciler = Reconciler(
            kube=kube,
            store=self.store,
            writer=self.writer,
            hooks=hooks,
            settings=settings.plan,
            events=self.events,
            metrics=self.metrics,
            extra=extra,
            first_pass=self.first_pass,
        )
        self.metrics.watch(depth=lambda: len(self.queue), copies=lambda: self.store.managed_copies)
        self.informers = self._informers()
        self.health = HealthServer(
            address=settings.health_address,
            port=settings.health_port,
            registry=self.metrics.registry,
            healthy=self.healthy,
            ready=self.ready,
            ready_detail=self.ready_detail,
        )
        self.elector = (
            LeaderElector(kube, settings.election, on_started=self._on_leading, on_stopped=self._on_lost)
            if settings.election is not None
            else None
        )
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._dirty = False
        self.exit_code = 0

    # -- probes --------------------------------------------------------------------------------------

    def ready(self) -> bool:
        """True once every cache holds its first list."""
        return all(i.synced.is_set() for i in self.informers)

    def ready_detail(self) -> list[str]:
        """Lines ``/readyz`` adds to its answer: what an operator should look at (never failing it)."""
        held = len(self.first_pass.held)
        if not held:
            return []
        return [
            f"warning: {held} deletes held by the mass-delete guard since start; see the log and the "
            f"Events (reason DeletesHeld), and restart with --allow-mass-delete to let them through"
        ]

    def healthy(self) -> bool:
        """False when a watch thread or a worker has died."""
        return all(i.failed is None for i in self.informers) and all(w.is_alive() for w in self._workers)

    # -- running ---------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to drain and return (safe from a signal handler)."""
        self._stop.set()

    def run(self) -> int:
        """Serve until stopped; return the exit code (1 when the lease was lost)."""
        self.health.start()
        for informer in self.informers:
            informer.start()
        if self.elector is not None:
            self.elector.start()
        else:
            self._on_leading()
        try:
            if self._wait(self.ready) and self._wait(self.leading.is_set):
                log.info("caches synced and leading: reconciling every source")
                keys = self.store.all_keys()
                ended = self.first_pass.begin(keys)
                self._enqueue(keys)
                self._first_pass_ended(ended)
                for index in range(self.settings.workers):
                    worker = threading.Thread(target=self._work, name=f"worker-{index}", daemon=True)
                    worker.start()
                    self._workers.append(worker)
                while not self._stop.wait(self.settings.resync_period):
                    log.info("periodic resync: re-planning every source")
                    self._enqueue(self.store.all_keys())
        finally:
            self._shutdown()
        return self.exit_code

    def _wait(self, condition: object) -> bool:
        assert callable(condition)
        while not condition():
            if self._stop.wait(0.05):
                return False
        return True

    def _shutdown(self) -> None:
        log.info("shutting down: finishing reconciles in progress")
        self.queue.shutdown()
        if not self.queue.wait_idle(self.settings.drain_timeout):
            log.warning("reconciles still running after %.0fs; leaving them", self.settings.drain_timeout)
        held = self.leading.is_set()
        self.leading.clear()
        self.metrics.leader.set(0)
        if self.elector is not None and held:
            self.elector.release()
        for informer in self.informers:
            informer.stop()
        self.writer.close()
        if self.contexts is not None:
            self.contexts.close()
        self.kube.close()
        self.health.stop()
        log.info("stopped")

    def _work(self) -> None:
        while True:
            key = self.queue.get()
            if key is None:
                return
            try:
                result = self.reconciler.reconcile(key)
            except Exception:
                log.exception("reconcile of %s failed", key, extra={"source": str(key)})
                self.metrics.errors.labels(kind="reconcile").inc()
                result = Result(retry=True)
            finally:
                self.queue.done(key)
            if result.busy:
                self.queue.add_after(key, 0.05)
                continue
            self._first_pass_ended(self.first_pass.done((key,)))
            if result.retry:
                delay = self.queue.add_rate_limited(key)
                self.metrics.reconciles.labels(result="retried").inc()
                log.info("retrying %s in %.2fs", key, delay, extra={"source": str(key)})
                self._dirty = True
            else:
                self.queue.forget(key)
                self.metrics.reconciles.labels(result="failed" if result.failures else "ok").inc()
                self._dirty |= bool(result.failures)
            if not self.queue.busy:
                if not self._dirty:
                    self.metrics.last_sync.set(time.time())
                self._dirty = False

    def _first_pass_ended(self, result: PassResult | None) -> None:
        """Report the guard's verdict on the first pass, and carry out the deletes it lets through."""
        if result is None:
            return
        verdict = result.verdict
        self.metrics.deletes_held.set(len(verdict.held))
        if not verdict.held:
            if result.release:
                log.info("first pass done: its deletes go ahead", extra={"sources": len(result.release)})
                self._enqueue(result.release)
            return
        log.warning(verdict.summary(), extra={"held": len(verdict.held), "managed": verdict.managed})
        by_source: dict[ObjectRef, list[Action]] = {}
        for action in verdict.held:
            log.warning("held: delete %s: %s", action.ref, action.reason, extra={"copy": str(action.ref)})
            by_source.setdefault(action.source, []).append(action)
        for source, actions in sorted(by_source.items()):
            target = self._event_subject(source) or actions[0].observed
            if target is not None:
                refs = ", ".join(str(a.ref) for a in actions[:10])
                more = f" and {len(actions) - 10} more" if len(actions) > 10 else ""
                self.events.warning(
                    target,
                    "DeletesHeld",
                    f"deletes of {len(actions)} copies of {source} held by the mass-delete guard "
                    f"({refs}{more}): {verdict.summary()}",
                )

    def _event_subject(self, ref: ObjectRef) -> ConfigObject | None:
        """The object ``ref`` as an Event's subject (uid included), when it exists."""
        with self.store.lock:
            cached = self.store.full_sources.get(ref)
        if cached is not None or not self.store.holds(ref):
            return cached
        try:
            raw = reading.get_object(self.kube, ref)
        except ApiError as exc:
            log.warning("could not read %s: %s", ref, exc)
            return None
        return None if raw is None else view.light_object(ref.kind, view.metadata(raw))

    def _enqueue(self, refs: Iterable[ObjectRef]) -> None:
        for ref in refs:
            self.queue.add(ref)

    def _on_leading(self) -> None:
        log.info("leading: this replica writes")
        self.leading.set()
        self.metrics.leader.set(1)

    def _on_lost(self) -> None:
        log.error("lost the lease: stopping so that only the new leader writes")
        self.leading.clear()
        self.metrics.leader.set(0)
        self.exit_code = 1
        self._stop.set()

    # -- the watches -----------------------------------------------------------------------------------

    def _informers(self) -> list[Informer]:
        store = self.store
        found = [
            Informer(
                self.kube,
                name="namespaces",
                path=resources.NAMESPACES.collection(),
                kind="Namespace",
                accept=METADATA_LIST,
                watch_accept=METADATA,
                handlers=Handlers(
                    upsert=store.put_namespace,
                    delete=store.drop_namespace,
                    known=lambda: {("", name) for name in list(store.namespaces)},
                ),
                on_event=self._watch_event,
            )
        ]
        for resource in (resources.CONFIGMAPS, resources.SECRETS):
            kind = resource.kind
            found.append(
                Informer(
                    self.kube,
                    name=f"{resource.plural}-metadata",
                    path=resource.collection(),
                    kind=kind,
                    accept=METADATA_LIST,
                    watch_accept=METADATA,
                    handlers=Handlers(
                        upsert=lambda raw, kind=kind: store.put_object(kind, view.metadata(raw)),  # type: ignore[misc]
                        delete=lambda raw, kind=kind: store.drop_object(kind, view.metadata(raw)),  # type: ignore[misc]
                        known=lambda kind=kind: {(r.namespace, r.name) for r in store.object_refs(kind)},  # type: ignore[misc]
                    ),
                    on_event=self._watch_event,
                )
            )
            found.append(
                Informer(
                    self.kube,
                    name=f"{resource.plural}-copies",
                    path=resource.collection(),
                    kind=kind,
                    label_selector=reading.COPY_SELECTOR,
                    handlers=Handlers(
                        upsert=store.put_copy,
                        delete=lambda raw, kind=kind: store.drop_copy(_ref(kind, raw), _uid(raw)),  # type: ignore[misc]
                        known=lambda kind=kind: {(r.namespace, r.name) for r in store.copy_refs(kind)},  # type: ignore[misc]
                    ),
                    on_event=self._watch_event,
                )
            )
        if reading.syncrules_installed(self.kube):
            found.append(
                Informer(
                    self.kube,
                    name="syncrules",
                    path=resources.SYNC_RULES.collection(),
                    kind=resources.SYNC_RULES.kind,
                    handlers=Handlers(
                        upsert=lambda raw: store.put_rule(_key(raw), reading.parse_syncrule(raw)),
                        delete=lambda raw: store.drop_rule(_key(raw)),
                        known=lambda: set(store.rules),
                    ),
                    on_event=self._watch_event,
                )
            )
        return found

    def _watch_event(self, collection: str, event: str) -> None:
        self.metrics.watch_events.labels(collection=collection, event=event).inc()


def _ref(kind: str, raw: object) -> ObjectRef:
    meta = view.metadata(raw) if isinstance(raw, dict) else {}
    return ObjectRef(kind=kind, namespace=str(meta.get("namespace", "")), name=str(meta.get("name", "")))


def _key(raw: object) -> tuple[str, str]:
    meta = view.metadata(raw) if isinstance(raw, dict) else {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def _uid(raw: object) -> str | None:
    uid = view.metadata(raw).get("uid") if isinstance(raw, dict) else None
    return uid if isinstance(uid, str) else None
