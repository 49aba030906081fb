"""The controller's first pass: deletes wait until every source was seen, then the guard decides."""

from __future__ import annotations

from cfgsync import Action, ActionKind, ConfigObject, ObjectRef
from cfgsync._controller.first_pass import FirstPass
from cfgsync._core.guard import DeleteGuard


def ref(name: str, namespace: str = "demo") -> ObjectRef:
    return ObjectRef(kind="ConfigMap", namespace=namespace, name=name)


def delete(source: ObjectRef, namespace: str, uid: str = "") -> Action:
    copy = ref(source.name, namespace)
    observed = ConfigObject(ref=copy, uid=uid or f"uid-{namespace}")
    return Action(kind=ActionKind.DELETE, ref=copy, source=source, observed=observed, reason="gone")


def create(source: ObjectRef, namespace: str) -> Action:
    return Action(kind=ActionKind.CREATE, ref=ref(source.name, namespace), source=source, reason="new")


def test_deletes_wait_for_the_end_of_the_pass_and_go_ahead_within_the_limits() -> None:
    one, two = ref("one"), ref("two")
    first = FirstPass(DeleteGuard(), managed=lambda: 40)
    assert first.begin([one, two]) is None

    assert first.split([create(one, "a"), delete(one, "b")]) == [create(one, "a")]
    assert first.done([one]) is None  # "two" is still to come
    ended = first.done([two])

    assert ended is not None
    assert ended.verdict.held == ()
    assert ended.release == {one}
    assert first.split([delete(one, "b")]) == [delete(one, "b")]  # planned again: carried out


def test_deletes_past_the_limits_are_held_while_later_ones_go_ahead() -> None:
    source, other = ref("omni"), ref("other")
    first = FirstPass(DeleteGuard(), managed=lambda: 12)
    first.begin([source])
    deletes = [delete(source, f"ns-{i}") for i in range(12)]

    first.split(deletes)
    ended = first.done([source])

    assert ended is not None
    assert len(ended.verdict.held) == 12
    assert ended.release == frozenset()
    assert len(first.held) == 12
    assert first.split(deletes) == []  # held for as long as this replica leads
    later = delete(other, "x")
    assert first.split([later]) == [later]  # a delete planned after the first pass is not held
    recreated = delete(source, "ns-0", uid="a-new-object")
    assert first.split([recreated]) == [recreated]  # not the object that was held


def test_an_empty_pass_ends_at_once() -> None:
    ended = FirstPass(DeleteGuard(), managed=lambda: 0).begin([])

    assert ended is not None
    assert ended.verdict.held == ()


def test_a_new_pass_starts_afresh() -> None:
    source = ref("omni")
    first = FirstPass(DeleteGuard(count=0, fraction=0.0), managed=lambda: 1)
    first.begin([source])
    first.split([delete(source, "a")])
    first.done([source])
    assert len(first.held) == 1

    first.begin([source])

    assert not first.held


def test_a_pass_that_never_finishes_ends_at_its_limit() -> None:
    now = [0.0]
    source, stuck = ref("omni"), ref("stuck")
    first = FirstPass(DeleteGuard(), managed=lambda: 100, limit=600, clock=lambda: now[0])
    first.begin([source, stuck])
    first.split([delete(source, "a")])
    first.done([source])  # "stuck" keeps failing and never finishes

    assert first.expire(599.0) is None
    now[0] = 600.0
    ended = first.expire(600.0)

    assert ended is not None
    assert ended.release == {source}  # one delete: within the limits
