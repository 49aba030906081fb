"""Start and stop a throw-away Kubernetes control plane: one etcd and one kube-apiserver on 127.0.0.1.

Does I/O: spawns the two processes (each in its own process group), binds free loopback ports, and
writes certificates, kubeconfigs, logs and etcd data under a temporary directory that ``stop`` removes.
Nothing listens anywhere but 127.0.0.1. Processes never outlive the Python process that started them
(unless started ``detached`` for the command line): ``stop`` runs from ``with`` blocks, at interpreter
exit, on SIGTERM, and the kernel kills the children if the parent dies without running any of those.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Self

from . import pki
from .build import Binaries, ControlPlaneError, ensure_binaries

LOOPBACK = "127.0.0.1"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
"""Virtual service IPs the API server allocates from; only stored in etcd, never routed or contacted."""

_POLL = 0.05  # seconds between readiness probes
_STOP_GRACE = 10.0  # seconds a process gets to exit after SIGTERM before SIGKILL
_PORT_ATTEMPTS = 3  # a port picked as free may be taken before the server binds it; try again
_LOG_TAIL = 30  # lines of a process log quoted in an error

_live: set[ControlPlane] = set()
_live_lock = threading.Lock()


class ControlPlane:
    """etcd plus kube-apiserver with RBAC, an admin and a restricted identity; a context manager.

    ``start`` returns once ``/readyz`` answers ok. The admin kubeconfig (group ``system:masters``) is
    ``kubeconfig``; ``restricted_kubeconfig`` is for ``pki.RESTRICTED_USER``, who has no bindings.
    """

    def __init__(
        self,
        binaries: Binaries | None = None,
        *,
        detached: bool = False,
        startup_timeout: float = 60.0,
    ) -> None:
        """Prepare, but do not start, a control plane.

        ``binaries`` defaults to ``ensure_binaries()`` (built on first use). ``detached`` lets the
        processes outlive this Python process: used by ``python -m controlplane up``, whose ``down``
        stops them later. ``startup_timeout`` bounds each wait for a process to become ready.
        """
        self._binaries = binaries
        self._detached = detached
        self._timeout = startup_timeout
        self._workdir: Path | None = None
        self._pki: pki.Pki | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._argv: dict[str, list[str]] = {}
        self._apiserver_port = 0
        self._etcd_port = 0

    # -- public face ---------------------------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        """The temporary directory holding certificates, kubeconfigs, logs and etcd data."""
        if self._workdir is None:
            raise ControlPlaneError("the control plane is not running; call start() first")
        return self._workdir

    @property
    def server(self) -> str:
        """The API server's URL, ``https://127.0.0.1:<port>``."""
        self._require_running()
        return f"https://{LOOPBACK}:{self._apiserver_port}"

    @property
    def etcd_url(self) -> str:
        """etcd's client URL, ``http://127.0.0.1:<port>``."""
        self._require_running()
        return f"http://{LOOPBACK}:{self._etcd_port}"

    @property
    def kubeconfig(self) -> Path:
        """Kubeconfig of the admin identity (bypasses RBAC)."""
        return self.workdir / "admin.kubeconfig"

    @property
    def restricted_kubeconfig(self) -> Path:
        """Kubeconfig of the restricted identity (subject to RBAC, bound to nothing)."""
        return self.workdir / "restricted.kubeconfig"

    @property
    def pids(self) -> dict[str, int]:
        """Process id of each running component (``etcd``, ``kube-apiserver``)."""
        return {name: proc.pid for name, proc in self._procs.items() if proc.poll() is None}

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start etcd, then kube-apiserver; return once ``/readyz`` is ok. Stops everything on failure."""
        if self._workdir is not None:
            raise ControlPlaneError("this control plane is already started")
        binaries = self._binaries or ensure_binaries()
        self._workdir = Path(tempfile.mkdtemp(prefix="cfgsync-controlplane-"))
        if not self._detached:
            _register(self)
        try:
            self._pki = pki.make_pki(self._workdir / "pki")
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                try:
                    self._launch(binaries)
                    break
                except _PortTakenError:
                    self._terminate_all()
                    if attempt == _PORT_ATTEMPTS:
                        raise
        except BaseException:
            self.stop()
            raise

    def restart_apiserver(self) -> None:
        """Stop kube-apiserver (SIGTERM) and start it again on the same port; etcd and data are kept."""
        self._require_running()
        self._terminate("kube-apiserver")
        self._spawn("kube-apiserver", self._argv["kube-apiserver"])
        self._wait_apiserver_ready()

    def stop(self) -> None:
        """Stop both processes and remove every file; safe to call more than once."""
        self._terminate_all()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        _unregister(self)

    # -- internals -----------------------------------------------------------------------------------

    def _require_running(self) -> None:
        if self._workdir is None or not self._procs:
            raise ControlPlaneError("the control plane is not running; call start() first")

    def _launch(self, binaries: Binaries) -> None:
        assert self._pki is not None
        workdir = self.workdir
        shutil.rmtree(
            workdir / "etcd", ignore_errors=True
        )  # a failed attempt's member data names other ports
        self._etcd_port, peer_port, self._apiserver_port = _free_loopback_ports(3)
        etcd_url = f"http://{LOOPBACK}:{self._etcd_port}"
        peer_url = f"http://{LOOPBACK}:{peer_port}"
        self._argv["etcd"] = [
            str(binaries.etcd),
            "--name=cfgsync",
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=cfgsync={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",  # throw-away data: durability buys nothing and costs start-up time
            "--log-level=warn",
        ]
        self._spawn("etcd", self._argv["etcd"])
        self._wait_etcd_ready()

        keys = self._pki
        self._argv["kube-apiserver"] = [
            str(binaries.kube_apiserver),
            f"--etcd-servers={etcd_url}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--secure-port={self._apiserver_port}",
            f"--cert-dir={workdir / 'apiserver'}",
            f"--tls-cert-file={keys.serving.cert}",
            f"--tls-private-key-file={keys.serving.key}",
            f"--client-ca-file={keys.ca.cert}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer=https://{LOOPBACK}:{self._apiserver_port}",
            f"--service-account-key-file={keys.service_account.cert}",
            f"--service-account-signing-key-file={keys.service_account.key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # No controller-manager runs, so nothing would create the service-account tokens this
            # admission plugin insists on.
            "--disable-admission-plugins=ServiceAccount",
            # The endpoint reconciler publishes the advertise address in the `kubernetes` Service's
            # endpoints and refuses a loopback one; nothing here routes to that Service anyway.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ]
        self._spawn("kube-apiserver", self._argv["kube-apiserver"])
        self._wait_apiserver_ready()
        server = f"https://{LOOPBACK}:{self._apiserver_port}"
        pki.write_kubeconfig(
            self.kubeconfig, server=server, ca=keys.ca.cert, client=keys.admin, user=pki.ADMIN_USER
        )
        pki.write_kubeconfig(
            self.restricted_kubeconfig,
            server=server,
            ca=keys.ca.cert,
            client=keys.restricted,
            user=pki.RESTRICTED_USER,
        )

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as sink:
            self._procs[name] = subprocess.Popen(
                argv,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() can signal it and its children
                preexec_fn=None if self._detached else functools.partial(_die_with_parent, os.getpid()),  # noqa: PLW1509 -- only calls prctl, which is async-signal-safe
            )

    def _wait_etcd_ready(self) -> None:
        def healthy() -> bool:
            conn = http.client.HTTPConnection(LOOPBACK, self._etcd_port, timeout=2)
            try:
                conn.request("GET", "/health")
                response = conn.getresponse()
                body = response.read()
            finally:
                conn.close()
            return response.status == 200 and json.loads(body).get("health") == "true"

        self._wait_until("etcd", healthy)

    def _wait_apiserver_ready(self) -> None:
        assert self._pki is not None
        context = ssl.create_default_context(cafile=str(self._pki.ca.cert))
        context.load_cert_chain(str(self._pki.admin.cert), str(self._pki.admin.key))

        def ready() -> bool:
            conn = http.client.HTTPSConnection(LOOPBACK, self._apiserver_port, context=context, timeout=2)
            try:
                conn.request("GET", "/readyz")
                response = conn.getresponse()
                body = response.read()
            finally:
                conn.close()
            return response.status == 200 and body.strip() == b"ok"

        self._wait_until("kube-apiserver", ready)

    def _wait_until(self, name: str, probe: Callable[[], bool]) -> None:
        """Poll ``probe`` until it returns True; fail fast if the process exits, or after the timeout."""
        deadline = time.monotonic() + self._timeout
        proc = self._procs[name]
        last_error = "no answer yet"
        while True:
            if proc.poll() is not None:
                tail = self._log_tail(name)
                if "address already in use" in tail:
                    raise _PortTakenError(name)
                raise ControlPlaneError(
                    f"{name} exited with code {proc.returncode} while starting; its log ends:\n{tail}"
                )
            try:
                if probe():
                    return
                last_error = "not ready"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                tail = self._log_tail(name)
                raise ControlPlaneError(
                    f"{name} was not ready after {self._timeout:.0f}s ({last_error}); its log ends:\n{tail}"
                )
            time.sleep(_POLL)

    def _log_tail(self, name: str) -> str:
        try:
            lines = (self.workdir / f"{name}.log").read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-_LOG_TAIL:])

    def _terminate_all(self) -> None:
        # The API server first, so it does not spend its shutdown retrying a vanished etcd.
        for name in ("kube-apiserver", "etcd"):
            self._terminate(name)

    def _terminate(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=_STOP_GRACE)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()


class _PortTakenError(ControlPlaneError):
    """A port picked as free was bound by someone else before the server could bind it."""


def _free_loopback_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (all held open together, so they are distinct)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            ports.append(sock.getsockname()[1])
        return ports


def process_running(pid: int) -> bool:
    """True while process ``pid`` exists and has not exited (a zombie counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the forked child must not load libraries


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: ask the kernel to SIGKILL it when the parent dies (Linux only)."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGKILL)


def _register(plane: ControlPlane) -> None:
    with _live_lock:
        _live.add(plane)
    _install_sigterm_handler()


def _unregister(plane: ControlPlane) -> None:
    with _live_lock:
        _live.discard(plane)


def stop_all() -> None:
    """Stop every control plane this process started (except detached ones)."""
    with _live_lock:
        planes = list(_live)
    for plane in planes:
        plane.stop()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    stop_all()
    raise KeyboardInterrupt(f"signal {signum}")  # unwind the host program (pytest) as after Ctrl-C


def _install_sigterm_handler() -> None:
    """Turn SIGTERM into cleanup plus an interrupt, unless the program already handles SIGTERM."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


atexit.register(stop_all)
