"""When several sources want one copy: the owner keeps it, else the source that has held that name
longest elsewhere, else the older source, else the first by namespace and name; both sides hear of it;
a copy never changes hands in place; nothing flaps."""

from __future__ import annotations

import dataclasses
import random

import pytest

from cfgsync import ActionKind, ConfigObject, Plan
from cfgsync._core import contexts
from cfgsync._plugins.manager import load_plugins
from cfgsync.testing import config_map, namespace, plan

SPACES = [namespace(n) for n in ("alpha", "zulu", "n1", "n2", "n3")]


def wanting(ns: str, name: str, targets: str = "n*", copy_name: str = "shared") -> ConfigObject:
    return config_map(
        ns,
        name,
        {"from": f"{ns}/{name}"},
        annotations={"cfgsync.io/namespaces": targets, "cfgsync.io/copy-name": copy_name},
    )


A = wanting("alpha", "ca")  # sorts first
Z = wanting("zulu", "ca")


def carry_out(result: Plan, existing: list[ConfigObject]) -> list[ConfigObject]:
    """What the cluster holds after the plan is written (uids kept by updates)."""
    held = {obj.ref: obj for obj in existing}
    for action in result.actions:
        if action.kind is ActionKind.DELETE:
            del held[action.ref]
        elif action.desired is not None and action.kind is not ActionKind.UNCHANGED:
            copy = action.desired
            old = held.get(action.ref)
            keep = old.uid if old is not None and action.kind is ActionKind.UPDATE else None
            held[action.ref] = ConfigObject(
                ref=copy.ref,
                labels=copy.labels,
                annotations=copy.annotations,
                data=copy.data,
                uid=keep or f"uid-{copy.ref.namespace}-{copy.source.namespace}-{len(held)}",
            )
    return list(held.values())


def owners(existing: list[ConfigObject]) -> dict[str, str]:
    return {o.ref.namespace: o.data["from"] for o in existing}


def test_with_no_copy_yet_the_first_by_namespace_and_name_has_it_and_both_hear_of_it() -> None:
    result = plan([Z, A], SPACES)

    assert {c.ref.namespace: c.source for c in result.copies} == {"n1": A.ref, "n2": A.ref, "n3": A.ref}
    for conflict in result.conflicts:
        assert conflict.sources == (A.ref, Z.ref)  # reported to both sources
        assert conflict.winner == A.ref
        assert "sorts first by namespace and name" in conflict.reason


def test_the_current_owner_keeps_its_copy_and_the_incumbent_gets_new_namespaces() -> None:
    # zulu arrived first (alpha did not exist yet): it holds n1 and n2.
    before = carry_out(plan([Z], [n for n in SPACES if n.name != "n3"]), [])

    result = plan([A, Z], SPACES, before)

    assert {c.ref.namespace: c.source for c in result.copies} == {"n1": Z.ref, "n2": Z.ref, "n3": Z.ref}
    by_ns = {c.ref.namespace: c for c in result.conflicts}
    assert "holds the copy already" in by_ns["n1"].reason
    assert "has held a copy of that name elsewhere the longest" in by_ns["n3"].reason
    assert {a.ref.namespace: a.kind for a in result.actions} == {
        "n1": ActionKind.UNCHANGED,
        "n2": ActionKind.UNCHANGED,
        "n3": ActionKind.CREATE,
    }


def test_a_rival_never_takes_a_copy_over_in_place() -> None:
    before = carry_out(plan([Z], SPACES), [])
    uids = {o.ref: o.uid for o in before}

    # zulu's source is gone for one pass: its copies are deleted, never rewritten as alpha's.
    gone = plan([A], SPACES, before)

    assert {a.kind for a in gone.actions} == {ActionKind.DELETE}
    assert all(a.source == Z.ref for a in gone.actions)
    assert all("deleted first" in c.reason and c.winner is None for c in gone.conflicts)
    after = carry_out(plan([A], SPACES), carry_out(gone, before))
    assert owners(after) == {"n1": "alpha/ca", "n2": "alpha/ca", "n3": "alpha/ca"}
    assert not set(uids.values()) & {o.uid for o in after}  # alpha's are new objects


def test_an_unmanaged_object_blocks_every_source_that_wants_its_name() -> None:
    mine = config_map("n1", "shared", {"mine": "yes"})

    result = plan([A, Z], SPACES, [mine])

    (conflict,) = [c for c in result.conflicts if c.ref == mine.ref]
    assert conflict.sources == (A.ref, Z.ref)
    assert conflict.winner is None
    assert not any(a.ref == mine.ref for a in result.actions)


@pytest.mark.parametrize("seed", range(5))
def test_nothing_flaps_whatever_order_sources_and_namespaces_arrive_in(seed: int) -> None:
    shuffler = random.Random(seed)  # noqa: S311 -- a reproducible shuffle, nothing secret
    sources = [A, Z, wanting("mid", "ca", targets="n2,n3")]
    spaces = [*SPACES, namespace("mid")]
    existing: list[ConfigObject] = []
    # Sources appear one by one, in a random order, each followed by a pass.
    arrived: list[ConfigObject] = []
    for source in shuffler.sample(sources, len(sources)):
        arrived.append(source)
        existing = carry_out(plan(arrived, spaces, existing), existing)
    settled = owners(existing)

    for _ in range(3):
        shuffler.shuffle(arrived)
        shuffler.shuffle(spaces)
        again = plan(arrived, spaces, existing)
        assert again.changes == ()
        existing = carry_out(again, existing)
    assert owners(existing) == settled


def test_copies_into_other_clusters_are_arbitrated_by_the_same_rule() -> None:
    east = {"kubed.appscode.com/sync-contexts": "east", "cfgsync.io/copy-name": "shared"}
    one = config_map("alpha", "ca", annotations=east)
    two = config_map("zulu", "ca", annotations=east)

    result = contexts.plan_context_copies(
        [two, one],
        context="east",
        context_namespace="n1",
        namespaces=SPACES,
        hooks=load_plugins(only=()),
    )

    assert [c.source for c in result.copies] == [one.ref]
    (conflict,) = result.conflicts
    assert (conflict.sources, conflict.winner) == ((one.ref, two.ref), one.ref)


def aged(obj: ConfigObject, created: str) -> ConfigObject:
    return dataclasses.replace(obj, created=created)


def test_a_later_rival_with_more_copies_does_not_win_new_namespaces() -> None:
    """A tenant copies a platform source's copy name into many namespaces the platform does not use:
    it holds more copies, but the platform has held that name longer, and gets the new namespace."""
    spaces = [namespace(n) for n in ("platform", "evil", "prod-1", "dev-1", "dev-2", "dev-3", "prod-2")]
    platform = aged(wanting("platform", "ca", targets="prod-*"), "2026-01-01T00:00:00Z")
    evil = aged(wanting("evil", "evil", targets="*"), "2026-06-01T00:00:00Z")
    before = [
        aged(obj, "2026-01-01T00:00:01Z" if obj.data["from"] == "platform/ca" else "2026-06-01T00:00:01Z")
        for obj in carry_out(plan([platform], spaces[:3]), [])
        + carry_out(plan([evil], [spaces[0], spaces[1], *spaces[3:6]]), [])
    ]

    result = plan([platform, evil], spaces, before)

    (created,) = result.of_kind(ActionKind.CREATE)
    assert created.ref.namespace == "prod-2"
    assert created.source == platform.ref
    (contest,) = [c for c in result.conflicts if c.ref == created.ref]
    assert contest.winner == platform.ref


def test_with_no_copies_anywhere_the_older_source_wins() -> None:
    older = aged(Z, "2026-01-01T00:00:00Z")
    newer = aged(A, "2026-02-01T00:00:00Z")  # sorts first, but came later

    result = plan([newer, older], SPACES)

    assert {c.source for c in result.copies} == {Z.ref}
    assert all("older source" in c.reason for c in result.conflicts)
