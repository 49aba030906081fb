"""``cfgsync run``: the watches, the store, the work queue, the workers and the lease, supervised.

I/O: threads; API calls through the adapters, never in a constructor (:class:`Controller` only wires
its collaborators; :meth:`Controller.run` starts them). Start-up order matters for safety: nothing is
reconciled before every cache holds its first list (a partial picture of namespaces would make copies
look unwanted), and nothing is written unless this replica provably holds the lease (the connection's
fence). Every long-lived thread is supervised: watches restart themselves, and a thread that dies
anyway (a watch, a worker, the election) ends the process with a non-zero status, so the pod restarts.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from cfgsync._adapters.kube import reading, resources, view
from cfgsync._adapters.kube.connection import METADATA, METADATA_LIST, ApiError, Kube
from cfgsync._adapters.kube.events import EventRecorder
from cfgsync._adapters.kube.lease import ElectionSettings, LeaseElector
from cfgsync._adapters.kube.writing import Writer
from cfgsync._controller.contexts import ContextPlanner
from cfgsync._controller.first_pass import FirstPass, PassResult
from cfgsync._controller.health import HealthServer
from cfgsync._controller.informer import Informer, Poison, Sink
from cfgsync._controller.metrics import Metrics
from cfgsync._controller.queue import WorkQueue
from cfgsync._controller.reconciler import ExtraPlanner, Reconciler, Result
from cfgsync._controller.sinks import Handlers, SyncRuleEntry, decode_syncrule
from cfgsync._controller.store import Store
from cfgsync._core import origin, planner
from cfgsync._core.guard import DeleteGuard
from cfgsync._core.model import Action, ConfigObject, Namespace, ObjectRef

log = logging.getLogger("cfgsync.controller")

EXIT_FAILED: Final = 1
"""The lease was lost, or a long-lived thread died: the pod restarts."""
TICK: Final = 0.5
"""Seconds between the supervisor's checks of its threads."""
COPY_PAGE_SIZE: Final = 50
"""Copies per list page: a page of full objects (up to 1 MiB each) is held while it is read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerSettings:
    """Everything ``cfgsync run`` is told on its command line, apart from the connection."""

    plan: planner.PlanSettings = planner.DEFAULT_SETTINGS
    """Cluster name, source namespace, excluded namespaces."""
    resync_period: float = 600.0
    """Seconds between re-plans of every source (kubed's ``--resync-period``, 10m); 0 turns it off."""
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
    drain_timeout: float = 20.0
    """Seconds a shutdown waits for reconciles in progress (inside the pod's 30 s grace period)."""
    delete_guard: DeleteGuard = field(default_factory=DeleteGuard)
    """Limits on the deletes of the first pass after start or gaining the lease."""
    crd_check_period: float = 15.0
    """Seconds between checks whether the SyncRule resource appeared or went."""
    gone_grace: float = 30.0
    """Seconds the copies of a source that vanished wait before they are deleted (it may come back)."""
    identity: str = "cfgsync"
    """This replica's name, in Events (``reportingInstance``) and the lease."""


class Controller:
    """One controller instance: :meth:`run` until :meth:`stop` (or the lease is lost)."""

    def __init__(
        self,
        *,
        kube: Kube,
        settings: ControllerSettings,
        hooks: planner.CopyHooks,
        metrics: Metrics | None = None,
        lease_kube: Kube | None = None,
        contexts: ContextPlanner | None = None,
    ) -> None:
        """Wire the parts; no I/O (``lease_kube``: a connection of its own for the lease)."""
        self.kube = kube
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.contexts = contexts
        self._leading = threading.Event()
        self.elector = (
            LeaseElector(
                lease_kube or kube, settings.election, on_started=self._on_leading, on_lost=self._on_lost
            )
            if settings.election is not None
            else None
        )
        fence = self.elector.may_write if self.elector is not None else self._leading.is_set
        kube.on_write = self.metrics.count_write
        kube.fence = fence
        if contexts is not None:
            contexts.fence(fence, self.metrics.count_write)
        self.queue: WorkQueue[ObjectRef] = WorkQueue()
        self.store = Store(
            cluster_name=settings.plan.cluster_name,
            source_namespace=settings.plan.source_namespace,
            on_change=self._enqueue,
            policy=settings.plan.policy,
            disabled=settings.plan.disabled_vocabularies,
        )
        if contexts is not None:  # the policy reads this cluster's namespaces (source namespace labels)
            contexts.source_namespaces = lambda: {ns.name: ns for ns in self.store.namespaces()}
        self.events = EventRecorder(kube, instance=settings.identity)
        self.first_pass = FirstPass(settings.delete_guard, managed=lambda: self.store.managed_copies)
        extra: list[ExtraPlanner] = [contexts] if contexts is not None else []
        self.reconciler = Reconciler(
            kube=kube,
            store=self.store,
            writer=Writer(
                kube, workers=settings.write_concurrency, forbidden_for=settings.resync_period or 600.0
            ),
            hooks=hooks,
            settings=settings.plan,
            events=self.events,
            metrics=self.metrics,
            extra=extra,
            first_pass=self.first_pass,
            gone_grace=settings.gone_grace,
        )
        self.metrics.watch(
            depth=lambda: len(self.queue),
            copies=lambda: self.store.managed_copies,
            invalid_rules=lambda: len(self.store.rule_problems()),
        )
        self.informers = self._informers()
        self.syncrules: Informer[SyncRuleEntry] | None = None
        self.syncrules_checked = False
        self._syncrules_missing = 0
        self.health = HealthServer(
            address=settings.health_address,
            port=settings.health_port,
            registry=self.metrics.registry,
            healthy=self.healthy,
            ready=self.ready,
            ready_detail=self.ready_detail,
        )
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._dirty = False
        self._lost = False
        self._reported: dict[tuple[str | None, str], None] = {}
        self.exit_code = 0

    # -- probes --------------------------------------------------------------------------------------

    def ready(self) -> bool:
        """True once every cache holds its first list."""
        return all(i.synced.is_set() for i in self._watches())

    def _watches(self) -> list[Informer[Any]]:
        return [*self.informers, *([self.syncrules] if self.syncrules is not None else [])]

    def healthy(self) -> bool:
        """False when the lease was lost or a watch, worker or election thread has died."""
        return self._dead() is None

    def ready_detail(self) -> list[str]:
        """Lines ``/readyz`` adds to its answer: what an operator should look at (never failing it)."""
        held = len(self.first_pass.held)
        if not held:
            return []
        return [
            f"warning: {held} deletes held by the mass-delete guard since start; see the log and the "
            f"Events (reason DeletesHeld), and restart with --allow-mass-delete to let them through"
        ]

    def _dead(self) -> str | None:
        """What has died, if anything has."""
        if self._lost:
            return "the lease was lost"
        for informer in self._watches():
            if not informer.alive:
                return f"the watch of {informer.name} died"
        if any(not w.is_alive() for w in self._workers) and not self._stop.is_set():
            return "a worker died"
        if self.elector is not None and not self.elector.alive:
            return "the leader election died"
        return None

    # -- running ---------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to drain and return (safe from a signal handler)."""
        self._stop.set()

    def run(self) -> int:
        """Serve until stopped; return the exit code (1 when the lease was lost or a thread died)."""
        self.health.start()
        self._watch_syncrules()
        for informer in self._watches():
            informer.start()
        if self.elector is not None:
            self.elector.start()
        else:
            self._on_leading()
        try:
            if self._wait(self.ready) and self._wait(self._leading.is_set):
                log.info("caches synced and leading: reconciling every source")
                keys = self.store.all_keys()
                ended = self.first_pass.begin(keys)
                self._enqueue(keys)
                self._first_pass_ended(ended)
                for index in range(self.settings.workers):
                    worker = threading.Thread(target=self._work, name=f"worker-{index}", daemon=True)
                    worker.start()
                    self._workers.append(worker)
                self._serve()
        finally:
            self._shutdown()
        return self.exit_code

    def _serve(self) -> None:
        """Until stopped: check the threads, resync on schedule, follow the SyncRule resource."""
        period = self.settings.resync_period
        next_resync = time.monotonic() + period if period > 0 else None
        next_crd_check = time.monotonic() + self.settings.crd_check_period
        while not self._stop.wait(TICK):
            if self._check_threads():
                return
            now = time.monotonic()
            if next_resync is not None and now >= next_resync:
                log.info("periodic resync: re-planning every source")
                self._enqueue(self.store.all_keys())
                next_resync = now + period
            self._first_pass_ended(self.first_pass.expire(now))
            if now >= next_crd_check:
                self._watch_syncrules()
                next_crd_check = now + self.settings.crd_check_period

    def _wait(self, condition: Callable[[], bool]) -> bool:
        while not condition():
            if self._stop.wait(TICK / 5) or self._check_threads():
                return False
        return True

    def _check_threads(self) -> bool:
        """True (and the exit code set) when something has died: the process must end."""
        dead = self._dead()
        if dead is None:
            return False
        if not self._lost:
            log.critical("%s: exiting so that the pod restarts", dead)
        self.exit_code = EXIT_FAILED
        self._stop.set()
        return True

    def _shutdown(self) -> None:
        log.info("shutting down: finishing reconciles in progress")
        self.queue.shutdown()
        if not self.queue.wait_idle(self.settings.drain_timeout):
            log.warning("reconciles still running after %.0fs; leaving them", self.settings.drain_timeout)
        self._leading.clear()
        self.metrics.leader.set(0)
        if self.elector is not None:
            self.elector.release()  # stops campaigning first, then gives the lease up once
        for informer in self._watches():
            informer.stop()
        self.reconciler.writer.close()
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
            raised = False
            try:
                result = self.reconciler.reconcile(key)
            except Exception:
                log.exception("reconcile of %s failed", key, extra={"source": str(key)})
                self.metrics.errors.labels(kind="reconcile").inc()
                result, raised = Result(retry=True), True
            finally:
                self.queue.done(key)
            if result.busy:
                self.queue.add_after(key, 0.05)
                continue
            if result.again_in is not None:
                self.queue.add_after(key, result.again_in)
            elif not raised:
                # A source that raised, or whose deletes wait out a grace, is not done with its first
                # pass: its deletes are still to be counted by the guard when they come.
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

    def _enqueue(self, refs: Iterable[ObjectRef]) -> None:
        for ref in refs:
            self.queue.add(ref)

    def _on_leading(self) -> None:
        log.info("leading: this replica writes")
        self._leading.set()
        self.metrics.leader.set(1)

    def _on_lost(self) -> None:
        log.error("lost the lease: stopping so that only the new leader writes")
        self._leading.clear()
        self.metrics.leader.set(0)
        self._lost = True
        self.exit_code = EXIT_FAILED
        self._stop.set()

    # -- the first pass's deletes -----------------------------------------------------------------------

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
        state = self.store.source(ref)
        if state.cached is not None or not state.exists:
            return state.cached
        try:
            raw = reading.get_object(self.kube, ref)
        except ApiError as exc:
            log.warning("could not read %s: %s", ref, exc)
            return None
        return None if raw is None else view.header(raw)

    # -- what cannot be read -----------------------------------------------------------------------

    def _poisoned(self, poison: Poison) -> None:
        """An object the API server holds but cfgsync cannot read: reported once, then skipped."""
        self.metrics.unreadable.labels(collection=poison.collection).inc()
        key = (poison.uid, poison.error)
        if key in self._reported:
            return
        self._reported[key] = None
        if len(self._reported) > 10_000:
            del self._reported[next(iter(self._reported))]
        ref = ObjectRef(kind=poison.kind, namespace=poison.namespace, name=poison.name)
        log.error("%s cannot be read, skipped: %s", ref, poison.error, extra={"object": str(ref)})
        owner = origin.owner_of(ConfigObject(ref=ref, labels=poison.labels), self.settings.plan.cluster_name)
        subject = self._event_subject(owner) if owner is not None else None
        if subject is not None:
            self.events.warning(subject, "UnreadableCopy", f"{ref} cannot be read: {poison.error}")

    def _put_syncrule(self, entry: SyncRuleEntry) -> None:
        self.store.put_rule(entry.key, entry.rule)
        problem = entry.problem
        if problem is not None and self.events.warning(entry.subject, "InvalidSyncRule", problem.message):
            log.error("%s", problem, extra={"syncrule": f"{entry.key[0]}/{entry.key[1]}"})

    # -- the watches -----------------------------------------------------------------------------------

    def _informers(self) -> list[Informer[Any]]:
        store = self.store
        namespaces: Informer[Namespace] = Informer(
            self.kube,
            name="namespaces",
            path=resources.NAMESPACES.collection(),
            kind="Namespace",
            decode=view.namespace_of,
            sink=Handlers(
                upsert=store.put_namespace, delete=store.drop_namespace, known=store.namespace_keys
            ),
            accept=METADATA_LIST,
            watch_accept=METADATA,
            on_event=self._watch_event,
            on_poison=self._poisoned,
        )
        found: list[Informer[Any]] = [namespaces]
        copies = reading.copy_selector(self.settings.plan.cluster_name)
        for resource in (resources.CONFIGMAPS, resources.SECRETS):
            kind = resource.kind
            headers: Sink[ConfigObject] = Handlers(
                upsert=store.put_object,
                delete=functools.partial(store.drop_object, kind),
                known=functools.partial(store.object_keys, kind),
            )
            views: Sink[ConfigObject] = Handlers(
                upsert=store.put_copy,
                delete=functools.partial(store.drop_copy, kind),
                known=functools.partial(store.copy_keys, kind),
            )
            found.append(
                Informer(
                    self.kube,
                    name=f"{resource.plural}-metadata",
                    path=resource.collection(),
                    kind=kind,
                    decode=view.header,
                    sink=headers,
                    accept=METADATA_LIST,
                    watch_accept=METADATA,
                    on_event=self._watch_event,
                    on_poison=self._poisoned,
                )
            )
            found.append(
                Informer(
                    self.kube,
                    name=f"{resource.plural}-copies",
                    path=resource.collection(),
                    kind=kind,
                    decode=functools.partial(view.cached_copy, policy=self.settings.plan.policy),
                    sink=views,
                    label_selector=copies,
                    page_size=COPY_PAGE_SIZE,
                    on_event=self._watch_event,
                    on_poison=self._poisoned,
                )
            )
        return found

    def _watch_syncrules(self) -> None:
        """Start watching SyncRules when their resource is served, stop when it is gone.

        The first check happens before the other watches start (their informer starts with them)."""
        try:
            installed = reading.syncrules_installed(self.kube)
        except ApiError as exc:
            log.warning("could not tell whether SyncRules are served: %s", exc)
            return
        if installed and self.syncrules is None:
            informer: Informer[SyncRuleEntry] = Informer(
                self.kube,
                name="syncrules",
                path=resources.SYNC_RULES.collection(),
                kind=resources.SYNC_RULES.kind,
                decode=decode_syncrule,
                sink=Handlers(
                    upsert=self._put_syncrule, delete=self.store.drop_rule, known=self.store.rule_keys
                ),
                on_event=self._watch_event,
                on_poison=self._poisoned,
            )
            started = self.syncrules_checked
            self.syncrules = informer
            if started:
                log.info("the SyncRule resource is served now: watching SyncRules")
                informer.start()
        elif not installed and self.syncrules is not None and self._syncrules_missing < 1:
            # An API server that restarts answers 404 for custom resources until it has loaded them:
            # the resource must be missing at two checks in a row before its rules are dropped.
            self._syncrules_missing += 1
        elif not installed and self.syncrules is not None:
            log.info("the SyncRule resource is gone: its rules no longer apply")
            self.syncrules.stop()
            self.syncrules = None
            self.store.drop_all_rules()
        if installed:
            self._syncrules_missing = 0
        self.syncrules_checked = True

    def _watch_event(self, collection: str, event: str) -> None:
        self.metrics.watch_events.labels(collection=collection, event=event).inc()
