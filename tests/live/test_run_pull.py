"""cfgsync's own pull vocabulary under ``cfgsync run`` and ``cfgsync apply``, end to end.

A target asks with ``cfgsync.io/copy-from``; the source allows with ``cfgsync.io/allow-pull-namespaces``
or ``-selector``. The target keeps its name, uid, labels and annotations; cfgsync writes only its data
and ``cfgsync.io/copied-from``, never creates nor deletes it, and tells a refused target why with a
``PullRefused`` Event on it.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from kubernetes import client

from controlplane import ControlPlane
from live.conftest import NamespaceFactory
from live.controller import running
from live.helpers import cfgsync, cm_data, configmap, read_cm, wait_for

pytestmark = pytest.mark.timeout(240)

BASE = ("--no-leader-elect", "--log-format", "json")
COPY_FROM = "cfgsync.io/copy-from"
ALLOW = "cfgsync.io/allow-pull-namespaces"
ALLOW_SELECTOR = "cfgsync.io/allow-pull-namespace-selector"
COPIED_FROM = "cfgsync.io/copied-from"


def cluster() -> tuple[str, str]:
    return ("--cluster-name", f"test-{secrets.token_hex(3)}")


def refusals(core: Any, namespace: str, name: str) -> list[str]:
    """The PullRefused Events on the object ``namespace/name``."""
    return [
        e.message
        for e in core.list_namespaced_event(namespace).items
        if e.reason == "PullRefused" and e.involved_object.name == name
    ]


def test_pull_with_and_without_permission_and_every_change(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    platform = make_namespace("platform")
    team = make_namespace("team", {"pulls": "no"})
    other = make_namespace("other")
    core.create_namespaced_config_map(
        platform, configmap("settings", {"level": "info"}, annotations={ALLOW: team})
    )
    core.create_namespaced_config_map(
        platform, configmap("second", {"from": "second"}, annotations={ALLOW_SELECTOR: "pulls=yes"})
    )
    app = core.create_namespaced_config_map(
        team,
        configmap(
            "app", {"mine": "old"}, labels={"app": "shop"}, annotations={COPY_FROM: f"{platform}/settings"}
        ),
    )
    stranger = core.create_namespaced_config_map(
        other, configmap("app", {"mine": "kept"}, annotations={COPY_FROM: f"{platform}/settings"})
    )

    with running(*BASE, *cluster(), kubeconfig=control_plane.kubeconfig):
        # allowed: the data arrives, in place; the target's own metadata stays
        wait_for(lambda: cm_data(core, team, "app") == {"level": "info"}, what="pulled data")
        pulled = read_cm(core, team, "app")
        assert pulled.metadata.uid == app.metadata.uid
        assert pulled.metadata.labels == {"app": "shop"}
        assert pulled.metadata.annotations[COPY_FROM] == f"{platform}/settings"
        pointer = json.loads(pulled.metadata.annotations[COPIED_FROM])
        assert (pointer["namespace"], pointer["name"]) == (platform, "settings")
        assert not any(k.startswith("kubed.appscode.com/") for k in pulled.metadata.labels)  # no push copy
        # not allowed: nothing written, and the target is told why
        events = wait_for(lambda: refusals(core, other, "app"), what="a PullRefused Event")
        assert f"does not allow {other}" in events[0]
        assert read_cm(core, other, "app").metadata.resource_version == stranger.metadata.resource_version

        # the source changes: the target follows
        core.patch_namespaced_config_map("settings", platform, {"data": {"level": "debug"}})
        wait_for(lambda: cm_data(core, team, "app") == {"level": "debug"}, what="the edit flows")
        # an edit of the target's data by hand is taken back
        core.patch_namespaced_config_map("app", team, {"data": {"level": "hacked"}})
        wait_for(lambda: cm_data(core, team, "app") == {"level": "debug"}, what="the hand edit reverted")

        # the allow-list grows: the refused target gets the data
        core.patch_namespaced_config_map(
            "settings", platform, {"metadata": {"annotations": {ALLOW: f"{team},{other}"}}}
        )
        wait_for(lambda: cm_data(core, other, "app") == {"level": "debug"}, what="allowed after all")

        # the request changes to another source, allowed by a selector the namespace comes to match
        core.patch_namespaced_config_map(
            "app", team, {"metadata": {"annotations": {COPY_FROM: f"{platform}/second"}}}
        )
        wait_for(lambda: refusals(core, team, "app"), what="refused by the selector")
        assert cm_data(core, team, "app") == {"level": "debug"}  # left as it was
        core.patch_namespace(team, {"metadata": {"labels": {"pulls": "yes"}}})
        wait_for(lambda: cm_data(core, team, "app") == {"from": "second"}, what="the selector now matches")

        # the request goes: the target is cfgsync's no longer
        core.patch_namespaced_config_map("app", team, {"metadata": {"annotations": {COPY_FROM: None}}})
        wait_for(
            lambda: COPY_FROM not in (read_cm(core, team, "app").metadata.annotations or {}), what="gone"
        )
        core.patch_namespaced_config_map("second", platform, {"data": {"from": "later"}})
        core.patch_namespaced_config_map("settings", platform, {"data": {"level": "last"}})
        wait_for(lambda: cm_data(core, other, "app") == {"level": "last"}, what="the other target follows")
        assert cm_data(core, team, "app") == {"from": "second"}  # no longer followed

        # the source goes: the target keeps its data and is not deleted
        core.delete_namespaced_config_map("settings", platform)
        wait_for(lambda: any("does not exist" in m for m in refusals(core, other, "app")), what="told")
        assert cm_data(core, other, "app") == {"level": "last"}
        assert read_cm(core, other, "app").metadata.uid == stranger.metadata.uid

        # a target deleted by its owner is not made again
        core.delete_namespaced_config_map("app", other)
        core.create_namespaced_config_map(
            platform, configmap("settings", {"level": "back"}, annotations={ALLOW: other})
        )
        wait_for(lambda: read_cm(core, platform, "settings") is not None, what="source back")
        assert read_cm(core, other, "app") is None


def test_system_namespaces_and_protected_sources_are_refused(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    platform = make_namespace("platform")
    name = f"pull-{secrets.token_hex(3)}"
    core.create_namespaced_config_map(platform, configmap("settings", {"a": "b"}, annotations={ALLOW: "*"}))
    core.create_namespaced_config_map(
        "kube-system", configmap(name, {"mine": "kept"}, annotations={COPY_FROM: f"{platform}/settings"})
    )
    try:
        with running(*BASE, *cluster(), kubeconfig=control_plane.kubeconfig):
            events = wait_for(lambda: refusals(core, "kube-system", name), what="refused in kube-system")
            assert "system-namespaces" in events[0]
            assert cm_data(core, "kube-system", name) == {"mine": "kept"}
    finally:
        core.delete_namespaced_config_map(name, "kube-system")


def test_apply_previews_and_writes_pulls(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    platform = make_namespace("platform")
    team = make_namespace("team")
    core.create_namespaced_config_map(
        platform, configmap("settings", {"level": "info"}, annotations={ALLOW: team})
    )
    target = core.create_namespaced_config_map(
        team, configmap("app", {}, annotations={COPY_FROM: f"{platform}/settings"})
    )
    name = ("--cluster-name", "pull-apply")

    preview = cfgsync("apply", "--dry-run", *name, kubeconfig=control_plane.kubeconfig)
    assert preview.returncode == 0, preview.stderr
    assert f"update ConfigMap {team}/app" in preview.stdout
    assert cm_data(core, team, "app") == {}

    applied = cfgsync("apply", *name, kubeconfig=control_plane.kubeconfig)
    assert applied.returncode == 0, applied.stderr
    after = read_cm(core, team, "app")
    assert after.data == {"level": "info"}
    assert after.metadata.uid == target.metadata.uid
    managers = {m.manager: m for m in after.metadata.managed_fields}
    owned = json.dumps(managers["cfgsync"].fields_v1)
    assert COPIED_FROM in owned
    assert COPY_FROM not in owned  # cfgsync never owns the request


def test_a_target_of_another_kind_or_type_is_refused(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory
) -> None:
    platform = make_namespace("platform")
    team = make_namespace("team")
    core.create_namespaced_secret(
        platform,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="tls", annotations={ALLOW: team}),
            type="kubernetes.io/tls",
            data={"tls.crt": "Y2VydA==", "tls.key": "a2V5"},
        ),
    )
    core.create_namespaced_secret(
        team,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="tls", annotations={COPY_FROM: f"{platform}/tls"}),
            type="Opaque",
        ),
    )
    result = cfgsync("apply", "--dry-run", "--cluster-name", "pull-type", kubeconfig=control_plane.kubeconfig)
    assert result.returncode == 0, result.stderr
    assert (
        f"Secret {team}/tls is of type Opaque and Secret {platform}/tls of type kubernetes.io/tls"
        in result.stderr
    )
