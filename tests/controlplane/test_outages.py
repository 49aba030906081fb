"""The control plane breaks on command: etcd stopped and started, the API server paused and resumed.

Each test sees the outage as a client does (``/readyz``, a request that times out) and checks that
nothing written before it is lost. These tests start control planes of their own: the session's must
stay healthy for everyone else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import urllib3
from kubernetes import client

from controlplane import Binaries, ControlPlane, ControlPlaneError
from controlplane.fixtures import wait_until
from controlplane.harness import process_running

pytestmark = pytest.mark.timeout(180)

TIMEOUT = 2.0
"""The request timeout of the client under test, in seconds."""
READYZ_TIMEOUT = 10.0
"""Seconds to wait for ``/readyz``: without etcd, its 500 takes about 4 s to come."""


@pytest.fixture(scope="module")
def plane(controlplane_binaries: Binaries) -> Iterator[ControlPlane]:
    """A control plane for this module alone, with the audit log on."""
    with ControlPlane(controlplane_binaries, audit=True) as started:
        yield started


@pytest.fixture
def core(plane: ControlPlane) -> Iterator[Any]:
    """A CoreV1Api for the admin, with retries off so a request shows the outage it met."""
    configuration = client.Configuration()
    load: Any = kubernetes.config.load_kube_config
    load(config_file=str(plane.kubeconfig), client_configuration=configuration, persist_config=False)
    configuration.retries = False
    with client.ApiClient(configuration) as api:
        yield client.CoreV1Api(api)


def configmap(name: str, value: str) -> client.V1ConfigMap:
    """A ConfigMap named ``name`` holding ``value``."""
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"value": value})


def readyz_status(plane: ControlPlane, timeout: float = READYZ_TIMEOUT) -> int | None:
    """The status of ``/readyz``, or None if the API server does not answer within ``timeout`` s."""
    try:
        return plane.readyz(timeout=timeout)[0]
    except OSError:
        return None


def wait_for_readyz(plane: ControlPlane, status: int) -> str:
    """Poll ``/readyz`` until it answers ``status``; return the body of that answer."""
    bodies: list[str] = []

    def answered() -> bool:
        try:
            code, body = plane.readyz(timeout=READYZ_TIMEOUT)
        except OSError:
            return False
        bodies.append(body)
        return code == status

    wait_until(answered, f"/readyz to answer {status}")
    return bodies[-1]


def process_state(pid: int) -> str:
    """The one-letter state of process ``pid`` (``S`` sleeping, ``T`` stopped, ...)."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    return stat.rpartition(")")[2].split()[0]


@pytest.mark.parametrize("graceful", [False, True], ids=["killed", "graceful"])
def test_stopping_etcd_makes_the_api_server_unready_and_starting_it_keeps_the_data(
    plane: ControlPlane, core: Any, graceful: bool
) -> None:
    name = f"before-outage-{graceful}".lower()
    core.create_namespaced_config_map("default", configmap(name, "kept"))
    etcd_url = plane.etcd_url
    old_etcd = plane.pids["etcd"]
    apiserver = plane.pids["kube-apiserver"]

    plane.stop_etcd(graceful=graceful)
    try:
        stopped = process_running(old_etcd), "etcd" in plane.pids
        unready = wait_for_readyz(plane, 500)
    finally:
        plane.start_etcd()  # returns once /readyz is ok again

    assert stopped == (False, False)
    assert "[-]etcd failed" in unready
    assert plane.readyz() == (200, "ok")
    assert plane.etcd_url == etcd_url
    assert plane.pids["etcd"] != old_etcd
    assert plane.pids["kube-apiserver"] == apiserver  # the API server rode it out
    kept = core.read_namespaced_config_map(name, "default")
    assert kept.data == {"value": "kept"}
    core.create_namespaced_config_map("default", configmap(f"after-{name}", "new"))
    assert core.read_namespaced_config_map(f"after-{name}", "default").data == {"value": "new"}


def test_a_paused_api_server_times_requests_out_and_answers_once_resumed(
    plane: ControlPlane, core: Any
) -> None:
    core.read_namespace("default")  # a kept-alive connection; unhurried, etcd may just have come back
    pid = plane.pids["kube-apiserver"]

    plane.pause_apiserver()
    try:
        state = process_state(pid)
        with pytest.raises(urllib3.exceptions.HTTPError) as failure:
            core.read_namespace("default", _request_timeout=TIMEOUT)
        unready = readyz_status(plane, TIMEOUT)
    finally:
        plane.resume_apiserver()

    assert state == "T"
    assert isinstance(failure.value, urllib3.exceptions.TimeoutError)
    assert unready is None  # no answer at all, not an error status
    assert process_state(pid) != "T"
    assert plane.pids["kube-apiserver"] == pid
    assert core.read_namespace("default", _request_timeout=TIMEOUT).metadata.name == "default"


def test_restart_apiserver_works_on_a_paused_one_and_the_audit_log_goes_on(
    plane: ControlPlane, core: Any
) -> None:
    core.create_namespaced_config_map("default", configmap("before-restart", "1"))
    paused = plane.pids["kube-apiserver"]
    plane.pause_apiserver()

    plane.restart_apiserver()

    assert not process_running(paused)
    assert plane.pids["kube-apiserver"] != paused
    core.create_namespaced_config_map("default", configmap("after-restart", "2"))
    names = {e.name for e in plane.audit_events() if e.verb == "create" and e.resource == "configmaps"}
    assert {"before-restart", "after-restart"} <= names


def test_misuse_is_refused_with_what_to_do(plane: ControlPlane) -> None:
    with pytest.raises(ControlPlaneError, match=r"etcd is running; stop_etcd\(\) stops it"):
        plane.start_etcd()
    with pytest.raises(ControlPlaneError, match="kube-apiserver is not paused"):
        plane.resume_apiserver()


def test_stop_cleans_up_a_paused_api_server_and_a_stopped_etcd(controlplane_binaries: Binaries) -> None:
    with ControlPlane(controlplane_binaries) as broken:
        pids = broken.pids
        workdir = broken.workdir
        broken.stop_etcd()
        broken.pause_apiserver()
        with pytest.raises(ControlPlaneError, match="etcd is already stopped"):
            broken.stop_etcd()

    assert not [pid for pid in pids.values() if process_running(pid)]
    assert not workdir.exists()
