"""cfgsync behind Argo CD's own plugin server, called the way argocd-repo-server calls it.

One ``argocd-cmp-server`` (built from Argo CD's Go module) runs for the session with the repository's
deploy/argocd/plugin.yaml. Each test lays out a repository checkout and sends the Application's source
through ``cmp-client``, which uses Argo CD's client package, discovery and repo-stream sender and builds
the plugin's environment as the repo server does. What the tests assert is what an Argo CD user sees:
the source type Argo CD picks, the manifests it would apply, and the error it would show.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from cfgsync.cli import _argocd_env

from .argocd_cmp import PLUGIN_YAML, PluginServer, Reply, call, socket_name
from .argocd_fixtures import ArgoCD
from .helpers import REPO, documents, tool_env

pytestmark = pytest.mark.timeout(180)

GOLDEN = Path(__file__).parent / "golden" / "argocd-basic.yaml"
APP_PATH = "apps/shared-config"
"""Where the Application's directory sits in the test repository (``spec.source.path``)."""
REVISION = "0123456789abcdef0123456789abcdef01234567"
SYNC_RULE = (REPO / "examples/basic/syncrule.yaml").read_text(encoding="utf-8")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def checkout(tmp_path: Path, files: Mapping[str, str]) -> Path:
    """A repository checkout with ``files`` in the Application's directory, and a neighbour elsewhere."""
    repo = tmp_path / "repo"
    for name, text in files.items():
        write(repo / APP_PATH / name, text)
    (repo / APP_PATH).mkdir(parents=True, exist_ok=True)
    write(repo / "apps/other/README.md", "another team's directory: sent along, as Argo CD sends the repo\n")
    return repo


def basic_checkout(tmp_path: Path) -> Path:
    """examples/basic as an Application directory, with the cfgsync.yaml that discovery looks for."""
    repo = checkout(tmp_path, {"cfgsync.yaml": ""})
    shutil.copytree(REPO / "examples/basic", repo / APP_PATH, dirs_exist_ok=True)
    return repo


def application(
    call_name: str,
    repo: Path,
    *,
    plugin: Mapping[str, Any] | None = None,
    namespace: str = "demo",
    kube_version: str = "v1.34.2",
) -> dict[str, Any]:
    """The request for one Application whose ``spec.source`` is ``APP_PATH`` with ``plugin``.

    Without ``plugin`` the source has no ``plugin:`` section (nor any other type): Argo CD discovers it.
    """
    source: dict[str, Any] = {
        "repoURL": "https://git.example.invalid/platform/config.git",
        "path": APP_PATH,
        "targetRevision": "main",
    }
    if plugin is not None:
        source["plugin"] = plugin
    return {
        "call": call_name,
        "repoPath": str(repo),
        "appName": "shared-config",
        "namespace": namespace,
        "project": "platform",
        "repoURL": source["repoURL"],
        "revision": REVISION,
        "source": source,
        "kubeVersion": kube_version,
        "apiVersions": ["v1", "apps/v1", "cfgsync.io/v1alpha1"],
    }


def env_of(reply: Reply) -> dict[str, str]:
    """The environment the client gave the plugin (as the repo server builds it)."""
    return dict(entry.split("=", 1) for entry in reply.body.get("env", []))


def copies(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if "kubed.appscode.com/origin" in o["metadata"].get("annotations", {})]


def test_the_server_serves_plugin_yaml_under_its_name_with_discovery_configured(
    argocd: ArgoCD, cmp_server: PluginServer, tmp_path: Path
) -> None:
    reply = call(
        argocd.client, cmp_server, {"call": "CheckPluginConfiguration", "socket": cmp_server.socket.name}
    )

    assert reply.code == 0, reply.error
    assert cmp_server.socket.name == socket_name() == "cfgsync-v1.sock"  # what Applications name
    assert reply.body["isDiscoveryConfigured"] is True
    assert reply.body["provideGitCreds"] is False  # the repository's credentials never reach cfgsync
    assert f"v{argocd.version.removeprefix('v')}+unknown" in cmp_server.log.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("files", "supported"),
    [
        pytest.param({"cfgsync.yaml": ""}, True, id="an empty cfgsync.yaml"),
        pytest.param({"cfgsync.yaml": "", "rules.yaml": SYNC_RULE}, True, id="cfgsync.yaml and rules"),
        pytest.param({"rules.yaml": SYNC_RULE}, False, id="rules without cfgsync.yaml"),
        pytest.param({"sub/cfgsync.yaml": ""}, False, id="cfgsync.yaml in a subdirectory"),
        pytest.param(
            {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"}, False, id="plain"
        ),
    ],
)
def test_match_repository_follows_the_discover_rule_and_cfgsync_discover_agrees(
    argocd: ArgoCD, cmp_server: PluginServer, tmp_path: Path, files: dict[str, str], supported: bool
) -> None:
    repo = checkout(tmp_path, files)
    request = application("MatchRepository", repo) | {"socket": cmp_server.socket.name}

    reply = call(argocd.client, cmp_server, request)
    local = subprocess.run(
        ["cfgsync", "argocd", "discover"],
        cwd=repo / APP_PATH,
        env=tool_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert reply.code == 0, reply.error
    assert reply.body.get("isSupported", False) is supported
    assert reply.body["isDiscoveryEnabled"] is True
    assert bool(local.stdout) is supported  # docs/argocd.md: run it in a checkout to see what Argo CD sees
    assert "argocd discover" not in cmp_server.log.read_text(encoding="utf-8")  # no process per question


@pytest.mark.parametrize(
    ("files", "source_type"),
    [
        pytest.param({"cfgsync.yaml": "", "kustomization.yaml": "resources: []\n"}, "Plugin", id="kustomize"),
        pytest.param({"cfgsync.yaml": "", "Chart.yaml": "name: c\nversion: 0.1.0\n"}, "Plugin", id="helm"),
        pytest.param({"kustomization.yaml": "resources: []\n"}, "Kustomize", id="kustomize alone"),
        pytest.param({"rules.yaml": SYNC_RULE}, "Directory", id="rules alone"),
    ],
)
def test_plugins_are_asked_before_helm_and_kustomize(
    argocd: ArgoCD, cmp_server: PluginServer, tmp_path: Path, files: dict[str, str], source_type: str
) -> None:
    reply = call(argocd.client, cmp_server, application("AppSourceType", checkout(tmp_path, files)))

    assert reply.code == 0, reply.error
    assert reply.body["sourceType"] == source_type


def test_naming_the_plugin_does_not_bypass_its_discover_rule(
    argocd: ArgoCD, cmp_server: PluginServer, tmp_path: Path
) -> None:
    repo = checkout(tmp_path, {"rules.yaml": SYNC_RULE})

    reply = call(
        argocd.client, cmp_server, application("GenerateManifest", repo, plugin={"name": "cfgsync-v1"})
    )

    assert reply.code == 1
    assert reply.body["sourceType"] == "Plugin"
    assert (
        'could not find cmp-server plugin with name "cfgsync-v1" supporting the given repository'
        in reply.error
    )


@pytest.mark.parametrize(
    ("plugin", "parameters"),
    [
        pytest.param(None, None, id="no plugin section: found by discovery"),
        pytest.param({"name": "cfgsync-v1"}, "null", id="named, no parameters (argo-cd#11900)"),
        pytest.param({}, "null", id="plugin: {} (any plugin whose rule matches)"),
    ],
)
def test_generate_through_argocd_prints_the_apps_objects_and_their_copies(
    argocd: ArgoCD,
    cmp_server: PluginServer,
    tmp_path: Path,
    plugin: Mapping[str, Any] | None,
    parameters: str | None,
) -> None:
    repo = basic_checkout(tmp_path)

    reply = call(argocd.client, cmp_server, application("GenerateManifest", repo, plugin=plugin))

    assert reply.code == 0, reply.error
    assert reply.body["sourceType"] == "Plugin"
    assert env_of(reply).get("ARGOCD_APP_PARAMETERS") == parameters
    assert reply.body["objects"] == documents(GOLDEN.read_text(encoding="utf-8"))


def test_string_array_parameters_and_plugin_env_reach_cfgsync(
    argocd: ArgoCD, cmp_server: PluginServer, tmp_path: Path
) -> None:
    repo = basic_checkout(tmp_path)
    plugin = {
        "name": "cfgsync-v1",
        # $ARGOCD_APP_NAMESPACE is expanded by the repo server, as in an Application.
        "env": [{"name": "CFGSYNC_SOURCE_NAMESPACE", "value": "$ARGOCD_APP_NAMESPACE"}],
        "parameters": [
            {"name": "cluster-name", "string": "prod-eu"},
            {"name": "exclude-namespaces", "array": ["team-b", "leg*"]},
            {"name": "output", "string": "copies"},
        ],
    }

    reply = call(argocd.client, cmp_server, application("GenerateManifest", repo, plugin=plugin))

    assert reply.code == 0, reply.error
    env = env_of(reply)
    assert env["ARGOCD_ENV_CFGSYNC_SOURCE_NAMESPACE"] == "demo"
    assert env["PARAM_EXCLUDE_NAMESPACES_1"] == "leg*"
    assert env["KUBE_VERSION"] == "1.34.2"  # without the leading v
    assert env["KUBE_API_VERSIONS"] == "v1,apps/v1,cfgsync.io/v1alpha1"
    objects = reply.body["objects"]
    assert objects == copies(objects)  # output: copies
    placed = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects}
    # Sources in demo only (omni, registry-pull), never into team-b or legacy.
    assert placed == {("platform", "omni"), ("team-a", "omni"), ("team-a", "registry-pull")}
    assert {o["metadata"]["labels"]["kubed.appscode.com/origin.cluster"] for o in objects} == {"prod-eu"}


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        (
            {"name": "cluster-name", "map": {"eu": "prod-eu"}},
            "parameter 'cluster-name' takes a string, not a map",
        ),
        ({"name": "exclude-namespaces", "string": "team-b"}, "takes an array, not a string"),
        ({"name": "clustername", "string": "x"}, "unknown parameter 'clustername'"),
    ],
)
def test_a_parameter_cfgsync_cannot_take_fails_the_sync_with_cfgsync_message(
    argocd: ArgoCD, cmp_server: PluginServer, tmp_path: Path, parameter: dict[str, Any], message: str
) -> None:
    plugin = {"name": "cfgsync-v1", "parameters": [parameter]}

    reply = call(
        argocd.client, cmp_server, application("GenerateManifest", basic_checkout(tmp_path), plugin=plugin)
    )

    assert reply.code == 1
    assert "`cfgsync argocd generate` failed exit status 1" in reply.error
    assert message in reply.error  # cfgsync's stderr, as the Application's sync error shows it
    assert "objects" not in reply.body


def test_an_old_cluster_version_reaches_cfgsync(
    argocd: ArgoCD, cmp_server: PluginServer, tmp_path: Path
) -> None:
    source = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen-settings\n  namespace: platform\n"
        "  annotations: {kubed.appscode.com/sync: ''}\nimmutable: true\ndata: {a: b}\n"
    )
    namespaces = "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n"
    repo = checkout(tmp_path, {"cfgsync.yaml": namespaces, "source.yaml": source})
    before = cmp_server.log.read_text(encoding="utf-8").count("(KUBE_VERSION) may not support")

    reply = call(
        argocd.client,
        cmp_server,
        application("GenerateManifest", repo, plugin={"name": "cfgsync-v1"}, kube_version="v1.20.15"),
    )

    assert reply.code == 0, reply.error
    assert env_of(reply)["KUBE_VERSION"] == "1.20.15"
    assert [o["immutable"] for o in copies(reply.body["objects"])] == [True]
    # cfgsync's warning on stderr: the plugin server logs it with the command's output.
    after = cmp_server.log.read_text(encoding="utf-8").count("(KUBE_VERSION) may not support")
    assert after == before + 1


def test_the_parameters_argocd_shows_are_plugin_yaml_s_and_cfgsync_s(
    argocd: ArgoCD, cmp_server: PluginServer, tmp_path: Path
) -> None:
    announced = yaml.safe_load(PLUGIN_YAML.read_text(encoding="utf-8"))["spec"]["parameters"]["static"]

    reply = call(
        argocd.client,
        cmp_server,
        application("GetParametersAnnouncement", basic_checkout(tmp_path), plugin={"name": "cfgsync-v1"}),
    )

    assert reply.code == 0, reply.error
    shown = reply.body["parameterAnnouncements"]
    assert [p["name"] for p in shown] == [p.name for p in _argocd_env.PARAMETERS]
    for got, declared in zip(shown, announced, strict=True):
        assert got["title"] == declared["title"]
        assert got.get("collectionType", "") == declared.get("collectionType", "")
        assert got.get("string", "") == declared.get("string", "")
        assert got.get("array", []) == declared.get("array", [])
