"""The lease elector, step by step, against a scripted Lease and a hand-driven clock (no API server).

The proofs on the real API server, with the network broken on purpose, are in test_run_faults.py.
"""

from __future__ import annotations

import copy
from typing import Any, cast

import pytest

from cfgsync._adapters.kube.connection import ApiError, Kube
from cfgsync._adapters.kube.lease import ElectionSettings, LeaseElector
from live.helpers import wait_for

SETTINGS = ElectionSettings(
    namespace="ops", name="cfgsync", identity="me", lease_duration=15, renew_deadline=10, retry_period=2
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class LeaseApi:
    """One Lease with resourceVersions and conflicts; ``down`` makes every request fail unreachable."""

    name = "scripted"

    def __init__(self, clock: Clock) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False
        self.calls: list[tuple[str, float]] = []
        self.clock = clock
        self.slow = 0.0

    def request(self, method: str, path: str, *, body: Any = None, timeout: float = 30, **_: Any) -> Any:
        self.calls.append((method, timeout))
        self.clock.now += self.slow
        if self.down:
            raise ApiError(f"{method} {path}: connection refused", status=0)
        if method == "GET":
            if self.lease is None:
                raise ApiError("not found", status=404)
            return copy.deepcopy(self.lease)
        if method == "POST":
            if self.lease is not None:
                raise ApiError("exists", status=409)
            return self._store(body)
        if method == "PUT":
            if self.lease is None:
                raise ApiError("not found", status=404)
            if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
                raise ApiError("conflict", status=409)
            return self._store(body)
        raise AssertionError(method)

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)

    def held_by(self, holder: str | None) -> None:
        """Somebody else writes the lease."""
        spec = {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": f"t{self.version}"}
        meta = {"name": "cfgsync", "namespace": "ops", "resourceVersion": str(self.version)}
        self._store({"metadata": meta, "spec": spec})

    @property
    def holder(self) -> str | None:
        return None if self.lease is None else self.lease["spec"].get("holderIdentity")


class Recorder:
    def __init__(self) -> None:
        self.started = 0
        self.lost = 0

    def on_started(self) -> None:
        self.started += 1

    def on_lost(self) -> None:
        self.lost += 1


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(clock: Clock) -> LeaseApi:
    return LeaseApi(clock)


@pytest.fixture
def events() -> Recorder:
    return Recorder()


@pytest.fixture
def elector(api: LeaseApi, clock: Clock, events: Recorder) -> LeaseElector:
    return LeaseElector(
        cast(Kube, api), SETTINGS, on_started=events.on_started, on_lost=events.on_lost, clock=clock
    )


def test_a_free_lease_is_taken_and_writes_are_fenced_by_the_renew_deadline(
    elector: LeaseElector, api: LeaseApi, clock: Clock, events: Recorder
) -> None:
    assert not elector.may_write()

    assert elector.step() == 2
    assert (api.holder, events.started) == ("me", 1)
    assert elector.may_write()
    clock.now += 9.9
    assert elector.may_write()
    clock.now += 0.1
    assert not elector.may_write()  # nothing renewed for the renew deadline: no more writes


def test_every_failure_counts_and_the_deadline_runs_from_the_start_of_the_last_success(
    elector: LeaseElector, api: LeaseApi, clock: Clock, events: Recorder
) -> None:
    elector.step()
    clock.now += 2
    api.slow = 1.5  # the renewal itself takes time: the deadline counts from when it started
    elector.step()
    renewed_at = 102.0
    api.slow = 0
    api.down = True
    while elector.step() is not None:
        assert elector.may_write() == (clock.now < renewed_at + 10)
        clock.now += 2
    assert events.lost == 1
    assert not elector.may_write()
    api.down = False
    assert elector.step() is None or not elector.may_write()  # once lost, never taken again here


def test_each_lease_request_times_out_within_the_retry_period(elector: LeaseElector, api: LeaseApi) -> None:
    for _ in range(3):
        elector.step()

    assert api.calls
    assert all(timeout <= SETTINGS.retry_period for _, timeout in api.calls)


def test_a_leader_renews_without_reading_first(elector: LeaseElector, api: LeaseApi) -> None:
    elector.step()
    api.calls.clear()

    elector.step()

    assert [method for method, _ in api.calls] == ["PUT"]


def test_a_follower_waits_a_lease_duration_after_it_last_saw_the_lease_change(
    elector: LeaseElector, api: LeaseApi, clock: Clock, events: Recorder
) -> None:
    api.held_by("other")
    elector.step()
    clock.now += 10
    api.held_by("other")  # renewed: the wait starts again
    elector.step()
    clock.now += 14.9
    elector.step()
    assert api.holder == "other"
    assert events.started == 0

    clock.now += 0.1
    elector.step()

    assert api.holder == "me"
    assert api.lease is not None
    assert api.lease["spec"]["leaseTransitions"] == 1
    assert events.started == 1


def test_a_released_lease_is_taken_at_once(elector: LeaseElector, api: LeaseApi) -> None:
    api.held_by(None)

    elector.step()

    assert api.holder == "me"


def test_a_leader_whose_lease_was_taken_stops_at_once(
    elector: LeaseElector, api: LeaseApi, clock: Clock, events: Recorder
) -> None:
    elector.step()
    api.held_by("usurper")
    clock.now += 2

    assert elector.step() is None

    assert events.lost == 1
    assert not elector.may_write()


def test_release_gives_the_lease_up_once_and_campaigns_no_more(elector: LeaseElector, api: LeaseApi) -> None:
    elector.step()
    api.calls.clear()

    elector.release()

    assert [method for method, _ in api.calls] == ["PUT"]
    assert api.holder is None
    assert not elector.may_write()
    assert elector.step() is None  # the loop is over: nothing can take the lease back


def test_an_unexpected_error_ends_the_election_visibly(
    elector: LeaseElector, api: LeaseApi, clock: Clock
) -> None:
    elector.step()

    def broken(*args: object, **kwargs: object) -> Any:
        raise RuntimeError("a bug")

    api.request = broken  # type: ignore[method-assign]
    elector.start()
    wait_for(lambda: not elector.alive, timeout=10, what="the election thread to end")

    assert isinstance(elector.failed, RuntimeError)
    assert not elector.may_write()


def test_unsafe_timings_are_refused() -> None:
    with pytest.raises(Exception, match="lease duration"):
        ElectionSettings(namespace="x", identity="me", lease_duration=5, renew_deadline=10).check()


def test_a_deleted_lease_stops_its_holder_at_once(
    elector: LeaseElector, api: LeaseApi, clock: Clock, events: Recorder
) -> None:
    elector.step()
    api.lease = None  # `kubectl delete lease cfgsync`
    clock.now += 2

    assert elector.step() is None

    assert events.lost == 1
    assert not elector.may_write()


def test_a_follower_waits_a_lease_duration_before_recreating_a_deleted_lease(
    elector: LeaseElector, api: LeaseApi, clock: Clock, events: Recorder
) -> None:
    api.held_by("other")
    elector.step()
    api.lease = None  # deleted while "other" may still be writing
    elector.step()
    clock.now += 14.9
    elector.step()
    assert api.lease is None
    assert events.started == 0

    clock.now += 0.1
    elector.step()

    assert api.holder == "me"


def test_a_fresh_install_creates_the_lease_at_once(elector: LeaseElector, api: LeaseApi) -> None:
    elector.step()

    assert api.holder == "me"


def test_fractional_durations_are_recorded_rounded_up(api: LeaseApi, clock: Clock, events: Recorder) -> None:
    settings = ElectionSettings(
        namespace="ops", identity="me", lease_duration=10.5, renew_deadline=10.2, retry_period=2
    )
    elector = LeaseElector(
        cast(Kube, api), settings, on_started=events.on_started, on_lost=events.on_lost, clock=clock
    )

    elector.step()

    assert api.lease is not None
    assert api.lease["spec"]["leaseDurationSeconds"] == 11  # never less than the renew deadline
