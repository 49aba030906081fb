"""The informer's list/watch loop against a scripted API: resume, 410 Gone, dropped connections,
objects it cannot read, and bugs in what it feeds."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, cast

from cfgsync import errors
from cfgsync._adapters.kube.connection import ApiError, Json, Kube
from cfgsync._controller.informer import Informer, Poison
from cfgsync._controller.sinks import Handlers
from live.helpers import wait_for


class ScriptedKube:
    """Answers lists from ``lists`` and watches from ``watches``, recording every watch's query."""

    name = "scripted"

    def __init__(self, lists: list[dict[str, Any]], watches: list[list[dict[str, Any]] | ApiError]) -> None:
        self.lists = lists
        self.watches = watches
        self.watch_versions: list[str] = []
        self.watch_queries: list[dict[str, str]] = []
        self.list_calls = 0
        self.done = threading.Event()
        self.release = threading.Event()

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        self.list_calls += 1
        return self.lists.pop(0)

    def stream(
        self, path: str, *, query: Sequence[tuple[str, str]], accept: str, timeout: Any
    ) -> Iterator[dict[str, Any]]:
        self.watch_versions.append(dict(query)["resourceVersion"])
        self.watch_queries.append({**dict(query), "read_timeout": str(timeout[1])})
        if not self.watches:
            self.done.set()
            self.release.wait(5)
            return
        step = self.watches.pop(0)
        if isinstance(step, ApiError):
            raise step
        yield from step


def item(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": version}}


def listing(version: str, *names: str) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": version}, "items": [item(n, version) for n in names]}


def decode(raw: Json) -> tuple[str, str]:
    """(name, version); an object labelled ``poison`` cannot be read, one labelled ``bug`` breaks the sink."""
    meta = raw["metadata"]
    if meta.get("labels", {}).get("poison"):
        raise errors.ManifestError(f"ConfigMap ns/{meta['name']}: data is too large")
    return meta["name"], meta["resourceVersion"]


def run(kube: ScriptedKube, poisoned: list[Poison] | None = None) -> dict[str, str]:
    held: dict[str, str] = {}

    def put(item: tuple[str, str]) -> None:
        if item[0] == "bug":
            raise KeyError("a bug in a handler")
        held[item[0]] = item[1]

    def forget(key: tuple[str, str], uid: str | None) -> None:
        held.pop(key[1], None)

    handlers = Handlers(upsert=put, delete=forget, known=lambda: {("ns", n) for n in held})
    informer = Informer(
        cast(Kube, kube),
        name="test",
        path="/api/v1/configmaps",
        kind="ConfigMap",
        decode=decode,
        sink=handlers,
        on_poison=(poisoned if poisoned is not None else []).append,
    )
    informer.start()
    wait_for(kube.done.is_set, timeout=10, what="the script to run out")
    informer.stop()
    kube.release.set()
    assert informer.alive
    return held


def test_a_watch_resumes_from_the_last_version_after_a_dropped_connection() -> None:
    kube = ScriptedKube(
        [listing("10", "a")],
        [
            [{"type": "ADDED", "object": item("b", "11")}],
            ApiError("connection reset", status=0),
            [{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}}],
            [{"type": "DELETED", "object": item("a", "16")}],
        ],
    )

    held = run(kube)

    assert held == {"b": "11"}
    assert kube.watch_versions[:4] == ["10", "11", "11", "15"]
    assert kube.list_calls == 1  # never relisted


def test_410_gone_relists_and_notices_what_vanished_meanwhile() -> None:
    kube = ScriptedKube(
        [listing("10", "a", "b"), listing("50", "b", "c"), listing("60", "b", "c")],
        [ApiError("too old", status=410), [{"type": "ERROR", "object": {"code": 410, "message": "expired"}}]],
    )

    held = run(kube)

    assert held == {"b": "60", "c": "60"}  # a was deleted while the watch was away
    assert kube.list_calls == 3
    assert kube.watch_versions[:3] == ["10", "50", "60"]


def poison(name: str, version: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "resourceVersion": version, "labels": {"poison": "1"}}
    }


def test_an_object_that_cannot_be_read_is_reported_and_skipped() -> None:
    poisoned: list[Poison] = []
    kube = ScriptedKube(
        [listing("10", "a")],
        [
            [
                {"type": "MODIFIED", "object": poison("a", "11")},
                {"type": "ADDED", "object": poison("big", "12")},
                {"type": "ADDED", "object": item("c", "13")},
            ]
        ],
    )

    held = run(kube, poisoned)

    assert held == {"c": "13"}  # "a" is no longer trusted as it was; "big" never held; the rest goes on
    assert [(p.name, p.error) for p in poisoned] == [
        ("a", "ConfigMap ns/a: data is too large"),
        ("big", "ConfigMap ns/big: data is too large"),
    ]
    assert kube.watch_versions[:2] == ["10", "13"]


def test_a_bug_in_the_sink_restarts_the_loop_from_a_relist() -> None:
    kube = ScriptedKube(
        [listing("10", "a"), listing("20", "a", "c")],
        [[{"type": "ADDED", "object": item("bug", "11")}], [{"type": "ADDED", "object": item("d", "21")}]],
    )

    held = run(kube)

    assert held == {"a": "20", "c": "20", "d": "21"}
    assert kube.list_calls == 2


def test_watches_end_within_two_minutes_and_a_silent_one_is_given_up() -> None:
    kube = ScriptedKube([listing("10", "a")], [[], []])

    run(kube)

    for query in kube.watch_queries:
        assert 45 <= int(query["timeoutSeconds"]) <= 75
        assert float(query["read_timeout"]) < 120  # the first bookmark arrives after two minutes
        assert float(query["read_timeout"]) > int(query["timeoutSeconds"])
