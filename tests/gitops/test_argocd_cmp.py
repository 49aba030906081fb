"""``cfgsync argocd`` run exactly as ArgoCD's CMP server runs it.

Each test reads ``deploy/argocd/plugin.yaml`` and executes its ``generate`` or ``discover`` command
in a fresh process, in the Application's directory, with only ArgoCD's variables set.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import yaml

from cfgsync.cli import _argocd_env
from cfgsync.testing import assert_golden

from .helpers import REPO, documents, tool_env

PLUGIN = REPO / "deploy/argocd/plugin.yaml"
GOLDEN = Path(__file__).parent / "golden"
SECRET_VALUE = "cGxlYXNlLWRvLW5vdC1sZWFr"  # base64 of a value that must never reach stderr

Cmp = Callable[..., subprocess.CompletedProcess[str]]


def plugin_spec() -> Mapping[str, object]:
    spec = yaml.safe_load(PLUGIN.read_text())["spec"]
    assert isinstance(spec, dict)
    return spec


@pytest.fixture
def cmp(tmp_path: Path) -> Cmp:
    """Run one of plugin.yaml's commands as the CMP server does; ``parameters`` as ArgoCD encodes them."""

    def run(
        step: str,
        app: Path,
        *,
        parameters: list[dict[str, object]] | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        spec = plugin_spec()
        # discover: the CLI's mirror of plugin.yaml's rule (the server applies the rule itself).
        command = ["cfgsync", "argocd", "discover"] if step == "discover" else spec[step]["command"]  # type: ignore[index]
        argocd = {
            "ARGOCD_APP_NAME": "shared-config",
            "ARGOCD_APP_NAMESPACE": "demo",
            "ARGOCD_APP_REVISION": "0123456789abcdef0123456789abcdef01234567",
            "ARGOCD_APP_SOURCE_PATH": app.name,
            "ARGOCD_APP_SOURCE_REPO_URL": "https://git.example.invalid/platform/config.git",
            "ARGOCD_APP_SOURCE_TARGET_REVISION": "main",
            "KUBE_VERSION": "1.37.2",
            "KUBE_API_VERSIONS": "v1,apps/v1",
            "ARGOCD_APP_PARAMETERS": json.dumps(parameters or []),
            **(env or {}),
        }
        set_only = {name: value for name, value in argocd.items() if value is not None}  # None: unset
        return subprocess.run(
            command,
            cwd=app,
            env=tool_env(tmp_path, set_only),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


@pytest.fixture
def basic_app(tmp_path: Path) -> Path:
    """The basic example as an Application directory (a checkout, as the CMP server unpacks it)."""
    app = tmp_path / "app"
    shutil.copytree(REPO / "examples/basic", app)
    return app


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_generate_prints_the_apps_objects_and_their_copies(cmp: Cmp, basic_app: Path) -> None:
    result = cmp("generate", basic_app)

    assert result.returncode == 0, result.stderr
    assert_golden(result.stdout, GOLDEN / "argocd-basic.yaml")
    objects = documents(result.stdout)
    assert all({"apiVersion", "kind", "metadata"} <= set(o) for o in objects)
    assert not any(o["kind"] == "SyncRule" for o in objects)  # an instruction, carried out, not applied
    assert result.stderr == "cfgsync: 17 objects, 8 of them copies\n"


def test_copies_only_are_what_render_prints(cmp: Cmp, basic_app: Path, tmp_path: Path) -> None:
    result = cmp("generate", basic_app, parameters=[{"name": "output", "string": "copies"}])
    rendered = subprocess.run(
        ["cfgsync", "render", "."],
        cwd=basic_app,
        env=tool_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == rendered.stdout


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("null", id="null: a plugin section without parameters (argo-cd#11900)"),
        pytest.param("[]", id="an empty list"),
        pytest.param(None, id="unset"),
    ],
)
def test_no_parameters_in_any_encoding_means_the_defaults(cmp: Cmp, basic_app: Path, raw: str | None) -> None:
    defaults = cmp("generate", basic_app)
    result = cmp("generate", basic_app, env={"ARGOCD_APP_PARAMETERS": raw})

    assert result.returncode == 0, result.stderr
    assert result.stdout == defaults.stdout
    assert result.stderr == "cfgsync: 17 objects, 8 of them copies\n"


def test_settings_from_parameters_override_the_plugin_env(cmp: Cmp, basic_app: Path) -> None:
    env = {
        "ARGOCD_ENV_CFGSYNC_CLUSTER_NAME": "from-env",
        "ARGOCD_ENV_CFGSYNC_EXCLUDE_NAMESPACES": "legacy, team-b",
    }
    from_env = cmp("generate", basic_app, env=env)
    both = cmp("generate", basic_app, env=env, parameters=[{"name": "cluster-name", "string": "from-param"}])

    assert from_env.returncode == both.returncode == 0, from_env.stderr + both.stderr
    copies = [
        o
        for o in documents(from_env.stdout)
        if "kubed.appscode.com/origin" in o["metadata"].get("annotations", {})
    ]
    assert {c["metadata"]["labels"]["kubed.appscode.com/origin.cluster"] for c in copies} == {"from-env"}
    assert {c["metadata"]["namespace"] for c in copies} == {"platform", "team-a"}
    assert "kubed.appscode.com/origin.cluster: from-param" in both.stdout
    assert "from-env" not in both.stdout


@pytest.mark.parametrize(
    ("parameters", "env", "message"),
    [
        ([{"name": "clustername", "string": "x"}], {}, "unknown parameter 'clustername'"),
        (
            [{"name": "exclude-namespaces", "string": "a"}],
            {},
            "parameter 'exclude-namespaces' takes an array, not a string",
        ),
        (
            [{"name": "cluster-name", "map": {"eu": "prod-eu"}}],
            {},
            "parameter 'cluster-name' takes a string, not a map",
        ),
        ([{"name": "cluster-name"}], {}, "parameter 'cluster-name' takes a string, but has no value"),
        ('{"name": "cluster-name", "string": "x"}', {}, "must be a JSON list of parameters"),
        ([{"name": "output", "string": "everything"}], {}, "it must be one of all, copies"),
        ([], {"ARGOCD_ENV_CFGSYNC_CLUSTERNAME": "x"}, "ARGOCD_ENV_CFGSYNC_CLUSTERNAME: unknown setting"),
        ("[" + "9" * 5000 + "]", {}, "not JSON cfgsync reads (a number too long"),
        ("[" * 5000 + "]" * 5000, {}, "not JSON cfgsync reads (a number too long or lists nested too deep)"),
        (
            [{"name": "exclude-namespaces-regex", "array": ["\ud800"]}],
            {},
            "holds a character that is not valid Unicode text",
        ),
    ],
)
def test_unknown_or_invalid_settings_are_errors(
    cmp: Cmp, basic_app: Path, parameters: list[dict[str, object]] | str, env: dict[str, str], message: str
) -> None:
    if isinstance(parameters, str):  # sent as it is, not as a list
        result = cmp("generate", basic_app, env={**env, "ARGOCD_APP_PARAMETERS": parameters})
    else:
        result = cmp("generate", basic_app, parameters=parameters, env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_announced_parameters_are_the_ones_cfgsync_knows_with_the_same_defaults() -> None:
    announced = plugin_spec()["parameters"]["static"]  # type: ignore[index]
    known = {p.name: p for p in _argocd_env.PARAMETERS}

    assert [p["name"] for p in announced] == list(known)
    for param in announced:
        expected = known[param["name"]]
        if expected.array:
            assert (param["collectionType"], tuple(param["array"])) == ("array", expected.default)
        else:
            assert param["string"] == expected.default


def test_empty_output_fails_unless_allowed(cmp: Cmp, tmp_path: Path) -> None:
    app = tmp_path / "empty-app"
    write(app / "cfgsync.yaml", "")
    write(app / "notes.yaml", "# nothing here yet\n")

    refused = cmp("generate", app)
    allowed = cmp("generate", app, parameters=[{"name": "allow-empty", "string": "true"}])

    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "ArgoCD would prune every object" in refused.stderr
    assert "allow-empty=true" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout == ""


def test_no_copies_with_copies_only_is_empty_output_too(cmp: Cmp, tmp_path: Path) -> None:
    app = tmp_path / "app"
    write(app / "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain, namespace: demo}\n")

    result = cmp("generate", app, parameters=[{"name": "output", "string": "copies"}])

    assert result.returncode == 1
    assert "yields no copies" in result.stderr


def test_declared_namespaces_come_from_cfgsync_yaml_and_are_not_emitted(cmp: Cmp, tmp_path: Path) -> None:
    app = tmp_path / "app"
    write(
        app / "cfgsync.yaml",
        # What `kubectl get namespaces -o yaml` prints, trimmed.
        "apiVersion: v1\nkind: NamespaceList\nitems:\n"
        "- apiVersion: v1\n  kind: Namespace\n  metadata: {name: shop, labels: {tier: web}}\n"
        "- apiVersion: v1\n  kind: Namespace\n  metadata: {name: batch, labels: {tier: jobs}}\n",
    )
    write(
        app / "sources/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-settings\n  namespace: platform\n"
        "  annotations: {kubed.appscode.com/sync: tier=web}\ndata: {timeout: '30'}\n",
    )

    result = cmp("generate", app)

    assert result.returncode == 0, result.stderr
    objects = [
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in documents(result.stdout)
    ]
    assert objects == [("ConfigMap", "platform", "web-settings"), ("ConfigMap", "shop", "web-settings")]


def test_cfgsync_yaml_holds_namespaces_only(cmp: Cmp, tmp_path: Path) -> None:
    app = tmp_path / "app"
    write(app / "cfgsync.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: demo}\n")

    result = cmp("generate", app)

    assert result.returncode == 1
    assert "cfgsync.yaml:1: cfgsync.yaml declares namespaces only" in result.stderr


def test_objects_without_namespace_are_in_the_apps_namespace(cmp: Cmp, tmp_path: Path) -> None:
    app = tmp_path / "app"
    write(app / "cfgsync.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: web}\n")
    source = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n"
        "  annotations: {kubed.appscode.com/sync: ''}\n"
    )
    write(app / "source.yaml", source + "data: {a: b}\n")

    result = cmp("generate", app, env={"ARGOCD_APP_NAMESPACE": "apps"})

    assert result.returncode == 0, result.stderr
    source_out, copy = documents(result.stdout)
    assert "namespace" not in source_out["metadata"]  # emitted as given; ArgoCD places it
    assert copy["metadata"]["namespace"] == "web"
    assert copy["metadata"]["labels"]["kubed.appscode.com/origin.namespace"] == "apps"


def test_a_committed_copy_is_replaced_not_duplicated_and_a_stale_one_dropped(
    cmp: Cmp, basic_app: Path
) -> None:
    rendered = cmp("generate", basic_app, parameters=[{"name": "output", "string": "copies"}]).stdout
    old = rendered.replace("live: once", "live: twice")
    stale = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gone\n  namespace: team-a\n  labels:\n"
        "    kubed.appscode.com/origin.name: gone\n    kubed.appscode.com/origin.namespace: demo\n"
        "    kubed.appscode.com/origin.cluster: ''\n"
    )
    write(basic_app / "committed-copies.yaml", old + "---\n" + stale)

    result = cmp("generate", basic_app)

    assert result.returncode == 0, result.stderr
    idents = [
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in documents(result.stdout)
    ]
    assert len(idents) == len(set(idents))
    assert ("ConfigMap", "team-a", "gone") not in idents
    assert "live: twice" not in result.stdout


def test_stderr_never_holds_secret_values(cmp: Cmp, tmp_path: Path) -> None:
    app = tmp_path / "app"
    write(app / "cfgsync.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: web}\n")
    write(
        app / "secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\n  namespace: demo\n"
        f"  annotations: {{kubed.appscode.com/sync: ''}}\ndata: {{token: {SECRET_VALUE}}}\n"
        # An unmanaged Secret holding the copy's name: a conflict, reported on stderr.
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: token, namespace: web}\n"
        f"data: {{token: {SECRET_VALUE}}}\n",
    )

    result = cmp("generate", app)

    assert result.returncode == 0, result.stderr
    assert "warning: conflict" in result.stderr
    assert SECRET_VALUE not in result.stderr
    assert "please-do-not-leak" not in result.stderr


def test_non_manifest_yaml_is_an_error_with_file_and_line(cmp: Cmp, basic_app: Path) -> None:
    write(basic_app / "values.yaml", "replicas: 3\n")

    result = cmp("generate", basic_app)

    assert result.returncode == 1
    assert result.stdout == ""
    assert "values.yaml:1: not a Kubernetes object" in result.stderr


@pytest.mark.parametrize(
    ("files", "expected", "hint"),
    [
        ({"cfgsync.yaml": ""}, "cfgsync.yaml\n", ""),
        (
            {"rules/r.yaml": (REPO / "examples/basic/syncrule.yaml").read_text()},
            "",
            "hint: rules/r.yaml hold SyncRules but",
        ),
        (
            {"cfgsync.yaml": "", "rules/r.yaml": (REPO / "examples/basic/syncrule.yaml").read_text()},
            "cfgsync.yaml\n",
            "",
        ),
        ({"sub/cfgsync.yaml": ""}, "", ""),  # the rule looks at the Application's directory only
        ({"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: b}\n"}, "", ""),
        ({"other.yaml": "apiVersion: example.com/v1\nkind: SyncRule\nmetadata: {name: a}\n"}, "", ""),
    ],
)
def test_discover_prints_the_marker_and_hints_at_rules_without_it(
    cmp: Cmp, tmp_path: Path, files: dict[str, str], expected: str, hint: str
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    for name, text in files.items():
        write(app / name, text)

    result = cmp("discover", app)

    assert result.returncode == 0, result.stderr
    assert result.stdout == expected  # what plugin.yaml's discover rule matches
    assert (hint in result.stderr) if hint else result.stderr == ""


@pytest.mark.parametrize("example", ["pull", "replicator", "reflector"])
def test_each_vocabulary_generates_once_per_object_as_render_does(
    cmp: Cmp, tmp_path: Path, example: str
) -> None:
    app = tmp_path / example
    shutil.copytree(REPO / "examples" / example, app)
    write(app / "cfgsync.yaml", "")

    result = cmp("generate", app)

    assert result.returncode == 0, result.stderr
    objects = documents(result.stdout)
    idents = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(idents) == len(set(idents))  # a pulled target replaces its own manifest
    rendered = {
        (o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o
        for o in yaml.safe_load_all((GOLDEN.parents[1] / "cli" / "golden" / f"{example}.yaml").read_text())
        if o is not None
    }
    emitted = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects}
    assert {k: emitted[k] for k in rendered} == rendered
