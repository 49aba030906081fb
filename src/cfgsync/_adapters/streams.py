"""A plan carried out on a stream of objects: what the ArgoCD plugin and the KRM function emit.

Pure (no I/O); it lives with the adapters because it is about the objects a front end prints, not
about rules. The input objects go out as they came, except those the plan rewrites (an older copy
that was committed with its source) or deletes (a stale copy): those are replaced by the plan's
desired copies, so no object appears twice and no stale copy survives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cfgsync._core import manifests
from cfgsync._core.model import ObjectRef, Plan, is_source_kind

Body = Mapping[str, object]
"""One object as plain JSON-like data."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One input object, and its identity when it is a ConfigMap or Secret."""

    body: Body
    """The object as it is to be emitted (unchanged from the input)."""
    ref: ObjectRef | None
    """Kind, namespace and name for a v1 ConfigMap or Secret; None for every other object."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Emitted:
    """The objects a front end emits, in order."""

    kept: tuple[Item, ...]
    """Input objects emitted unchanged, in input order."""
    copies: tuple[tuple[manifests.Manifest, Item | None], ...]
    """Every desired copy in plan order, with the input object it replaces (or None)."""


def config_ref(body: Body, *, default_namespace: str | None = None) -> ObjectRef | None:
    """The identity of a v1 ConfigMap or Secret (namespace defaulted when missing), else None."""
    kind, meta = body.get("kind"), body.get("metadata")
    if not is_source_kind(kind) or body.get("apiVersion") != "v1" or not isinstance(meta, Mapping):
        return None
    name, namespace = meta.get("name"), meta.get("namespace")
    if namespace in (None, ""):  # only a missing namespace is defaulted, never a wrong one (false, 0)
        namespace = default_namespace
    if not isinstance(name, str) or not isinstance(namespace, str):
        return None
    return ObjectRef(kind=kind, namespace=namespace, name=name)


def carry_out(items: Iterable[Item], plan: Plan) -> Emitted:
    """The input objects the plan leaves alone, then every desired copy."""
    acted = {action.ref for action in plan.actions}
    kept: list[Item] = []
    replaced: dict[ObjectRef, Item] = {}
    for item in items:
        if item.ref is not None and item.ref in acted:
            replaced[item.ref] = item
        else:
            kept.append(item)
    copies = tuple((manifests.to_manifest(copy), replaced.get(copy.ref)) for copy in plan.copies)
    return Emitted(kept=tuple(kept), copies=copies)


def objects(emitted: Emitted, *, copies_only: bool = False) -> Sequence[Body]:
    """The emitted objects as one list: kept input objects first (unless ``copies_only``), then copies."""
    out: list[Body] = [] if copies_only else [item.body for item in emitted.kept]
    out.extend(manifest for manifest, _ in emitted.copies)
    return out
