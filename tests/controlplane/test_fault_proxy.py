"""The fault proxy's modes as a TCP client sees them, against a toy echo server (no control plane).

What a client must see: ``pass`` echoes, ``hang`` neither answers nor closes (and resumes where it
stopped), ``reset`` is ECONNRESET, ``refuse`` is ECONNREFUSED, and after each the same port works again.
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.faults import FaultProxy, FaultProxyError, Mode
from controlplane.fixtures import wait_until

pytestmark = pytest.mark.timeout(60)

SILENCE = 0.5
"""Seconds a client waits to be sure no answer comes (only where the proof is an absence)."""
ANSWER = 10.0
"""Seconds a client waits for an answer that must come."""


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    """A TCP echo server on 127.0.0.1: it sends back what it reads, and closes after the client does."""
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="echo-server", daemon=True
    )
    thread.start()
    try:
        yield ("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def proxy(echo: tuple[str, int]) -> Iterator[FaultProxy]:
    """A fault proxy in front of the echo server."""
    with FaultProxy(echo) as running:
        yield running


def connect(proxy: FaultProxy) -> socket.socket:
    """A client connection through the proxy, with a timeout for the answers it must get."""
    return socket.create_connection(proxy.address, timeout=ANSWER)


def roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    """Send ``payload`` and read back as many bytes (or fewer, if the connection ends)."""
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def first_byte(proxy: FaultProxy) -> bytes:
    """Connect through the proxy and wait for the first byte (or the end) of an answer."""
    with connect(proxy) as client:
        return client.recv(1)


def assert_silent(sock: socket.socket) -> None:
    """Nothing arrives and the connection is not closed within ``SILENCE`` seconds."""
    sock.settimeout(SILENCE)
    with pytest.raises(TimeoutError):
        sock.recv(1)
    sock.settimeout(ANSWER)


def test_pass_forwards_both_ways_and_counts_bytes(proxy: FaultProxy) -> None:
    with connect(proxy) as client:
        echoed = roundtrip(client, b"hello")
        wait_until(lambda: proxy.stats().bytes_from_server == 5, "the echo to be counted")
        stats = proxy.stats()
        (conn,) = proxy.connections()

        assert echoed == b"hello"
        assert stats.accepted == 1
        assert stats.open == 1
        assert (stats.bytes_from_client, stats.bytes_from_server) == (5, 5)
        assert stats.new_connections is Mode.PASS
        assert conn.id == 1
        assert conn.client == client.getsockname()
        assert conn.mode is Mode.PASS
        assert conn.forwarded
        assert (conn.bytes_from_client, conn.bytes_from_server) == (5, 5)


def test_a_megabyte_each_way_arrives_intact(proxy: FaultProxy) -> None:
    payload = os.urandom(1024 * 1024)
    with connect(proxy) as client:
        sender = threading.Thread(target=client.sendall, args=(payload,))  # while reading: no deadlock
        sender.start()
        received = bytearray()
        while len(received) < len(payload):
            received += client.recv(65536)
        sender.join()

    assert bytes(received) == payload


def test_a_closed_client_closes_the_connection_through_the_proxy(proxy: FaultProxy) -> None:
    with connect(proxy) as client:
        assert roundtrip(client, b"bye") == b"bye"
        client.shutdown(socket.SHUT_WR)  # the echo server sees EOF and closes its side
        end = client.recv(1)

    assert end == b""
    wait_until(lambda: proxy.stats().open == 0, "the proxy to drop the finished connection")


def test_hang_on_new_connections_accepts_them_and_never_answers_until_forward(proxy: FaultProxy) -> None:
    proxy.hang(on="new")
    with connect(proxy) as client:  # the kernel accepts: connecting succeeds
        client.sendall(b"held")
        assert_silent(client)
        (conn,) = proxy.connections()
        assert conn.mode is Mode.HANG
        assert not conn.forwarded  # the target never saw this connection

        proxy.forward()
        resumed = client.recv(4)

    assert resumed == b"held"


def test_hang_on_existing_connections_stalls_them_and_spares_new_ones(proxy: FaultProxy) -> None:
    with connect(proxy) as old:
        assert roundtrip(old, b"before") == b"before"

        proxy.hang(on="existing")
        old.sendall(b"during")
        assert_silent(old)
        with connect(proxy) as new:
            fresh = roundtrip(new, b"new")
        proxy.forward(on="existing")
        resumed = old.recv(6)

    assert fresh == b"new"
    assert resumed == b"during"


def test_commands_can_name_one_connection(proxy: FaultProxy) -> None:
    with connect(proxy) as first, connect(proxy) as second:
        roundtrip(first, b"1")
        roundtrip(second, b"2")
        by_port = {conn.client[1]: conn.id for conn in proxy.connections()}

        proxy.hang(on=[by_port[first.getsockname()[1]]])
        first.sendall(b"x")
        assert_silent(first)
        still = roundtrip(second, b"y")
        proxy.reset(on=[by_port[second.getsockname()[1]]])
        with pytest.raises(ConnectionResetError):
            second.recv(1)
        proxy.forward(on=[by_port[first.getsockname()[1]]])
        resumed = first.recv(1)

    assert still == b"y"
    assert resumed == b"x"


def test_an_unknown_connection_id_is_an_error(proxy: FaultProxy) -> None:
    with pytest.raises(FaultProxyError, match=r"no open connection with id \[7\]"):
        proxy.hang(on=[7])


def test_reset_on_existing_connections_is_a_connection_reset(proxy: FaultProxy) -> None:
    with connect(proxy) as client:
        roundtrip(client, b"ok")

        proxy.reset(on="existing")

        with pytest.raises(ConnectionResetError):
            client.recv(1)
    assert proxy.stats().reset == 1
    with connect(proxy) as client:
        assert roundtrip(client, b"new ones pass") == b"new ones pass"


def test_reset_on_new_connections_accepts_then_resets_them(proxy: FaultProxy) -> None:
    proxy.reset(on="new")
    # The reset may arrive before connect() returns on loopback, or after: either way it is a reset.
    with pytest.raises(ConnectionResetError):
        first_byte(proxy)
    assert (proxy.stats().accepted, proxy.stats().reset) == (1, 1)

    proxy.forward()
    with connect(proxy) as client:
        assert roundtrip(client, b"back") == b"back"


def test_refuse_refuses_new_connections_resets_open_ones_and_keeps_the_port(proxy: FaultProxy) -> None:
    port = proxy.port
    with connect(proxy) as client:
        roundtrip(client, b"ok")

        proxy.refuse()

        with pytest.raises(ConnectionResetError):
            client.recv(1)
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)
    assert proxy.stats().new_connections is Mode.REFUSE
    with socket.socket() as squatter, pytest.raises(OSError, match="Address already in use"):
        squatter.bind(("127.0.0.1", port))  # nobody else can take the port meanwhile

    proxy.forward()

    assert proxy.port == port
    with connect(proxy) as client:
        assert roundtrip(client, b"listening again") == b"listening again"


def test_refuse_on_new_only_keeps_open_connections(proxy: FaultProxy) -> None:
    with connect(proxy) as client:
        proxy.refuse(on="new")

        with pytest.raises(ConnectionRefusedError):
            connect(proxy)
        assert roundtrip(client, b"still here") == b"still here"


def test_an_unreachable_target_resets_the_client() -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        target = closed.getsockname()
        with FaultProxy(target) as proxy, connect(proxy) as client:
            with pytest.raises(ConnectionResetError):
                roundtrip(client, b"anyone?")
            assert proxy.stats().reset == 1


def test_close_leaves_no_thread_and_no_socket(echo: tuple[str, int], tmp_path: Path) -> None:
    threads_before = set(threading.enumerate())
    proxy = FaultProxy(echo)
    proxy.start()
    port = proxy.port
    clients = [connect(proxy) for _ in range(4)]
    roundtrip(clients[0], b"a")
    proxy.hang(on=[2])
    proxy.reset(on=[3])
    proxy.hang(on="new")
    clients.append(connect(proxy))
    wait_until(lambda: proxy.stats().accepted == 5, "the fifth connection")
    during = _sockets_of_this_process()
    source = tmp_path / "kubeconfig"
    source.write_text(f'{{"server": "https://{echo[0]}:{echo[1]}"}}\n')
    kubeconfig = proxy.kubeconfig(source)

    proxy.close()
    proxy.close()  # idempotent

    for client in clients:
        client.close()
    after = _sockets_of_this_process()
    assert any(local == port for local, _ in during)
    assert not [s for s in after if s[0] == port], "a socket on the proxy's port is still open"
    assert not [s for s in after if s[1] == echo[1]], "a connection to the target is still open"
    assert not [t for t in threading.enumerate() if t.name.startswith("fault-proxy")]
    # The echo server's threads end once the proxy has closed their connections.
    wait_until(lambda: set(threading.enumerate()) <= threads_before, "the echo connections to end")
    assert not kubeconfig.exists()
    with pytest.raises(FaultProxyError, match="not started"):
        proxy.hang()


def test_kubeconfig_rewrites_the_server_in_json_and_yaml(proxy: FaultProxy, tmp_path: Path) -> None:
    host, port = proxy.target
    json_source = tmp_path / "admin.kubeconfig"
    json_source.write_text(f'{{"clusters": [{{"cluster": {{"server": "https://{host}:{port}"}}}}]}}\n')
    yaml_source = tmp_path / "other.yaml"
    yaml_source.write_text(f"clusters:\n- cluster:\n    server: https://{host}:{port}\n  name: c\n")
    longer = tmp_path / "longer.yaml"
    longer.write_text(f"clusters:\n- cluster:\n    server: https://{host}:{port}1\n")

    json_copy = proxy.kubeconfig(json_source)
    yaml_copy = proxy.kubeconfig(yaml_source, tmp_path / "out" / "via-proxy.yaml")

    assert json_copy.read_text() == json_source.read_text().replace(f":{port}", f":{proxy.port}")
    assert yaml_copy == tmp_path / "out" / "via-proxy.yaml"
    assert (
        yaml_copy.read_text()
        == f"clusters:\n- cluster:\n    server: https://127.0.0.1:{proxy.port}\n  name: c\n"
    )
    assert json_copy.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FaultProxyError, match=rf"{longer} names no server at {host}:{port}"):
        proxy.kubeconfig(longer)  # port 12341 is not port 1234


def test_a_bad_target_or_scope_is_refused_with_the_fix() -> None:
    with pytest.raises(FaultProxyError, match="needs a host and a port"):
        FaultProxy("https://127.0.0.1")
    with FaultProxy(("127.0.0.1", 9)) as proxy, pytest.raises(ValueError, match="'new', 'existing', 'both'"):
        proxy.hang(on="all")  # type: ignore[arg-type]  # the mistake under test


def _sockets_of_this_process() -> set[tuple[int, int]]:
    """(local port, remote port) of every TCP socket this process holds open."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    found = set()
    for line in Path("/proc/self/net/tcp").read_text(encoding="ascii").splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            found.add((int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)))
    return found
