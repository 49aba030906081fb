"""The informer's list/watch loop against a scripted API: resume, 410 Gone, dropped connections."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from cfgsync._adapters.kube.connection import ApiError
from cfgsync._controller.informer import Handlers, Informer
from live.helpers import wait_for


class ScriptedKube:
    """Answers lists from ``lists`` and watches from ``watches``, recording every watch's query."""

    name = "scripted"

    def __init__(self, lists: list[dict[str, Any]], watches: list[list[dict[str, Any]] | ApiError]) -> None:
        self.lists = lists
        self.watches = watches
        self.watch_versions: list[str] = []
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


def run(kube: ScriptedKube) -> dict[str, str]:
    held: dict[str, str] = {}

    def forget(name: str) -> None:
        held.pop(name, None)

    handlers = Handlers(
        upsert=lambda raw: held.__setitem__(raw["metadata"]["name"], raw["metadata"]["resourceVersion"]),
        delete=lambda raw: forget(raw["metadata"]["name"]),
        known=lambda: {("ns", n) for n in held},
    )
    informer = Informer(kube, name="test", path="/api/v1/configmaps", kind="ConfigMap", handlers=handlers)  # type: ignore[arg-type]
    informer.start()
    wait_for(kube.done.is_set, timeout=10, what="the script to run out")
    informer.stop()
    kube.release.set()
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
