"""The library's entry points: load manifests, plan, render.

Thin glue over the core and the adapters; every mode of the command line uses these functions.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import IO

from cfgsync import errors
from cfgsync._adapters import output, yaml_input
from cfgsync._core import inventory, manifests, planner
from cfgsync._core.model import ConfigObject, Namespace, Plan
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
