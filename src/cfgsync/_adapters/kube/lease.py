"""Leader election on a ``coordination.k8s.io/v1`` Lease that fences every write.

I/O: GET, POST and PUT of one Lease, from a thread of its own, on a connection of its own (so writes
queued on the main connection never delay a renewal). A replica may write only while it provably holds
the lease: until the start of its last successful renewal plus the renew deadline, on the monotonic
clock, checked right before each write request (:meth:`LeaseElector.may_write`, installed as the
connection's fence). Other replicas take the lease only after they have seen it unchanged for the whole
lease duration, which is longer than the renew deadline, so two replicas never both write.

Every failed attempt (refused, reset, timed out, 5xx, a conflict) counts as a failed renewal and is
retried every retry period until the renew deadline passes; each request times out within the retry
period. A replica that lost the lease never takes it again (the process exits and restarts as a
follower). ``release`` stops the loop first and then gives the lease up once, so nothing can take it
back. The official client's elector is not used: its thread dies on connection errors that are not API
exceptions without telling anyone, its requests have no timeout, and its loop re-acquires a lease that
was just released.
"""

from __future__ import annotations

import datetime
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from cfgsync import errors
from cfgsync._adapters.kube.connection import ApiError, Json, Kube

log = logging.getLogger("cfgsync.leader")

JITTER: Final = 0.2
"""A follower waits up to this much longer than the retry period between attempts (client-go's factor)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ElectionSettings:
    """Where the Lease is and how long it lasts."""

    namespace: str
    """Namespace of the Lease (the controller's own)."""
    name: str = "cfgsync"
    """Name of the Lease."""
    identity: str
    """This replica's identity (its pod name)."""
    lease_duration: float = 15.0
    """Seconds others wait, after they last saw the lease change, before they take it."""
    renew_deadline: float = 10.0
    """Seconds after the start of its last successful renewal that the leader may still write."""
    retry_period: float = 2.0
    """Seconds between attempts; each request times out within it."""

    def check(self) -> None:
        """Raise :class:`~cfgsync.errors.ApplyError` unless lease > renew deadline > 1.2 x retry >= 1."""
        if not (
            self.lease_duration > self.renew_deadline > (1 + JITTER) * self.retry_period
            and self.retry_period >= 1
        ):
            raise errors.ApplyError(
                f"leader election: need lease duration ({self.lease_duration:g}s) > renew deadline "
                f"({self.renew_deadline:g}s) > 1.2 x retry period ({self.retry_period:g}s), and a retry "
                f"period of at least 1s; e.g. --lease-duration 15 --renew-deadline 10 --retry-period 2"
            )

    @property
    def recorded_duration(self) -> int:
        """The lease duration written into the Lease: whole seconds, rounded up, so that others never
        wait less than this replica's renew deadline."""
        return math.ceil(self.lease_duration)

    @property
    def path(self) -> str:
        """The Lease's API path."""
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}"


@dataclass(frozen=True, slots=True)
class _Seen:
    """The lease as last read or written."""

    holder: str
    """Its holder's identity; empty when free."""
    version: str
    """Its resourceVersion, for the next update."""
    spec: Json
    """Its spec, as the API server returned it."""
    duration: float
    """Its lease duration in seconds."""


class LeaseElector:
    """Campaigns for the lease in a thread; see the module docstring.

    ``on_started`` is called when this replica starts leading, ``on_lost`` when it lost the lease (it
    is never taken again by this instance). :attr:`failed` is set if the thread ended on an
    unexpected error: the controller then exits, so the pod restarts.
    """

    def __init__(
        self,
        kube: Kube,
        settings: ElectionSettings,
        *,
        on_started: Callable[[], None],
        on_lost: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings.check()
        self._kube = kube
        self.settings = settings
        self._on_started = on_started
        self._on_lost = on_lost
        self._clock = clock
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._valid_until: float | None = None
        self._seen: _Seen | None = None
        self._seen_at = 0.0
        self._absent_since: float | None = None
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self.failed: BaseException | None = None
        """The error that ended the election thread, if one did."""

    # -- what the controller asks -------------------------------------------------------------------

    def may_write(self) -> bool:
        """True while this replica provably holds the lease (the fence of every write)."""
        with self._lock:
            return self._valid_until is not None and self._clock() < self._valid_until

    @property
    def alive(self) -> bool:
        """False once the election thread has ended on an unexpected error."""
        return self.failed is None

    def start(self) -> None:
        """Start campaigning."""
        self._thread.start()

    def release(self) -> None:
        """Stop campaigning and, if this replica leads, give the lease up once (for a quick hand-over)."""
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * self.settings.retry_period + 1)
        with self._lock:
            held = self._valid_until is not None and self._clock() < self._valid_until
            self._valid_until = None
            seen = self._seen
        if not held or seen is None or seen.holder != self.settings.identity:
            return
        now = _micro_time()
        spec = {**seen.spec, "holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": now}
        try:
            self._put(spec, seen.version)
            log.info("released lease %s/%s", *self._where())
        except ApiError as exc:
            log.warning("could not release lease %s/%s: %s", *self._where(), exc)

    # -- the campaign -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._campaign()
        except BaseException as exc:
            self.failed = exc
            with self._lock:
                self._valid_until = None
            log.exception("leader election stopped on an unexpected error; this replica stops writing")

    def _campaign(self) -> None:
        while not self._stopping.is_set():
            pause = self.step()
            if pause is None:
                return
            self._stopping.wait(pause)

    def step(self) -> float | None:
        """One attempt to acquire or renew; the seconds to wait before the next, None when done."""
        if self._stopping.is_set():
            return None
        retry = self.settings.retry_period
        started = self._clock()
        with self._lock:
            leading = self._valid_until is not None
        try:
            held = self._attempt(leading)
        except ApiError as exc:
            log.warning("lease %s/%s: %s", *self._where(), exc)
            held = False
        if self._stopping.is_set():
            return None
        with self._lock:
            if held:
                self._valid_until = started + self.settings.renew_deadline
            expired = self._valid_until is None or self._clock() >= self._valid_until
            lost = leading and not held and expired
            if lost:
                self._valid_until = None
                self._stopping.set()  # a replica that lost the lease never takes it again
        if held and not leading:
            log.info("acquired lease %s/%s", *self._where())
            self._on_started()
        if lost:
            log.error("lost lease %s/%s: not renewed within the renew deadline, or taken", *self._where())
            self._on_lost()
            return None
        return retry if leading or held else retry * (1 + JITTER * random.random())  # noqa: S311 -- jitter

    def _attempt(self, leading: bool) -> bool:
        """Renew, or acquire when free or expired; True when this replica now holds the lease."""
        me = self.settings.identity
        with self._lock:
            seen = self._seen
        if leading and seen is not None and seen.holder == me:
            try:  # renew on the version written last; a conflict means somebody else wrote it
                self._take(seen, fresh=False)
                return True
            except ApiError as exc:
                if exc.status == 404:
                    return self._taken("was deleted")
                if exc.status != 409:
                    raise
        raw = self._get()
        if raw is None:
            return self._taken("was deleted") if leading else self._create_after_absence()
        self._absent_since = None
        current = self._observe(raw)
        if current.holder and current.holder != me:
            if leading:  # taken: this replica stops at once, whatever its deadline says
                return self._taken(f"was taken by {current.holder}")
            with self._lock:
                if self._clock() < self._seen_at + current.duration:
                    return False
        self._take(current, fresh=current.holder != me)
        return True

    def _taken(self, how: str) -> bool:
        """The lease is no longer this replica's: stop writing at once, whatever the deadline says."""
        log.error("lease %s/%s %s", *self._where(), how)
        with self._lock:
            self._valid_until = None
        return False

    def _create_after_absence(self) -> bool:
        """Create the missing lease; if one was seen before, only after a lease duration without it.

        A lease deleted while its holder runs must not give a second replica the right to write at
        once: the holder only learns it at its next renewal. On a fresh install no lease was ever seen
        here, and the first replica creates it straight away.
        """
        if self._seen is not None:
            now = self._clock()
            if self._absent_since is None:
                self._absent_since = now
            if now < self._absent_since + self.settings.lease_duration:
                return False
        self._create()
        self._absent_since = None
        return True

    def _where(self) -> tuple[str, str]:
        return self.settings.namespace, self.settings.name

    def _observe(self, raw: Json) -> _Seen:
        """Record the lease as read; somebody else's expires ``duration`` after it last changed here."""
        spec = raw.get("spec")
        spec = dict(spec) if isinstance(spec, dict) else {}
        meta = raw.get("metadata")
        version = meta.get("resourceVersion", "") if isinstance(meta, dict) else ""
        duration = spec.get("leaseDurationSeconds")
        seen = _Seen(
            holder=str(spec.get("holderIdentity") or ""),
            version=str(version),
            spec=spec,
            duration=float(duration) if isinstance(duration, int | float) else self.settings.lease_duration,
        )
        with self._lock:
            if self._seen is None or self._seen.spec != seen.spec:
                self._seen_at = self._clock()
            self._seen = seen
        return seen

    def _take(self, seen: _Seen, *, fresh: bool) -> None:
        now = _micro_time()
        spec: dict[str, Any] = {
            **seen.spec,
            "holderIdentity": self.settings.identity,
            "leaseDurationSeconds": self.settings.recorded_duration,
            "renewTime": now,
        }
        if fresh:
            transitions = spec.get("leaseTransitions")
            spec["leaseTransitions"] = (transitions if isinstance(transitions, int) else 0) + 1
            spec["acquireTime"] = now
        self._observe(self._put(spec, seen.version))

    def _create(self) -> None:
        now = _micro_time()
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.settings.name, "namespace": self.settings.namespace},
            "spec": {
                "holderIdentity": self.settings.identity,
                "leaseDurationSeconds": self.settings.recorded_duration,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        collection = self.settings.path.rsplit("/", 1)[0]
        self._observe(self._kube.request("POST", collection, body=body, timeout=self.settings.retry_period))

    def _get(self) -> Json | None:
        try:
            return self._kube.request("GET", self.settings.path, timeout=self.settings.retry_period)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _put(self, spec: dict[str, Any], version: str) -> Json:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.settings.name,
                "namespace": self.settings.namespace,
                "resourceVersion": version,
            },
            "spec": spec,
        }
        return self._kube.request("PUT", self.settings.path, body=body, timeout=self.settings.retry_period)


def _micro_time() -> str:
    """Now, as the API's MicroTime."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
