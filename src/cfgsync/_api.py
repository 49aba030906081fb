"""The library's entry points: load manifests, plan, render.

Thin glue over the core and the adapters; every mode of the command line uses these functions.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from cfgsync import errors
from cfgsync._adapters import output, yaml_input
from cfgsync._core import inventory, manifests, planner
from cfgsync._core.guard import DeleteGuard
from cfgsync._core.model import Action, ConfigObject, Namespace, Plan, Problem
from cfgsync._core.rules import Rule
from cfgsync._plugins.manager import PluginHooks, load_plugins


def load_manifests(paths: Sequence[str], *, stdin: IO[str] | None = None) -> inventory.Inventory:
    """Read YAML files, directories (recursively) or ``-`` (stdin) into an :class:`Inventory`.

    Raises :class:`~cfgsync.errors.ManifestError` naming ``file:line`` for every invalid document.
    """
    return inventory.build_inventory(yaml_input.read_documents(paths, stdin))


def plan_copies(
    sources: Iterable[ConfigObject],
    namespaces: Iterable[Namespace],
    existing: Iterable[ConfigObject] = (),
    *,
    rules: Iterable[Rule] = (),
    settings: planner.PlanSettings = planner.DEFAULT_SETTINGS,
    plugins: PluginHooks | None = None,
) -> Plan:
    """Plan the copies that should exist; the one planner behind every mode.

    ``plugins`` defaults to the built-in transforms plus every installed plugin.
    """
    return planner.plan_copies(
        sources,
        namespaces,
        existing,
        rules=rules,
        settings=settings,
        hooks=plugins if plugins is not None else load_plugins(),
    )


def plan_inventory(
    found: inventory.Inventory,
    *,
    settings: planner.PlanSettings = planner.DEFAULT_SETTINGS,
    plugins: PluginHooks | None = None,
) -> Plan:
    """Plan from manifests: their ConfigMaps and Secrets are both the sources and what exists."""
    return plan_copies(
        found.objects, found.namespaces, found.objects, rules=found.rules, settings=settings, plugins=plugins
    )


def check_plan(plan: Plan) -> None:
    """Raise :class:`~cfgsync.errors.RuleError` listing every problem of ``plan``, if it has any."""
    if plan.problems:
        raise errors.RuleError("\n".join(str(p) for p in plan.problems))


def copy_manifests(plan: Plan) -> Iterator[manifests.Manifest]:
    """The manifests of every desired copy, in output order."""
    for action in plan.actions:
        if action.desired is not None:
            yield manifests.to_manifest(action.desired)


def render_yaml(plan: Plan, stream: IO[str]) -> int:
    """Write every desired copy of ``plan`` as a YAML stream; return how many."""
    check_plan(plan)
    return output.write_yaml_stream(copy_manifests(plan), stream)


def load_plugin_hooks(only: Collection[str] | None = None, extra: Iterable[object] = ()) -> PluginHooks:
    """The plugin manager: built-in transforms, installed plugins (``only`` limits them), ``extra``."""
    return load_plugins(only=only, extra=extra)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyReport:
    """What :func:`apply_cluster` found and did."""

    plan: Plan
    """The plan, with every action and finding."""
    allowed: tuple[Action, ...]
    """The changes the mass-delete guard let through (written unless it was a dry run)."""
    held: tuple[Action, ...]
    """Deletes the mass-delete guard held back."""
    held_summary: str
    """One line on the held deletes and how to let them through; empty when none was held."""
    written: tuple[Action, ...]
    """Changes written successfully, in plan order."""
    failures: tuple[tuple[Action, str], ...]
    """Changes that failed, each with the reason (never containing Secret values)."""
    problems: tuple[Problem, ...]
    """Objects that could not be read, invalid sources and SyncRules."""


def apply_cluster(
    *,
    kubeconfig: Sequence[str] = (),
    context: str | None = None,
    settings: planner.PlanSettings = planner.DEFAULT_SETTINGS,
    guard: DeleteGuard | None = None,
    dry_run: bool = False,
    plugins: PluginHooks | None = None,
) -> ApplyReport:
    """Make a live cluster's copies match the plan once (what ``cfgsync apply`` does).

    ``kubeconfig`` files are merged as ``KUBECONFIG`` does; none means the pod's service account.
    Raises :class:`~cfgsync.errors.ApplyError` when the cluster cannot be reached or read.
    """
    # The Kubernetes client is imported only here: importing it costs what render should not pay.
    from cfgsync._adapters.kube import applying, connection

    kube = connection.connect(
        connection.ConnectionSettings(kubeconfig=tuple(kubeconfig), context=context), identity="apply"
    )
    try:
        applied = applying.apply_once(
            kube,
            settings=settings,
            hooks=plugins if plugins is not None else load_plugins(),
            guard=guard if guard is not None else DeleteGuard(),
            dry_run=dry_run,
        )
    finally:
        kube.close()
    return ApplyReport(
        plan=applied.plan,
        allowed=applied.verdict.allowed,
        held=applied.verdict.held,
        held_summary=applied.verdict.summary(),
        written=tuple(o.action for o in applied.outcomes if o.ok),
        failures=tuple((o.action, o.message) for o in applied.outcomes if not o.ok),
        problems=applied.problems,
    )
