"""The configuration snippets of docs/install.md do what the text says they do."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from deploy.chart import MANIFESTS, Helm, documents, find

DOC = Path(__file__).resolve().parents[2] / "docs" / "install.md"
IMAGE = "harbor.example.com/platform/cfgsync:0.1.0"


def snippet(first_line: str) -> str:
    """The YAML block of docs/install.md that starts with ``first_line``."""
    blocks: list[str] = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    found = [b for b in blocks if b.startswith(first_line)]
    assert len(found) == 1, f"docs/install.md: no single YAML block starting with {first_line!r}"
    return found[0]


def test_harbor_values_point_the_chart_at_the_private_registry(helm: Helm, tmp_path: Path) -> None:
    values = tmp_path / "values-harbor.yaml"
    values.write_text(snippet("image:"), encoding="utf-8")

    pod = find(documents(helm.template("-f", str(values))), "Deployment")["spec"]["template"]["spec"]

    assert pod["containers"][0]["image"] == IMAGE
    assert pod["imagePullSecrets"] == [{"name": "harbor-pull"}]
    assert "--cluster-name=unicorn" in pod["containers"][0]["args"]


def test_kustomization_points_the_plain_manifests_at_the_private_registry(
    kustomize: Path, tmp_path: Path
) -> None:
    (tmp_path / "kustomization.yaml").write_text(snippet("# kustomization.yaml"), encoding="utf-8")
    shutil.copy(MANIFESTS, tmp_path / "cfgsync.yaml")

    built = subprocess.run(
        [str(kustomize), "build", str(tmp_path)], capture_output=True, text=True, timeout=60, check=False
    )

    assert built.returncode == 0, built.stderr
    docs = documents(built.stdout)
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == IMAGE
    assert pod["imagePullSecrets"] == [{"name": "harbor-pull"}]
    assert len(docs) == len(documents(MANIFESTS.read_text(encoding="utf-8")))  # nothing lost
