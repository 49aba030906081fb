"""``cfgsync apply``: one read, one plan, one pass of writes, on a real API server."""

from __future__ import annotations

import base64
import functools
import secrets
from typing import Any

import pytest
from kubernetes import client

from controlplane import ControlPlane
from live.conftest import NamespaceFactory
from live.helpers import SYNC, cfgsync, cm_data, configmap, read_cm, read_secret, secret

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def team() -> str:
    """A label key no other test uses, so a selector on it reaches only this test's namespaces."""
    return f"team-{secrets.token_hex(3)}"


def test_apply_creates_updates_and_deletes_copies(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory, team: str
) -> None:
    src = make_namespace("src")
    a = make_namespace("a", {team: "yes"})
    b = make_namespace("b", {team: "yes"})
    other = make_namespace("other", {team: "no"})
    core.create_namespaced_config_map(
        src, configmap("settings", {"mode": "fast"}, annotations={SYNC: f"{team}=yes"})
    )

    first = cfgsync("apply", kubeconfig=control_plane.kubeconfig)

    assert first.returncode == 0, first.stderr
    assert f"created ConfigMap {a}/settings" in first.stdout
    assert cm_data(core, a, "settings") == {"mode": "fast"}
    assert cm_data(core, b, "settings") == {"mode": "fast"}
    assert read_cm(core, other, "settings") is None
    copy = read_cm(core, a, "settings")
    assert copy.metadata.labels["kubed.appscode.com/origin.namespace"] == src
    assert {m.manager for m in copy.metadata.managed_fields} == {"cfgsync"}

    core.patch_namespaced_config_map("settings", src, {"data": {"mode": "slow"}})
    core.patch_namespace(b, {"metadata": {"labels": {team: "no"}}})
    second = cfgsync("apply", kubeconfig=control_plane.kubeconfig)

    assert second.returncode == 0, second.stderr
    assert cm_data(core, a, "settings") == {"mode": "slow"}
    assert read_cm(core, a, "settings").metadata.uid == copy.metadata.uid  # updated in place
    assert read_cm(core, b, "settings") is None  # kubed left this one behind; cfgsync removes it

    again = cfgsync("apply", kubeconfig=control_plane.kubeconfig)
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""  # nothing to do: nothing written

    core.patch_namespaced_config_map("settings", src, {"metadata": {"annotations": {SYNC: None}}})
    last = cfgsync("apply", kubeconfig=control_plane.kubeconfig)

    assert last.returncode == 0, last.stderr
    assert read_cm(core, a, "settings") is None


def test_dry_run_writes_nothing_and_diff_masks_secret_values(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory, team: str
) -> None:
    src = make_namespace("src")
    a = make_namespace("a", {team: "yes"})
    core.create_namespaced_secret(
        src, secret("token", {"password": "hunter2"}, annotations={SYNC: f"{team}=yes"})
    )
    # The objects' versions, not the list's: a list's resourceVersion moves with any write anywhere.
    before = [(s.metadata.name, s.metadata.resource_version) for s in core.list_namespaced_secret(a).items]

    result = cfgsync("apply", "--dry-run", "--diff", kubeconfig=control_plane.kubeconfig)

    assert result.returncode == 0, result.stderr
    assert f"create Secret {a}/token (copy of Secret {src}/token)" in result.stdout
    assert f"+++ b/Secret/{a}/token" in result.stdout
    assert "password: '*** (after)'" in result.stdout
    encoded = base64.b64encode(b"hunter2").decode()
    assert "hunter2" not in result.stdout + result.stderr
    assert encoded not in result.stdout + result.stderr
    assert read_secret(core, a, "token") is None
    assert [
        (s.metadata.name, s.metadata.resource_version) for s in core.list_namespaced_secret(a).items
    ] == before


def test_an_unmanaged_object_with_the_copy_name_is_left_untouched(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory, team: str
) -> None:
    src = make_namespace("src")
    mine = make_namespace("mine", {team: "yes"})
    free = make_namespace("free", {team: "yes"})
    theirs = core.create_namespaced_config_map(mine, configmap("shared", {"owner": "someone else"}))
    core.create_namespaced_config_map(
        src, configmap("shared", {"owner": "cfgsync"}, annotations={SYNC: f"{team}=yes"})
    )

    result = cfgsync("apply", kubeconfig=control_plane.kubeconfig)

    assert result.returncode == 0, result.stderr
    assert f"an unmanaged ConfigMap with that name exists in namespace {mine}" in result.stderr
    after = read_cm(core, mine, "shared")
    assert after.metadata.resource_version == theirs.metadata.resource_version
    assert after.data == {"owner": "someone else"}
    assert cm_data(core, free, "shared") == {"owner": "cfgsync"}


def test_edits_by_hand_are_reverted_but_other_managers_labels_stay(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory, team: str
) -> None:
    src = make_namespace("src")
    a = make_namespace("a", {team: "yes"})
    core.create_namespaced_config_map(
        src, configmap("app", {"k": "v"}, labels={"tier": "web"}, annotations={SYNC: f"{team}=yes"})
    )
    assert cfgsync("apply", kubeconfig=control_plane.kubeconfig).returncode == 0
    core.patch_namespaced_config_map(
        "app",
        a,
        {
            "metadata": {"labels": {"tier": "db", "added-by-hand": "yes"}},
            "data": {"k": "edited", "extra": "x"},
        },
    )

    result = cfgsync("apply", kubeconfig=control_plane.kubeconfig)

    assert result.returncode == 0, result.stderr
    copy = read_cm(core, a, "app")
    assert copy.data == {"k": "v"}
    assert copy.metadata.labels["tier"] == "web"
    assert copy.metadata.labels["added-by-hand"] == "yes"  # another manager's label: not cfgsync's to remove
    assert cfgsync("apply", kubeconfig=control_plane.kubeconfig).stdout == ""  # and no write on the next pass

    core.patch_namespaced_config_map("app", src, {"metadata": {"labels": {"tier": None}}})
    assert cfgsync("apply", kubeconfig=control_plane.kubeconfig).returncode == 0
    assert "tier" not in read_cm(core, a, "app").metadata.labels  # a label the source dropped goes


def test_an_immutable_copy_whose_data_changed_is_replaced(
    control_plane: ControlPlane, core: Any, make_namespace: NamespaceFactory, team: str
) -> None:
    src = make_namespace("src")
    a = make_namespace("a", {team: "yes"})
    annotations = {SYNC: f"{team}=yes"}
    core.create_namespaced_config_map(
        src, configmap("frozen", {"v": "1"}, annotations=annotations, immutable=True)
    )
    assert cfgsync("apply", kubeconfig=control_plane.kubeconfig).returncode == 0
    first = read_cm(core, a, "frozen")
    core.delete_namespaced_config_map("frozen", src)
    core.create_namespaced_config_map(
        src, configmap("frozen", {"v": "2"}, annotations=annotations, immutable=True)
    )

    result = cfgsync("apply", kubeconfig=control_plane.kubeconfig)

    assert result.returncode == 0, result.stderr
    assert f"replaced ConfigMap {a}/frozen" in result.stdout
    second = read_cm(core, a, "frozen")
    assert second.data == {"v": "2"}
    assert second.immutable is True
    assert second.metadata.uid != first.metadata.uid


def test_a_namespace_where_writes_are_forbidden_is_reported_and_the_rest_proceeds(
    control_plane: ControlPlane,
    kube_api: Any,
    core: Any,
    make_namespace: NamespaceFactory,
    team: str,
) -> None:
    src = make_namespace("src")
    open_ns = make_namespace("open", {team: "yes"})
    closed = make_namespace("closed", {team: "yes"})
    core.create_namespaced_config_map(src, configmap("conf", {"k": "v"}, annotations={SYNC: f"{team}=yes"}))
    with restricted_access(kube_api, writable=[open_ns]):
        result = cfgsync("apply", kubeconfig=control_plane.restricted_kubeconfig)

    assert result.returncode == 1
    assert f"created ConfigMap {open_ns}/conf" in result.stdout
    assert f"create ConfigMap {closed}/conf" in result.stderr
    assert "forbidden" in result.stderr
    assert cm_data(core, open_ns, "conf") == {"k": "v"}
    assert read_cm(core, closed, "conf") is None


class restricted_access:  # noqa: N801 -- used as a context manager, like contextlib helpers
    """Grant the restricted identity cluster-wide reads and writes in some namespaces only, then revoke."""

    def __init__(self, kube_api: Any, *, writable: list[str], events: bool = False) -> None:
        self.rbac = client.RbacAuthorizationV1Api(kube_api)
        self.writable = writable
        self.events = events
        self.name = f"cfgsync-test-{secrets.token_hex(3)}"

    def __enter__(self) -> None:
        from controlplane import RESTRICTED_USER

        subject = client.RbacV1Subject(
            kind="User", name=RESTRICTED_USER, api_group="rbac.authorization.k8s.io"
        )
        read = client.V1PolicyRule(
            api_groups=[""], resources=["configmaps", "secrets", "namespaces"], verbs=["get", "list", "watch"]
        )
        write = client.V1PolicyRule(
            api_groups=[""],
            resources=["configmaps", "secrets"],
            verbs=["create", "patch", "update", "delete"],
        )
        # As the chart grants: SyncRules are read when their CRD is installed (another test may have
        # installed it in this shared API server), and cfgsync refuses to plan without them.
        syncrules = client.V1PolicyRule(
            api_groups=["cfgsync.io"], resources=["syncrules"], verbs=["get", "list", "watch"]
        )
        # As the chart grants too: the chart's admission policy (installed in this shared API server by
        # the deploy tests) lets only holders of this permission write origin labels.
        copies = client.V1PolicyRule(api_groups=["cfgsync.io"], resources=["copies"], verbs=["manage"])
        rules = [read, syncrules, copies]
        if self.events:
            rules.append(client.V1PolicyRule(api_groups=[""], resources=["events"], verbs=["create"]))
        self.rbac.create_cluster_role(
            client.V1ClusterRole(metadata=client.V1ObjectMeta(name=self.name), rules=rules)
        )
        self.rbac.create_cluster_role_binding(
            client.V1ClusterRoleBinding(
                metadata=client.V1ObjectMeta(name=self.name),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=self.name
                ),
                subjects=[subject],
            )
        )
        for ns in self.writable:
            self.rbac.create_namespaced_role(
                ns, client.V1Role(metadata=client.V1ObjectMeta(name=self.name), rules=[write])
            )
            self.rbac.create_namespaced_role_binding(
                ns,
                client.V1RoleBinding(
                    metadata=client.V1ObjectMeta(name=self.name),
                    role_ref=client.V1RoleRef(
                        api_group="rbac.authorization.k8s.io", kind="Role", name=self.name
                    ),
                    subjects=[subject],
                ),
            )
        _await_authorized(self.rbac.api_client, self.writable, events=self.events)

    def __exit__(self, *exc: object) -> None:
        self.rbac.delete_cluster_role_binding(self.name)
        self.rbac.delete_cluster_role(self.name)


def _await_authorized(api: Any, writable: list[str], *, events: bool) -> None:
    """RBAC changes reach the authorizer through a watch: wait until they are in force."""
    from controlplane import RESTRICTED_USER
    from live.helpers import wait_for

    authz = client.AuthorizationV1Api(api)

    def allowed(ns: str | None, verb: str, resource: str) -> bool:
        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=RESTRICTED_USER,
                resource_attributes=client.V1ResourceAttributes(namespace=ns, verb=verb, resource=resource),
            )
        )
        status: Any = authz.create_subject_access_review(review).status
        return bool(status.allowed)

    wait_for(lambda: allowed(None, "list", "configmaps"), what="cluster-wide list permission")
    if events:
        wait_for(lambda: allowed(None, "create", "events"), what="permission to create events")
    for ns in writable:
        wait_for(functools.partial(allowed, ns, "create", "configmaps"), what=f"create permission in {ns}")
