"""A scripted API for the controller's unit tests: answers requests from a dict, records every call.

It stands in for the API server only in tests of one part at a time (the Writer, the Reconciler, the
controller's wiring); everything live is proven on the real control plane.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from cfgsync._adapters.kube.connection import ApiError, Json, Kube, NotLeadingError


@dataclass
class Call:
    """One request."""

    method: str
    path: str
    body: Any = None


@dataclass
class FakeApi:
    """Objects by path; ``fail`` maps (method, path prefix) to an error to raise instead."""

    objects: dict[str, Json] = field(default_factory=dict)
    fail: dict[tuple[str, str], ApiError] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    name: str = "fake"
    server: str = "https://fake.invalid"
    fence: Callable[[], bool] | None = None
    on_write: Callable[[str, str], None] | None = None
    _versions: Iterator[int] = field(default_factory=lambda: itertools.count(100))

    def as_kube(self) -> Kube:
        """Typed as the connection it stands in for."""
        return cast(Kube, self)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
        accept: str = "",
        timeout: float = 30.0,
    ) -> Json:
        if method != "GET" and self.fence is not None and not self.fence():
            raise NotLeadingError(f"{method} {path}: not the leader", status=0)
        self.calls.append(Call(method, path, copy.deepcopy(body)))
        for (fail_method, prefix), error in self.fail.items():
            if method == fail_method and path.startswith(prefix):
                raise error
        if method == "GET":
            if path not in self.objects:
                raise ApiError(f"GET {path}: not found", status=404)
            return copy.deepcopy(self.objects[path])
        if method == "DELETE":
            self.objects.pop(path, None)
            return {}
        stored: Json = copy.deepcopy(body) if isinstance(body, dict) else {}
        meta = stored.setdefault("metadata", {})
        target = path if method != "POST" else f"{path}/{meta.get('name', '')}"
        meta.setdefault("uid", f"uid-{next(self._versions)}")
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[target] = stored
        return copy.deepcopy(stored)

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[Json]:
        raise AssertionError("no watches in unit tests")

    def close(self) -> None:
        pass

    def writes(self, method: str | None = None) -> list[Call]:
        """Write calls (of ``method``), Events included."""
        return [c for c in self.calls if c.method != "GET" and method in {None, c.method}]


class RaisingApi(FakeApi):
    """An API that fails every call: a constructor that talks to it is caught at once."""

    def request(self, method: str, path: str, **kwargs: Any) -> Json:
        raise AssertionError(f"unexpected {method} {path} (no I/O expected here)")

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[Json]:
        raise AssertionError("unexpected watch (no I/O expected here)")
