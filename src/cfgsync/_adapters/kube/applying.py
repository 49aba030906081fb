"""``cfgsync apply`` as a library call: read the cluster, plan, hold mass deletes, write, report.

I/O: reads the cluster and writes the plan's changes (unless it is a dry run). The command line and
the library's :func:`cfgsync.apply_cluster` both call :func:`apply_once`, so there is one sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

from cfgsync._adapters.kube import reading
from cfgsync._adapters.kube.connection import Kube
from cfgsync._adapters.kube.writing import Outcome, Writer
from cfgsync._core import origin, planner
from cfgsync._core.guard import DeleteGuard, GuardVerdict
from cfgsync._core.model import Plan, Problem


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """What one apply found and did."""

    plan: Plan
    """The plan, with every action and finding."""
    verdict: GuardVerdict
    """What the mass-delete guard let through and what it held."""
    problems: tuple[Problem, ...]
    """Objects that could not be read, invalid SyncRules, invalid sources."""
    outcomes: tuple[Outcome, ...]
    """One per write attempted (none on a dry run), in plan order."""


def apply_once(
    kube: Kube,
    *,
    settings: planner.PlanSettings,
    hooks: planner.CopyHooks,
    guard: DeleteGuard,
    dry_run: bool = False,
    workers: int = 16,
) -> Applied:
    """Make the cluster match the plan once; on a dry run, only plan."""
    state = reading.read_cluster(
        kube,
        cluster_name=settings.cluster_name,
        source_namespace=settings.source_namespace,
        policy=settings.policy,
        disabled=settings.disabled_vocabularies,
    )
    plan = planner.plan_copies(
        state.sources,
        state.namespaces,
        state.existing,
        rules=state.rules,
        settings=settings,
        hooks=hooks,
        unreadable=state.unreadable,
    )
    managed = sum(1 for obj in state.existing if origin.owner_of(obj, settings.cluster_name) is not None)
    verdict = guard.check(plan.changes, managed)
    outcomes: list[Outcome] = []
    if not dry_run:
        writer = Writer(kube, workers=workers)
        try:
            outcomes = writer.execute(verdict.allowed)
        finally:
            writer.close()
    return Applied(
        plan=plan,
        verdict=verdict,
        problems=(*state.problems, *plan.problems),
        outcomes=tuple(sorted(outcomes, key=lambda o: o.action.ref.sort_key)),
    )
