"""``python -m controlplane up|down`` (what ``nox -s controlplane`` runs) works from a shell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from controlplane import Binaries
from controlplane.fixtures import api_client, object_names
from controlplane.harness import process_running

pytestmark = pytest.mark.timeout(180)

TESTS_DIR = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    return subprocess.run(
        [sys.executable, "-m", "controlplane", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_up_returns_a_running_control_plane_and_down_removes_it(
    controlplane_binaries: Binaries, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kube" / "config"

    started = _cli("up", "--kubeconfig", str(kubeconfig))
    try:
        state = json.loads(kubeconfig.with_name("config.controlplane.json").read_text(encoding="utf-8"))
        with api_client(kubeconfig) as api:
            core = client.CoreV1Api(api)
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="by-cli")))
            names = object_names(core.list_namespace())
        running_after_up = {name: process_running(pid) for name, pid in state["pids"].items()}
        again = _cli("up", "--kubeconfig", str(kubeconfig))
    finally:
        stopped = _cli("down", "--kubeconfig", str(kubeconfig))

    assert started.returncode == 0, started.stderr
    assert f"control plane ready at {state['server']}" in started.stdout
    assert "by-cli" in names
    assert running_after_up == {"etcd": True, "kube-apiserver": True}  # `up` returned, they keep running
    assert again.returncode == 1  # one control plane per kubeconfig file
    assert "already recorded" in again.stderr
    assert stopped.returncode == 0, stopped.stderr
    assert not [pid for pid in state["pids"].values() if process_running(pid)]
    assert not Path(state["workdir"]).exists()
    assert list(tmp_path.joinpath("kube").iterdir()) == []  # kubeconfig and state file are gone


def test_down_without_up_is_a_harmless_no_op(tmp_path: Path) -> None:
    result = _cli("down", "--kubeconfig", str(tmp_path / "config"))

    assert result.returncode == 0
    assert "nothing to stop" in result.stderr
