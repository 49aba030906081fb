"""A hostile tenant in a shared cluster, against cfgsync installed from its chart (docs/security.md).

The tenant is the control plane's restricted identity: RBAC lets it write ConfigMaps, Secrets and
SyncRules in its own namespace, and patch ConfigMaps in one shared namespace, nothing more. cfgsync runs
as the chart's ServiceAccount with the chart's own manifests installed, its admission policy included.
Each attack of issue 11 is refused by the API server or is harmless, and legitimate syncing still works.
Each test has a control plane of its own: "every namespace" and the admission policies in force are
then the test's own.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from controlplane import RESTRICTED_USER, Binaries, ControlPlane
from controlplane.fixtures import api_client
from deploy import kube
from deploy.chart import Helm, documents, find
from deploy.running import stop, tail
from deploy.test_install import Controller
from live.helpers import SYNC, cm_data, configmap, read_cm, read_secret, wait_for

pytestmark = pytest.mark.timeout(300)

RELEASE = "cfgsync"
RELEASE_NAMESPACE = "cfgsync-system"
TENANT, SHARED, PLATFORM = "tenant", "shared", "platform"
TEAMS = ("team-a", "team-b")
SYSTEM = ("kube-system", "kube-public", "kube-node-lease")
ORIGIN = {
    "kubed.appscode.com/origin.name": "ca",
    "kubed.appscode.com/origin.namespace": PLATFORM,
    "kubed.appscode.com/origin.cluster": "unicorn",
}
SYNC_CONTEXTS = "kubed.appscode.com/sync-contexts"
REPLICATOR, REFLECTOR = "replicator.v1.mittwald.de/", "reflector.v1.k8s.emberstack.com/"


@pytest.fixture
def plane(controlplane_binaries: Binaries) -> Iterator[ControlPlane]:
    """A control plane of the test's own."""
    with ControlPlane(controlplane_binaries) as started:
        yield started


@pytest.fixture
def admin(plane: ControlPlane) -> Iterator[Any]:
    with api_client(plane.kubeconfig) as api:
        yield api


@pytest.fixture
def tenant(plane: ControlPlane) -> Iterator[Any]:
    """CoreV1Api as the tenant (the restricted identity)."""
    with api_client(plane.restricted_kubeconfig) as api:
        yield client.CoreV1Api(api)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_body(name: str, secret_type: str, annotations: dict[str, str]) -> client.V1Secret:
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations),
        type=secret_type,
        data={"token-id": b64("abcdef"), "token-secret": b64("0123456789abcdef")},
    )


def refused(call: Callable[[], object]) -> str:
    """The API server's refusal of ``call`` (403), as its message."""
    with pytest.raises(client.ApiException) as caught:
        call()
    assert caught.value.status == 403, caught.value.body
    message: str = json.loads(str(caught.value.body))["message"]
    return message


def install(
    admin: Any, helm: Helm, plane: ControlPlane, tmp_path: Path, *values: str
) -> tuple[list[str], Path]:
    """Apply the chart's manifests as a cluster admin does; the Deployment's args and the SA kubeconfig."""
    core: Any = client.CoreV1Api(admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=RELEASE_NAMESPACE)))
    args = [a for v in values for a in ("--set", v)]
    docs = documents(helm.template("--include-crds", *args, release=RELEASE, namespace=RELEASE_NAMESPACE))
    for doc in docs:
        kube.server_side_apply(admin, doc)
    kube.wait_established(admin, "syncrules.cfgsync.io")
    account = find(docs, "ServiceAccount")["metadata"]["name"]
    sa = kube.service_account_kubeconfig(
        admin,
        admin_kubeconfig=plane.kubeconfig,
        namespace=RELEASE_NAMESPACE,
        name=account,
        path=tmp_path / "sa.kubeconfig",
    )
    container = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return list(container["args"]), sa


def make_tenant(admin: Any) -> None:
    """Namespaces, and the tenant's RBAC: its own namespace, plus patch on ConfigMaps in the shared one."""
    core: Any = client.CoreV1Api(admin)
    rbac: Any = client.RbacAuthorizationV1Api(admin)
    for name in (TENANT, SHARED, PLATFORM, *TEAMS):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    subject = client.RbacV1Subject(kind="User", name=RESTRICTED_USER, api_group="rbac.authorization.k8s.io")
    grants = {
        TENANT: [
            client.V1PolicyRule(api_groups=[""], resources=["configmaps", "secrets"], verbs=["*"]),
            client.V1PolicyRule(api_groups=["cfgsync.io"], resources=["syncrules"], verbs=["*"]),
        ],
        SHARED: [client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "patch"])],
    }
    for namespace, rules in grants.items():
        meta = client.V1ObjectMeta(name="tenant")
        rbac.create_namespaced_role(namespace, client.V1Role(metadata=meta, rules=rules))
        ref = client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="tenant")
        rbac.create_namespaced_role_binding(
            namespace, client.V1RoleBinding(metadata=meta, role_ref=ref, subjects=[subject])
        )
    authz: Any = client.AuthorizationV1Api(admin)

    def allowed(namespace: str, verb: str, resource: str) -> bool:
        attributes = client.V1ResourceAttributes(namespace=namespace, verb=verb, resource=resource)
        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(user=RESTRICTED_USER, resource_attributes=attributes)
        )
        return bool(authz.create_subject_access_review(review).status.allowed)

    wait_for(lambda: allowed(TENANT, "create", "secrets"), what="the tenant's RBAC in its namespace")
    wait_for(
        lambda: allowed(SHARED, "patch", "configmaps"), what="the tenant's patch in the shared namespace"
    )


def wait_policy_in_force(tenant: Any) -> None:
    """Admission policies reach the API server through a watch: wait until a forged create is refused."""
    forged = configmap("probe", {}, labels=ORIGIN)

    def in_force() -> bool:
        try:
            tenant.create_namespaced_config_map(TENANT, forged, dry_run="All")
        except client.ApiException as exc:
            return exc.status == 403 and "ValidatingAdmissionPolicy" in str(exc.body)
        return False

    wait_for(in_force, what="the chart's admission policy to be in force")


def events(admin: Any, namespace: str, name: str, reason: str) -> list[Any]:
    core: Any = client.CoreV1Api(admin)
    found = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return [e for e in found if e.reason == reason]


def contexts_kubeconfig(tmp_path: Path, plane: ControlPlane, context: str) -> Path:
    """A kubeconfig whose one context ``context`` is ``plane`` (no namespace: copies keep theirs)."""
    config = json.loads(plane.kubeconfig.read_text(encoding="utf-8"))
    config["contexts"][0]["name"] = context
    config["current-context"] = context
    path = tmp_path / "contexts.kubeconfig"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def start(args: list[str], sa: Path, tmp_path: Path) -> Controller:
    controller = Controller(args, kubeconfig=sa, namespace=RELEASE_NAMESPACE, log=tmp_path / "cfgsync.log")
    controller.wait_ready()
    return controller


def test_a_hostile_tenant_is_refused_or_harmless_and_syncing_still_works(  # noqa: PLR0917 -- fixtures
    plane: ControlPlane,
    second_control_plane: ControlPlane,
    admin: Any,
    tenant: Any,
    helm: Helm,
    tmp_path: Path,
) -> None:
    core: Any = client.CoreV1Api(admin)
    make_tenant(admin)
    args, sa = install(admin, helm, plane, tmp_path, "config.kubeconfigSecret.name=contexts")
    east_kubeconfig = contexts_kubeconfig(tmp_path, second_control_plane, "east")
    args = [f"--kubeconfig-file={east_kubeconfig}" if a.startswith("--kubeconfig-file=") else a for a in args]
    wait_policy_in_force(tenant)
    with api_client(second_control_plane.kubeconfig) as east_api:
        east: Any = client.CoreV1Api(east_api)
        east.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=TENANT)))

        # The platform team's legitimate sources, and an object in the shared namespace nobody syncs.
        core.create_namespaced_config_map(
            PLATFORM, configmap("ca", {"ca.crt": "PEM"}, annotations={SYNC: ""})
        )
        core.create_namespaced_secret(
            PLATFORM,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="regcred", annotations={"cfgsync.io/namespaces": "team-*"}),
                type="kubernetes.io/dockerconfigjson",
                data={".dockerconfigjson": b64('{"auths":{}}')},
            ),
        )
        core.create_namespaced_config_map(SHARED, configmap("app-settings", {"mode": "prod"}))

        controller = start(args, sa, tmp_path)
        try:
            # Legitimate syncing works: everywhere but the source's and the system namespaces.
            for ns in (TENANT, SHARED, *TEAMS, "default"):
                wait_for(lambda ns=ns: cm_data(core, ns, "ca") == {"ca.crt": "PEM"}, what=f"ca in {ns}")  # type: ignore[misc]
            for ns in TEAMS:
                wait_for(lambda ns=ns: read_secret(core, ns, "regcred"), what=f"regcred in {ns}")  # type: ignore[misc]
            regcred_uid = read_secret(core, "team-a", "regcred").metadata.uid
            assert all(read_cm(core, ns, "ca") is None for ns in SYSTEM)

            # 1. Credentials the cluster issues, pushed everywhere and into kube-system: never sources.
            tenant.create_namespaced_secret(
                TENANT,
                secret_body(
                    "bootstrap-token-abcdef",
                    "bootstrap.kubernetes.io/token",
                    {"cfgsync.io/namespaces": "kube-system,team-a", SYNC_CONTEXTS: "east"},
                ),
            )
            account = {"kubernetes.io/service-account.name": "default"}  # the API server requires it
            sa_token = secret_body("stolen", "kubernetes.io/service-account-token", {SYNC: "", **account})
            tenant.create_namespaced_secret(TENANT, sa_token)
            for name in ("bootstrap-token-abcdef", "stolen"):
                (warning,) = wait_for(
                    lambda name=name: events(admin, TENANT, name, "SyncWarning"),  # type: ignore[misc]
                    what=f"a SyncWarning Event on {name}",
                )
                assert "refused by policy protected-sources" in warning.message
            assert read_secret(core, "kube-system", "bootstrap-token-abcdef") is None
            assert read_secret(core, "team-a", "bootstrap-token-abcdef") is None
            assert all(read_secret(core, ns, "stolen") is None for ns in (SHARED, *TEAMS, "default", *SYSTEM))
            assert read_secret(east, TENANT, "bootstrap-token-abcdef") is None  # nor into another cluster

            # 2. A coredns-custom ConfigMap for every namespace: it lands, but never in kube-system.
            tenant.create_namespaced_config_map(
                TENANT,
                configmap("coredns-custom", {"evil.server": "forward . 6.6.6.6"}, annotations={SYNC: ""}),
            )
            wait_for(
                lambda: read_cm(core, "team-b", "coredns-custom"), what="the tenant's ConfigMap in team-b"
            )
            assert all(read_cm(core, ns, "coredns-custom") is None for ns in SYSTEM)

            # 3. Forged origin labels: a patch the tenant may make must not become cfgsync's delete or
            #    overwrite. The admission policy refuses adding them, and creating objects with them.
            message = refused(
                lambda: tenant.patch_namespaced_config_map(
                    "app-settings", SHARED, {"metadata": {"labels": ORIGIN}}
                )
            )
            assert "ValidatingAdmissionPolicy 'cfgsync-origin'" in message
            assert f"{RESTRICTED_USER} may not add, change or remove them" in message
            refused(
                lambda: tenant.create_namespaced_config_map(TENANT, configmap("forged", {}, labels=ORIGIN))
            )
            refused(  # nor relabel a real copy to point at another source (or make it unmanaged)
                lambda: tenant.patch_namespaced_config_map(
                    "ca", TENANT, {"metadata": {"labels": {"kubed.appscode.com/origin.name": None}}}
                )
            )
            tenant.patch_namespaced_config_map(
                "app-settings", SHARED, {"data": {"mode": "tenant"}}
            )  # allowed

            # 3b. The same through the peers' marks, which make cfgsync take an object over: a source
            #     of the tenant's wanting app-settings in the shared namespace by each peer's vocabulary,
            #     and the object marked as that peer's copy of it.
            tenant.create_namespaced_config_map(
                TENANT,
                configmap(
                    "app-settings",
                    {"mode": "evil"},
                    annotations={
                        REPLICATOR + "replicate-to": SHARED,
                        REFLECTOR + "reflection-allowed": "true",
                        REFLECTOR + "reflection-auto-enabled": "true",
                        REFLECTOR + "reflection-allowed-namespaces": SHARED,
                    },
                ),
            )
            for marks in (
                {REFLECTOR + "reflects": f"{TENANT}/app-settings", REFLECTOR + "auto-reflects": "True"},
                {
                    REPLICATOR + "replicated-at": "2026-01-01T00:00:00Z",
                    REPLICATOR + "replicated-keys": "mode",
                },
            ):
                message = refused(
                    lambda marks=marks: tenant.patch_namespaced_config_map(  # type: ignore[misc]
                        "app-settings", SHARED, {"metadata": {"annotations": marks}}
                    )
                )
                assert f"{RESTRICTED_USER} may not add, change or remove them" in message
            refused(  # nor create an object carrying them
                lambda: tenant.create_namespaced_config_map(
                    TENANT,
                    configmap("forged-mirror", {}, annotations={REFLECTOR + "auto-reflects": "True"}),
                )
            )
            tenant.create_namespaced_config_map(  # a manual mirror (a pull request) is the tenant's to make
                TENANT, configmap("mirror", {}, annotations={REFLECTOR + "reflects": f"{PLATFORM}/ca"})
            )
            # An object that carries marks already (a peer made it) stays editable where they are kept.
            marked = {REFLECTOR + "reflects": f"{PLATFORM}/gone", REFLECTOR + "auto-reflects": "True"}
            core.create_namespaced_config_map(SHARED, configmap("peer-made", {"k": "v"}, annotations=marked))
            tenant.patch_namespaced_config_map("peer-made", SHARED, {"data": {"k": "edited"}})
            tenant.patch_namespaced_config_map(
                "peer-made", SHARED, {"metadata": {"annotations": {"note": "mine"}}}
            )
            for change in (
                {REFLECTOR + "reflects": f"{TENANT}/app-settings"},
                {REFLECTOR + "auto-reflects": None},
            ):
                refused(
                    lambda change=change: tenant.patch_namespaced_config_map(  # type: ignore[misc]
                        "peer-made", SHARED, {"metadata": {"annotations": change}}
                    )
                )
            # A target replicator pulled into keeps its request: without it, replicator's marks would make
            # it look like replicator's push copy, which a source of the tenant's could then take over.
            pulled = {
                REPLICATOR + "replicate-from": f"{PLATFORM}/gone",
                REPLICATOR + "replicated-at": "2026-01-01T00:00:00Z",
                REPLICATOR + "replicated-keys": "k",
            }
            core.create_namespaced_config_map(SHARED, configmap("pulled", {"k": "v"}, annotations=pulled))
            refused(
                lambda: tenant.patch_namespaced_config_map(
                    "pulled", SHARED, {"metadata": {"annotations": {REPLICATOR + "replicate-from": None}}}
                )
            )

            # 4. Copy-name hijack: a rival source claims the platform's copy name in the same namespaces.
            tenant.create_namespaced_secret(
                TENANT,
                client.V1Secret(
                    metadata=client.V1ObjectMeta(
                        name="evil",
                        annotations={"cfgsync.io/namespaces": "team-*", "cfgsync.io/copy-name": "regcred"},
                    ),
                    type="kubernetes.io/dockerconfigjson",
                    data={".dockerconfigjson": b64('{"auths":{"evil.example.com":{}}}')},
                ),
            )
            conflicts = wait_for(
                lambda: events(admin, TENANT, "evil", "CopyConflict"), what="the rival hears of the conflict"
            )
            for conflict in conflicts:  # one per namespace
                assert "Secret platform/regcred has it because it holds the copy already" in conflict.message
            wait_for(
                lambda: events(admin, PLATFORM, "regcred", "CopyConflict"), what="the owner hears of it too"
            )
            kept = read_secret(core, "team-a", "regcred")
            assert kept.metadata.uid == regcred_uid
            assert kept.metadata.labels["kubed.appscode.com/origin.namespace"] == PLATFORM
            assert kept.data[".dockerconfigjson"] == b64('{"auths":{}}')

            # 5. sync-contexts: a plain ConfigMap reaches the other cluster; the token above did not.
            tenant.create_namespaced_config_map(
                TENANT, configmap("east-settings", {"k": "v"}, annotations={SYNC_CONTEXTS: "east"})
            )
            wait_for(lambda: cm_data(east, TENANT, "east-settings") == {"k": "v"}, what="a copy in east")
            assert read_secret(east, TENANT, "bootstrap-token-abcdef") is None
        finally:
            code = stop(controller.proc)
    assert code == 0, tail(controller.log)
    assert cm_data(core, SHARED, "app-settings") == {"mode": "tenant"}  # never deleted nor overwritten
    assert not [line for line in controller.lines() if "forbidden" in line.lower()], tail(controller.log)


def test_source_namespaces_consent_and_protected_copies(
    plane: ControlPlane, admin: Any, tenant: Any, helm: Helm, tmp_path: Path
) -> None:
    core: Any = client.CoreV1Api(admin)
    make_tenant(admin)
    args, sa = install(
        admin,
        helm,
        plane,
        tmp_path,
        "config.allowSourcesFrom[0]=platform",
        "config.requireConsent=true",
        "admissionPolicy.protectCopies=true",
    )
    wait_policy_in_force(tenant)
    accept = "cfgsync.io/accept-from"
    core.patch_namespace("team-a", {"metadata": {"annotations": {accept: "platform"}}})
    core.patch_namespace(TENANT, {"metadata": {"annotations": {accept: "platform,tenant"}}})
    core.create_namespaced_config_map(PLATFORM, configmap("ca", {"ca.crt": "PEM"}, annotations={SYNC: ""}))
    tenant.create_namespaced_config_map(TENANT, configmap("pushy", {"k": "v"}, annotations={SYNC: ""}))

    controller = start(args, sa, tmp_path)
    try:
        # Consent: only the namespaces naming platform in their annotation receive its copy.
        wait_for(lambda: cm_data(core, "team-a", "ca") == {"ca.crt": "PEM"}, what="ca where consented")
        wait_for(
            lambda: cm_data(core, TENANT, "ca") == {"ca.crt": "PEM"}, what="ca in the tenant's namespace"
        )
        assert read_cm(core, "team-b", "ca") is None  # said nothing: receives nothing
        # Only platform may hold sources: the tenant's is refused, and the tenant hears why.
        (warning,) = wait_for(lambda: events(admin, TENANT, "pushy", "SyncWarning"), what="pushy refused")
        assert "refused by policy source-namespaces" in warning.message
        assert all(read_cm(core, ns, "pushy") is None for ns in (SHARED, PLATFORM, *TEAMS, "default"))
        # Consent is the namespace's to give: the tenant cannot annotate a Namespace.
        refused(lambda: tenant.patch_namespace("team-b", {"metadata": {"annotations": {accept: "tenant"}}}))

        # Withdrawn consent takes the copy away.
        core.patch_namespace("team-a", {"metadata": {"annotations": {accept: None}}})
        wait_for(lambda: read_cm(core, "team-a", "ca") is None, what="the copy to go with the consent")

        # Protected copies: the tenant may write ConfigMaps in its namespace, but not edit or delete the copy.
        message = refused(lambda: tenant.patch_namespaced_config_map("ca", TENANT, {"data": {"ca.crt": "x"}}))
        assert "ValidatingAdmissionPolicy 'cfgsync-copies'" in message
        assert f"{TENANT}/ca is a copy cfgsync keeps in line with its source platform/ca" in message
        refused(lambda: tenant.delete_namespaced_config_map("ca", TENANT))
        refused(lambda: tenant.delete_collection_namespaced_config_map(TENANT))
        tenant.create_namespaced_config_map(TENANT, configmap("own", {"k": "v"}))
        tenant.delete_namespaced_config_map("own", TENANT)  # its own objects stay its own
    finally:
        code = stop(controller.proc)
    assert code == 0, tail(controller.log)

    # Deleting a namespace still works: no controller-manager runs here, so act as its namespace
    # controller (and as the garbage collector) would, by impersonation.
    core.delete_namespace(TENANT)
    with api_client(plane.kubeconfig) as as_controller:
        as_controller.set_default_header(
            "Impersonate-User", "system:serviceaccount:kube-system:namespace-controller"
        )
        client.CoreV1Api(as_controller).delete_collection_namespaced_config_map(TENANT)
    assert read_cm(core, TENANT, "ca") is None
    core.create_namespaced_config_map("team-b", configmap("ca", {"ca.crt": "PEM"}, labels=ORIGIN))
    with api_client(plane.kubeconfig) as as_gc:
        as_gc.set_default_header(
            "Impersonate-User", "system:serviceaccount:kube-system:generic-garbage-collector"
        )
        client.CoreV1Api(as_gc).delete_namespaced_config_map("ca", "team-b")
    assert read_cm(core, "team-b", "ca") is None
