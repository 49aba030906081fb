"""``cfgsync apply`` (one-shot) and ``cfgsync run`` (the controller): copies kept in a live cluster.

I/O: reads the environment (``KUBECONFIG``, the in-cluster service variables), talks to API servers,
writes stdout and stderr, handles signals.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import sys
import threading
from typing import TYPE_CHECKING, Final

import click

import cfgsync
from cfgsync import errors
from cfgsync._core.model import Action, ActionKind
from cfgsync._core.policy import Policy
from cfgsync.cli._common import (
    EXIT_ERROR,
    EXIT_HELD,
    Reading,
    delete_guard,
    fail,
    plugins,
    settings,
    warn,
    with_common,
    with_delete_guard,
    with_policy,
    with_vocabularies,
)

if TYPE_CHECKING:
    from cfgsync._adapters.kube import connection

# The Kubernetes client is imported only by the commands that talk to a cluster: importing it costs
# about 150 ms and 25 MiB, which render, explain and the GitOps front ends should not pay.

IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"
"""Set in every pod: without a kubeconfig, cfgsync then uses the pod's service account."""


def connection_settings(kubeconfig: str | None, context: str | None) -> connection.ConnectionSettings:
    """Where credentials come from, as kubectl finds them.

    ``--kubeconfig``, else ``KUBECONFIG``, else the pod's service account, else ``~/.kube/config``.
    """
    from cfgsync._adapters.kube import connection

    if kubeconfig:
        files: tuple[str, ...] = (kubeconfig,)
    elif os.environ.get("KUBECONFIG"):
        files = tuple(p for p in os.environ["KUBECONFIG"].split(os.pathsep) if p)
    elif os.environ.get(IN_CLUSTER_ENV) and context is None:
        files = ()
    else:
        files = (os.path.expanduser("~/.kube/config"),)
    return connection.ConnectionSettings(kubeconfig=files, context=context)


KUBECONFIG_OPTION = click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    default=None,
    help="Kubeconfig file (default: $KUBECONFIG, else the pod's service account, else ~/.kube/config).",
)
CONTEXT_OPTION = click.option(
    "--context", default=None, help="Kubeconfig context (default: the current one)."
)

_DONE = {
    ActionKind.CREATE: "created",
    ActionKind.UPDATE: "updated",
    ActionKind.REPLACE: "replaced",
    ActionKind.DELETE: "deleted",
}


@click.command(name="apply")
@KUBECONFIG_OPTION
@CONTEXT_OPTION
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option(
    "--diff", "show_diff", is_flag=True, help="Print a unified diff per object (Secret values masked)."
)
@click.option(
    "--strict", is_flag=True, help="Exit non-zero (3) on any warning (conflict, veto); write nothing."
)
@with_delete_guard
@with_common
@with_policy
@with_vocabularies
def apply_command(
    kubeconfig: str | None,
    context: str | None,
    dry_run: bool,
    show_diff: bool,
    strict: bool,
    allow_mass_delete: bool,
    mass_delete_count: int,
    mass_delete_fraction: float,
    cluster_name: str,
    source_namespace: str | None,
    exclude: tuple[str, ...],
    policy: Policy,
    reading: Reading,
) -> None:
    """Read the cluster, plan the copies, and make the cluster match, once.

    Creates and updates copies (server-side apply, field manager cfgsync) and deletes copies no rule
    selects any more. Objects cfgsync does not manage are never touched, nor are copies in namespaces the
    policy leaves alone (they are listed as "left alone"). Deletes beyond the mass-delete
    guard's limits are held (exit 4) unless --allow-mass-delete is given. Exits non-zero if any write
    failed, after attempting all of them.
    """
    from cfgsync._adapters.kube import diff

    where = connection_settings(kubeconfig, context)
    try:
        report = cfgsync.apply_cluster(
            kubeconfig=where.kubeconfig,
            context=where.context,
            settings=settings(cluster_name, source_namespace, exclude, policy, reading),
            guard=delete_guard(allow_mass_delete, mass_delete_count, mass_delete_fraction),
            dry_run=dry_run or strict,
            plugins=plugins(),
        )
    except errors.CfgsyncError as exc:
        fail(exc)
    for problem in report.problems:
        click.echo(f"error: {problem}", err=True)
    warn(report.plan, strict=strict)
    for action in report.allowed:
        if dry_run:
            click.echo(diff.describe(action))
        if show_diff:
            click.echo(diff.unified_diff(action), nl=False)
    for action in report.held:
        click.echo(f"held: {diff.describe(action)}")
    if report.held:
        click.echo(f"warning: {report.held_summary}", err=True)
    if dry_run:
        click.echo(f"dry run: {_summary(report.plan.changes, held=len(report.held))}; nothing written")
        sys.exit(EXIT_ERROR if report.problems else EXIT_HELD if report.held else 0)
    for action in report.written:
        click.echo(f"{_DONE[action.kind]} {action.ref}")
    for _, message in report.failures:
        click.echo(f"error: {message}", err=True)
    summary = _summary(report.written, done=True, held=len(report.held))
    click.echo(f"{summary}, {len(report.failures)} failed", err=True)
    if report.failures or report.problems:
        sys.exit(EXIT_ERROR)
    if report.held:
        sys.exit(EXIT_HELD)


def _summary(actions: tuple[Action, ...], *, done: bool = False, held: int = 0) -> str:
    counts = dict.fromkeys(_DONE, 0)
    for action in actions:
        counts[action.kind] += 1
    if done:
        line = ", ".join(f"{n} {_DONE[kind]}" for kind, n in counts.items())
    else:
        line = ", ".join(f"{n} to {kind.value}" for kind, n in counts.items())
    return f"{line} ({held} deletes held)" if held else line


_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")
_UNITS: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration (``10m``, ``1m30s``, ``45s``, ``0``) or a plain number of seconds.

    Raises :class:`click.BadParameter` naming the accepted forms.
    """
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise click.BadParameter(
            f"{text!r} is not a duration; write e.g. 10m, 1m30s, 45s, or 0 to turn it off"
        )
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """Click callback: the option's value as seconds."""
    del ctx, param
    return parse_duration(value)


def _pod_namespace() -> str:
    """The namespace for the Lease: ``POD_NAMESPACE``, else the service account's, else kube-system."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE, encoding="utf-8") as handle:
            return handle.read().strip() or "kube-system"
    except OSError:
        return "kube-system"


SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
"""Where a pod finds its own namespace."""


@click.command(name="run")
@KUBECONFIG_OPTION
@CONTEXT_OPTION
@click.option(
    "--cluster-name", default="", help="Value of the origin.cluster label (kubed's --cluster-name)."
)
@click.option(
    "--config-source-namespace",
    "--source-namespace",
    "source_namespace",
    default=None,
    help="Only sources in this namespace count (kubed's flag; --source-namespace is the same).",
)
@click.option(
    "--exclude-namespace", "exclude", multiple=True, help="Never copy into these namespaces (name or glob)."
)
@click.option(
    "--resync-period",
    callback=_duration,
    default="10m",
    show_default=True,
    help="Re-plan every source this often; 0 turns periodic resync off.",
)
@click.option(
    "--source-gone-grace",
    callback=_duration,
    default="30s",
    show_default=True,
    help="How long the copies of a source that vanished wait before they are deleted (it may come back).",
)
@click.option(
    "--contexts-kubeconfig",
    "--kubeconfig-file",
    "contexts_kubeconfig",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Kubeconfig naming other clusters' contexts for kubed.appscode.com/sync-contexts "
    "(kubed's --kubeconfig-file).",
)
@click.option(
    "--health-address",
    default="0.0.0.0",  # noqa: S104 -- probes and scrapes come from outside the pod
    show_default=True,
    help="Address of /healthz, /readyz, /metrics.",
)
@click.option(
    "--health-port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port of /healthz, /readyz, /metrics (0: any free port).",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Sources reconciled at once."
)
@click.option(
    "--write-concurrency",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Write requests in flight at once.",
)
@click.option(
    "--leader-elect/--no-leader-elect", default=True, show_default=True, help="Hold a Lease before writing."
)
@click.option("--leader-elect-namespace", default=None, help="Namespace of the Lease (default: the pod's).")
@click.option("--leader-elect-name", default="cfgsync", show_default=True, help="Name of the Lease.")
@click.option(
    "--lease-duration",
    callback=_duration,
    default="15",
    show_default=True,
    help="Seconds others wait after the lease last changed before they take it.",
)
@click.option(
    "--renew-deadline",
    callback=_duration,
    default="10",
    show_default=True,
    help="Seconds after its last successful renewal that the leader still writes.",
)
@click.option(
    "--retry-period",
    callback=_duration,
    default="2",
    show_default=True,
    help="Seconds between election attempts; each lease request times out within it.",
)
@click.option("--log-format", type=click.Choice(["json", "text"]), default="json", show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
@with_delete_guard
@with_policy
@with_vocabularies
def run_command(
    kubeconfig: str | None,
    context: str | None,
    cluster_name: str,
    source_namespace: str | None,
    exclude: tuple[str, ...],
    resync_period: float,
    source_gone_grace: float,
    contexts_kubeconfig: str | None,
    health_address: str,
    health_port: int,
    workers: int,
    write_concurrency: int,
    leader_elect: bool,
    leader_elect_namespace: str | None,
    leader_elect_name: str,
    lease_duration: float,
    renew_deadline: float,
    retry_period: float,
    log_format: str,
    log_level: str,
    allow_mass_delete: bool,
    mass_delete_count: int,
    mass_delete_fraction: float,
    policy: Policy,
    reading: Reading,
) -> None:
    """Run the controller: watch the cluster and keep every copy in line until stopped (SIGTERM)."""
    from cfgsync._adapters.kube import connection, lease
    from cfgsync._controller import contexts, controller, logs

    identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{secrets.token_hex(3)}"
    election = None
    if leader_elect:
        election = lease.ElectionSettings(
            namespace=leader_elect_namespace or _pod_namespace(),
            name=leader_elect_name,
            identity=identity,
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
        )
        try:
            election.check()
        except errors.CfgsyncError as exc:
            raise click.UsageError(str(exc)) from exc
    stopping: list[controller.Controller] = []
    stop_early = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        del signum, frame
        stop_early.set()
        for instance in stopping:
            instance.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    logs.configure(level=log_level, json_format=log_format == "json")
    where = connection_settings(kubeconfig, context)
    plan_settings = settings(cluster_name, source_namespace, exclude, policy, reading)
    hooks = plugins()
    try:
        kube = connection.connect(where, pool_size=write_concurrency + 8, identity=identity)
        # The lease has a connection of its own: a renewal never waits behind queued writes.
        lease_kube = connection.connect(where, pool_size=2, identity=identity) if election else None
        others = (
            contexts.ContextPlanner.from_kubeconfig(
                contexts_kubeconfig, kube, plan_settings, hooks, identity=identity
            )
            if contexts_kubeconfig is not None
            else None
        )
        instance = controller.Controller(
            kube=kube,
            lease_kube=lease_kube,
            contexts=others,
            hooks=hooks,
            settings=controller.ControllerSettings(
                plan=plan_settings,
                resync_period=resync_period,
                gone_grace=source_gone_grace,
                workers=workers,
                write_concurrency=write_concurrency,
                health_address=health_address,
                health_port=health_port,
                election=election,
                delete_guard=delete_guard(allow_mass_delete, mass_delete_count, mass_delete_fraction),
                identity=identity,
            ),
        )
    except errors.CfgsyncError as exc:
        fail(exc)
    stopping.append(instance)
    if stop_early.is_set():
        instance.stop()
    sys.exit(instance.run())
