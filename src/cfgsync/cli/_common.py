"""What every subcommand shares: settings from options and the environment, warnings, exit codes.

The ``cfgsync.cli`` package is the only place that reads argv and the environment.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

import cfgsync
from cfgsync import errors
from cfgsync._core import diagnostics, guard, patterns, planner, validation, vocabularies
from cfgsync._core import policy as policies
from cfgsync._core.model import Plan

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

EXIT_ERROR = 1
"""Invalid input or a failed operation; nothing was written."""
EXIT_STRICT = 3
"""``--strict`` and there were warnings (conflicts, vetoes); nothing was written."""
EXIT_HELD = 4
"""The mass-delete guard held deletes back; every other change was written."""
PLUGINS_ENV = "CFGSYNC_PLUGINS"
"""Comma-separated entry-point names: only these installed plugins load (the built-ins always do)."""


def fail(exc: errors.CfgsyncError) -> NoReturn:
    """Print the error and exit with :data:`EXIT_ERROR`."""
    click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_ERROR)


def plugins() -> cfgsync.PluginHooks:
    """The plugin manager, limited by ``CFGSYNC_PLUGINS`` when it is set."""
    only = os.environ.get(PLUGINS_ENV)
    names = None if only is None else {n.strip() for n in only.split(",") if n.strip()}
    return cfgsync.load_plugin_hooks(only=names)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """How annotations are read: the vocabularies switched off, and replicator-style exclusions."""

    disabled: frozenset[str] = frozenset()
    """Vocabularies switched off (``--disable-vocabulary``)."""
    exclude_regexes: tuple[patterns.NamespaceRegex, ...] = ()
    """``--exclude-namespace-regex`` (and replicator's ``--exclude-namespaces``), matched anywhere."""


def settings(
    cluster_name: str,
    source_namespace: str | None,
    exclude: tuple[str, ...],
    policy: policies.Policy = policies.DEFAULT_POLICY,
    reading: Reading = Reading(),
) -> planner.PlanSettings:
    """Planner settings from the common options and the policy options; raises :class:`SettingsError`
    naming an invalid one."""
    plan_settings = planner.PlanSettings(
        cluster_name=cluster_name,
        source_namespace=source_namespace,
        excluded_namespaces=exclude,
        policy=policy,
        excluded_namespace_regexes=reading.exclude_regexes,
        disabled_vocabularies=reading.disabled,
    )
    validation.check_settings(plan_settings)
    return plan_settings


def warn(plan: Plan, *, strict: bool) -> None:
    """Print every warning of the plan to stderr: conflicts, vetoes, copies left alone, the rest.

    With ``strict``, exit :data:`EXIT_STRICT` if there are any (copies left alone do not count: the
    policy leaves them alone on purpose, and only the operator can act on them).
    """
    found = [d for d in diagnostics.diagnose(plan) if d.severity is diagnostics.Severity.WARNING]
    for finding in found:
        click.echo(str(finding), err=True)
    lines = [d for d in found if d.blocks_strict]
    if strict and lines:
        click.echo(f"error: {len(lines)} warning(s) and --strict: nothing written", err=True)
        sys.exit(EXIT_STRICT)


def progress(items: list[T], label: str) -> Iterator[T]:
    """Yield ``items``; on a terminal, show a counter on stderr as they go."""
    if not sys.stderr.isatty():
        yield from items
        return
    total = len(items)
    for index, item in enumerate(items, 1):
        if index % 1000 == 0 or index == total:
            sys.stderr.write(f"\r{label} {index}/{total}")
            sys.stderr.flush()
        yield item
    sys.stderr.write("\n")


COMMON_OPTIONS = [
    click.option(
        "--cluster-name",
        default="",
        show_default=True,
        help="Value of the origin.cluster label (kubed's --cluster-name).",
    ),
    click.option(
        "--source-namespace",
        default=None,
        help="Only sources in this namespace count (kubed's --config-source-namespace).",
    ),
    click.option(
        "--exclude-namespace",
        "exclude",
        multiple=True,
        help="Never copy into these namespaces (name or glob; repeatable).",
    ),
]


POLICY_OPTIONS = [
    click.option(
        "--allow-system-namespaces",
        is_flag=True,
        help="Copy into kube-system, kube-public and kube-node-lease too (kubed's behaviour; off by "
        "default, and copies already there are then left alone and reported).",
    ),
    click.option(
        "--deny-source-type",
        "deny_source_types",
        multiple=True,
        metavar="TYPE",
        help="Secrets of this type are never sources, besides service-account and bootstrap tokens and "
        "Helm releases (repeatable).",
    ),
    click.option(
        "--allow-sources-from",
        "allow_sources_from",
        multiple=True,
        metavar="NAMESPACE",
        help="Only namespaces matching these names or globs (or the selector below) may hold sources "
        "(repeatable; default: any).",
    ),
    click.option(
        "--allow-sources-from-selector",
        default=None,
        metavar="SELECTOR",
        help="Namespaces whose labels match this selector may hold sources too.",
    ),
    click.option(
        "--require-consent",
        is_flag=True,
        help="Consent mode: a namespace receives copies only from the source namespaces its "
        "cfgsync.io/accept-from annotation names.",
    ),
    click.option(
        "--strip-metadata",
        multiple=True,
        metavar="KEY",
        help="Label and annotation keys (or globs) copies never carry, besides Argo CD's, Flux's and "
        "Helm's ownership marks (repeatable).",
    ),
]
"""The operator's policy (docs/security.md), the same options for every command that plans."""

_POLICY_PARAMETERS = (
    "allow_system_namespaces",
    "deny_source_types",
    "allow_sources_from",
    "allow_sources_from_selector",
    "require_consent",
    "strip_metadata",
)


def with_policy(func: Callable[..., R]) -> Callable[..., R]:
    """Add the policy options; the command receives them as one ``policy`` argument.

    An invalid value (a bad selector or glob) is a usage error naming the option.
    """

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> R:
        values = {name: kwargs.pop(name) for name in _POLICY_PARAMETERS}
        try:
            kwargs["policy"] = policies.build_policy(
                allow_system_namespaces=values["allow_system_namespaces"],
                denied_source_types=values["deny_source_types"],
                sources_from=values["allow_sources_from"],
                sources_from_selector=values["allow_sources_from_selector"],
                require_consent=values["require_consent"],
                strip_metadata=values["strip_metadata"],
                where="command line",
            )
        except errors.CfgsyncError as exc:
            fail(exc)
        return func(*args, **kwargs)

    for option in reversed(POLICY_OPTIONS):
        command = option(command)
    return command


VOCABULARY_OPTIONS = [
    click.option(
        "--disable-vocabulary",
        "disable_vocabulary",
        multiple=True,
        metavar="NAME",
        help="Do not read this tool's annotations, nor take over its copies: replicator or reflector "
        "(repeatable; both are read by default).",
    ),
    click.option(
        "--exclude-namespace-regex",
        "--exclude-namespaces",
        "exclude_namespace_regex",
        multiple=True,
        metavar="REGEX",
        help="Never copy into namespaces this regex matches anywhere in the name (replicator's "
        "--exclude-namespaces; comma lists accepted; repeatable).",
    ),
]
"""How annotations are read (docs/annotations.md): the peers' vocabularies and replicator's exclusions."""


def with_vocabularies(func: Callable[..., R]) -> Callable[..., R]:
    """Add the vocabulary options; the command receives them as one ``reading`` argument.

    An unknown vocabulary or a regex RE2 cannot read is an error naming the option."""

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> R:
        disabled, regexes = kwargs.pop("disable_vocabulary"), kwargs.pop("exclude_namespace_regex")
        try:
            kwargs["reading"] = Reading(
                disabled=vocabularies.check_disabled(disabled, where="--disable-vocabulary"),
                exclude_regexes=tuple(
                    entry
                    for value in regexes
                    for entry in patterns.compile_list(
                        value, patterns.Matching.ANYWHERE, where="--exclude-namespace-regex"
                    )
                ),
            )
        except errors.CfgsyncError as exc:
            fail(exc)
        return func(*args, **kwargs)

    for option in reversed(VOCABULARY_OPTIONS):
        command = option(command)
    return command


def with_common(func: Callable[P, R]) -> Callable[P, R]:
    """Add ``--cluster-name``, ``--source-namespace`` and ``--exclude-namespace`` to a command."""
    for option in reversed(COMMON_OPTIONS):
        func = option(func)
    return func


def plan_paths(
    paths: Sequence[str], plan_settings: planner.PlanSettings, *, strict: bool
) -> tuple[cfgsync.Inventory, Plan, cfgsync.PluginHooks]:
    """Read manifests, plan them, fail on invalid rules and print warnings (``render``, ``diff``)."""
    found = cfgsync.load_manifests(paths, stdin=sys.stdin)
    hooks = plugins()
    plan = cfgsync.plan_inventory(found, settings=plan_settings, plugins=hooks)
    cfgsync.check_plan(plan)
    warn(plan, strict=strict)
    return found, plan, hooks


DELETE_GUARD_OPTIONS = [
    click.option(
        guard.ALLOW_FLAG,
        "allow_mass_delete",
        is_flag=True,
        help="Let the mass-delete guard's held deletes through (check the plan first).",
    ),
    click.option(
        "--mass-delete-count",
        type=click.IntRange(min=0),
        default=guard.DEFAULT_COUNT,
        show_default=True,
        help="Deletes at or below this many are never held.",
    ),
    click.option(
        "--mass-delete-fraction",
        type=click.FloatRange(min=0.0, max=1.0),
        default=guard.DEFAULT_FRACTION,
        show_default=True,
        help="Deletes at or below this share of the managed copies are never held.",
    ),
]


def with_delete_guard(func: Callable[P, R]) -> Callable[P, R]:
    """Add the mass-delete guard's options (see :func:`delete_guard`)."""
    for option in reversed(DELETE_GUARD_OPTIONS):
        func = option(func)
    return func


def delete_guard(
    allow_mass_delete: bool, mass_delete_count: int, mass_delete_fraction: float
) -> guard.DeleteGuard:
    """The guard the options describe."""
    return guard.DeleteGuard(
        count=mass_delete_count, fraction=mass_delete_fraction, enabled=not allow_mass_delete
    )
