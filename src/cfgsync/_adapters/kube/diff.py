"""Plans as text: one line per action, and a unified diff per object, Secret values masked.

Pure formatting, no I/O. Secret values never appear: a changed value shows as ``*** (before)`` and
``*** (after)``, an unchanged one as ``***``.
"""

from __future__ import annotations

import difflib
from typing import Any

from cfgsync._adapters import output
from cfgsync._core import manifests
from cfgsync._core.model import Action, ActionKind, ConfigObject, Copy, Plan

_VERBS = {
    ActionKind.CREATE: "create",
    ActionKind.UPDATE: "update",
    ActionKind.REPLACE: "replace",
    ActionKind.DELETE: "delete",
    ActionKind.UNCHANGED: "unchanged",
}


def describe(action: Action, context: str = "") -> str:
    """``create ConfigMap ns/name (copy of ...): reason``, prefixed with ``[context]`` when given."""
    where = f"[{context}] " if context else ""
    return f"{where}{_VERBS[action.kind]} {action.ref} (copy of {action.source}): {action.reason}"


def plan_lines(plan: Plan, context: str = "", *, unchanged: bool = False) -> list[str]:
    """One line per action that writes (and per unchanged one when asked)."""
    return [describe(a, context) for a in plan.actions if unchanged or a.kind is not ActionKind.UNCHANGED]


def _masked(obj: Copy | ConfigObject, other: Copy | ConfigObject | None, suffix: str) -> dict[str, Any]:
    manifest: dict[str, Any] = dict(manifests.to_manifest(obj))
    if obj.ref.kind != "Secret":
        return manifest
    for field in ("data", "binaryData"):
        values = manifest.get(field)
        if not values:
            continue
        theirs = (other.data if field == "data" else other.binary_data) if other is not None else {}
        manifest[field] = {k: "***" if theirs.get(k) == v else f"*** ({suffix})" for k, v in values.items()}
    return manifest


def unified_diff(action: Action, context: str = "") -> str:
    """A unified diff from the observed object to the desired copy ('' when unchanged)."""
    if action.kind is ActionKind.UNCHANGED:
        return ""
    before = (
        ""
        if action.observed is None
        else output.dump_yaml(_masked(action.observed, action.desired, "before"))
    )
    after = (
        ""
        if action.desired is None or action.kind is ActionKind.DELETE
        else output.dump_yaml(_masked(action.desired, action.observed, "after"))
    )
    ref = action.ref
    label = f"{context + '/' if context else ''}{ref.kind}/{ref.namespace}/{ref.name}"
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{label}" if action.observed is not None else "/dev/null",
        tofile=f"b/{label}" if action.kind is not ActionKind.DELETE else "/dev/null",
    )
    return "".join(lines)
