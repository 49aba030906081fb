"""Start and stop a throw-away Kubernetes control plane: one etcd and one kube-apiserver on 127.0.0.1.

Besides start and stop, it can break itself on purpose for tests of what survives: stop and start etcd,
pause (SIGSTOP) and resume the API server, restart the API server; and it can keep the API server's
audit log of writes (``audit=True``) for tests that count who wrote what, when.

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

from . import audit as audit_module
from . import pki
from .build import Binaries, ControlPlaneError, ensure_binaries

LOOPBACK = "127.0.0.1"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
"""Virtual service IPs the API server allocates from; only stored in etcd, never routed or contacted."""

_POLL = 0.05  # seconds between readiness probes
_PROBE_TIMEOUT = 2.0  # seconds a readiness probe waits for an answer before it is retried
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
        audit: bool = False,
    ) -> None:
        """Prepare, but do not start, a control plane.

        ``binaries`` defaults to ``ensure_binaries()`` (built on first use). ``detached`` lets the
        processes outlive this Python process: used by ``python -m controlplane up``, whose ``down``
        stops them later. ``startup_timeout`` bounds each wait for a process to become ready.
        ``audit`` makes the API server log every write (``audit.POLICY``) for ``audit_events()``.
        """
        self._binaries = binaries
        self._detached = detached
        self._timeout = startup_timeout
        self._audit = audit
        self._audit_log: audit_module.AuditLog | None = None
        self._paused: set[str] = set()
        self._admin_tls: ssl.SSLContext | None = None
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
    def audit_log_path(self) -> Path:
        """The API server's audit log (JSON lines); only with ``audit=True``."""
        if not self._audit:
            raise ControlPlaneError("this control plane keeps no audit log; create it with audit=True")
        return self.workdir / "audit.log"

    def audit_events(
        self, *, stage: str | None = audit_module.RESPONSE_COMPLETE
    ) -> tuple[audit_module.AuditEvent, ...]:
        """The writes the API server has logged so far, oldest first (needs ``audit=True``).

        By default only ``ResponseComplete`` events: one per write that was answered, with its code.
        The API server logs a write as it completes (blocking mode), so a client that got its answer
        normally finds the event; a test that must be sure waits for it.
        """
        if not self._audit:
            raise ControlPlaneError("this control plane keeps no audit log; create it with audit=True")
        if self._audit_log is None:
            raise ControlPlaneError("the control plane is not running; call start() first")
        return self._audit_log.events(stage=stage)

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
        """Stop kube-apiserver (SIGTERM) and start it again on the same port; etcd and data are kept.

        Works on a paused API server too. Returns once ``/readyz`` is ok (so etcd must be running).
        """
        self._require_running()
        self._terminate("kube-apiserver")
        self._spawn("kube-apiserver", self._argv["kube-apiserver"])
        self._wait_apiserver_ready()

    def stop_etcd(self, *, graceful: bool = False) -> None:
        """Stop etcd; the API server keeps running and answers 5xx (``/readyz``: 500) until it is back.

        By default etcd is killed (SIGKILL), as a crash or an OOM kill would do it: at once, and what it
        wrote survives, as on a real node (the kernel keeps it). ``graceful`` sends SIGTERM and waits for
        etcd to exit (about 7 s: it first waits for the API server's watch streams to drain). The data
        directory and ports are kept for ``start_etcd``.
        """
        self._require_running()
        if "etcd" not in self._procs:
            raise ControlPlaneError("etcd is already stopped; start_etcd() starts it again")
        self._terminate("etcd", grace=_STOP_GRACE if graceful else 0.0)

    def start_etcd(self) -> None:
        """Start etcd again on the same ports with the same data; return once the API server is ready.

        (If the API server is paused, return once etcd itself is healthy.)
        """
        self._require_running()
        if "etcd" in self._procs:
            raise ControlPlaneError("etcd is running; stop_etcd() stops it")
        self._spawn("etcd", self._argv["etcd"])
        try:
            self._wait_etcd_ready()
        except _PortTakenError as exc:
            raise ControlPlaneError(
                f"etcd could not listen on {self.etcd_url} again: another process took the port "
                "while etcd was stopped; start a new control plane"
            ) from exc
        if "kube-apiserver" in self._procs and "kube-apiserver" not in self._paused:
            self._wait_apiserver_ready()

    def pause_apiserver(self) -> None:
        """Freeze kube-apiserver with SIGSTOP: its port accepts connections but nothing answers.

        Returns once every thread of the process is stopped. ``stop()`` still cleans it up.
        """
        self._require_running()
        self._pause("kube-apiserver")

    def resume_apiserver(self) -> None:
        """Thaw a paused kube-apiserver with SIGCONT; return once ``/readyz`` is ok."""
        self._require_running()
        self._resume("kube-apiserver")
        self._wait_apiserver_ready()

    def readyz(self, *, timeout: float = 10.0) -> tuple[int, str]:
        """``GET /readyz`` as the admin: the status code and the body (``ok``, or the failed checks).

        Raises ``OSError`` (``TimeoutError`` after ``timeout`` seconds) if the API server does not answer.
        (Without etcd, the answer, 500, takes about 4 s: the server waits for its etcd checks to time out.)
        """
        self._require_running()
        if self._admin_tls is None:
            assert self._pki is not None
            self._admin_tls = ssl.create_default_context(cafile=str(self._pki.ca.cert))
            self._admin_tls.load_cert_chain(str(self._pki.admin.cert), str(self._pki.admin.key))
        conn = http.client.HTTPSConnection(
            LOOPBACK, self._apiserver_port, context=self._admin_tls, timeout=timeout
        )
        try:
            conn.request("GET", "/readyz")
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8", errors="replace")
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop both processes and remove every file; safe to call more than once."""
        self._terminate_all()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self._audit_log = None
        self._admin_tls = None
        _unregister(self)

    # -- internals -----------------------------------------------------------------------------------

    def _require_running(self) -> None:
        if self._workdir is None or not self._procs:
            raise ControlPlaneError("the control plane is not running; call start() first")

    def _pause(self, name: str) -> None:
        proc = self._procs.get(name)
        if proc is None:
            raise ControlPlaneError(f"{name} is not running")
        if name in self._paused:
            raise ControlPlaneError(f"{name} is already paused")
        _signal_group(proc.pid, signal.SIGSTOP)
        self._paused.add(name)
        # The signal is delivered asynchronously; callers rely on the process being frozen on return.
        deadline = time.monotonic() + self._timeout
        while not _all_threads_stopped(proc.pid):
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"{name} (pid {proc.pid}) did not stop after SIGSTOP")
            time.sleep(0.01)

    def _resume(self, name: str) -> None:
        proc = self._procs.get(name)
        if proc is None or name not in self._paused:
            raise ControlPlaneError(f"{name} is not paused")
        _signal_group(proc.pid, signal.SIGCONT)
        self._paused.discard(name)

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
            *self._audit_flags(workdir),
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

    def _audit_flags(self, workdir: Path) -> list[str]:
        if not self._audit:
            return []
        policy = workdir / "audit-policy.json"
        audit_module.write_policy(policy)
        log = workdir / "audit.log"
        self._audit_log = audit_module.AuditLog(log)
        return [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={log}",
            "--audit-log-format=json",
            # blocking (1.37's default, pinned here): the request's goroutine writes the event as the
            # request completes; batch mode would buffer it and tests would wait for the flush.
            "--audit-log-mode=blocking",
            "--audit-log-maxsize=0",  # never rotate: the reader follows one file
        ]

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
        def ready() -> bool:
            status, body = self.readyz(timeout=_PROBE_TIMEOUT)
            return status == 200 and body.strip() == "ok"

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
        # The API server first, so it does not spend its shutdown retrying a vanished etcd. If etcd is
        # already stopped, that shutdown cannot finish: kill the API server rather than wait its grace.
        apiserver_grace = _STOP_GRACE if "etcd" in self._procs else 0.0
        self._terminate("kube-apiserver", grace=apiserver_grace)
        self._terminate("etcd")

    def _terminate(self, name: str, *, grace: float = _STOP_GRACE) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (at once if ``grace`` is 0); wait for the exit."""
        proc = self._procs.pop(name, None)
        if proc is None:
            return
        if grace <= 0:
            _signal_group(proc.pid, signal.SIGKILL)  # a stopped process dies of SIGKILL too
            self._paused.discard(name)
            proc.wait()
            return
        _signal_group(proc.pid, signal.SIGTERM)
        if name in self._paused:  # a stopped process acts on SIGTERM only once it runs again
            _signal_group(proc.pid, signal.SIGCONT)
            self._paused.discard(name)
        try:
            proc.wait(timeout=grace)
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


def _all_threads_stopped(pid: int) -> bool:
    """True once every thread of ``pid`` is in the stopped state (or the process is gone)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return True
    for task in tasks:
        try:
            stat = (task / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # the thread exited
        if stat.rpartition(")")[2].split()[0] not in {"T", "t", "Z", "X"}:
            return False
    return True


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
