"""GitOps front ends: ``cfgsync argocd`` (config-management plugin), ``cfgsync krm``, ``cfgsync diff``.

I/O: reads files, stdin and ArgoCD's environment; writes stdout and stderr; ``argocd generate`` may
list namespaces on the API server. All three plan with the one planner, like ``render``.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path
from typing import NoReturn

import click

import cfgsync
from cfgsync import errors
from cfgsync._adapters import argocd, krm, output, tree, yaml_input
from cfgsync._core.policy import Policy
from cfgsync.cli import _argocd_env
from cfgsync.cli._common import (
    Reading,
    fail,
    plan_paths,
    plugins,
    settings,
    warn,
    with_common,
    with_policy,
    with_vocabularies,
)
from cfgsync.cli.render import tree_files

EXIT_DIFFERENT = 1
"""``diff``: the rendered tree on disk is not what a render gives now."""
EXIT_DIFF_ERROR = 2
"""``diff``: the comparison could not be made (as ``diff`` itself exits)."""
IMMUTABLE_GA = (1, 21)
"""The Kubernetes release from which ``immutable`` ConfigMaps and Secrets are generally available."""


@click.group()
def argocd_group() -> None:
    """ArgoCD config-management plugin (sidecar) commands; see docs/argocd.md."""


@argocd_group.command(name="discover")
@click.argument("path", default=".", type=click.Path(path_type=Path, file_okay=False, exists=True))
def argocd_discover(path: Path) -> None:
    """Print what makes PATH (default: the current directory) a cfgsync Application, or nothing.

    The plugin matches a directory holding cfgsync.yaml (plugin.yaml's discover rule, which ArgoCD
    applies without running cfgsync); this prints it when it is there. SyncRules in a directory
    without cfgsync.yaml get a hint on stderr: ArgoCD will not use the plugin for it.
    """
    for name in argocd.discover(path):
        click.echo(name)
    rules = argocd.unmarked_rules(path)
    if rules:
        click.echo(
            f"hint: {', '.join(rules)} hold SyncRules but {path / argocd.MARKER} is missing, so ArgoCD "
            f"will not use cfgsync for this directory (not even when the Application names the plugin); "
            f"add {argocd.MARKER} (it may be empty)",
            err=True,
        )


@argocd_group.command(name="generate")
@click.argument("path", default=".", type=click.Path(path_type=Path, file_okay=False, exists=True))
def argocd_generate(path: Path) -> None:
    """Print the Application's objects and their copies as a YAML stream, for ArgoCD to apply.

    Settings come from ArgoCD's environment: plugin parameters (ARGOCD_APP_PARAMETERS) and the
    Application's plugin env (ARGOCD_ENV_CFGSYNC_*). Messages go to stderr, never Secret values.
    """
    try:
        env = _argocd_env.read_environment(os.environ)
        app = argocd.read_app(path, app_namespace=env.settings.app_namespace)
        live: tuple[cfgsync.Namespace, ...] = ()
        if env.settings.namespaces is argocd.NamespaceSource.CLUSTER:
            live = argocd.live_namespaces(env.access)
        hooks = cfgsync.load_plugin_hooks(only=env.plugins)
        generated = argocd.generate(app, env.settings, hooks=hooks, live=live)
    except errors.CfgsyncError as exc:
        fail(exc)
    warn(generated.plan, strict=False)
    immutable = any(copy.immutable is not None for copy in generated.plan.copies)
    if immutable and env.kube_version is not None and env.kube_version < IMMUTABLE_GA:
        click.echo(
            f"warning: copies set immutable, which Kubernetes {'.'.join(map(str, env.kube_version))} "
            f"(KUBE_VERSION) may not support; it is generally available from 1.21",
            err=True,
        )
    output.write_yaml_stream((dict(obj) for obj in generated.objects), sys.stdout)
    copies = len(generated.plan.copies)
    click.echo(f"cfgsync: {len(generated.objects)} objects, {copies} of them copies", err=True)


@click.command(name="krm")
def krm_command() -> None:
    """Run as a KRM function: read a ResourceList on stdin, write it back with the copies added.

    For kustomize (exec transformer) and kpt; settings come from the functionConfig (a cfgsync.io/v1alpha1
    SyncSettings, or a ConfigMap). Problems are reported in the ResourceList's results.
    """
    try:
        result = krm.run_function(yaml_input.read_stdin(sys.stdin), hooks=plugins())
    except errors.CfgsyncError as exc:
        fail(exc)
    sys.stdout.write(result.text)
    for item in result.results:
        click.echo(f"{item.severity}: {item.message}", err=True)
    if result.failed:
        sys.exit(1)


@click.command(name="diff")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--against",
    "against",
    required=True,
    type=click.Path(path_type=Path),
    help="The directory a previous `render -o` wrote (usually committed).",
)
@click.option(
    "--kustomization", is_flag=True, help="The tree has a kustomization.yaml (render --kustomization)."
)
@click.option("--allow-secrets", is_flag=True, help="The tree holds plain Secrets (render --allow-secrets).")
@click.option("-q", "--quiet", is_flag=True, help="Name the files that differ, without their differences.")
@with_common
@with_policy
@with_vocabularies
def diff_command(
    paths: tuple[str, ...],
    against: Path,
    kustomization: bool,
    allow_secrets: bool,
    quiet: bool,
    cluster_name: str,
    source_namespace: str | None,
    exclude: tuple[str, ...],
    policy: Policy,
    reading: Reading,
) -> None:
    """Show what `render -o DIR` would change in DIR; exit 1 when anything differs, 0 when nothing does.

    Pass the same options the tree was rendered with. For CI: fails when the committed output is stale.
    Secret files are named, never shown.
    """
    try:
        plan_settings = settings(cluster_name, source_namespace, exclude, policy, reading)
        found, plan, hooks = plan_paths(paths, plan_settings, strict=False)
        files = tree_files(
            plan.copies, found, hooks, allow_secrets=allow_secrets, kustomization=kustomization
        )
        changes = tree.diff_tree(against, files)
    except errors.CfgsyncError as exc:
        _diff_failed(exc)
    for change in changes:
        _show(change, against, quiet=quiet)
    if changes:
        added = sum(c.old is None for c in changes)
        removed = sum(c.new is None for c in changes)
        changed = len(changes) - added - removed
        click.echo(
            f"{against}: {added} to add, {changed} to change, {removed} to remove; "
            f"run `cfgsync render -o {against}` with the same options to update it",
            err=True,
        )
        sys.exit(EXIT_DIFFERENT)


def _diff_failed(exc: errors.CfgsyncError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_DIFF_ERROR)


def _show(change: tree.FileChange, root: Path, *, quiet: bool) -> None:
    status = "added" if change.old is None else "removed" if change.new is None else "changed"
    if quiet:
        click.echo(f"{status}: {root / change.path}")
        return
    if Path(change.path).name.startswith("secret-"):
        # The difference of a Secret is its values: never print them, only that they differ.
        click.echo(f"{status}: {root / change.path} (a Secret: contents not shown)")
        return
    lines = difflib.unified_diff(
        (change.old or "").splitlines(keepends=True),
        (change.new or "").splitlines(keepends=True),
        fromfile=f"{root / change.path}" if change.old is not None else "/dev/null",
        tofile=f"{root / change.path} (rendered)" if change.new is not None else "/dev/null",
    )
    sys.stdout.writelines(lines)


def register(group: click.Group) -> None:
    """Add ``argocd``, ``krm`` and ``diff`` to the ``cfgsync`` command group."""
    group.add_command(argocd_group, name="argocd")
    group.add_command(krm_command)
    group.add_command(diff_command)
