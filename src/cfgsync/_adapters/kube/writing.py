"""Carrying out a plan: create, apply, replace and delete copies, each guarded against races.

I/O: write requests. How each action is written, and why:

- create: ``POST`` with field manager ``cfgsync``. A create must never land on an object that appeared
  since the cluster was read: an apply would merge into it (adopting it), while ``POST`` fails with
  409 AlreadyExists, which is reported as a conflict.
- update: server-side apply (field manager ``cfgsync``, forced, so a value edited by hand is taken
  back) carrying the observed ``uid`` and ``resourceVersion``, which the API server checks: an object
  that changed hands since it was read is left alone (409) and planned again. Apply never removes a
  field another manager also owns, so any label, annotation or data key the plan removes and that is
  still there afterwards is removed by a JSON patch guarded by a ``test`` of the resourceVersion.
- replace (an immutable copy whose data changed): delete with uid and resourceVersion preconditions,
  then create.
- delete: with uid and resourceVersion preconditions, so a copy edited or re-created meanwhile (for
  example made unmanaged) is never deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Final

from cfgsync._adapters.kube import resources, view
from cfgsync._adapters.kube.connection import APPLY_PATCH, JSON_PATCH, ApiError, Json, Kube
from cfgsync._core import manifests
from cfgsync._core.model import Action, ActionKind, ConfigObject, Copy

FORBIDDEN: Final = 403
"""The status of a write RBAC refuses."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What happened to one action."""

    action: Action
    """The action carried out."""
    ok: bool
    """True when the cluster now holds what the action wanted."""
    message: str = ""
    """Why it failed (never contains object data)."""
    status: int = 0
    """HTTP status of the failure (403 forbidden, 409 conflict, 0 unreachable)."""
    stored: ConfigObject | None = None
    """The planner's view of the copy as now stored (None after a delete or a failure)."""

    @property
    def forbidden(self) -> bool:
        """True when RBAC refused the write."""
        return self.status == FORBIDDEN

    @property
    def retriable(self) -> bool:
        """True when trying again later may succeed (conflict, unreachable, server error)."""
        return self.status in {0, 409, 429} or self.status >= 500


class NotLeadingError(ApiError):
    """This replica is not (or no longer) the leader, so it must not write."""


class Writer:
    """Carries out actions on one cluster with bounded concurrency."""

    def __init__(
        self,
        kube: Kube,
        *,
        workers: int = 16,
        may_write: Callable[[], bool] | None = None,
        forbidden_for: float = 0.0,
    ) -> None:
        """``forbidden_for``: seconds during which a (namespace, kind) that refused a write (403) is
        skipped without asking again, so a controller does not knock on a closed door every resync."""
        self.kube = kube
        self._may_write = may_write or (lambda: True)
        self._forbidden_for = forbidden_for
        self._forbidden: dict[tuple[str, str], float] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"write-{kube.name}")
        self._limit = workers * 2

    def close(self) -> None:
        """Wait for writes in flight and stop the worker threads."""
        self._pool.shutdown(wait=True)

    def execute(self, actions: Sequence[Action]) -> list[Outcome]:
        """Carry out every action that writes (unchanged ones are skipped); return their outcomes."""
        outcomes: list[Outcome] = []
        pending: set[Future[Outcome]] = set()
        for action in actions:
            if action.kind is ActionKind.UNCHANGED:
                continue
            if len(pending) >= self._limit:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                outcomes.extend(f.result() for f in done)
            pending.add(self._pool.submit(self.carry_out, action))
        outcomes.extend(f.result() for f in wait(pending).done)
        return outcomes

    def carry_out(self, action: Action) -> Outcome:
        """Carry out one action, turning API errors into a failed outcome."""
        door = (action.ref.namespace, action.ref.kind)
        until = self._forbidden.get(door)
        if until is not None and time.monotonic() < until:
            message = (
                f"{action.kind.value} {action.ref} (copy of {action.source}): skipped, writing "
                f"{action.ref.kind}s in namespace {action.ref.namespace} was forbidden (403) a moment ago"
            )
            return Outcome(action=action, ok=False, message=message, status=FORBIDDEN)
        try:
            stored = _ACTIONS[action.kind](self, action)
        except ApiError as exc:
            if exc.status == FORBIDDEN and self._forbidden_for > 0:
                self._forbidden[door] = time.monotonic() + self._forbidden_for
            return Outcome(action=action, ok=False, message=_explain(action, exc), status=exc.status)
        self._forbidden.pop(door, None)
        return Outcome(action=action, ok=True, stored=stored)

    # -- the four writes -------------------------------------------------------------------------

    def _guard(self) -> None:
        if not self._may_write():
            raise NotLeadingError(
                "not the leader: writes are left to the replica holding the lease", status=0
            )

    def create(self, action: Action) -> ConfigObject | None:
        """POST the desired copy."""
        copy = _desired(action)
        self._guard()
        resource = resources.BY_KIND[copy.ref.kind]
        raw = self.kube.request(
            "POST",
            resource.collection(copy.ref.namespace),
            query=[("fieldManager", view.MANAGER)],
            body=manifests.to_manifest(copy),
        )
        return view.observed_copy(raw)

    def update(self, action: Action) -> ConfigObject | None:
        """Server-side apply the desired copy, then remove what apply could not."""
        copy, observed = _desired(action), _observed(action)
        self._guard()
        resource = resources.BY_KIND[copy.ref.kind]
        body: dict[str, Any] = dict(manifests.to_manifest(copy))
        body["metadata"] = {
            **body["metadata"],
            "uid": observed.uid,
            "resourceVersion": observed.resource_version,
        }
        raw = self.kube.request(
            "PATCH",
            resource.item(copy.ref.name, copy.ref.namespace),
            query=[("fieldManager", view.MANAGER), ("force", "true")],
            body=body,
            content_type=APPLY_PATCH,
        )
        removals = _leftovers(raw, copy, observed)
        if removals:
            self._guard()
            version = str(view.metadata(raw).get("resourceVersion", ""))
            raw = self.kube.request(
                "PATCH",
                resource.item(copy.ref.name, copy.ref.namespace),
                query=[("fieldManager", view.MANAGER)],
                body=[{"op": "test", "path": "/metadata/resourceVersion", "value": version}, *removals],
                content_type=JSON_PATCH,
            )
        return view.observed_copy(raw)

    def delete(self, action: Action) -> ConfigObject | None:
        """DELETE the observed object if it is still the one observed; gone already is fine."""
        observed = _observed(action)
        self._guard()
        resource = resources.BY_KIND[observed.ref.kind]
        preconditions = {"uid": observed.uid}
        if observed.resource_version:
            preconditions["resourceVersion"] = observed.resource_version
        try:
            self.kube.request(
                "DELETE",
                resource.item(observed.ref.name, observed.ref.namespace),
                body={"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": preconditions},
            )
        except ApiError as exc:
            if exc.status != 404:
                raise
        return None

    def replace(self, action: Action) -> ConfigObject | None:
        """Delete the immutable copy (with preconditions) and create it again."""
        self.delete(action)
        return self.create(action)


_ACTIONS: Final[Mapping[ActionKind, Callable[[Writer, Action], ConfigObject | None]]] = {
    ActionKind.CREATE: Writer.create,
    ActionKind.UPDATE: Writer.update,
    ActionKind.REPLACE: Writer.replace,
    ActionKind.DELETE: Writer.delete,
}


def _desired(action: Action) -> Copy:
    assert action.desired is not None, f"{action.kind.value} without a desired copy"
    return action.desired


def _observed(action: Action) -> ConfigObject:
    assert action.observed is not None, f"{action.kind.value} without an observed object"
    return action.observed


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _leftovers(raw: Json, copy: Copy, observed: ConfigObject) -> list[dict[str, str]]:
    """JSON patch removals for what the plan drops but apply left behind (co-owned fields)."""
    meta = view.metadata(raw)
    ops = []
    for field, desired, shown in (
        ("labels", copy.labels, observed.labels),
        ("annotations", copy.annotations, observed.annotations),
    ):
        for key in view.string_map(meta, field):
            if key not in desired and key in shown:
                ops.append({"op": "remove", "path": _pointer("metadata", field, key)})
    for field, desired in (("data", copy.data), ("binaryData", copy.binary_data)):
        present = raw.get(field)
        for key in present if isinstance(present, Mapping) else ():
            if key not in desired:
                ops.append({"op": "remove", "path": _pointer(field, str(key))})
    return ops


def _explain(action: Action, exc: ApiError) -> str:
    what = f"{action.kind.value} {action.ref} (copy of {action.source})"
    if exc.status == FORBIDDEN:
        return (
            f"{what}: forbidden: {exc}; grant cfgsync's service account this verb in namespace "
            f"{action.ref.namespace}, or exclude the namespace"
        )
    if exc.status == 409:
        return f"{what}: the object changed or appeared since it was read ({exc.reason}); it is planned again"
    if exc.status == 404 and action.kind in {ActionKind.CREATE, ActionKind.REPLACE}:
        return f"{what}: namespace {action.ref.namespace} no longer exists"
    return f"{what}: {exc}"
