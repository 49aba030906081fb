"""The mass-delete guard: deletes beyond both limits are held, everything else goes ahead."""

from __future__ import annotations

import pytest

from cfgsync import Action, ActionKind, ObjectRef
from cfgsync._core.guard import DeleteGuard

SOURCE = ObjectRef(kind="ConfigMap", namespace="demo", name="omni")


def action(kind: ActionKind, index: int) -> Action:
    ref = ObjectRef(kind="ConfigMap", namespace=f"ns-{index:03d}", name="omni")
    return Action(kind=kind, ref=ref, source=SOURCE, reason="test")


@pytest.mark.parametrize(
    ("deletes", "managed", "held"),
    [
        (0, 0, False),
        (10, 10, False),  # at the count: never held, whatever the share
        (11, 11, True),  # over the count and over a quarter
        (11, 44, False),  # exactly a quarter: not more
        (11, 43, True),
        (100, 1000, False),  # over the count but a tenth of what is managed
        (251, 1000, True),
    ],
)
def test_deletes_are_held_past_both_the_count_and_the_share(deletes: int, managed: int, held: bool) -> None:
    assert DeleteGuard().holds(deletes, managed) is held


def test_a_disabled_guard_holds_nothing() -> None:
    assert not DeleteGuard(enabled=False).holds(1000, 1000)


def test_limits_are_settings() -> None:
    guard = DeleteGuard(count=2, fraction=0.5)
    assert guard.holds(3, 5)
    assert not guard.holds(3, 6)


def test_held_deletes_leave_creates_and_updates_to_go_ahead() -> None:
    creates = [action(ActionKind.CREATE, i) for i in range(3)]
    updates = [action(ActionKind.UPDATE, i) for i in range(3, 5)]
    deletes = [action(ActionKind.DELETE, i) for i in range(5, 20)]

    verdict = DeleteGuard().check([*creates, *updates, *deletes], managed=20)

    assert verdict.allowed == (*creates, *updates)
    assert verdict.held == tuple(deletes)
    assert verdict.summary().startswith("15 deletes held: more than 10 and more than 25% of the 20 copies")
    assert "--allow-mass-delete" in verdict.summary()


def test_deletes_within_the_limits_go_ahead() -> None:
    deletes = [action(ActionKind.DELETE, i) for i in range(5)]

    verdict = DeleteGuard().check(deletes, managed=5)

    assert verdict.allowed == tuple(deletes)
    assert verdict.held == ()
    assert verdict.summary() == ""
