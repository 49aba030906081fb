"""Install the rendered chart on a real API server and run the controller as the chart's ServiceAccount.

The story a cluster admin follows: render the chart, apply it (server-side dry run first), then the
controller runs with the ServiceAccount's token and nothing more. kubed's tutorial sequence must work
under that RBAC, and anything outside it must be refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from controlplane import ControlPlane
from controlplane.fixtures import api_client
from deploy import kube
from deploy.chart import CHART, Helm, documents, find
from deploy.running import free_port, http_status, peak_memory_bytes, stop, tail
from deploy.tutorial import kubed_tutorial
from live.conftest import NamespaceFactory
from live.helpers import (
    cli_env,
    cm_data,
    configmap,
    read_cm,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)

POD_NAME = "cfgsync-6d9f7c-x2k4q"
"""The pod name the kubelet would pass through the downward API (the leader's identity)."""


class Controller:
    """``cfgsync run`` in a child process, with the arguments of the rendered Deployment."""

    def __init__(self, args: list[str], *, kubeconfig: Path, namespace: str, log: Path) -> None:
        self.port = free_port()
        self.log = log
        kept = [a for a in args if not a.startswith(("--health-port=", "--health-address="))]
        command = [
            sys.executable,
            "-m",
            "cfgsync",
            *kept,
            f"--kubeconfig={kubeconfig}",
            "--health-address=127.0.0.1",
            f"--health-port={self.port}",
        ]
        env = cli_env() | {"POD_NAME": POD_NAME, "POD_NAMESPACE": namespace}
        with log.open("wb") as sink:
            self.proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)

    def lines(self) -> list[str]:
        """What it logged so far."""
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, "cfgsync run exited:\n" + tail(self.log)
            return http_status(self.port, "/readyz") == 200

        wait_for(ready, timeout=60, what="cfgsync run to answer /readyz")


def test_chart_installs_and_runs_with_only_its_service_account(
    control_plane: ControlPlane, kube_api: Any, helm: Helm, make_namespace: NamespaceFactory, tmp_path: Path
) -> None:
    core: Any = client.CoreV1Api(kube_api)
    release_namespace = make_namespace("cfgsync-system")  # as `helm install --create-namespace` makes it
    demo = make_namespace("demo")
    # Only this test's sources count, so sources other tests left behind stay out of this story.
    rendered = helm.template(
        "--include-crds",
        "--set",
        f"config.sourceNamespace={demo}",
        "--set",
        "config.additionalOptions={--source-gone-grace=2s}",  # a deleted source's copies go after 2 s
        release=release_namespace,
        namespace=release_namespace,
    )
    docs = documents(rendered)
    deployment = find(docs, "Deployment")
    account = find(docs, "ServiceAccount")["metadata"]["name"]

    # kubectl apply --server-side --dry-run=server: every object is valid, and nothing is created.
    for doc in docs:
        kube.server_side_apply(kube_api, doc, dry_run=True)
    assert not kube.exists(kube_api, deployment)
    for doc in docs:
        kube.server_side_apply(kube_api, doc)
    kube.wait_established(kube_api, "syncrules.cfgsync.io")
    assert kube.exists(kube_api, deployment)

    sa_kubeconfig = kube.service_account_kubeconfig(
        kube_api,
        admin_kubeconfig=control_plane.kubeconfig,
        namespace=release_namespace,
        name=account,
        path=tmp_path / "sa.kubeconfig",
    )
    with api_client(sa_kubeconfig) as as_sa:
        _writes_outside_the_rbac_are_refused(as_sa, release_namespace, demo)

    other = make_namespace("other")
    taken = make_namespace("taken")
    core.create_namespaced_config_map(taken, configmap("omni", {"owner": "someone else"}))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    leases: Any = client.CoordinationV1Api(kube_api)
    controller = Controller(
        container["args"], kubeconfig=sa_kubeconfig, namespace=release_namespace, log=tmp_path / "cfgsync.log"
    )
    try:
        controller.wait_ready()
        assert http_status(controller.port, "/healthz") == 200
        assert http_status(controller.port, "/metrics") == 200  # what the metrics Service exposes
        kubed_tutorial(core, demo=demo, other=other, taken=taken, make_namespace=make_namespace, gone_grace=2)
        _syncrule_is_followed(kube_api, core, demo=demo, other=other)

        lease = leases.read_namespaced_lease(release_namespace, release_namespace)
        assert lease.spec.holder_identity == POD_NAME
        peak = peak_memory_bytes(controller.proc.pid)
    finally:
        code = stop(controller.proc)
    log = controller.lines()
    assert code == 0, tail(controller.log)
    limit = container["resources"]["limits"]["memory"]
    assert peak < int(limit.removesuffix("Mi")) * 2**20, (
        f"peak RSS {peak / 2**20:.0f} MiB over the chart's limit"
    )
    refused = [line for line in log if "forbidden" in line.lower() or " 403" in line]
    assert refused == [], "the ServiceAccount lacked a permission"
    lease = leases.read_namespaced_lease(release_namespace, release_namespace)
    assert not lease.spec.holder_identity  # released on SIGTERM, so a new leader need not wait


def _writes_outside_the_rbac_are_refused(as_sa: Any, release_namespace: str, demo: str) -> None:
    apps: Any = client.AppsV1Api(as_sa)
    core: Any = client.CoreV1Api(as_sa)
    leases: Any = client.CoordinationV1Api(as_sa)
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="sneaky"),
        spec=client.V1DeploymentSpec(
            selector=client.V1LabelSelector(match_labels={"app": "sneaky"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "sneaky"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
            ),
        ),
    )
    attempts: dict[str, Callable[[], object]] = {
        "create a Deployment": lambda: apps.create_namespaced_deployment(demo, deployment),
        "read Deployments": lambda: apps.list_namespaced_deployment(demo),
        "relabel a namespace": lambda: core.patch_namespace(demo, {"metadata": {"labels": {"x": "y"}}}),
        "delete a namespace": lambda: core.delete_namespace(demo),
        "list pods": lambda: core.list_namespaced_pod(demo),
        "replace a Secret (PUT)": lambda: core.replace_namespaced_secret(
            "any", demo, client.V1Secret(metadata=client.V1ObjectMeta(name="any"))
        ),
        "create a Lease elsewhere": lambda: leases.create_namespaced_lease(
            demo, client.V1Lease(metadata=client.V1ObjectMeta(name="x"))
        ),
    }
    for what, attempt in attempts.items():
        with pytest.raises(client.ApiException) as refused:
            attempt()
        assert refused.value.status == 403, what
    # ... while what the controller needs is allowed.
    assert core.list_namespace().items
    assert core.list_secret_for_all_namespaces(limit=1) is not None
    leases.create_namespaced_lease(
        release_namespace, client.V1Lease(metadata=client.V1ObjectMeta(name="any-name")), dry_run="All"
    )


def _syncrule_is_followed(kube_api: Any, core: Any, *, demo: str, other: str) -> None:
    """With the CRD installed, a SyncRule copies a source nobody annotated."""
    core.create_namespaced_config_map(demo, configmap("operator-owned", {"ca.crt": "PEM"}))
    rule = {
        "apiVersion": "cfgsync.io/v1alpha1",
        "kind": "SyncRule",
        "metadata": {"name": "ca-bundle", "namespace": demo},
        "spec": {
            "source": {"kind": "ConfigMap", "name": "operator-owned"},
            "namespaces": [other],
            "keys": {"rename": {"ca.crt": "ca-bundle.crt"}},
        },
    }
    custom: Any = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object("cfgsync.io", "v1alpha1", demo, "syncrules", rule)
    wait_for(
        lambda: cm_data(core, other, "operator-owned") == {"ca-bundle.crt": "PEM"},
        what="the SyncRule's copy, key renamed",
    )
    custom.delete_namespaced_custom_object("cfgsync.io", "v1alpha1", demo, "syncrules", "ca-bundle")
    wait_for(lambda: read_cm(core, other, "operator-owned") is None, what="the copy to go with its SyncRule")


def test_helm_install_upgrade_and_uninstall(
    control_plane: ControlPlane, kube_api: Any, helm: Helm, make_namespace: NamespaceFactory
) -> None:
    namespace = make_namespace("cfgsync-helm")
    release = namespace  # unique, and it contains the chart name: objects are named after it
    kubeconfig = f"--kubeconfig={control_plane.kubeconfig}"
    apps: Any = client.AppsV1Api(kube_api)
    rbac: Any = client.RbacAuthorizationV1Api(kube_api)

    def args() -> list[str]:
        container: Any = apps.read_namespaced_deployment(release, namespace).spec.template.spec.containers[0]
        return list(container.args)

    helm.run("install", release, str(CHART), "--namespace", namespace, kubeconfig)

    assert "--resync-period=10m" in args()
    assert rbac.read_cluster_role(release).rules
    listed = json.loads(helm.run("list", "--namespace", namespace, "--output", "json", kubeconfig).stdout)
    assert [(r["name"], r["status"], r["app_version"]) for r in listed] == [(release, "deployed", "0.1.0")]

    helm.run(
        "upgrade",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--set",
        "config.resyncPeriod=1m",
        kubeconfig,
    )

    assert "--resync-period=1m" in args()

    helm.run("uninstall", release, "--namespace", namespace, kubeconfig)

    with pytest.raises(client.ApiException) as gone:
        rbac.read_cluster_role(release)
    assert gone.value.status == 404
    # Helm never deletes CRDs, so SyncRules survive an uninstall.
    crds: Any = client.ApiextensionsV1Api(kube_api)
    assert crds.read_custom_resource_definition("syncrules.cfgsync.io").spec.group == "cfgsync.io"
