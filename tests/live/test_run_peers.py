"""Clusters synced by mittwald kubernetes-replicator and emberstack kubernetes-reflector, taken over in
place by ``cfgsync run``: same uid, no delete and create, no change of data; then every change followed.

Neither peer can be built here (replicator's module is refused by the Go module proxy this project
builds from, reflector is C#), so each test leaves the cluster exactly as that tool writes it, from
its source (docs/migrating-from-replicator.md, docs/migrating-from-reflector.md):

- replicator (client-go ``Create``/``Update``, no field manager set, so the API server names it after
  the binary's User-Agent, ``kubernetes-replicator``): a push copy has the source's labels, none of its
  annotations, and ``replicated-at`` (RFC 3339), ``replicated-from-version`` (the source's
  resourceVersion) and ``replicated-keys`` (sorted keys, comma-joined); no pointer back. A pulled
  target keeps its own metadata and gets the data and the same three annotations.
- reflector (the .NET client's create and JSON patch): a mirror has the source's data and type only,
  and ``reflects`` (``ns/name``), ``auto-reflects`` (``True``/``False``), ``reflected-version`` and
  ``reflected-at`` (an ISO 8601 instant with seven fractional digits).

cfgsync never reads the field manager names of other tools, so nothing depends on those guesses.
"""

from __future__ import annotations

import functools
import secrets
from typing import Any

import pytest
from kubernetes import client

from controlplane import ControlPlane
from live.conftest import NamespaceFactory
from live.controller import running
from live.helpers import cfgsync, cm_data, configmap, read_cm, wait_for

pytestmark = pytest.mark.timeout(240)

BASE = ("--no-leader-elect", "--log-format", "json", "--source-gone-grace", "2s")  # sources get deleted
R = "replicator.v1.mittwald.de/"
F = "reflector.v1.k8s.emberstack.com/"
REPLICATOR = "kubernetes-replicator"
REFLECTOR = "reflector"
ORIGIN_NAME = "kubed.appscode.com/origin.name"


def cluster() -> tuple[str, str]:
    return ("--cluster-name", f"test-{secrets.token_hex(3)}")


def taken_over(core: Any, namespace: str, name: str) -> bool:
    """True when the object carries cfgsync's origin labels and none of the peers' marks (the takeover
    is an apply, then a patch removing what apply cannot: a reader may see the first alone)."""
    meta = read_cm(core, namespace, name).metadata
    marked = any(k.startswith((R, F)) for k in meta.annotations or {})
    return ORIGIN_NAME in (meta.labels or {}) and not marked


def replicated_by_replicator(source: Any, namespace: str, *, extra: dict[str, str] | None = None) -> Any:
    """A push copy exactly as replicator creates it."""
    data = dict(source.data)
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(
            name=source.metadata.name,
            namespace=namespace,
            labels=dict(source.metadata.labels or {}),
            annotations={
                R + "replicated-at": "2024-05-01T10:00:00Z",
                R + "replicated-from-version": source.metadata.resource_version,
                R + "replicated-keys": ",".join(sorted(data)),
            },
        ),
        data={**data, **(extra or {})},
    )


def mirrored_by_reflector(source: Any, namespace: str, *, auto: bool, name: str | None = None) -> Any:
    """A mirror exactly as reflector writes it (an auto mirror it created, or a manual one it patched)."""
    meta = source.metadata
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(
            name=name or meta.name,
            namespace=namespace,
            annotations={
                F + "reflects": f"{meta.namespace}/{meta.name}",
                F + "auto-reflects": str(auto),
                F + "reflected-version": meta.resource_version,
                F + "reflected-at": "2024-05-01T10:00:00.0000000+00:00",
            },
        ),
        data=dict(source.data),
    )


def test_replicator_cluster_taken_over_then_push_pull_and_deletion_followed(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    stem = f"rp{secrets.token_hex(2)}"
    platform = make_namespace(f"{stem}-platform")
    team_a = make_namespace(f"{stem}-a", {"registry": "on"})
    team_b = make_namespace(f"{stem}-b")
    team_c = make_namespace(f"{stem}-c")
    source = core.create_namespaced_config_map(
        platform,
        configmap(
            "settings",
            {"level": "info"},
            labels={"team": "platform"},
            annotations={R + "replicate-to": f"{stem}-a-.*, {stem}-b-.*"},
        ),
    )
    db = core.create_namespaced_config_map(
        platform,
        configmap(
            "db",
            {"host": "db"},
            annotations={
                R + "replication-allowed": "true",
                R + "replication-allowed-namespaces": f"{stem}-c-.*",
            },
        ),
    )
    copies = {
        ns: core.create_namespaced_config_map(
            ns, replicated_by_replicator(source, ns), field_manager=REPLICATOR
        )
        for ns in (team_a, team_b)
    }
    # replicator merged into an object that was there before: it holds a key of its owner's
    merged = core.create_namespaced_config_map(
        team_c, replicated_by_replicator(source, team_c, extra={"mine": "1"}), field_manager=REPLICATOR
    )
    asking = core.create_namespaced_config_map(
        team_c,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name="database",
                labels={"app": "shop"},
                annotations={
                    R + "replicate-from": f"{platform}/db",
                    R + "replicated-at": "2024-05-01T10:00:00Z",
                    R + "replicated-from-version": db.metadata.resource_version,
                    R + "replicated-keys": "host",
                },
            ),
            data={"host": "db"},
        ),
        field_manager=REPLICATOR,
    )
    name = cluster()

    preview = cfgsync("apply", "--dry-run", *name, kubeconfig=control_plane.kubeconfig)
    assert preview.returncode == 0, preview.stderr
    for ns in (team_a, team_b):
        line = f"update ConfigMap {ns}/settings (copy of ConfigMap {platform}/settings)"
        assert f"{line}: taken over in place from replicator" in preview.stdout
    assert f"create ConfigMap {team_a}/settings" not in preview.stdout

    with running(*BASE, *name, kubeconfig=control_plane.kubeconfig) as ctl:
        for ns, before in copies.items():
            wait_for(functools.partial(taken_over, core, ns, "settings"), what=f"{ns} taken over")
            after = read_cm(core, ns, "settings")
            assert after.metadata.uid == before.metadata.uid  # in place
            assert after.data == {"level": "info"}  # no data flip
            assert after.metadata.labels["team"] == "platform"
            assert not any(k.startswith(R) for k in after.metadata.annotations)  # replicator's marks gone
        # the pulled target is cfgsync's too now, in place; the merged object is nobody's to touch
        wait_for(
            lambda: "cfgsync.io/copied-from" in read_cm(core, team_c, "database").metadata.annotations,
            what="pull",
        )
        assert read_cm(core, team_c, "database").metadata.uid == asking.metadata.uid
        assert read_cm(core, team_c, "settings").metadata.resource_version == merged.metadata.resource_version
        assert ctl.metric("cfgsync_write_calls_total", method="DELETE") == 0

        # push follows edits and a selector; removing replicate-to removes the copies (replicator #241)
        core.patch_namespaced_config_map("settings", platform, {"data": {"level": "debug"}})
        wait_for(lambda: cm_data(core, team_b, "settings") == {"level": "debug"}, what="edit flows")
        core.patch_namespaced_config_map(
            "settings",
            platform,
            {
                "metadata": {
                    "annotations": {R + "replicate-to": None, R + "replicate-to-matching": "registry=on"}
                }
            },
        )
        wait_for(lambda: read_cm(core, team_b, "settings") is None, what="copy gone where no longer wanted")
        assert cm_data(core, team_a, "settings") == {"level": "debug"}
        # pull: the allowance is withdrawn, the target keeps its data and hears of it
        core.patch_namespaced_config_map(
            "db", platform, {"metadata": {"annotations": {R + "replication-allowed-namespaces": "none"}}}
        )
        core.patch_namespaced_config_map("db", platform, {"data": {"host": "db2"}})
        wait_for(
            lambda: [e for e in core.list_namespaced_event(team_c).items if e.reason == "PullRefused"],
            what="PullRefused",
        )
        assert cm_data(core, team_c, "database") == {"host": "db"}
        # the source goes: its copies go; the pulled target stays
        core.delete_namespaced_config_map("settings", platform)
        wait_for(lambda: read_cm(core, team_a, "settings") is None, what="copies gone with the source")
        assert read_cm(core, team_c, "settings") is not None  # the merged object is left alone
        assert read_cm(core, team_c, "database") is not None


def test_reflector_cluster_taken_over_then_auto_and_manual_mirrors_followed(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    stem = f"rf{secrets.token_hex(2)}"
    platform = make_namespace(f"{stem}-platform")
    team_a = make_namespace(f"{stem}-a")
    team_b = make_namespace(f"{stem}-b", {"trust": "yes"})
    outside = make_namespace(f"{stem}-x")
    source = core.create_namespaced_config_map(
        platform,
        configmap(
            "ca",
            {"ca.crt": "one"},
            labels={"grafana_dashboard": "1"},
            annotations={
                F + "reflection-allowed": "true",
                F + "reflection-allowed-namespaces": f"{stem}-[ab]-.*",
                F + "reflection-auto-enabled": "true",
            },
        ),
    )
    auto = {
        ns: core.create_namespaced_config_map(
            ns, mirrored_by_reflector(source, ns, auto=True), field_manager=REFLECTOR
        )
        for ns in (team_a, team_b)
    }
    manual = core.create_namespaced_config_map(
        team_b, mirrored_by_reflector(source, team_b, auto=False, name="my-ca"), field_manager=REFLECTOR
    )
    refused = core.create_namespaced_config_map(
        outside, mirrored_by_reflector(source, outside, auto=False, name="my-ca"), field_manager=REFLECTOR
    )

    with running(*BASE, *cluster(), kubeconfig=control_plane.kubeconfig) as ctl:
        for ns, before in auto.items():
            wait_for(functools.partial(taken_over, core, ns, "ca"), what=f"{ns} taken over")
            after = read_cm(core, ns, "ca")
            assert after.metadata.uid == before.metadata.uid
            assert after.data == {"ca.crt": "one"}
            assert "grafana_dashboard" not in after.metadata.labels  # reflector copies no labels
            assert not any(k.startswith(F) for k in after.metadata.annotations)
        wait_for(
            lambda: "cfgsync.io/copied-from" in read_cm(core, team_b, "my-ca").metadata.annotations,
            what="manual",
        )
        assert read_cm(core, team_b, "my-ca").metadata.uid == manual.metadata.uid
        assert read_cm(core, team_b, "my-ca").metadata.annotations[F + "reflects"] == f"{platform}/ca"
        wait_for(
            lambda: [e for e in core.list_namespaced_event(outside).items if e.reason == "PullRefused"],
            what="the mirror outside the allowed namespaces is told",
        )
        assert read_cm(core, outside, "my-ca").metadata.resource_version == refused.metadata.resource_version
        assert ctl.metric("cfgsync_write_calls_total", method="DELETE") == 0

        # edits flow to both kinds of mirror
        core.patch_namespaced_config_map("ca", platform, {"data": {"ca.crt": "two"}})
        wait_for(lambda: cm_data(core, team_a, "ca") == {"ca.crt": "two"}, what="auto mirror follows")
        wait_for(lambda: cm_data(core, team_b, "my-ca") == {"ca.crt": "two"}, what="manual mirror follows")
        # the auto namespaces narrow to a selector: the auto mirror outside it goes
        core.patch_namespaced_config_map(
            "ca",
            platform,
            {"metadata": {"annotations": {F + "reflection-auto-namespaces-selector": "trust=yes"}}},
        )
        wait_for(lambda: read_cm(core, team_a, "ca") is None, what="auto mirror gone from team-a")
        assert cm_data(core, team_b, "ca") == {"ca.crt": "two"}
        # the source goes: auto mirrors go, the manual mirror keeps its data (as in reflector)
        core.delete_namespaced_config_map("ca", platform)
        wait_for(lambda: read_cm(core, team_b, "ca") is None, what="auto mirror gone with the source")
        assert cm_data(core, team_b, "my-ca") == {"ca.crt": "two"}


def test_a_switched_off_vocabulary_is_neither_read_nor_taken_over(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    stem = f"off{secrets.token_hex(2)}"
    platform = make_namespace(f"{stem}-platform")
    team = make_namespace(f"{stem}-a")
    source = core.create_namespaced_config_map(
        platform, configmap("settings", {"k": "v"}, annotations={R + "replicate-to": f"{stem}-a-.*"})
    )
    core.create_namespaced_config_map(team, replicated_by_replicator(source, team), field_manager=REPLICATOR)
    result = cfgsync(
        "apply",
        "--dry-run",
        "--disable-vocabulary",
        "replicator",
        *cluster(),
        kubeconfig=control_plane.kubeconfig,
    )
    assert result.returncode == 0, result.stderr
    assert f"ConfigMap {team}/settings" not in result.stdout
