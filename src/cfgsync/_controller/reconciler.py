"""Reconciling one source: plan its copies from the cache with the one planner, write, record.

I/O: a GET for a source whose version moved (its metadata alone when it declares nothing: a target may
ask for any object, and its data is never read unless it allows pulls), for each target asking for it
whose version moved, and for each peer-made copy in the way; then the writes of the plan. The planner
sees every copy of the source, whatever holds the names its copies would take, and the targets asking.
Sources that compete for a name (two sources whose copies collide, or a copy of another source in the
way) are planned together, so a conflict is seen from both sides and a copy of a source outside the
plan is never deleted by it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Protocol

from cfgsync import errors
from cfgsync._adapters.kube import reading, view
from cfgsync._adapters.kube.connection import METADATA, Kube
from cfgsync._adapters.kube.events import EventRecorder
from cfgsync._adapters.kube.writing import Outcome, Writer
from cfgsync._controller.first_pass import FirstPass
from cfgsync._controller.metrics import Metrics
from cfgsync._controller.store import NameKey, Store
from cfgsync._core import diagnostics, planner, vocabulary
from cfgsync._core.model import Action, ActionKind, ConfigObject, ObjectRef, Plan
from cfgsync._core.rules import Rule

log = logging.getLogger("cfgsync.reconciler")

MAX_ROUNDS: Final = 6
"""Plans per reconcile while the group of competing sources grows (it settles in one or two)."""
_FAILURE_REASONS: Final = {"forbidden": "CopyForbidden", "rejected": "CopyRejected", "write": "CopyFailed"}
"""The Event reason of a write that failed for good, by kind of failure."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """How a reconcile went."""

    retry: bool = False
    """True when it should run again after a back-off (a conflict of versions, an unreachable server)."""
    busy: bool = False
    """True when a competing source was being reconciled by another worker: run again shortly."""
    failures: int = 0
    """Writes that failed."""
    writes: int = 0
    """Writes carried out."""
    again_in: float | None = None
    """Seconds after which to reconcile again (deletes waiting out a vanished source's grace)."""


@dataclass(slots=True)
class _Inputs:
    sources: dict[ObjectRef, ConfigObject] = field(default_factory=dict)
    existing: dict[ObjectRef, ConfigObject] = field(default_factory=dict)
    owners: set[ObjectRef] = field(default_factory=set)
    targets: dict[ObjectRef, ConfigObject] = field(default_factory=dict)
    unreadable: set[ObjectRef] = field(default_factory=set)
    """Sources the API server holds that cannot be read: their copies are kept as they are."""


class Reconciler:
    """Plans and carries out the copies of one source (and its competitors) at a time."""

    def __init__(
        self,
        *,
        kube: Kube,
        store: Store,
        writer: Writer,
        hooks: planner.CopyHooks,
        settings: planner.PlanSettings,
        events: EventRecorder,
        metrics: Metrics,
        extra: Iterable[ExtraPlanner] = (),
        first_pass: FirstPass | None = None,
        gone_grace: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``gone_grace``: seconds the copies of a vanished source wait before they are deleted."""
        self.kube = kube
        self.gone_grace = gone_grace
        self._clock = clock
        self._gone_since: dict[ObjectRef, float] = {}
        self._gone_lock = threading.Lock()
        self.store = store
        self.writer = writer
        self.hooks = hooks
        self.settings = settings
        self.events = events
        self.metrics = metrics
        self.extra = tuple(extra)
        self.first_pass = first_pass
        self._busy: set[ObjectRef] = set()
        self._busy_lock = threading.Lock()
        self._left_alone: dict[ObjectRef, frozenset[ObjectRef]] = {}
        metrics.left_alone.set_function(lambda: float(sum(len(v) for v in dict(self._left_alone).values())))

    def reconcile(self, key: ObjectRef) -> Result:
        """Make the copies of ``key`` (and of the sources competing with it) match the plan."""
        group = {key}
        if not self._claim(group):
            return Result(busy=True)
        try:
            try:
                plan, inputs, group = self._plan(group)
            except _BusyError:
                return Result(busy=True)
            changes, again_in = self._wait_out_vanished([a for a in plan.changes if a.source in group], group)
            if self.first_pass is not None:
                changes = self.first_pass.split(changes)
            started = time.monotonic()
            outcomes = self.writer.execute(changes)
            self._record(plan, inputs, group, outcomes)
            failures = [o for o in outcomes if not o.ok]
            # Other clusters' copies of a source that cannot be read are kept too: it is not theirs to plan.
            readable = group - inputs.unreadable
            extra = [x.reconcile(inputs.sources, self.store.rules_for(group), readable) for x in self.extra]
            retry = any(o.retriable for o in failures) or any(r.retry for r in extra)
            failed = len(failures) + sum(r.failures for r in extra)
            if changes:
                counts: dict[str, int] = {}
                for outcome in outcomes:
                    name = outcome.action.kind.value if outcome.ok else "failed"
                    counts[name] = counts.get(name, 0) + 1
                log.info(
                    "reconciled %s: %s",
                    key,
                    ", ".join(f"{n} {k}" for k, n in sorted(counts.items())),
                    extra={
                        "source": str(key),
                        "group": sorted(str(g) for g in group),
                        "writes": len(outcomes),
                        "failed": len(failures),
                        "seconds": round(time.monotonic() - started, 3),
                    },
                )
            return Result(
                retry=retry,
                failures=failed,
                writes=len(outcomes) + sum(r.writes for r in extra),
                again_in=again_in,
            )
        finally:
            self._release(group)

    def _wait_out_vanished(
        self, changes: list[Action], group: set[ObjectRef]
    ) -> tuple[list[Action], float | None]:
        """Hold back the deletes of copies whose source vanished less than ``gone_grace`` ago.

        A source deleted and created again (``kubectl replace --force``, a GitOps tool's replace) keeps
        its copies, and a rival that wants the same copy name cannot take the namespaces over meanwhile.
        """
        now = self._clock()
        with self._gone_lock:
            for ref, since in list(self._gone_since.items()):
                if since + 10 * self.gone_grace < now:  # long gone: its copies went with the grace
                    del self._gone_since[ref]
            started: list[ObjectRef] = []
            for ref in group:
                if self.store.source(ref).exists:
                    self._gone_since.pop(ref, None)
                elif ref not in self._gone_since:
                    self._gone_since[ref] = now
                    started.append(ref)
            # Only a source with copies to delete waits: one that never existed (a target asks for it)
            # or left nothing behind is done at once, and does not hold the first pass open.
            deleting = {a.source for a in changes if a.kind is ActionKind.DELETE}
            waiting = {
                ref: since + self.gone_grace - now
                for ref, since in self._gone_since.items()
                if ref in group and ref in deleting and since + self.gone_grace > now
            }
        if not waiting:
            return changes, None
        kept = [a for a in changes if not (a.kind is ActionKind.DELETE and a.source in waiting)]
        for ref in started:
            held = sum(a.kind is ActionKind.DELETE and a.source == ref for a in changes)
            if ref in waiting:
                log.info(
                    "%s is gone: its %d copies wait %.0fs before they are deleted, in case it comes back",
                    ref,
                    held,
                    self.gone_grace,
                    extra={"source": str(ref), "copies": held},
                )
        return kept, max(0.05, min(waiting.values()))

    # -- planning ----------------------------------------------------------------------------------

    def _plan(self, group: set[ObjectRef]) -> tuple[Plan, _Inputs, set[ObjectRef]]:
        names: set[NameKey] = set()
        for _ in range(MAX_ROUNDS):
            inputs = self._inputs(group, names)
            plan = planner.plan_copies(
                inputs.sources.values(),
                self.store.namespaces(),
                inputs.existing.values(),
                rules=self.store.rules_for(group),
                settings=self.settings,
                hooks=self.hooks,
                pull_targets=inputs.targets.values(),
                unreadable=inputs.unreadable,
            )
            wanted = {a.ref for a in plan.actions} | {c.ref for c in plan.conflicts}
            competitors = set(inputs.owners) | self.store.claimants(wanted)
            # Before creating a copy, plan the sources of the same name elsewhere alongside (they want
            # copies of that name too), so the arbitration rule, not the order of reconciles, decides.
            for kind, name in {(a.ref.kind, a.ref.name) for a in plan.of_kind(ActionKind.CREATE)}:
                competitors |= self.store.sources_named(kind, name)
            competitors -= group
            # A plugin may rename a copy onto a name no candidate covered: look there too.
            unseen = {
                (a.ref.kind, a.ref.name)
                for a in plan.actions
                if a.kind is ActionKind.CREATE and self.store.holds(a.ref) and a.ref not in inputs.existing
            } - names
            if not competitors and not unseen:
                return plan, inputs, group
            if competitors and not self._claim(competitors):
                raise _BusyError
            group |= competitors
            names |= unseen
        return plan, inputs, group

    def _inputs(self, group: set[ObjectRef], names: set[NameKey]) -> _Inputs:
        inputs = _Inputs()
        for ref in group:
            source = self._source(ref, inputs.unreadable)
            ns = self.store.namespace(ref.namespace)
            if source is not None and ns is not None and not ns.terminating:
                # A deleted namespace takes its copies along: its sources count as gone.
                inputs.sources[ref] = source
        candidates = set(names)
        for rule in self.store.rules_for(group):
            candidates.add((rule.source.kind, rule.copy_name or rule.source.name))
        for ref in group:
            candidates.add((ref.kind, ref.name))
            candidates.update((c.kind, c.name) for c in self.store.claimed(ref))
        for source in inputs.sources.values():
            renamed = source.annotations.get(vocabulary.COPY_NAME)
            if renamed:
                candidates.add((source.ref.kind, renamed.strip()))
        hood = self.store.neighbourhood(group, candidates)
        inputs.existing = dict(hood.existing)
        inputs.owners = set(hood.owners)
        for ref in self.store.peer_made(inputs.existing):
            raw = reading.get_object(self.kube, ref)
            if raw is not None:  # a peer's copy, in full: it may be taken over in place
                inputs.existing[ref] = view.observed_or_bare(
                    {**raw, "kind": ref.kind}, policy=self.settings.policy
                )
        for ref in self.store.requesters(group):
            target = self._target(ref)
            if target is not None:
                inputs.targets[ref] = target
        return inputs

    def _target(self, ref: ObjectRef) -> ConfigObject | None:
        """A target's view: from the cache when its version has not moved, else fetched."""
        version, cached = self.store.target(ref)
        if cached is not None:
            return cached
        if version is None:
            return None
        raw = reading.get_object(self.kube, ref)
        if raw is None:
            return None
        try:
            target = view.target_view({**raw, "kind": ref.kind})
        except errors.CfgsyncError as exc:
            log.error("%s cannot be read: %s", ref, exc, extra={"target": str(ref)})
            return None
        self.store.remember_target(target)
        return target

    def _source(self, ref: ObjectRef, unreadable: set[ObjectRef]) -> ConfigObject | None:
        """The source in full: from the cache when its version has not moved, else fetched.

        None when it is gone, or when it cannot be read (then it is added to ``unreadable``)."""
        state = self.store.source(ref)
        if state.cached is not None:
            return state.cached
        if not state.exists:
            return None
        if state.version is None and not self.store.rules_for([ref]):
            # It declares nothing and no SyncRule names it (a target asks for it, or its copies' rule
            # went): its metadata says all the planner needs, and its data is never read.
            meta = reading.get_object(self.kube, ref, accept=METADATA)
            return None if meta is None else view.header({**meta, "kind": ref.kind})
        raw = reading.get_object(self.kube, ref)
        if raw is None:
            return None
        try:
            source = view.observed_source(raw)
        except errors.CfgsyncError as exc:
            # The API server holds it, cfgsync cannot read it: it is reported, and its copies are
            # neither updated nor deleted until it can be read again (or is deleted).
            unreadable.add(ref)
            log.error("%s cannot be read: %s", ref, exc, extra={"source": str(ref)})
            self.metrics.errors.labels(kind="unreadable").inc()
            self.events.warning(view.header(raw), "UnreadableSource", str(exc))
            return None
        self.store.remember_source(source, state.version)
        return source

    # -- carrying out ------------------------------------------------------------------------------

    def _record(self, plan: Plan, inputs: _Inputs, group: set[ObjectRef], outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            self._write_through(outcome)
            self._log(outcome)
        self._record_claims(plan, group, outcomes)
        self._report(plan, inputs, group, outcomes)

    def _record_claims(self, plan: Plan, group: set[ObjectRef], outcomes: list[Outcome]) -> None:
        # Claims are the names a source wants but does not hold: conflicts and failed creates. A
        # copy it holds is found through the copy cache; remembering every wanted name would cost
        # more memory than all the copies.
        claims: dict[ObjectRef, set[ObjectRef]] = {ref: set() for ref in group}
        for outcome in outcomes:
            action = outcome.action
            if not outcome.ok and action.kind is ActionKind.CREATE and action.source in claims:
                claims[action.source].add(action.ref)
        for conflict in plan.conflicts:
            for source in conflict.sources:
                if source in claims and source != conflict.winner:  # a winner holds it: no claim
                    claims[source].add(conflict.ref)
        self.store.record_claims({s: frozenset(refs) for s, refs in claims.items()})

    def _report(self, plan: Plan, inputs: _Inputs, group: set[ObjectRef], outcomes: list[Outcome]) -> None:
        """Events (and log lines) for the plan's findings, failed writes and replaced copies."""
        gathered: dict[tuple[ObjectRef, str], list[str]] = {}
        for finding in diagnostics.diagnose(plan):
            if finding.reason == "CopyLeftAlone":
                continue  # reported on the copy itself (below)
            for subject in finding.subjects:
                if subject in group or subject in inputs.targets:
                    gathered.setdefault((subject, finding.reason), []).append(finding.message)
        # One Event per source and reason, however many namespaces: a source that conflicts in every
        # namespace must not write a thousand Events (nor keep a worker busy writing them).
        for (subject, reason), messages in gathered.items():
            self._event(inputs, subject, reason, _summarised(messages))
        self._report_left_alone(plan, inputs, group)
        for outcome in outcomes:
            if not outcome.ok:
                kind = "forbidden" if outcome.forbidden else "rejected" if outcome.rejected else "write"
                self.metrics.errors.labels(kind=kind).inc()
                if not outcome.retriable:
                    reason = _FAILURE_REASONS[kind]
                    self._event(inputs, outcome.action.source, reason, outcome.message)
            elif outcome.action.kind is ActionKind.REPLACE:
                self._event(
                    inputs,
                    outcome.action.source,
                    "CopyReplaced",
                    f"{outcome.action.ref}: {outcome.action.reason}",
                    warning=False,
                )

    def _report_left_alone(self, plan: Plan, inputs: _Inputs, group: set[ObjectRef]) -> None:
        """Copies the policy leaves alone: logged when first seen, an Event on each copy, and counted."""
        found: dict[ObjectRef, set[ObjectRef]] = {ref: set() for ref in group}
        for left in plan.left_alone:
            if left.source not in found:
                continue
            found[left.source].add(left.ref)
            if left.ref not in self._left_alone.get(left.source, frozenset()):
                log.warning("%s", left, extra={"copy": str(left.ref), "source": str(left.source)})
            copy = inputs.existing.get(left.ref)
            if copy is not None:
                self.events.warning(copy, "CopyLeftAlone", f"copy of {left.source} left alone: {left.reason}")
        for source, refs in found.items():
            if refs:
                self._left_alone[source] = frozenset(refs)
            else:
                self._left_alone.pop(source, None)

    def _write_through(self, outcome: Outcome) -> None:
        """Record a write at once, so its echo from the watch is recognised and not planned again."""
        action = outcome.action
        if not outcome.ok:
            return
        if action.desired is not None and action.desired.pulled:
            self.store.forget_target(action.ref)  # its echo is read again, at the new version
            return
        replaced = action.kind in {ActionKind.DELETE, ActionKind.REPLACE} and action.observed is not None
        self.store.record_write(
            action.ref,
            stored=outcome.stored,
            replaced_uid=action.observed.uid if replaced and action.observed is not None else None,
        )

    def _log(self, outcome: Outcome) -> None:
        action = outcome.action
        fields = {
            "action": action.kind.value,
            "copy": str(action.ref),
            "source": str(action.source),
            "reason": action.reason,
        }
        if outcome.ok:
            # One line per copy at DEBUG (a source update in 1,000 namespaces is 1,000 writes); the
            # reconcile's summary line is at INFO. Replacing an immutable copy is worth a warning.
            level = logging.WARNING if action.kind is ActionKind.REPLACE else logging.DEBUG
            log.log(level, "%s %s", action.kind.value, action.ref, extra=fields)
        else:
            log.error("%s", outcome.message, extra={**fields, "status": outcome.status})

    def _event(
        self, inputs: _Inputs, ref: ObjectRef, reason: str, message: str, *, warning: bool = True
    ) -> None:
        source = inputs.sources.get(ref) or inputs.targets.get(ref)
        if source is None:
            return
        if warning:
            if self.events.warning(source, reason, message):
                log.warning("%s: %s", ref, message[:2000], extra={"source": str(ref), "event": reason})
        else:
            self.events.normal(source, reason, message)

    # -- one worker per source at a time -----------------------------------------------------------

    def _claim(self, refs: set[ObjectRef]) -> bool:
        with self._busy_lock:
            if self._busy & refs:
                return False
            self._busy |= refs
            return True

    def _release(self, refs: set[ObjectRef]) -> None:
        with self._busy_lock:
            self._busy -= refs


def _summarised(messages: list[str], shown: int = 3) -> str:
    """One Event's message for several findings of one kind: the first few, and how many more."""
    if len(messages) == 1:
        return messages[0]
    more = f" (and {len(messages) - shown} more; the log has each)" if len(messages) > shown else ""
    return f"{len(messages)} findings: " + "; ".join(messages[:shown]) + more


class _BusyError(Exception):
    """A competing source is being reconciled by another worker."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtraResult:
    """What an extra planner (other clusters) did."""

    retry: bool = False
    failures: int = 0
    writes: int = 0


class ExtraPlanner(Protocol):
    """Copies beyond this cluster's namespaces (other clusters' contexts); see ``contexts``."""

    def reconcile(
        self, sources: dict[ObjectRef, ConfigObject], rules: list[Rule], group: set[ObjectRef]
    ) -> ExtraResult:
        """Bring the extra copies of ``group`` in line; ``sources`` holds the live ones."""
