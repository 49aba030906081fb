"""The ``cfgsync`` command line: the only module that reads argv and the environment.

I/O: reads files and stdin, writes stdout, stderr and output directories.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, NoReturn, ParamSpec, TypeVar

import click

import cfgsync
from cfgsync import errors
from cfgsync._adapters import output, tree
from cfgsync._core import explain, manifests, planner
from cfgsync._core.model import Plan

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

EXIT_ERROR = 1
"""Invalid input or a failed operation; nothing was written."""
EXIT_STRICT = 3
"""``--strict`` and there were warnings (conflicts, vetoes); nothing was written."""
PLUGINS_ENV = "CFGSYNC_PLUGINS"
"""Comma-separated entry-point names: only these installed plugins load (the built-ins always do)."""


def _fail(exc: errors.CfgsyncError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_ERROR)


def _plugins() -> cfgsync.PluginHooks:
    only = os.environ.get(PLUGINS_ENV)
    names = None if only is None else {n.strip() for n in only.split(",") if n.strip()}
    return cfgsync.load_plugin_hooks(only=names)


def _settings(
    cluster_name: str, source_namespace: str | None, exclude: tuple[str, ...]
) -> planner.PlanSettings:
    return planner.PlanSettings(
        cluster_name=cluster_name, source_namespace=source_namespace, excluded_namespaces=exclude
    )


def _warn(plan: Plan, *, strict: bool) -> None:
    lines = [f"warning: conflict: {c.reason}" for c in plan.conflicts]
    lines += [
        f"warning: vetoed: {v.ref} (copy of {v.source}) by plugin {v.plugin}: {v.reason}" for v in plan.vetoes
    ]
    lines += [f"warning: {w}" for w in plan.warnings]
    for line in lines:
        click.echo(line, err=True)
    if strict and lines:
        click.echo(f"error: {len(lines)} warning(s) and --strict: nothing written", err=True)
        sys.exit(EXIT_STRICT)


def _progress(items: list[T], label: str) -> Iterator[T]:
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


common_options = [
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


def _with_common(func: Callable[P, R]) -> Callable[P, R]:
    for option in reversed(common_options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(cfgsync.__version__, prog_name="cfgsync")
def main() -> None:
    """Keep ConfigMaps and Secrets copied across namespaces: a drop-in successor to kubed."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "-o", "--output-dir", type=click.Path(path_type=Path), help="Write one file per copy into this directory."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Output format on stdout.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit non-zero (3) on any warning (conflict, veto, SyncRule without source).",
)
@_with_common
def render(
    paths: tuple[str, ...],
    output_dir: Path | None,
    fmt: str,
    strict: bool,
    cluster_name: str,
    source_namespace: str | None,
    exclude: tuple[str, ...],
) -> None:
    """Print the copies that should exist, computed from manifests (no cluster needed).

    PATHS are YAML files, directories (read recursively) or - for stdin.
    """
    try:
        found = cfgsync.load_manifests(paths, stdin=sys.stdin)
        plan = cfgsync.plan_inventory(
            found, settings=_settings(cluster_name, source_namespace, exclude), plugins=_plugins()
        )
        cfgsync.check_plan(plan)
        _warn(plan, strict=strict)
        copies = _progress(list(plan.copies), "rendered")
        if output_dir is not None:
            files = (
                (
                    tree.copy_path(c.ref.namespace, c.ref.kind, c.ref.name),
                    output.dump_yaml(manifests.to_manifest(c)),
                )
                for c in copies
            )
            result = tree.write_tree(output_dir, files)
            counts = f"{result.written} written, {result.unchanged} unchanged, {result.removed} removed"
            click.echo(f"{output_dir}: {counts}", err=True)
            return
        stream: IO[str] = sys.stdout
        docs = (manifests.to_manifest(c) for c in copies)
        if fmt == "json":
            output.write_json_list(docs, stream)
        else:
            output.write_yaml_stream(docs, stream)
    except errors.CfgsyncError as exc:
        _fail(exc)


@main.command(name="explain")
@click.argument("paths", nargs=-1, required=True)
@click.option("-n", "--namespace", required=True, help="The namespace to explain.")
@_with_common
def explain_command(
    paths: tuple[str, ...],
    namespace: str,
    cluster_name: str,
    source_namespace: str | None,
    exclude: tuple[str, ...],
) -> None:
    """Say, for every source, whether it lands in NAMESPACE and why."""
    try:
        found = cfgsync.load_manifests(paths, stdin=sys.stdin)
        settings = _settings(cluster_name, source_namespace, exclude)
        plan = cfgsync.plan_inventory(found, settings=settings, plugins=_plugins())
        results = explain.explain_namespace(
            namespace, found.objects, found.namespaces, plan, rules=found.rules, settings=settings
        )
    except errors.CfgsyncError as exc:
        _fail(exc)
    for item in results:
        verdict = "lands in" if item.lands else "does not land in"
        by = f" ({item.rule})" if item.rule else ""
        click.echo(f"{item.source} {verdict} {namespace}{by}")
        for reason in item.reasons:
            click.echo(f"  {reason}")
