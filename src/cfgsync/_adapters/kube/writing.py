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
- a pulled target (an object that asked for a source) is only ever updated, and the apply carries only
  its payload and the ``cfgsync.io/copied-from`` annotation: its labels, its other annotations and the
  request itself stay its owner's (cfgsync's field manager never takes them). Any other action on a
  target is refused here, whatever a plan says: cfgsync never creates or deletes a target.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Final

from cfgsync._adapters.kube import resources, view
from cfgsync._adapters.kube.connection import APPLY_PATCH, JSON_PATCH, ApiError, Json, Kube
from cfgsync._core import manifests, vocabulary
from cfgsync._core.model import Action, ActionKind, ConfigObject, Copy

FORBIDDEN: Final = 403
"""The status of a write RBAC refuses (and of some admission denials)."""
INVALID: Final = 422
"""The status of a write that validation or an admission policy's default denial refuses."""
_RBAC_DENIAL: Final = re.compile(r'\bcannot [a-z]+ resource "')
"""How the API server's authorizer words a denial (``User "x" cannot create resource "configmaps" ...``);
admission webhooks, ValidatingAdmissionPolicies and ResourceQuota word theirs otherwise."""


def is_rbac_denial(exc: ApiError) -> bool:
    """True when the API server's authorizer (RBAC) refused the request, not admission or quota."""
    return exc.status == FORBIDDEN and bool(_RBAC_DENIAL.search(exc.detail or str(exc)))


def is_admission_denial(exc: ApiError) -> bool:
    """True when admission (a webhook, a policy, a quota) or validation refused this one object."""
    return (exc.status == FORBIDDEN and not is_rbac_denial(exc)) or exc.status == INVALID


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
    rbac: bool = False
    """True when RBAC refused the write (the whole namespace and kind are closed for a while)."""
    rejected: bool = False
    """True when admission or validation refused this object (only this copy is affected)."""

    @property
    def forbidden(self) -> bool:
        """True when RBAC refused the write."""
        return self.rbac

    @property
    def retriable(self) -> bool:
        """True when trying again after a back-off may succeed (conflict, unreachable, server error).

        A write refused by RBAC, admission or validation is not: it is tried again on the next change
        of its source or at the next resync."""
        return not (self.rbac or self.rejected) and (self.status in {0, 409, 429} or self.status >= 500)


class Writer:
    """Carries out actions on one cluster with bounded concurrency."""

    def __init__(self, kube: Kube, *, workers: int = 16, forbidden_for: float = 0.0) -> None:
        """``forbidden_for``: seconds during which a (namespace, kind) where RBAC refused a write is
        skipped without asking again, so a controller does not knock on a closed door every resync.
        Whether this replica may write at all is the connection's fence (leader election)."""
        self.kube = kube
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
        if action.desired is not None and action.desired.pulled and action.kind is not ActionKind.UPDATE:
            message = f"{action.kind.value} {action.ref}: refused, a pulled target is only ever updated"
            return Outcome(action=action, ok=False, message=message, status=INVALID, rejected=True)
        door = (action.ref.namespace, action.ref.kind)
        until = self._forbidden.get(door)
        if until is not None and time.monotonic() < until:
            message = (
                f"{action.kind.value} {action.ref} (copy of {action.source}): skipped, writing "
                f"{action.ref.kind}s in namespace {action.ref.namespace} was forbidden (403) a moment ago"
            )
            return Outcome(action=action, ok=False, message=message, status=FORBIDDEN, rbac=True)
        try:
            stored = _ACTIONS[action.kind](self, action)
        except ApiError as exc:
            rbac = is_rbac_denial(exc)
            if rbac and self._forbidden_for > 0:
                self._forbidden[door] = time.monotonic() + self._forbidden_for
            return Outcome(
                action=action,
                ok=False,
                message=_explain(action, exc),
                status=exc.status,
                rbac=rbac,
                rejected=is_admission_denial(exc),
            )
        self._forbidden.pop(door, None)
        return Outcome(action=action, ok=True, stored=stored)

    # -- the four writes -------------------------------------------------------------------------

    def create(self, action: Action) -> ConfigObject | None:
        """POST the desired copy."""
        copy = _desired(action)
        resource = resources.BY_KIND[copy.ref.kind]
        raw = self.kube.request(
            "POST",
            resource.collection(copy.ref.namespace),
            query=[("fieldManager", view.MANAGER)],
            body=manifests.to_manifest(copy),
        )
        return view.written_copy(raw, copy)

    def update(self, action: Action) -> ConfigObject | None:
        """Server-side apply the desired copy, then remove what apply could not."""
        copy, observed = _desired(action), _observed(action)
        resource = resources.BY_KIND[copy.ref.kind]
        body: dict[str, Any] = dict(manifests.to_manifest(copy))
        if copy.pulled:
            body = _pulled_body(body, copy)
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
            version = str(view.metadata(raw).get("resourceVersion", ""))
            raw = self.kube.request(
                "PATCH",
                resource.item(copy.ref.name, copy.ref.namespace),
                query=[("fieldManager", view.MANAGER)],
                body=[{"op": "test", "path": "/metadata/resourceVersion", "value": version}, *removals],
                content_type=JSON_PATCH,
            )
        return view.written_copy(raw, copy)

    def delete(self, action: Action) -> ConfigObject | None:
        """DELETE the observed object if it is still the one observed; gone already is fine."""
        observed = _observed(action)
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


def _pulled_body(manifest: dict[str, Any], copy: Copy) -> dict[str, Any]:
    """The apply of a pulled target: its payload and cfgsync's annotation, nothing of its owner's."""
    body = {
        key: value for key, value in manifest.items() if key in {"apiVersion", "kind", "data", "binaryData"}
    }
    body["metadata"] = {
        "name": copy.ref.name,
        "namespace": copy.ref.namespace,
        "annotations": {vocabulary.COPIED_FROM: copy.annotations[vocabulary.COPIED_FROM]},
    }
    return body


def _leftovers(raw: Json, copy: Copy, observed: ConfigObject) -> list[dict[str, str]]:
    """JSON patch removals for what the plan drops but apply left behind (co-owned fields). On a
    pulled target, only data keys: its metadata is its owner's."""
    meta = view.metadata(raw)
    ops = []
    owned = (
        ()
        if copy.pulled
        else (
            ("labels", copy.labels, observed.labels),
            ("annotations", copy.annotations, observed.annotations),
        )
    )
    for field, desired, shown in owned:
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
    if is_rbac_denial(exc):
        return (
            f"{what}: forbidden by RBAC: {exc}; grant cfgsync's service account this verb in namespace "
            f"{action.ref.namespace}, or exclude the namespace"
        )
    if is_admission_denial(exc):
        return (
            f"{what}: refused by admission ({exc.status} {exc.reason}): {exc.detail or exc}; only this copy "
            f"is affected. Change the policy, webhook or quota that refused it, or exclude the copy; "
            f"it is tried again when its source changes and at the next resync"
        )
    if exc.status == 409:
        return f"{what}: the object changed or appeared since it was read ({exc.reason}); it is planned again"
    if exc.status == 404 and action.kind in {ActionKind.CREATE, ActionKind.REPLACE}:
        return f"{what}: namespace {action.ref.namespace} no longer exists"
    return f"{what}: {exc}"
