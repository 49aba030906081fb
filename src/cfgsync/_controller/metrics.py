"""The controller's Prometheus metrics, in a registry of its own.

No I/O (``health`` serves them). A registry per controller keeps tests and embedded use independent.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    """Every metric ``cfgsync run`` exposes on ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        """The registry ``/metrics`` serves."""
        self.reconciles = Counter(
            "cfgsync_reconciles",
            "Reconciles of one source, by result (ok, failed, retried).",
            ["result"],
            registry=self.registry,
        )
        self.errors = Counter(
            "cfgsync_errors",
            "Failed writes and failed reconciles, by kind of failure.",
            ["kind"],
            registry=self.registry,
        )
        self.writes = Counter(
            "cfgsync_write_calls",
            "Write requests sent to API servers, by HTTP method.",
            ["method"],
            registry=self.registry,
        )
        self.watch_events = Counter(
            "cfgsync_watch_restarts",
            "Watch interruptions, by collection and what followed (error, relist).",
            ["collection", "event"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "cfgsync_queue_depth", "Sources waiting to be reconciled.", registry=self.registry
        )
        self.copies = Gauge(
            "cfgsync_copies_managed", "Copies this controller manages.", registry=self.registry
        )
        self.conflicts = Gauge(
            "cfgsync_conflicts",
            "Copies not written because something else holds their name.",
            registry=self.registry,
        )
        self.left_alone = Gauge(
            "cfgsync_copies_left_alone",
            "Managed copies the policy neither updates nor deletes (copies in system namespaces while "
            "--allow-system-namespaces is off).",
            registry=self.registry,
        )
        self.last_sync = Gauge(
            "cfgsync_last_successful_sync_timestamp_seconds",
            "When the work queue last emptied with every reconcile successful (Unix time).",
            registry=self.registry,
        )
        self.deletes_held = Gauge(
            "cfgsync_deletes_held",
            "Deletes the mass-delete guard holds back since the first pass (--allow-mass-delete frees them).",
            registry=self.registry,
        )
        self.unreadable = Counter(
            "cfgsync_unreadable_objects",
            "Objects the API server holds but cfgsync cannot read (skipped and reported), by watch.",
            ["collection"],
            registry=self.registry,
        )
        self.invalid_rules = Gauge(
            "cfgsync_invalid_syncrules",
            "SyncRules that are invalid (each reported by an Event).",
            registry=self.registry,
        )
        self.leader = Gauge(
            "cfgsync_leader", "1 while this replica holds the lease (and may write).", registry=self.registry
        )

    def watch(
        self, depth: Callable[[], int], copies: Callable[[], int], invalid_rules: Callable[[], int]
    ) -> None:
        """Read the queue depth, managed copies and invalid SyncRules when scraped."""
        self.queue_depth.set_function(lambda: float(depth()))
        self.copies.set_function(lambda: float(copies()))
        self.invalid_rules.set_function(lambda: float(invalid_rules()))

    def count_write(self, method: str, path: str) -> None:
        """Count one write call (the connection's ``on_write`` hook)."""
        del path
        self.writes.labels(method=method).inc()
