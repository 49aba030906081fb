"""A loopback TCP proxy that breaks connections on command: forward, hang, reset or refuse.

Tests put it between a client (a controller replica) and the API server to see what the client does
when its connections stall, are reset, or cannot be made. It forwards raw TCP, so TLS passes through
untouched (the test serving certificate names 127.0.0.1, whatever the port).

Does I/O: binds a port on 127.0.0.1, opens connections to the target, and runs one background thread
(a ``selectors`` loop) that owns every socket. Commands from other threads are handed to that thread
and take effect before they return. ``close`` (or leaving the ``with`` block) closes every socket and
joins the thread.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import errno
import re
import selectors
import shutil
import socket
import struct
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from .build import ControlPlaneError

LOOPBACK = "127.0.0.1"

Scope = Literal["new", "existing", "both"]
"""Which connections a command applies to: those accepted from now on, those open now, or both."""

_T = TypeVar("_T")
_CHUNK = 65536  # bytes read per recv: a few TLS records
_BACKLOG = 128
_COMMAND_TIMEOUT = 10.0  # seconds a command may wait for the proxy thread; it answers in microseconds
_RST_LINGER = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST instead of FIN


class Mode(enum.Enum):
    """What the proxy does with a connection."""

    PASS = "pass"
    """Forward bytes both ways."""
    HANG = "hang"
    """Accept, then never move a byte either way (a stalled server or a dead network path)."""
    RESET = "reset"
    """Close with a TCP RST (connection reset by peer)."""
    REFUSE = "refuse"
    """Nothing listens on the port: connection refused. Open connections are reset."""


class FaultProxyError(ControlPlaneError):
    """The proxy was used wrongly (not started, closed) or failed internally."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionInfo:
    """A snapshot of one open connection through the proxy."""

    id: int
    """Increasing from 1 in the order the proxy accepted connections; commands can name it."""
    client: tuple[str, int]
    """The client's address and port (its source port tells which client socket this is)."""
    mode: Mode
    """``Mode.PASS`` or ``Mode.HANG``."""
    forwarded: bool
    """Whether a connection to the target was made for it (a connection that only ever hung has none)."""
    opened: float
    """When it was accepted, on ``time.monotonic()``."""
    last_activity: float
    """When bytes last moved, on ``time.monotonic()`` (``opened`` if none ever did)."""
    bytes_from_client: int
    """Bytes read from the client (forwarded to the target, or waiting to be)."""
    bytes_from_server: int
    """Bytes read from the target (forwarded to the client, or waiting to be)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyStats:
    """Counters since the proxy started; bytes include connections already closed."""

    new_connections: Mode
    """What happens to the next connection: ``PASS``, ``HANG``, ``RESET`` or ``REFUSE``."""
    accepted: int
    """Connections accepted (including those reset right away)."""
    open: int
    """Connections open now."""
    reset: int
    """Connections the proxy closed with a RST (on command, or because the target was unreachable)."""
    bytes_from_client: int
    """Bytes read from clients."""
    bytes_from_server: int
    """Bytes read from the target."""


class FaultProxy:
    """Forwards TCP connections from 127.0.0.1:``port`` to ``target``; breaks them on command.

    Each command (``forward``, ``hang``, ``reset``, ``refuse``) applies to ``on``: ``"new"``
    connections (accepted from now on), ``"existing"`` ones (open now), ``"both"`` (the default), or a
    collection of connection ids (see ``connections()``). Hung connections keep their bytes in the
    kernel's buffers, so ``forward()`` resumes them where they stopped. After ``refuse()`` nothing
    listens, yet the port stays reserved, so a later command listens on the same port again.
    """

    def __init__(self, target: str | tuple[str, int], *, port: int = 0) -> None:
        """Prepare, but do not start, a proxy to ``target`` (a URL such as ``https://127.0.0.1:6443``
        or a ``(host, port)`` pair); ``port`` 0 picks a free one."""
        if isinstance(target, str):
            parsed = urllib.parse.urlsplit(target)
            if not parsed.hostname or parsed.port is None:
                raise FaultProxyError(
                    f"target {target!r} needs a host and a port, e.g. https://127.0.0.1:6443"
                )
            self._scheme: str | None = parsed.scheme
            self._target = (parsed.hostname, parsed.port)
        else:
            self._scheme = None
            self._target = target
        self._requested_port = port
        self._port = 0
        self._selector: selectors.DefaultSelector | None = None
        self._thread: threading.Thread | None = None
        self._waker: tuple[socket.socket, socket.socket] | None = None
        self._commands: collections.deque[tuple[Callable[[], Any], Future[Any]]] = collections.deque()
        self._placeholder: socket.socket | None = None
        self._listener: socket.socket | None = None
        self._new_mode = Mode.PASS
        self._connections: dict[int, _Connection] = {}
        self._next_id = 1
        self._accepted = 0
        self._reset = 0
        self._bytes_from_client = 0
        self._bytes_from_server = 0
        self._failure: BaseException | None = None
        self._stopping = False
        self._files: Path | None = None

    # -- public face ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the proxy listens on (kept through ``refuse``)."""
        if not self._port:
            raise FaultProxyError("the proxy is not started; call start() or use it in a with block")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        """``("127.0.0.1", port)``."""
        return (LOOPBACK, self.port)

    @property
    def url(self) -> str:
        """The target URL with the proxy's address in it (needs a URL target)."""
        if self._scheme is None:
            raise FaultProxyError("the proxy's target was given as (host, port); it has no URL")
        return f"{self._scheme}://{LOOPBACK}:{self.port}"

    @property
    def target(self) -> tuple[str, int]:
        """Where connections are forwarded to."""
        return self._target

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        """Bind the port, start listening (mode ``PASS``) and start the proxy thread."""
        if self._thread is not None:
            raise FaultProxyError("this proxy is already started")
        selector = selectors.DefaultSelector()
        waker = socket.socketpair()
        try:
            # The placeholder holds the port while nothing listens (``refuse``): bound with SO_REUSEPORT
            # only, so the listener can share it and nobody without SO_REUSEPORT can take it, and never
            # listening, so it receives no connection.
            placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                placeholder.bind((LOOPBACK, self._requested_port))
            except OSError:
                placeholder.close()
                raise
        except BaseException:
            selector.close()
            for end in waker:
                end.close()
            raise
        self._selector = selector
        self._waker = waker
        self._placeholder = placeholder
        self._port = placeholder.getsockname()[1]
        for end in waker:
            end.setblocking(False)
        selector.register(waker[0], selectors.EVENT_READ, self._run_commands)
        try:
            self._listen()
        except BaseException:
            self._release_sockets()
            raise
        self._thread = threading.Thread(target=self._loop, name=f"fault-proxy-{self._port}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Close every connection and the port, stop the thread, remove written kubeconfigs; idempotent.

        Raises ``FaultProxyError`` if the proxy thread failed (a bug in the proxy, not a client's fault).
        """
        thread = self._thread
        if thread is not None:
            if thread.is_alive():
                with contextlib.suppress(FaultProxyError):
                    self._call(self._shutdown)
                thread.join(_COMMAND_TIMEOUT)
                if thread.is_alive():
                    raise FaultProxyError(f"proxy thread {thread.name} did not stop")
            self._thread = None
            self._release_sockets()
        if self._files is not None:
            shutil.rmtree(self._files, ignore_errors=True)
            self._files = None
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise FaultProxyError(f"the proxy thread failed: {failure!r}") from failure

    def forward(self, on: Scope | Collection[int] = "both") -> None:
        """Forward bytes: new connections are passed to the target, hung ones resume.

        A resumed connection delivers what its client sent while it hung, even if the client has given
        up and closed it since, as TCP does when a stalled path recovers: a write the client believes
        timed out may still reach the server. ``reset(on="existing")`` first if the test means it lost.
        """
        self._command(Mode.PASS, on)

    def hang(self, on: Scope | Collection[int] = "both") -> None:
        """Stop moving bytes: new connections are accepted and never forwarded, open ones stall."""
        self._command(Mode.HANG, on)

    def reset(self, on: Scope | Collection[int] = "both") -> None:
        """Reset with a TCP RST: open connections now, new ones right after they are accepted."""
        self._command(Mode.RESET, on)

    def refuse(self, on: Scope | Collection[int] = "both") -> None:
        """Stop listening, so connecting is refused (``ECONNREFUSED``); open connections are reset.

        The port stays reserved: ``forward``, ``hang`` or ``reset`` on new connections listen again on it.
        """
        self._command(Mode.REFUSE, on)

    def connections(self) -> tuple[ConnectionInfo, ...]:
        """The open connections, oldest first."""
        return self._call(lambda: tuple(conn.info() for conn in self._connections.values()))

    def stats(self) -> ProxyStats:
        """Counters since the proxy started."""
        return self._call(self._stats)

    def kubeconfig(self, source: Path, dest: Path | None = None) -> Path:
        """Copy kubeconfig ``source`` with every server URL naming the target rewritten to the proxy.

        Works for JSON and YAML kubeconfigs (the URL is replaced as text; certificates and users are
        kept). ``dest`` defaults to a file in a directory of the proxy's that ``close`` removes. The copy
        is private (mode 0600). Returns its path.
        """
        host, port = self._target
        pattern = re.compile(rf"(?<=://){re.escape(host)}:{port}(?![0-9])")
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise FaultProxyError(f"cannot read kubeconfig {source}: {exc}") from exc
        rewritten, count = pattern.subn(f"{LOOPBACK}:{self.port}", text)
        if count == 0:
            raise FaultProxyError(
                f"kubeconfig {source} names no server at {host}:{port}; "
                "give the proxy the URL that kubeconfig's cluster uses as its target"
            )
        if dest is None:
            if self._files is None:
                self._files = Path(tempfile.mkdtemp(prefix=f"cfgsync-fault-proxy-{self.port}-"))
            dest = self._files / f"{len(list(self._files.iterdir())) + 1}-{source.name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.touch(mode=0o600)
        dest.chmod(0o600)
        dest.write_text(rewritten, encoding="utf-8")
        return dest

    # -- commands, run on the proxy thread -----------------------------------------------------------

    def _command(self, mode: Mode, on: Scope | Collection[int]) -> None:
        if isinstance(on, str):
            if on not in ("new", "existing", "both"):
                raise ValueError(f"on={on!r}: use 'new', 'existing', 'both' or a collection of ids")
            ids: Collection[int] | None = None
            new, existing = on in ("new", "both"), on in ("existing", "both")
        else:
            ids, new, existing = frozenset(on), False, True
        self._call(lambda: self._apply(mode, new=new, existing=existing, ids=ids))

    def _apply(self, mode: Mode, *, new: bool, existing: bool, ids: Collection[int] | None) -> None:
        if ids is not None and (unknown := set(ids) - set(self._connections)):
            raise FaultProxyError(f"no open connection with id {sorted(unknown)}; see connections()")
        if existing:
            for conn in list(self._connections.values()):
                if ids is not None and conn.id not in ids:
                    continue
                if mode in (Mode.RESET, Mode.REFUSE):
                    self._abort(conn)
                else:
                    conn.mode = mode
                    self._update(conn)
        if new:
            self._new_mode = mode
            if mode is Mode.REFUSE:
                self._unlisten()
            elif self._listener is None:
                self._listen()

    def _stats(self) -> ProxyStats:
        return ProxyStats(
            new_connections=self._new_mode,
            accepted=self._accepted,
            open=len(self._connections),
            reset=self._reset,
            bytes_from_client=self._bytes_from_client,
            bytes_from_server=self._bytes_from_server,
        )

    def _shutdown(self) -> None:
        for conn in list(self._connections.values()):
            self._close(conn)
        self._unlisten()
        self._stopping = True

    # -- the proxy thread ----------------------------------------------------------------------------

    def _call(self, function: Callable[[], _T]) -> _T:
        """Run ``function`` on the proxy thread and return its result (or raise its exception)."""
        thread = self._thread
        if thread is None or self._waker is None:
            raise FaultProxyError("the proxy is not started; call start() or use it in a with block")
        if threading.current_thread() is thread:
            return function()
        if not thread.is_alive():
            raise FaultProxyError(f"the proxy thread has stopped ({self._failure!r}); close() the proxy")
        future: Future[_T] = Future()
        self._commands.append((function, future))
        with contextlib.suppress(BlockingIOError):  # a full pipe already wakes the thread
            self._waker[1].send(b"\0")
        try:
            return future.result(_COMMAND_TIMEOUT)
        except TimeoutError as exc:
            raise FaultProxyError(f"the proxy thread did not answer within {_COMMAND_TIMEOUT:.0f}s") from exc

    def _loop(self) -> None:
        assert self._selector is not None
        try:
            while not self._stopping:
                for key, events in self._selector.select():
                    key.data(events)
        except BaseException as exc:  # noqa: BLE001 -- a bug in the proxy: kept for close() to raise
            self._failure = exc
            for conn in list(self._connections.values()):
                with contextlib.suppress(Exception):
                    self._close(conn)
            with contextlib.suppress(Exception):
                self._unlisten()
        finally:
            while self._commands:  # nobody waits forever on a command the thread will never run
                _, future = self._commands.popleft()
                future.set_exception(FaultProxyError("the proxy thread has stopped"))

    def _run_commands(self, events: int) -> None:
        assert self._waker is not None
        with contextlib.suppress(BlockingIOError):
            while self._waker[0].recv(4096):
                pass
        while self._commands:
            function, future = self._commands.popleft()
            try:
                future.set_result(function())
            except Exception as exc:  # noqa: BLE001 -- handed to the caller, which raises it
                future.set_exception(exc)

    def _listen(self) -> None:
        assert self._selector is not None
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT of old ones
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # beside the placeholder
            listener.bind((LOOPBACK, self._port))
            listener.listen(_BACKLOG)
            listener.setblocking(False)
            self._selector.register(listener, selectors.EVENT_READ, self._accept)
        except OSError as exc:
            listener.close()
            raise FaultProxyError(f"cannot listen on {LOOPBACK}:{self._port} again: {exc}") from exc
        self._listener = listener

    def _unlisten(self) -> None:
        # Closing the listener resets whatever waits in its accept queue, as a refusing host would.
        if self._listener is not None and self._selector is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None

    def _accept(self, events: int) -> None:
        while self._listener is not None:  # None if a command of this round stopped listening
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):  # the client gave up already
                    continue
                raise
            self._accepted += 1
            if self._new_mode is Mode.RESET:
                self._reset += 1
                _close_with_rst(sock)
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self._next_id, sock, peer, self._new_mode)
            self._next_id += 1
            self._connections[conn.id] = conn
            self._update(conn)

    def _update(self, conn: _Connection) -> None:
        """Connect to the target if due, and (re-)register both sockets for what they now wait on."""
        assert self._selector is not None
        if conn.mode is Mode.PASS and conn.server is None:
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setblocking(False)
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.server, conn.connecting = server, True
            result = server.connect_ex(self._target)
            if result not in (0, errno.EINPROGRESS):
                self._abort(conn)  # target unreachable: the client sees a reset, as through a real proxy
                return
        client_events = server_events = 0
        if conn.mode is Mode.PASS:
            if conn.connecting:
                server_events = selectors.EVENT_WRITE
            else:
                if not conn.client_eof and not conn.to_server:
                    client_events |= selectors.EVENT_READ
                if not conn.server_eof and not conn.to_client:
                    server_events |= selectors.EVENT_READ
                if conn.to_server:
                    server_events |= selectors.EVENT_WRITE
            if conn.to_client:
                client_events |= selectors.EVENT_WRITE
        self._register(conn, "client", conn.client, client_events)
        if conn.server is not None:
            self._register(conn, "server", conn.server, server_events)

    def _register(
        self, conn: _Connection, side: Literal["client", "server"], sock: socket.socket, events: int
    ) -> None:
        assert self._selector is not None
        current = conn.registered.get(side, 0)
        if events == current:
            return
        if not events:
            self._selector.unregister(sock)
            del conn.registered[side]
        elif not current:
            self._selector.register(sock, events, lambda ready: self._on_ready(conn, side, ready))
            conn.registered[side] = events
        else:
            self._selector.modify(sock, events, lambda ready: self._on_ready(conn, side, ready))
            conn.registered[side] = events

    def _on_ready(self, conn: _Connection, side: Literal["client", "server"], ready: int) -> None:
        if conn.id not in self._connections:
            return  # closed by an earlier event of the same round
        try:
            if side == "server" and conn.connecting:
                assert conn.server is not None
                if conn.server.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    self._abort(conn)
                    return
                conn.connecting = False
            elif side == "client":
                self._move(conn, ready, reading=conn.client, writing=conn.server, to_client=False)
            else:
                self._move(conn, ready, reading=conn.server, writing=conn.client, to_client=True)
        except OSError:
            self._abort(conn)  # reset or broken on one side: pass the reset on to the other
            return
        if conn.client_eof and conn.server_eof and not conn.to_client and not conn.to_server:
            self._close(conn)
        else:
            self._update(conn)

    def _move(
        self,
        conn: _Connection,
        ready: int,
        *,
        reading: socket.socket | None,
        writing: socket.socket | None,
        to_client: bool,
    ) -> None:
        """Read from the ready socket into the other direction's buffer; flush the buffer it waits on."""
        assert reading is not None
        assert writing is not None
        outgoing = conn.to_server if to_client else conn.to_client  # what ``reading`` waits to be sent
        if ready & selectors.EVENT_WRITE and outgoing:
            self._send(conn, reading, outgoing, to_client=not to_client)
        if ready & selectors.EVENT_READ:
            data = reading.recv(_CHUNK)
            buffer = conn.to_client if to_client else conn.to_server
            if data:
                conn.last_activity = time.monotonic()
                if to_client:
                    conn.bytes_from_server += len(data)
                    self._bytes_from_server += len(data)
                else:
                    conn.bytes_from_client += len(data)
                    self._bytes_from_client += len(data)
                buffer += data
                self._send(conn, writing, buffer, to_client=to_client)
            elif to_client:
                conn.server_eof = True
                if not buffer:
                    conn.client.shutdown(socket.SHUT_WR)
            else:
                conn.client_eof = True
                if not buffer:
                    writing.shutdown(socket.SHUT_WR)

    @staticmethod
    def _send(conn: _Connection, sock: socket.socket, buffer: bytearray, *, to_client: bool) -> None:
        try:
            sent = sock.send(buffer)
        except (BlockingIOError, InterruptedError):
            return
        del buffer[:sent]
        if not buffer and (conn.server_eof if to_client else conn.client_eof):
            sock.shutdown(socket.SHUT_WR)  # the other side finished sending and all of it is delivered

    def _abort(self, conn: _Connection) -> None:
        """Close both sides of ``conn`` with a RST."""
        self._reset += 1
        self._close(conn, rst=True)

    def _close(self, conn: _Connection, *, rst: bool = False) -> None:
        assert self._selector is not None
        self._connections.pop(conn.id, None)
        for side, sock in (("client", conn.client), ("server", conn.server)):
            if sock is None:
                continue
            if side in conn.registered:
                self._selector.unregister(sock)
            if rst:
                _close_with_rst(sock)
            else:
                sock.close()
        conn.registered.clear()

    def _release_sockets(self) -> None:
        """After the thread has stopped (or never started): close what it owned, from this thread."""
        for conn in list(self._connections.values()):
            for sock in (conn.client, conn.server):
                if sock is not None:
                    sock.close()
        self._connections.clear()
        for sock in (self._listener, self._placeholder, *(self._waker or ())):
            if sock is not None:
                sock.close()
        self._listener = self._placeholder = self._waker = None
        if self._selector is not None:
            self._selector.close()
            self._selector = None


class _Connection:
    """One client connection and its connection to the target; touched only by the proxy thread."""

    def __init__(self, conn_id: int, client: socket.socket, peer: tuple[str, int], mode: Mode) -> None:
        self.id = conn_id
        self.client = client
        self.peer = peer
        self.mode = mode
        self.server: socket.socket | None = None
        self.connecting = False
        self.to_server = bytearray()
        self.to_client = bytearray()
        self.client_eof = False
        self.server_eof = False
        self.registered: dict[str, int] = {}
        self.opened = self.last_activity = time.monotonic()
        self.bytes_from_client = 0
        self.bytes_from_server = 0

    def info(self) -> ConnectionInfo:
        return ConnectionInfo(
            id=self.id,
            client=self.peer,
            mode=self.mode,
            forwarded=self.server is not None,
            opened=self.opened,
            last_activity=self.last_activity,
            bytes_from_client=self.bytes_from_client,
            bytes_from_server=self.bytes_from_server,
        )


def _close_with_rst(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_LINGER)
    sock.close()
