"""Inter-cluster sync (``kubed.appscode.com/sync-contexts``) between two real control planes."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes import client

from controlplane import ControlPlane
from controlplane.fixtures import unique_namespace_name
from live.conftest import NamespaceFactory
from live.controller import running
from live.helpers import SYNC, cm_data, configmap, read_cm, wait_for

pytestmark = pytest.mark.timeout(240)

SYNC_CONTEXTS = "kubed.appscode.com/sync-contexts"
NOWHERE = (
    "cfgsync.test/nowhere=x"  # a local selector no namespace matches: only the other cluster gets copies
)


@pytest.fixture
def remote(second_control_plane: ControlPlane) -> Iterator[Any]:
    """CoreV1Api of the second cluster."""
    config: Any = kubernetes.config  # untyped
    api = config.new_client_from_config(config_file=str(second_control_plane.kubeconfig))
    try:
        yield client.CoreV1Api(api)
    finally:
        api.close()


def contexts_file(tmp_path: Path, plane: ControlPlane, context: str, namespace: str | None) -> Path:
    """A kubeconfig whose one context ``context`` is the second cluster (with ``namespace``)."""
    config = json.loads(plane.kubeconfig.read_text(encoding="utf-8"))
    entry = config["contexts"][0]
    entry["name"] = context
    if namespace:
        entry["context"]["namespace"] = namespace
    config["current-context"] = context
    path = tmp_path / "contexts.kubeconfig"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def make_remote_namespace(remote: Any, name: str) -> str:
    remote.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def test_copies_go_to_the_contexts_namespace_follow_the_source_and_leave_when_unnamed(  # noqa: PLR0917 -- fixtures
    control_plane: ControlPlane,
    second_control_plane: ControlPlane,
    remote: Any,
    core: Any,
    make_namespace: NamespaceFactory,
    tmp_path: Path,
) -> None:
    target = make_remote_namespace(remote, unique_namespace_name("east-target"))
    src = make_namespace("src")
    kubeconfig = contexts_file(tmp_path, second_control_plane, "east", target)
    cluster = f"test-{secrets.token_hex(3)}"
    annotations = {SYNC: NOWHERE, SYNC_CONTEXTS: "east"}
    core.create_namespaced_config_map(src, configmap("shared", {"v": "1"}, annotations=annotations))

    args = ("--no-leader-elect", "--cluster-name", cluster, "--contexts-kubeconfig", str(kubeconfig))
    with running(*args, kubeconfig=control_plane.kubeconfig):
        wait_for(lambda: cm_data(remote, target, "shared") == {"v": "1"}, what="copy in the other cluster")
        copy = read_cm(remote, target, "shared")
        assert copy.metadata.labels["kubed.appscode.com/origin.cluster"] == cluster
        assert copy.metadata.labels["kubed.appscode.com/origin.namespace"] == src

        core.patch_namespaced_config_map("shared", src, {"data": {"v": "2"}})
        wait_for(
            lambda: cm_data(remote, target, "shared") == {"v": "2"}, what="remote copy follows the source"
        )

        core.patch_namespaced_config_map("shared", src, {"metadata": {"annotations": {SYNC_CONTEXTS: None}}})
        wait_for(lambda: read_cm(remote, target, "shared") is None, what="remote copy removed")


def test_without_a_context_namespace_copies_go_to_the_sources_namespace_never_created(  # noqa: PLR0917 -- fixtures
    control_plane: ControlPlane,
    second_control_plane: ControlPlane,
    remote: Any,
    core: Any,
    make_namespace: NamespaceFactory,
    tmp_path: Path,
) -> None:
    src = make_namespace("src")
    missing = make_namespace("missing")
    kubeconfig = contexts_file(tmp_path, second_control_plane, "west", None)
    annotations = {SYNC: NOWHERE, SYNC_CONTEXTS: "west"}
    core.create_namespaced_config_map(src, configmap("conf", {"v": "1"}, annotations=annotations))
    core.create_namespaced_config_map(missing, configmap("conf", {"v": "1"}, annotations=annotations))
    make_remote_namespace(remote, src)  # the other cluster has the source's namespace, not the other one

    args = ("--no-leader-elect", "--cluster-name", f"test-{secrets.token_hex(3)}")
    with running(*args, "--contexts-kubeconfig", str(kubeconfig), kubeconfig=control_plane.kubeconfig) as ctl:
        wait_for(lambda: cm_data(remote, src, "conf") == {"v": "1"}, what="copy in the same-named namespace")
        wait_for(lambda: f"namespace {missing} does not exist in context west" in ctl.log(), what="warning")
        assert missing not in {ns.metadata.name for ns in remote.list_namespace().items}
