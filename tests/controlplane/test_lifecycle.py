"""The harness cleans up after itself: no process or file survives, whatever way a run ends.

Several tests run an inner pytest session (the same fixtures a real run uses) and check, from outside,
what is left once it has finished, failed, been interrupted or been killed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from controlplane import Binaries, ControlPlane, harness
from controlplane.fixtures import api_client, object_names
from controlplane.harness import process_running

pytestmark = pytest.mark.timeout(180)

TESTS_DIR = Path(__file__).resolve().parents[1]

INNER_TESTS = """
import json, os, signal
from pathlib import Path

def record(plane):
    Path(os.environ["RECORD"]).write_text(json.dumps({"pids": plane.pids, "workdir": str(plane.workdir)}))

def test_fails(control_plane):
    record(control_plane)
    assert False, "this test fails on purpose"

def test_passes(control_plane, namespace):
    record(control_plane)

def test_blocks(control_plane):
    record(control_plane)
    signal.pause()  # until the outer test interrupts this run
"""


def _inner_pytest(tmp_path: Path, test: str) -> tuple[subprocess.Popen[str], Path]:
    """Start an inner pytest session running one of ``INNER_TESTS`` with the control-plane fixtures."""
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TESTS), encoding="utf-8")
    record = tmp_path / "record.json"
    record.unlink(missing_ok=True)
    env = {**os.environ, "RECORD": str(record), "PYTHONPATH": str(TESTS_DIR)}
    command = [sys.executable, "-m", "pytest", "-p", "controlplane.fixtures", "-p", "no:cacheprovider",
               "-q", "--rootdir", str(tmp_path), "-c", os.devnull, f"test_inner.py::{test}"]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return proc, record


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def _recorded(record: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(record.read_text(encoding="utf-8"))
    assert set(data["pids"]) == {"etcd", "kube-apiserver"}
    return data


def _finish(proc: subprocess.Popen[str]) -> str:
    output, _ = proc.communicate(timeout=60)
    return output


def test_a_failing_run_then_a_passing_run_both_leave_nothing_behind(
    controlplane_binaries: Binaries, tmp_path: Path
) -> None:
    failing, record = _inner_pytest(tmp_path, "test_fails")
    failing_output = _finish(failing)
    first = _recorded(record)
    passing, record = _inner_pytest(tmp_path, "test_passes")
    passing_output = _finish(passing)
    second = _recorded(record)

    assert failing.returncode == 1, failing_output
    assert "1 failed" in failing_output
    assert passing.returncode == 0, passing_output
    assert "1 passed" in passing_output
    for run in (first, second):
        assert not [pid for pid in run["pids"].values() if process_running(pid)]
        assert not Path(run["workdir"]).exists()
    assert first["workdir"] != second["workdir"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_stops_the_control_plane(
    controlplane_binaries: Binaries, tmp_path: Path, signum: signal.Signals
) -> None:
    proc, record = _inner_pytest(tmp_path, "test_blocks")
    _wait_for(lambda: record.exists() or proc.poll() is not None, "the inner run to start its control plane")
    run = _recorded(record)

    proc.send_signal(signum)
    output = _finish(proc)

    assert proc.returncode != 0, output
    assert not [pid for pid in run["pids"].values() if process_running(pid)]
    assert not Path(run["workdir"]).exists()


def test_a_killed_run_takes_its_processes_with_it(controlplane_binaries: Binaries, tmp_path: Path) -> None:
    proc, record = _inner_pytest(tmp_path, "test_blocks")
    _wait_for(lambda: record.exists() or proc.poll() is not None, "the inner run to start its control plane")
    run = _recorded(record)

    proc.kill()  # SIGKILL: no finalizer, no atexit; only the kernel can clean up
    _finish(proc)

    _wait_for(lambda: not any(process_running(pid) for pid in run["pids"].values()), "the orphans to die", 10)
    shutil.rmtree(run["workdir"])  # the files are the one thing a SIGKILLed run cannot remove


def test_stop_leaves_no_child_process_and_no_file(controlplane_binaries: Binaries) -> None:
    others = set(_children_of_this_process())  # the session's control plane, if an earlier test started it
    with ControlPlane(controlplane_binaries) as plane:
        pids = plane.pids
        workdir = plane.workdir
        running = {name: process_running(pid) for name, pid in pids.items()}

    assert running == {"etcd": True, "kube-apiserver": True}
    assert not [pid for pid in pids.values() if process_running(pid)]
    assert set(_children_of_this_process()) == others, "a child process survived stop()"
    assert not workdir.exists()


def test_two_control_planes_in_a_row_are_independent(controlplane_binaries: Binaries) -> None:
    others = set(_children_of_this_process())  # the session's control plane, if an earlier test started it
    with ControlPlane(controlplane_binaries) as first:
        _create_namespace(first, "from-the-first")
    with ControlPlane(controlplane_binaries) as second:
        names = _namespace_names(second)

    assert second.pids == {}
    assert "from-the-first" not in names  # fresh etcd, fresh data
    assert "default" in names
    assert set(_children_of_this_process()) == others


def test_restart_apiserver_keeps_port_and_data(controlplane_binaries: Binaries) -> None:
    with ControlPlane(controlplane_binaries) as plane:
        _create_namespace(plane, "survives-restart")
        before = dict(plane.pids)
        server = plane.server

        plane.restart_apiserver()

        after = dict(plane.pids)
        assert plane.server == server
        assert after["etcd"] == before["etcd"]
        assert after["kube-apiserver"] != before["kube-apiserver"]
        assert not process_running(before["kube-apiserver"])
        assert "survives-restart" in _namespace_names(plane)


def test_a_port_taken_before_the_server_binds_it_is_retried(
    controlplane_binaries: Binaries, monkeypatch: pytest.MonkeyPatch
) -> None:
    picks: list[list[int]] = []
    pick_free_ports = harness._free_loopback_ports

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        def first_pick_collides(count: int) -> list[int]:
            ports = pick_free_ports(count)
            if not picks:
                ports[0] = taken  # etcd's client port, bound by someone else in between
            picks.append(ports)
            return ports

        monkeypatch.setattr(harness, "_free_loopback_ports", first_pick_collides)
        with ControlPlane(controlplane_binaries) as plane:
            etcd_url = plane.etcd_url
            names = _namespace_names(plane)

    assert len(picks) == 2
    assert etcd_url != f"http://127.0.0.1:{taken}"
    assert "default" in names


def test_nothing_listens_beyond_loopback(control_plane: ControlPlane) -> None:
    listening = {name: _listening_addresses(pid) for name, pid in control_plane.pids.items()}
    api_port = int(control_plane.server.rsplit(":", 1)[1])
    etcd_port = int(control_plane.etcd_url.rsplit(":", 1)[1])

    assert listening["kube-apiserver"] == {("127.0.0.1", api_port)}
    assert {addr for addr, _ in listening["etcd"]} == {"127.0.0.1"}
    assert ("127.0.0.1", etcd_port) in listening["etcd"]
    assert len(listening["etcd"]) == 2  # client and peer port, nothing else


def _create_namespace(plane: ControlPlane, name: str) -> None:
    with api_client(plane.kubeconfig) as api:
        client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))


def _namespace_names(plane: ControlPlane) -> set[str]:
    with api_client(plane.kubeconfig) as api:
        return object_names(client.CoreV1Api(api).list_namespace())


def _children_of_this_process() -> list[int]:
    """Live processes whose parent is this test process and that run a control-plane binary."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
            exe = os.readlink(entry / "exe")
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == os.getpid() and state != "Z" and Path(exe).name in {"etcd", "kube-apiserver"}:
            children.append(int(entry.name))
    return children


def _listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket and every bound UDP socket that ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text(encoding="ascii").splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            listening = state == "0A" if table.startswith("tcp") else True
            if inode in inodes and listening:
                found.add(_decode_address(local))
    return found


def _decode_address(hex_address: str) -> tuple[str, int]:
    address, port = hex_address.split(":")
    if len(address) == 8:  # IPv4, little-endian
        octets = bytes.fromhex(address)[::-1]
        return ".".join(str(b) for b in octets), int(port, 16)
    return f"ipv6:{address}", int(port, 16)
