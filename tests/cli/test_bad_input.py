"""Inputs that cannot hurt: every reader (render, diff, argocd generate, krm) ends a bad input in an error
at ``file:line`` that never holds a Secret's value, never in a traceback, never after minutes of work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

VALUE = "hunter2-S3cr3tV4lue"
"""A Secret value that must never appear in any output."""


def secret_doc(data: str) -> str:
    """A Secret whose ``data`` block is ``data`` (indented under it)."""
    return (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\n  namespace: platform\n"
        '  annotations: {kubed.appscode.com/sync: ""}\ndata:\n' + textwrap.indent(data, "  ")
    )


@dataclass(frozen=True)
class Case:
    """A bad document, the line where the error points (in the document), and what the error says.

    ``line`` None: the error names the input and some line in it (a bound was crossed somewhere).
    ``parsing``: found while reading YAML (``name:line:column``); else about an object, which the KRM
    function names by its item (``items[1]``) and the others by the object's ``file:line``.
    """

    document: str
    line: int | None
    says: str
    parsing: bool = True


BILLION_LAUGHS = "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" if i else "l0: &l0 [x, x, x, x, x, x, x, x, x]\n"
    for i in range(10)
)
DEEP = "[" * 5000 + "]" * 5000
ALMOST_DEEP = "[" * 995 + "]" * 995  # within libyaml's limit, beyond what Python's stack can walk

CASES = {
    "int tag": Case(secret_doc(f"token: !!int {VALUE}\n"), 8, "tagged !!int is not an integer"),
    "float tag": Case(secret_doc(f"token: !!float {VALUE}\n"), 8, "tagged !!float is not a number"),
    "bool tag": Case(secret_doc(f"token: !!bool {VALUE}\n"), 8, "tagged !!bool is not true or false"),
    "duplicate key": Case(secret_doc(f"token: {VALUE}\ntoken: other\n"), 9, "duplicate key"),
    "unknown escape": Case(secret_doc(f'token: "{VALUE}\\q"\n'), 8, "malformed YAML"),
    "colon in a plain value": Case(secret_doc(f"token: {VALUE}: x\n"), 8, "malformed YAML"),
    "unclosed quote": Case(secret_doc(f'token: "{VALUE}\n'), 9, "malformed YAML"),
    "list as a key": Case(secret_doc(f"? [a, b]\n: {VALUE}\n"), 8, "a key is a list or mapping"),
    "undefined alias": Case(secret_doc("token: *nothing\n"), 8, "alias"),
    "billion laughs": Case(secret_doc(BILLION_LAUGHS), None, "aliases expand this document"),
    "deep nesting": Case(secret_doc(f"token: {DEEP}\n"), 8, "nesting depth"),
    "nesting within the parser's limit": Case(
        secret_doc(f"token: {ALMOST_DEEP}\n"), 8, "deeper than 200 levels"
    ),
    "hex integer of thousands of digits": Case(
        secret_doc(f"token: 0x{'f' * 4000}\n"), 8, "an integer of more than 1000 digits"
    ),
    "decimal integer of thousands of digits": Case(
        secret_doc(f"token: {'9' * 5000}\n"), 8, "an integer of more than 1000 digits"
    ),
    "binary tag": Case(
        secret_doc("token: !!binary aGVsbG8=\n"), 1, "data.token must be a string, got bytes", parsing=False
    ),
    "set tag": Case(
        secret_doc("token: !!set {a, b}\n"), 1, "data.token must be a string, got set", parsing=False
    ),
    "key that is no string": Case(
        secret_doc(f"1.10: {VALUE}\n"), 1, "data key 1.1 is not a string; quote it", parsing=False
    ),
    "key written twice, once unquoted": Case(
        secret_doc(f"9000: {VALUE}\n'9000': other\n"), 1, "duplicate key", parsing=False
    ),
    "Secret data where the namespace belongs": Case(
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace:\n    password: {VALUE}\n",
        1,
        "Secret ?/db",
        parsing=False,
    ),
    "namespace that is no string": Case(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: false\n",
        1,
        "metadata.namespace must be a string, got bool",
        parsing=False,
    ),
    "metadata is a list": Case(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [a, b]\ndata: {a: b}\n", 1, "metadata", parsing=False
    ),
    "binaryData on a Secret": Case(
        secret_doc(f"token: {VALUE}\n") + "binaryData:\n  blob: aGVsbG8=\n",
        1,
        "a Secret has no binaryData",
        parsing=False,
    ),
    "invalid label key": Case(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: platform\n"
        "  labels: {'bad key!': x}\n  annotations: {kubed.appscode.com/sync: ''}\n",
        1,
        "metadata.labels key 'bad key!' is invalid",
        parsing=False,
    ),
    "invalid label value": Case(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: platform\n"
        f"  labels: {{team: '{'x' * 64}'}}\n",
        1,
        "metadata.labels.team value",
        parsing=False,
    ),
    "invalid annotation key": Case(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: platform\n"
        "  annotations: {'Example.com/x': y}\n",
        1,
        "metadata.annotations key 'Example.com/x' is invalid",
        parsing=False,
    ),
}

# Where the document starts in each front end's input, and how that front end names the input.
PREFIX_LINES = {"render": 0, "diff": 0, "argocd": 0, "krm": 6}


def krm_input(document: str) -> str:
    return (
        "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n"
        "- apiVersion: v1\n  kind: Namespace\n  metadata: {name: platform}\n"
        "- " + textwrap.indent(document, "  ").lstrip(" ")
    )


def run(front_end: str, document: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run one front end on ``document``; return the result and the name its errors use for the input."""
    env = {**os.environ, "CFGSYNC_PLUGINS": "", "ARGOCD_APP_NAMESPACE": "platform"}
    cfgsync = [sys.executable, "-m", "cfgsync"]
    app = tmp_path / "app"
    app.mkdir()
    source = app / "sources.yaml"
    source.write_text(document)
    commands = {
        "render": [*cfgsync, "render", str(source)],
        "diff": [*cfgsync, "diff", str(app), "--against", str(tmp_path / "rendered")],
        "argocd": [*cfgsync, "argocd", "generate", str(app)],
        "krm": [*cfgsync, "krm"],
    }
    stdin = krm_input(document) if front_end == "krm" else None
    done = subprocess.run(
        commands[front_end], input=stdin, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return done, "<stdin>" if front_end == "krm" else str(source)


@pytest.mark.parametrize("front_end", ["render", "diff", "argocd", "krm"])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_an_error_at_its_place_never_a_traceback_never_a_secret(
    tmp_path: Path, front_end: str, case: Case
) -> None:
    done, name = run(front_end, case.document, tmp_path)
    # The KRM function hands its items back on stdout, as the pipeline needs them; what it *says* is
    # stderr and the results.
    said = done.stderr + (done.stdout.partition("\nresults:")[2] if front_end == "krm" else done.stdout)

    assert done.returncode in {1, 2}, said
    assert "Traceback" not in said
    assert VALUE not in said
    assert case.says in said
    if front_end == "krm" and not case.parsing:
        assert "items[1]" in said
    elif case.line is None:
        assert f"{name}:" in said
    else:
        assert f"{name}:{case.line + PREFIX_LINES[front_end]}" in said


TCP_SERVICES = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "tcp-services",
        "namespace": "platform",
        "annotations": {"kubed.appscode.com/sync": ""},
    },
}
WEB = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}


@pytest.mark.parametrize("front_end", ["render", "argocd", "krm"])
def test_unquoted_integer_and_boolean_keys_are_read_as_kubectl_reads_them(
    tmp_path: Path, front_end: str
) -> None:
    # ingress-nginx documents its tcp-services ConfigMap with unquoted port numbers as keys.
    data = "data:\n  9000: default/example-go:8080\n  on: x\n"
    objects = [yaml.safe_dump(WEB), yaml.safe_dump(TCP_SERVICES) + data]
    app = tmp_path / "app"
    app.mkdir()
    (app / "objects.yaml").write_text("---\n".join(objects))
    stdin = None
    if front_end == "krm":
        items = "".join("- " + textwrap.indent(o, "  ").lstrip() for o in objects)
        stdin = f"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n{items}"
    args = {"render": ["render", str(app)], "argocd": ["argocd", "generate", str(app)], "krm": ["krm"]}
    done = subprocess.run(
        [sys.executable, "-m", "cfgsync", *args[front_end]],
        input=stdin,
        env={**os.environ, "CFGSYNC_PLUGINS": "", "ARGOCD_APP_NAMESPACE": "platform"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    out = list(yaml.safe_load_all(done.stdout))
    emitted = out[0]["items"] if front_end == "krm" else out
    copy = next(o for o in emitted if o["metadata"].get("namespace") == "web")
    assert copy["data"] == {"9000": "default/example-go:8080", "true": "x"}


def test_stdin_that_is_not_utf8_is_an_error_naming_where(tmp_path: Path) -> None:
    env = {**os.environ, "CFGSYNC_PLUGINS": ""}
    data = b"apiVersion: v1\nkind: ConfigMap\ndata:\n  a: caf\xe9\n"
    for args in (["render", "-"], ["krm"]):
        done = subprocess.run(
            [sys.executable, "-m", "cfgsync", *args],
            input=data,
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1
        assert b"Traceback" not in done.stderr
        assert b"<stdin>:4:9: not UTF-8 text" in done.stderr


SOURCE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: flags
  namespace: platform
  annotations: {kubed.appscode.com/sync: ""}
data: {a: b}
---
apiVersion: v1
kind: Namespace
metadata: {name: web}
"""


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--cluster-name", "east cluster"], "--cluster-name 'east cluster' is invalid"),
        (["--cluster-name", "x" * 64], "becomes the kubed.appscode.com/origin.cluster label"),
        (["--source-namespace", "Platform"], "--source-namespace 'Platform' is not a valid namespace name"),
        (["--exclude-namespace", "Team_A"], "'Team_A' is not a namespace name or glob"),
    ],
)
def test_invalid_settings_are_refused_before_anything_is_rendered(
    tmp_path: Path, args: list[str], says: str
) -> None:
    source = tmp_path / "sources.yaml"
    source.write_text(SOURCE)
    done = subprocess.run(
        [sys.executable, "-m", "cfgsync", "render", str(source), *args],
        env={**os.environ, "CFGSYNC_PLUGINS": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stdout == ""
    assert says in done.stderr


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"ARGOCD_ENV_CFGSYNC_CLUSTER_NAME": "east/1"}, "setting cluster-name (plugin parameter"),
        ({"ARGOCD_ENV_CFGSYNC_SOURCE_NAMESPACE": "kube_system"}, "nothing would be copied"),
    ],
)
def test_invalid_argocd_settings_are_refused(tmp_path: Path, env: dict[str, str], says: str) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "sources.yaml").write_text(SOURCE)
    done = subprocess.run(
        [sys.executable, "-m", "cfgsync", "argocd", "generate", str(app)],
        env={**os.environ, "CFGSYNC_PLUGINS": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stdout == ""
    assert says in done.stderr


def test_a_list_nested_in_a_list_is_read_not_ignored(tmp_path: Path) -> None:
    source = tmp_path / "list.yaml"
    nested = "\n".join("    " + line for line in SOURCE.split("---\n", maxsplit=1)[0].splitlines())
    source.write_text(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  -\n"
        + nested
        + "\n- {apiVersion: v1, kind: Namespace, metadata: {name: web}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "cfgsync", "render", str(source)],
        env={**os.environ, "CFGSYNC_PLUGINS": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "name: flags\n  namespace: web\n" in done.stdout
