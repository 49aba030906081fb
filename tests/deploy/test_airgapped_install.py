"""The air-gapped path of docs/install.md, for real: build, push to a private registry, install from it, run.

What kubed's users had to do when its images vanished, with the tools an air-gapped site has: the base
images built from Debian's packages, the three images built with buildah, a registry with TLS and a
login (Debian's distribution registry on 127.0.0.1), the images pushed with skopeo and the chart with
``helm push``, the chart installed from ``oci://`` into the real API server. Then the controller image,
pulled back from the registry into an empty storage as a node pulls it, runs as the pod would: its
entrypoint with exactly the installed Deployment's arguments, the ServiceAccount's token and CA where
the kubelet mounts them, on the host's network (the API server listens on 127.0.0.1 only), through
kubed's tutorial. The commands are docs/install.md's own blocks, run verbatim.

Without buildah, skopeo, mmdebstrap, docker-registry or htpasswd the tests skip, naming the Debian
packages; in CI (``CI`` set) they fail instead, because .ci/run installs them.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

import cfgsync
import gotools
from controlplane import ControlPlane
from deploy.chart import Helm
from deploy.images import (
    RECIPES,
    BuiltImages,
    Storage,
    cache,
    ensure_images,
    missing_tools,
    run_block,
    storage_conf,
)
from deploy.registry import HELM_CONFIG, Registry, running_registry
from deploy.running import free_port, http_status, tail
from deploy.tutorial import kubed_tutorial
from gitops.argocd_cmp import PLUGIN_YAML, PluginServer, basic_app_request, call, socket_name
from gitops.argocd_fixtures import ArgoCD
from live.conftest import NamespaceFactory
from live.helpers import configmap, wait_for

# A cold run builds the base images and three images first (about three minutes on two cores, in a
# cold CI run): the first test of the module pays for it. Building images is end-to-end work, so
# `pytest -m "not e2e"` builds nothing.
pytestmark = [pytest.mark.timeout(2400), pytest.mark.e2e]

PROJECT = "platform"
SIZE_LIMIT = 200 * 1000**2
"""Each image's size, unpacked, in bytes (200 MB, as ``buildah images`` counts)."""
USERS = {"cfgsync": "65532:65532", "cfgsync-cmp": "999:999", "cfgsync-krm": "65532:65532"}
ENTRYPOINTS: dict[str, list[str] | None] = {
    "cfgsync": ["cfgsync"],
    "cfgsync-cmp": None,  # Argo CD starts its own plugin server in the sidecar
    "cfgsync-krm": ["cfgsync", "krm"],
}
POD_NAME = "cfgsync-7c9d5b-airgp"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _require_tools() -> None:
    missing = missing_tools()
    if missing:
        packages = " ".join(sorted(set(missing.values())))
        message = f"{', '.join(sorted(missing))} not found: apt-get install {packages}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (.ci/run installs them)")
        pytest.skip(message)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> BuiltImages:
    """The three images, built from this checkout (or found in the cache), with progress shown."""
    _require_tools()
    storage = Storage(conf=storage_conf(cache() / "storage"))
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        return ensure_images(storage, work=tmp_path_factory.mktemp("images"), version=cfgsync.__version__)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The private registry, like a Harbor project: TLS from a CA of its own, and a login."""
    _require_tools()
    with running_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="module")
def shell_env(
    built: BuiltImages, registry: Registry, helm: Helm, control_plane: ControlPlane
) -> dict[str, str]:
    """The settings of docs/install.md's blocks, for this registry, storage and API server."""
    home = helm.home
    return built.storage.env() | {
        "PATH": f"{helm.binary.parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(control_plane.kubeconfig),
        "REGISTRY_AUTH_FILE": str(home / "registry-auth.json"),
        "REGISTRY": registry.address,
        "PROJECT": PROJECT,
        "VERSION": built.version,
        "BASE": built.base,
        "CERTS": str(registry.certs),
        "REGISTRY_USER": registry.user,
        "REGISTRY_PASSWORD": registry.password,
    }


@pytest.fixture(scope="module")
def published(built: BuiltImages, shell_env: dict[str, str]) -> dict[str, str]:
    """docs/install.md's ``push`` and ``chart`` blocks, run: what they printed, by block."""
    return {
        name: run_block(name, cwd=built.context, env=shell_env, what=name).stdout
        for name in ("push", "chart")
    }


@pytest.mark.parametrize("image", sorted(RECIPES))
def test_images_run_unprivileged_without_package_managers_and_stay_small(
    built: BuiltImages, image: str, pytestconfig: pytest.Config
) -> None:
    storage = built.storage
    name = built.local_name(image)
    config = storage.inspect(name)["OCIv1"]["config"]
    size = storage.unpacked_size(name)
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        gotools.print_progress(
            f"[images] {name}: {size / 1000**2:.0f} MB unpacked, user {config.get('User')}"
        )

    assert config.get("User") == USERS[image]
    assert config.get("Entrypoint") == ENTRYPOINTS[image]
    assert size < SIZE_LIMIT, f"{name} is {size / 1000**2:.0f} MB"
    probe = (
        "import importlib.util, json, os, shutil, subprocess, sys;"
        "pip = subprocess.run([sys.executable, '-m', 'pip', '--version'], capture_output=True);"
        "print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(),"
        " 'python': os.path.realpath(sys.executable), 'prefix': sys.prefix,"
        " 'found': {c: shutil.which(c) for c in ('sh', 'bash', 'apt', 'apt-get', 'dpkg', 'pip', 'pip3')},"
        " 'pip': pip.returncode, 'ensurepip': importlib.util.find_spec('ensurepip') is not None,"
        " 'asyncio_client': importlib.util.find_spec('kubernetes.aio') is not None,"
        " 'version': subprocess.run(['cfgsync', '--version'], capture_output=True, text=True).stdout}))"
    )
    with working_container(storage, name) as container:
        done = storage.run("buildah", "run", "--isolation", "chroot", container, "--", "python", "-c", probe)
    seen = json.loads(done.stdout)
    uid, gid = (int(part) for part in USERS[image].split(":"))
    assert (seen["uid"], seen["gid"]) == (uid, gid)
    assert seen["prefix"] == "/opt/cfgsync"  # the image's python is the virtual environment's
    assert seen["python"] == "/usr/bin/python3.11"  # which runs on the base's Debian Python
    assert seen["found"] == dict.fromkeys(("sh", "bash", "apt", "apt-get", "dpkg", "pip", "pip3"))
    assert seen["pip"] != 0  # no module named pip
    assert seen["ensurepip"] is False  # nor a way to bring it back
    assert seen["asyncio_client"] is False  # trimmed in the build stage; cfgsync never imports it
    assert seen["version"].strip() == f"cfgsync, version {cfgsync.__version__}"


def test_registry_holds_the_images_and_the_chart(
    built: BuiltImages, registry: Registry, published: dict[str, str], pytestconfig: pytest.Config
) -> None:
    images = {f"{PROJECT}/{image}" for image in RECIPES}

    assert registry.catalog() == sorted({*images, f"{PROJECT}/charts/cfgsync"})
    report = []
    for image in sorted(RECIPES):
        repository = f"{PROJECT}/{image}"
        assert registry.tags(repository) == [built.version]
        digest, manifest = registry.manifest(repository, built.version)
        # The pushed image is the one built: its configuration (whose digest is the image ID) is the same.
        local_id = built.storage.inspect(built.local_name(image))["FromImageID"]
        assert manifest["config"]["digest"] == f"sha256:{local_id}"
        pushed = json.loads(registry.blob(repository, manifest["config"]["digest"]))
        assert pushed["config"]["User"] == USERS[image]
        compressed = sum(layer["size"] for layer in manifest["layers"])
        report.append(f"{image} {compressed / 1000**2:.0f} MB compressed ({digest})")
        if image == "cfgsync":
            assert digest in published["push"]  # the digest docs/install.md's last command prints
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        gotools.print_progress(f"[images] in the registry: {'; '.join(report)}")

    assert registry.tags(f"{PROJECT}/charts/cfgsync") == [built.version]
    chart_digest, chart = registry.manifest(f"{PROJECT}/charts/cfgsync", built.version)
    assert chart["config"]["mediaType"] == HELM_CONFIG
    assert [layer["mediaType"] for layer in chart["layers"]] == [
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    ]
    assert f"Digest: {chart_digest}" in published["chart"]


def test_a_plain_http_registry_takes_the_images_and_the_chart(
    built: BuiltImages, shell_env: dict[str, str], tmp_path: Path
) -> None:
    """docs/install.md's plain-HTTP variants of the push and chart blocks, against a registry without
    TLS (with a login, like the seed's Harbor); the chart comes back from it as ``helm upgrade`` pulls it."""
    with running_registry(tmp_path / "registry", tls=False) as plain:
        env = shell_env | {
            "REGISTRY": plain.address,
            "REGISTRY_USER": plain.user,
            "REGISTRY_PASSWORD": plain.password,
            "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json"),
        }
        for block in ("push-plain-http", "chart-plain-http"):
            run_block(block, cwd=built.context, env=env, what=block)

        assert plain.catalog() == sorted({*(f"{PROJECT}/{i}" for i in RECIPES), f"{PROJECT}/charts/cfgsync"})
        for image in RECIPES:
            _, manifest = plain.manifest(f"{PROJECT}/{image}", built.version)
            local_id = built.storage.inspect(built.local_name(image))["FromImageID"]
            assert manifest["config"]["digest"] == f"sha256:{local_id}"
        pulled = subprocess.run(
            ["helm", "pull", f"oci://{plain.address}/{PROJECT}/charts/cfgsync", "--version", built.version,
             "--plain-http", "--destination", str(tmp_path)],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert pulled.returncode == 0, pulled.stderr
        assert (tmp_path / f"cfgsync-{built.version}.tgz").is_file()


def test_chart_from_oci_runs_the_pulled_image_through_kubeds_tutorial(
    built: BuiltImages,
    registry: Registry,
    published: dict[str, str],
    *,
    shell_env: dict[str, str],
    control_plane: ControlPlane,
    kube_api: Any,
    make_namespace: NamespaceFactory,
    tmp_path: Path,
) -> None:
    core: Any = client.CoreV1Api(kube_api)
    namespace = make_namespace("cfgsync-airgap")
    demo = make_namespace("demo")
    image = f"{registry.address}/{PROJECT}/cfgsync:{built.version}"
    # docs/install.md creates the pull secret with kubectl; here through the API, with the same content.
    auth = base64.b64encode(f"{registry.user}:{registry.password}".encode()).decode()
    config_json = json.dumps({"auths": {registry.address: {"auth": auth}}})
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="registry-pull"),
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": config_json},
        ),
    )
    # The container shares the host's network: the health port must be free here and bound to loopback
    # only, and only this test's sources count (others' stay out of the story). These values go after
    # the document's own, on `helm upgrade` only.
    health_port = free_port()
    test_values = tmp_path / "test-values.yaml"
    test_values.write_text(
        yaml.safe_dump(
            {
                "healthPort": health_port,
                "config": {
                    "sourceNamespace": demo,
                    "additionalOptions": [
                        "resync-period=1m",
                        "health-address=127.0.0.1",
                        "source-gone-grace=2s",  # a deleted source's copies go after 2 s
                    ],
                },
            }
        ),
        encoding="utf-8",
    )
    prelude = (
        'helm() { if [ "$1" = upgrade ]; then command helm "$@" -f "$TEST_VALUES";'
        ' else command helm "$@"; fi; }'
    )

    installed = run_block(
        "install",
        cwd=tmp_path,
        env=shell_env | {"NAMESPACE": namespace, "TEST_VALUES": str(test_values)},
        prelude=prelude,
    ).stdout

    chart_digest, chart = registry.manifest(f"{PROJECT}/charts/cfgsync", built.version)
    assert f"Pulled: {registry.address}/{PROJECT}/charts/cfgsync:{built.version}" in installed
    assert f"Digest: {chart_digest}" in installed  # the chart came from the registry, by this digest
    assert chart["config"]["mediaType"] == HELM_CONFIG
    apps: Any = client.AppsV1Api(kube_api)
    deployment = apps.read_namespaced_deployment("cfgsync", namespace)
    pod = deployment.spec.template.spec
    container = pod.containers[0]
    assert container.image == image
    assert [s.name for s in pod.image_pull_secrets] == ["registry-pull"]
    assert [a for a in container.args if "resync-period" in a] == ["--resync-period=1m"]  # one flag
    assert container.resources.limits == {"cpu": "100m", "memory": "128Mi"}

    # A node pulls the image: from the registry, with the login and the CA, into an empty storage.
    node = Storage(conf=storage_conf(tmp_path / "node-storage"))
    assert not node.has_image(image)
    node.run(
        "skopeo", "copy", "--quiet", "--src-cert-dir", str(registry.certs),
        "--src-creds", f"{registry.user}:{registry.password}",
        f"docker://{image}", f"containers-storage:{image}", timeout=600,
    )  # fmt: skip
    pulled = node.inspect(image)
    assert pulled["FromImageID"] == built.storage.inspect(built.local_name("cfgsync"))["FromImageID"]
    entrypoint = pulled["OCIv1"]["config"]["Entrypoint"]

    # What the kubelet mounts for the pod's ServiceAccount, and the variables it sets.
    secrets_dir = tmp_path / "serviceaccount"
    secrets_dir.mkdir()
    token = core.create_namespaced_service_account_token(
        container_service_account(deployment),
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    ).status.token
    admin = json.loads(control_plane.kubeconfig.read_text(encoding="utf-8"))
    (secrets_dir / "token").write_text(token, encoding="utf-8")
    (secrets_dir / "ca.crt").write_bytes(
        base64.b64decode(admin["clusters"][0]["cluster"]["certificate-authority-data"])
    )
    (secrets_dir / "namespace").write_text(namespace, encoding="utf-8")
    secrets_dir.chmod(0o755)
    for path in secrets_dir.iterdir():
        path.chmod(0o644)  # the kubelet's files are readable by the pod's user
    api_host, api_port = control_plane.server.removeprefix("https://").rsplit(":", 1)
    env = {"KUBERNETES_SERVICE_HOST": api_host, "KUBERNETES_SERVICE_PORT": api_port}
    for variable in container.env:
        field = variable.value_from.field_ref.field_path
        env[variable.name] = {"metadata.name": POD_NAME, "metadata.namespace": namespace}[field]
    scratch = tmp_path / "pod-tmp"  # the chart's emptyDir on /tmp
    scratch.mkdir(mode=0o1777)
    scratch.chmod(0o1777)

    other = make_namespace("other")
    taken = make_namespace("taken")
    core.create_namespaced_config_map(taken, configmap("omni", {"owner": "someone else"}))
    log = tmp_path / "container.log"
    with working_container(node, image) as working:
        command = [
            "buildah", "run", "--isolation", "chroot", "--network", "host",
            "-v", f"{secrets_dir}:{SERVICE_ACCOUNT_DIR}:ro", "-v", f"{scratch}:/tmp",
            *(arg for key, value in env.items() for arg in ("--env", f"{key}={value}")),
            working, "--", *entrypoint, *container.args,
        ]  # fmt: skip
        with log.open("wb") as sink:
            proc = subprocess.Popen(command, env=node.env(), stdout=sink, stderr=subprocess.STDOUT)
        try:

            def ready() -> bool:
                assert proc.poll() is None, "the container exited:\n" + tail(log)
                return http_status(health_port, "/readyz") == 200

            wait_for(ready, timeout=120, what="the container to answer /readyz")
            assert http_status(health_port, "/healthz") == 200
            kubed_tutorial(
                core, demo=demo, other=other, taken=taken, make_namespace=make_namespace, gone_grace=2
            )
            leases: Any = client.CoordinationV1Api(kube_api)
            assert leases.read_namespaced_lease("cfgsync", namespace).spec.holder_identity == POD_NAME
        finally:
            code = _stop_container(proc)
    assert code == 0, tail(log)
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    assert not [line for line in lines if "forbidden" in line.lower()], (
        "the ServiceAccount lacked a permission"
    )
    assert any(
        json.loads(line).get("message", "").startswith("caches synced")
        for line in lines
        if line.startswith("{")
    )
    assert leases.read_namespaced_lease("cfgsync", namespace).spec.holder_identity in (None, "")


def test_krm_image_adds_the_copies(built: BuiltImages, repo: Path) -> None:
    items = [
        d
        for name in ("namespaces.yaml", "sources.yaml")
        for d in yaml.safe_load_all((repo / "examples/kustomize" / name).read_text(encoding="utf-8"))
        if d
    ]
    resource_list = {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": items}
    name = built.local_name("cfgsync-krm")
    entrypoint = built.storage.inspect(name)["OCIv1"]["config"]["Entrypoint"]

    with working_container(built.storage, name) as container:
        done = subprocess.run(
            ["buildah", "run", "--isolation", "chroot", container, "--", *entrypoint],
            input=yaml.safe_dump(resource_list),
            env=built.storage.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert done.returncode == 0, done.stderr
    output = yaml.safe_load(done.stdout)
    copies = [
        i for i in output["items"] if "kubed.appscode.com/origin" in i["metadata"].get("annotations", {})
    ]
    assert {c["metadata"]["name"] for c in copies} == {"company-ca"}


def test_cmp_image_serves_argocds_plugin_server_as_the_sidecar_runs_it(
    built: BuiltImages, argocd: ArgoCD, repo: Path, tmp_path: Path
) -> None:
    """The plugin image with Argo CD's own plugin server in it, mounted as deploy/argocd's sidecar mounts
    it (the server from the repo server's var-files, plugin.yaml, the socket directory, an own /tmp),
    running as user 999: the repo server's call through the shared socket returns the copies."""
    var_files, own_tmp = tmp_path / "var-files", tmp_path / "tmp"
    var_files.mkdir()
    own_tmp.mkdir(mode=0o777)
    own_tmp.chmod(0o777)  # an emptyDir the sidecar's user may write
    shutil.copy2(argocd.cmp_server, var_files / "argocd-cmp-server")
    sockets = Path(tempfile.mkdtemp(prefix="cmp-"))  # a unix socket's path is limited to 107 bytes
    sockets.chmod(0o777)  # shared with the repo server, which runs as 999 too
    request = basic_app_request(tmp_path / "git")
    mounts = {
        var_files: "/var/run/argocd:ro",
        sockets: "/home/argocd/cmp-server/plugins",
        PLUGIN_YAML: "/home/argocd/cmp-server/config/plugin.yaml:ro",
        own_tmp: "/tmp",  # noqa: S108 -- the container's /tmp, as the sidecar mounts its emptyDir
    }
    volumes = [arg for host, inside in mounts.items() for arg in ("-v", f"{host}:{inside}")]
    log = tmp_path / "sidecar.log"
    try:
        with (
            working_container(built.storage, built.local_name("cfgsync-cmp")) as container,
            log.open("wb") as out,
        ):
            proc = subprocess.Popen(
                [
                    "buildah",
                    "run",
                    "--isolation",
                    "chroot",
                    "--user",
                    "999:999",
                    *volumes,
                    container,
                    "--",
                    "/var/run/argocd/argocd-cmp-server",
                ],
                env=built.storage.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                server = PluginServer(
                    sockets=sockets, socket=sockets / socket_name(), log=log, workdir=own_tmp
                )

                def listening() -> bool:
                    assert proc.poll() is None, f"the sidecar exited:\n{tail(log)}"
                    return server.socket.is_socket()

                wait_for(listening, timeout=60, what="the plugin server in the image to listen")
                reply = call(argocd.client, server, request)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)

    assert reply.code == 0, f"{reply.error}\n{tail(log)}"
    golden = repo / "tests/gitops/golden/argocd-basic.yaml"
    assert reply.body["objects"] == [d for d in yaml.safe_load_all(golden.read_text(encoding="utf-8")) if d]


def container_service_account(deployment: Any) -> str:
    """The ServiceAccount the Deployment's pods run as."""
    name: str = deployment.spec.template.spec.service_account_name
    return name


class working_container:  # noqa: N801 -- used like contextlib's context managers
    """``buildah from`` an image (never pulling), removed on exit."""

    def __init__(self, storage: Storage, image: str) -> None:
        self.storage = storage
        self.image = image
        self.name = ""

    def __enter__(self) -> str:
        self.name = self.storage.run("buildah", "from", "--pull=never", "--quiet", self.image).stdout.strip()
        return self.name

    def __exit__(self, *exc: object) -> None:
        self.storage.run("buildah", "rm", self.name, check=False)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, read from /proc (the container's processes share the host's PIDs)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _stop_container(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM to the container's process, as the kubelet sends it (buildah run does not pass it on).

    Returns buildah's exit status, which is the container's. Anything still running after 30 seconds
    is killed and an error raised, so no process outlives the test.
    """
    if proc.poll() is None:
        for pid in _descendants(proc.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            # buildah's own helpers carry the command in their arguments too: only the process itself.
            if not argv[0].startswith(b"buildah") and b"/opt/cfgsync/bin/cfgsync" in argv:
                os.kill(pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        for pid in _descendants(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()
        raise
