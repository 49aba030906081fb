"""A kubed chart values file is never half-read: it fails naming each kubed key and what to write instead.

And an option given both as a chart value and in ``config.additionalOptions`` (kubed's way) becomes one
flag, the latter's. All through the real helm: ``helm template`` and ``helm lint``, as a user runs them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.chart import Helm, documents, find

HERE = Path(__file__).resolve().parent
CHART = str(HERE.parents[1] / "deploy" / "helm" / "cfgsync")
KUBED_VALUES = HERE / "values-kubed.yaml"
INSTALL_DOC = HERE.parents[1] / "docs" / "install.md"


def args(docs: list[dict[str, Any]]) -> list[str]:
    """The controller container's arguments."""
    found: list[str] = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    return found


def test_kubeds_values_file_fails_naming_each_key_and_its_equivalent(helm: Helm) -> None:
    result = helm.run("template", "cfgsync", CHART, "-f",
                      str(KUBED_VALUES), check=False)  # fmt: skip

    assert result.returncode != 0
    assert result.stdout == ""  # nothing rendered, so nothing half-applied
    lines = result.stderr.splitlines()
    assert [line.strip() for line in lines if "->" in line] == [
        "operator.registry -> image.registry",
        "operator.repository -> image.repository (the cfgsync image you built and pushed; "
        "kubed's image does not run cfgsync)",
        "operator.resources -> resources",
        "operator.tag -> image.tag",
    ]
    assert "docs/helm.md" in result.stderr


def test_lint_reports_kubeds_values_file_too(helm: Helm) -> None:
    # helm lint runs templates with `fail` downgraded to a note, so it exits 0; the note is the message.
    result = helm.run("lint", "--strict", CHART, "-f", str(KUBED_VALUES), check=False)

    assert "Fail: values of kubed's chart" in result.stderr
    assert "operator.registry -> image.registry" in result.stderr


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"kubed": {"registry": "appscode"}}, "kubed.registry -> image.registry"),
        ({"operator": {"securityContext": {}}}, "operator.securityContext -> securityContext"),
        ({"operator": {"healthcheck": True}}, "operator.healthcheck -> nothing: remove it"),
        ({"imagePullPolicy": "Always"}, "imagePullPolicy -> image.pullPolicy"),
        ({"logLevel": 3}, "logLevel -> config.logLevel (a name: DEBUG, INFO, WARNING or ERROR)"),
        ({"criticalAddon": False}, "criticalAddon -> priorityClassName (e.g. system-cluster-critical)"),
        ({"apiserver": {"enabled": False}}, "apiserver -> nothing: cfgsync serves no API; remove it"),
        ({"enableAnalytics": True}, "enableAnalytics -> nothing: cfgsync sends nothing anywhere; remove it"),
        (
            {"config": {"configSourceNamespace": "kube-system"}},
            "config.configSourceNamespace -> config.sourceNamespace",
        ),
        (
            {"config": {"kubeconfigContent": "apiVersion: v1"}},
            "config.kubeconfigContent -> config.kubeconfigSecret",
        ),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
def test_each_kubed_value_is_named_with_its_equivalent(
    helm: Helm, tmp_path: Path, values: dict[str, Any], expected: str
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")

    result = helm.run("template", "cfgsync", CHART, "-f", str(path),
                      check=False)  # fmt: skip

    assert result.returncode != 0
    assert expected in result.stderr


def test_kubeds_values_in_cfgsyncs_names_render_one_resync_flag(helm: Helm, tmp_path: Path) -> None:
    """docs/install.md's values-airgap.yaml: kubed's file translated; the resync period given kubed's way."""
    doc = INSTALL_DOC.read_text(encoding="utf-8")
    block = re.search(r"cat > values-airgap\.yaml <<EOF\n(.*?)\nEOF\n", doc, re.DOTALL)
    assert block is not None
    text = block.group(1).replace("$REGISTRY", "harbor.example.internal").replace("$PROJECT", "platform")
    values = tmp_path / "values-airgap.yaml"
    values.write_text(text.replace("$VERSION", "0.1.0"), encoding="utf-8")

    docs = documents(helm.template("-f", str(values)))

    container = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "harbor.example.internal/platform/cfgsync:0.1.0"
    assert (
        container["resources"]
        == yaml.safe_load(KUBED_VALUES.read_text(encoding="utf-8"))["operator"]["resources"]
    )
    assert [a for a in container["args"] if "resync-period" in a] == ["--resync-period=1m"]


@pytest.mark.parametrize(
    ("options", "flag", "expected"),
    [
        ([], "--resync-period", ["--resync-period=10m"]),
        (["resync-period=1m"], "--resync-period", ["--resync-period=1m"]),
        (["--resync-period=30s"], "--resync-period", ["--resync-period=30s"]),
        (["cluster-name=prod"], "--cluster-name", ["--cluster-name=prod"]),
        (["--log-level=DEBUG"], "--log-level", ["--log-level=DEBUG"]),
        (["config-source-namespace=ops"], "--config-source-namespace", ["--config-source-namespace=ops"]),
        (["resync-periods=1m"], "--resync-period", ["--resync-period=10m", "--resync-periods=1m"]),
    ],
)
def test_an_option_in_additional_options_replaces_the_charts_own(
    helm: Helm, tmp_path: Path, options: list[str], flag: str, expected: list[str]
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({"config": {"sourceNamespace": "platform", "additionalOptions": options}}),
        encoding="utf-8",
    )

    rendered = args(documents(helm.template("-f", str(values))))

    assert [a for a in rendered if a.startswith(flag)] == expected
