"""``cfgsync render`` and ``cfgsync explain``: copies computed from manifests, no cluster.

I/O: reads files and stdin, writes stdout, stderr and output directories.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO

import click

import cfgsync
from cfgsync import errors
from cfgsync._adapters import output, tree
from cfgsync._core import explain
from cfgsync._core.policy import Policy
from cfgsync.cli._common import (
    Reading,
    fail,
    plan_paths,
    plugins,
    progress,
    settings,
    with_common,
    with_policy,
    with_vocabularies,
)


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "-o", "--output-dir", type=click.Path(path_type=Path), help="Write one file per copy into this directory."
)
@click.option(
    "--kustomization", is_flag=True, help="With -o: also write a kustomization.yaml listing every file."
)
@click.option(
    "--allow-secrets",
    is_flag=True,
    help="With -o: write Secret copies in plain form (refused by default: the tree is made for git).",
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
@with_common
@with_policy
@with_vocabularies
def render(
    paths: tuple[str, ...],
    output_dir: Path | None,
    kustomization: bool,
    allow_secrets: bool,
    fmt: str,
    strict: bool,
    cluster_name: str,
    source_namespace: str | None,
    exclude: tuple[str, ...],
    policy: Policy,
    reading: Reading,
) -> None:
    """Print the copies that should exist, computed from manifests (no cluster needed).

    PATHS are YAML files, directories (read recursively) or - for stdin.
    """
    try:
        plan_settings = settings(cluster_name, source_namespace, exclude, policy, reading)
        found, plan, hooks = plan_paths(paths, plan_settings, strict=strict)
        copies = progress(list(plan.copies), "rendered")
        if output_dir is not None:
            files = tree_files(copies, found, hooks, allow_secrets=allow_secrets, kustomization=kustomization)
            result = tree.write_tree(output_dir, files)
            if result.recovered:
                click.echo(f"{output_dir}: finished an interrupted render first (from its journal)", err=True)
            counts = f"{result.written} written, {result.unchanged} unchanged, {result.removed} removed"
            click.echo(f"{output_dir}: {counts}", err=True)
            return
        stream: IO[str] = sys.stdout
        if fmt == "json":
            output.write_copies_json(copies, stream)
        else:
            output.write_copies_yaml(copies, stream)
    except errors.CfgsyncError as exc:
        fail(exc)


def tree_files(
    copies: Iterable[cfgsync.Copy],
    found: cfgsync.Inventory,
    hooks: cfgsync.PluginHooks,
    *,
    allow_secrets: bool,
    kustomization: bool,
) -> Iterator[tuple[str, str]]:
    """The files of a rendered tree (``render -o``, ``diff``), with the plugins' replacements."""
    sources = {obj.ref: obj for obj in found.objects}

    def replace(copy: cfgsync.Copy) -> Mapping[str, object] | None:
        return hooks.tree_object(copy, source=sources[copy.source])

    return tree.copy_files(
        copies,
        replace=replace,
        emit=output.CopyEmitter().render,
        allow_secrets=allow_secrets,
        kustomization=kustomization,
    )


@click.command(name="explain")
@click.argument("paths", nargs=-1, required=True)
@click.option("-n", "--namespace", required=True, help="The namespace to explain.")
@with_common
@with_policy
@with_vocabularies
def explain_command(
    paths: tuple[str, ...],
    namespace: str,
    cluster_name: str,
    source_namespace: str | None,
    exclude: tuple[str, ...],
    policy: Policy,
    reading: Reading,
) -> None:
    """Say, for every source, whether it lands in NAMESPACE and why (the policy that stopped it, too)."""
    try:
        found = cfgsync.load_manifests(paths, stdin=sys.stdin)
        plan_settings = settings(cluster_name, source_namespace, exclude, policy, reading)
        plan = cfgsync.plan_inventory(found, settings=plan_settings, plugins=plugins())
        results = explain.explain_namespace(
            namespace, found.objects, found.namespaces, plan, rules=found.rules, settings=plan_settings
        )
    except errors.CfgsyncError as exc:
        fail(exc)
    for item in results:
        verdict = "lands in" if item.lands else "does not land in"
        by = f" ({item.rule})" if item.rule else ""
        click.echo(f"{item.source} {verdict} {namespace}{by}")
        for reason in item.reasons:
            click.echo(f"  {reason}")
