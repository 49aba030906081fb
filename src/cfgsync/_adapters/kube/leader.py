"""Leader election on a ``coordination.k8s.io/v1`` Lease, so two replicas never both write.

I/O: reads and updates the Lease through the official client's elector and ``LeaseLock``. The elector
renews while it leads; if a renewal fails for longer than the renew deadline it gives up, and the
controller stops writing and exits (the pod restarts as a follower). Because the lease lasts longer
than the renew deadline, a new leader cannot acquire it before the old one has stopped.
On a clean shutdown the lease is released, so the next leader takes over at once.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.leaderelection import electionconfig as _electionconfig
from kubernetes.leaderelection import leaderelection as _leaderelection
from kubernetes.leaderelection.resourcelock import leaselock as _leaselock

from cfgsync import errors
from cfgsync._adapters.kube.connection import Kube

log = logging.getLogger("cfgsync.leader")
# The elector's modules are untyped.
electionconfig: Any = _electionconfig
leaderelection: Any = _leaderelection
leaselock: Any = _leaselock


@dataclass(frozen=True, slots=True, kw_only=True)
class ElectionSettings:
    """Where the Lease is and how long it lasts."""

    namespace: str
    """Namespace of the Lease (the controller's own, usually ``kube-system``)."""
    name: str = "cfgsync"
    """Name of the Lease."""
    identity: str
    """This replica's identity (its pod name)."""
    lease_duration: int = 15
    """Seconds a lease lasts without renewal."""
    renew_deadline: int = 10
    """Seconds the leader keeps trying to renew before it gives up."""
    retry_period: int = 2
    """Seconds between attempts."""

    def check(self) -> None:
        """Raise :class:`~cfgsync.errors.ApplyError` unless lease > renew deadline > 1.2 x retry >= 1."""
        if not (
            self.lease_duration > self.renew_deadline > 1.2 * self.retry_period and self.retry_period >= 1
        ):
            raise errors.ApplyError(
                f"leader election: need lease duration ({self.lease_duration}s) > renew deadline "
                f"({self.renew_deadline}s) > 1.2 x retry period ({self.retry_period}s), retry period >= 1s"
            )


class LeaderElector:
    """Runs the election in a thread; calls ``on_started`` when leading and ``on_stopped`` when it is lost."""

    def __init__(
        self,
        kube: Kube,
        settings: ElectionSettings,
        *,
        on_started: Callable[[], None],
        on_stopped: Callable[[], None],
    ) -> None:
        settings.check()
        self.settings = settings
        self._coordination: Any = client.CoordinationV1Api(kube.api_client)
        lock: Any = leaselock.LeaseLock(settings.name, settings.namespace, settings.identity)
        lock.api_instance = self._coordination  # the lock would otherwise use the default client
        self._stopping = threading.Event()
        config: Any = electionconfig.Config(
            lock,
            lease_duration=settings.lease_duration,
            renew_deadline=settings.renew_deadline,
            retry_period=settings.retry_period,
            onstarted_leading=on_started,
            onstopped_leading=self._stopped(on_stopped),
        )
        self._election: Any = leaderelection.LeaderElection(config)
        self._thread = threading.Thread(target=self._election.run, name="leader-election", daemon=True)
        # The elector logs every retry at INFO; followers would log every two seconds.
        logging.getLogger("leaderelection").setLevel(logging.WARNING)

    def _stopped(self, on_stopped: Callable[[], None]) -> Callable[[], None]:
        def stopped() -> None:
            if not self._stopping.is_set():
                on_stopped()

        return stopped

    def start(self) -> None:
        """Start campaigning."""
        self._thread.start()

    def release(self) -> None:
        """Give the lease up if this replica holds it (on shutdown, after the last write)."""
        self._stopping.set()
        settings = self.settings
        try:
            lease = self._coordination.read_namespaced_lease(settings.name, settings.namespace)
            if lease.spec is None or lease.spec.holder_identity != settings.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time = datetime.datetime.now(datetime.UTC)
            self._coordination.replace_namespaced_lease(settings.name, settings.namespace, lease)
            log.info("released lease %s/%s", settings.namespace, settings.name)
        except client.ApiException as exc:
            log.warning("could not release lease %s/%s: %s", settings.namespace, settings.name, exc.reason)
