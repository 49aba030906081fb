"""The fault proxy in front of the real API server, as the official Kubernetes client sees each mode.

The client is built as a controller would build it from a kubeconfig, but without urllib3's retries,
so each request shows the fault it met rather than a retry's outcome.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import urllib3
from kubernetes import client, watch

from controlplane import ControlPlane
from controlplane.faults import FaultProxy, Mode
from controlplane.fixtures import wait_until

pytestmark = pytest.mark.timeout(120)

new_watch: Callable[[], Any] = watch.Watch  # the watch helper carries no annotations

TIMEOUT = 2.0
"""The request timeout of the client under test, in seconds."""
SILENCE = 1.0
"""Seconds to wait to be sure an event does not arrive (only where the proof is an absence)."""


def direct_client(kubeconfig: Path, *, user_agent: str = "fault-proxy-test") -> Any:
    """A ``kubernetes.client.ApiClient`` from ``kubeconfig`` with retries off."""
    configuration = client.Configuration()
    load: Any = kubernetes.config.load_kube_config
    load(config_file=str(kubeconfig), client_configuration=configuration, persist_config=False)
    configuration.retries = False
    api = client.ApiClient(configuration)
    api.user_agent = user_agent
    return api


@pytest.fixture
def core(control_plane: ControlPlane, fault_proxy: FaultProxy) -> Iterator[Any]:
    """A CoreV1Api talking to the API server through the fault proxy, as the admin."""
    with direct_client(fault_proxy.kubeconfig(control_plane.kubeconfig)) as api:
        yield client.CoreV1Api(api)


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it wraps (``__cause__``, ``__context__``, urllib3's ``reason``)."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or current in found:
            continue
        found.append(current)
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending += [arg for arg in current.args if isinstance(arg, BaseException)]
    return found


def close_sockets_left_open(exc: BaseException) -> None:
    """Close the sockets the frames of ``exc``'s tracebacks hold open.

    When a reset arrives before the TLS handshake, ``ssl.SSLSocket._create`` (CPython 3.11) re-raises
    the reset without closing the socket it has just made; left to the garbage collector, it would
    surface as a ResourceWarning in whichever test runs then.
    """
    for cause in causes(exc):
        tb = cause.__traceback__
        while tb is not None:
            for value in tb.tb_frame.f_locals.values():
                if isinstance(value, socket.socket) and value.fileno() != -1:
                    value.close()
            tb = tb.tb_next


def read_default(core: Any) -> str:
    """GET the ``default`` namespace; return its name."""
    name: str = core.read_namespace("default", _request_timeout=TIMEOUT).metadata.name
    return name


def configmap(name: str) -> client.V1ConfigMap:
    """A small ConfigMap named ``name``."""
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"k": "v"})


def test_pass_forwards_real_requests_and_counts_them(
    control_plane: ControlPlane, fault_proxy: FaultProxy
) -> None:
    with direct_client(fault_proxy.kubeconfig(control_plane.kubeconfig)) as api:
        name = read_default(client.CoreV1Api(api))
        stats = fault_proxy.stats()

    assert name == "default"
    assert fault_proxy.url == f"https://127.0.0.1:{fault_proxy.port}"
    assert stats.accepted == 1
    assert stats.bytes_from_client > 0
    assert stats.bytes_from_server > stats.bytes_from_client  # TLS handshake and a JSON namespace back
    wait_until(lambda: fault_proxy.stats().open == 0, "the closed client's connection to end", timeout=10)


def test_hang_makes_a_request_time_out_and_the_write_never_lands(
    control_plane: ControlPlane, core: Any, fault_proxy: FaultProxy, namespace: str
) -> None:
    read_default(core)  # a kept-alive connection, as a controller has
    fault_proxy.hang()
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.HTTPError) as failure:
        core.create_namespaced_config_map(namespace, configmap("while-hung"), _request_timeout=TIMEOUT)
    waited = time.monotonic() - started
    (hung,) = fault_proxy.connections()

    assert any(isinstance(c, TimeoutError | urllib3.exceptions.TimeoutError) for c in causes(failure.value))
    assert TIMEOUT <= waited < TIMEOUT + 3
    assert hung.mode is Mode.HANG
    # A hung connection keeps the request bytes; forwarding it would deliver them late, as TCP does when
    # a stalled path recovers. Reset it so the write is lost for good, then carry on.
    fault_proxy.reset(on="existing")
    fault_proxy.forward()
    core.create_namespaced_config_map(namespace, configmap("after"), _request_timeout=TIMEOUT)

    def created() -> set[str]:
        return {
            e.name for e in control_plane.audit_events() if e.namespace == namespace and e.verb == "create"
        }

    wait_until(lambda: "after" in created(), "the create through the proxy to be logged")
    assert created() == {"after"}


def test_hang_on_a_new_connection_times_out_in_the_tls_handshake(core: Any, fault_proxy: FaultProxy) -> None:
    fault_proxy.hang()
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.HTTPError) as failure:
        read_default(core)  # no connection yet: it is made, and hangs
    waited = time.monotonic() - started

    assert any(isinstance(c, TimeoutError | urllib3.exceptions.TimeoutError) for c in causes(failure.value))
    assert TIMEOUT <= waited < TIMEOUT + 3
    assert [c.forwarded for c in fault_proxy.connections()] == [False]
    fault_proxy.forward()
    assert read_default(core) == "default"


def test_reset_is_a_connection_reset_and_forward_recovers(core: Any, fault_proxy: FaultProxy) -> None:
    read_default(core)
    port = fault_proxy.port
    fault_proxy.reset()

    with pytest.raises(urllib3.exceptions.HTTPError) as failure:
        read_default(core)
    close_sockets_left_open(failure.value)

    assert any(isinstance(c, ConnectionResetError) for c in causes(failure.value)), causes(failure.value)
    assert fault_proxy.stats().reset >= 2  # the kept-alive connection, then the new one
    fault_proxy.forward()
    assert read_default(core) == "default"
    assert fault_proxy.port == port


def test_refuse_is_connection_refused_and_forward_listens_on_the_same_port(
    core: Any, fault_proxy: FaultProxy
) -> None:
    read_default(core)
    port = fault_proxy.port
    fault_proxy.refuse()

    with pytest.raises(urllib3.exceptions.HTTPError) as failure:
        read_default(core)

    assert any(isinstance(c, ConnectionRefusedError) for c in causes(failure.value)), causes(failure.value)
    fault_proxy.forward()
    assert read_default(core) == "default"
    assert fault_proxy.port == port


def test_a_hung_watch_goes_silent_and_resumes(
    control_plane: ControlPlane, core: Any, fault_proxy: FaultProxy, kube_api: Any, namespace: str
) -> None:
    direct = client.CoreV1Api(kube_api)
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    watcher = new_watch()

    def consume() -> None:
        try:
            for event in watcher.stream(core.list_namespaced_config_map, namespace, timeout_seconds=60):
                events.put((event["type"], event["object"].metadata.name))
        except (urllib3.exceptions.HTTPError, OSError):
            pass  # the proxy closed the connection at the end of the test

    consumer = threading.Thread(target=consume, name="watch-consumer", daemon=True)
    consumer.start()
    try:
        direct.create_namespaced_config_map(namespace, configmap("before"))
        assert events.get(timeout=30) == ("ADDED", "before")
        (watch_connection,) = fault_proxy.connections()

        fault_proxy.hang(on=[watch_connection.id])
        direct.create_namespaced_config_map(namespace, configmap("during"))
        with pytest.raises(queue.Empty):
            events.get(timeout=SILENCE)
        fault_proxy.forward(on=[watch_connection.id])

        assert events.get(timeout=30) == ("ADDED", "during")
    finally:
        watcher.stop()
        fault_proxy.reset()  # ends the stream now rather than at its server timeout
        consumer.join(30)
    assert not consumer.is_alive()


def test_the_restricted_identity_stays_itself_through_the_proxy(
    control_plane: ControlPlane, fault_proxy: FaultProxy
) -> None:
    kubeconfig = fault_proxy.kubeconfig(control_plane.restricted_kubeconfig)
    with direct_client(kubeconfig) as api, pytest.raises(client.ApiException) as denied:
        client.CoreV1Api(api).list_namespace(_request_timeout=TIMEOUT)

    assert denied.value.status == 403
    assert 'User "cfgsync-restricted"' in json.loads(str(denied.value.body))["message"]
