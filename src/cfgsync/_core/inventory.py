"""Sorting a stream of parsed manifests into what the planner needs.

Pure: takes already-parsed documents with their locations and returns an :class:`Inventory`.
Every mode that reads manifests (render, explain, ArgoCD, KRM) goes through here, so they all
accept and reject exactly the same input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cfgsync import errors
from cfgsync._core import manifests, names, syncrule, vocabulary
from cfgsync._core.model import SOURCE_KINDS, ConfigObject, Namespace, ObjectRef
from cfgsync._core.rules import Rule


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """One parsed manifest and where it came from."""

    body: Mapping[str, object]
    """The object, as plain JSON-like data."""
    where: str
    """``file:line`` (or ``stdin:line``, ``items[3]``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Inventory:
    """Everything the planner needs from a set of manifests."""

    namespaces: tuple[Namespace, ...] = ()
    """Namespace objects, plus the namespaces the objects live in."""
    objects: tuple[ConfigObject, ...] = ()
    """Every ConfigMap and Secret: possible sources, and existing objects (possible copies)."""
    rules: tuple[Rule, ...] = ()
    """SyncRule documents."""


def build_inventory(documents: Iterable[Document], *, implied_namespaces: bool = True) -> Inventory:
    """Classify documents; raise one :class:`ManifestError` listing every invalid one.

    With ``implied_namespaces``, a namespace that objects live in but that has no Namespace
    document is assumed to exist with no labels (so rendering a folder of sources works without
    listing their namespaces); so is any namespace another document names. Objects of other kinds
    are otherwise ignored.
    """
    spaces: dict[str, Namespace] = {}
    objects: dict[ObjectRef, ConfigObject] = {}
    rules: list[Rule] = []
    seen: dict[tuple[str, str, str], str] = {}
    failures: list[str] = []
    mentioned: set[str] = set()
    for doc in documents:
        kind = doc.body.get("kind")
        if not isinstance(kind, str):
            kind = None  # not an object of a kind cfgsync reads (and a mapping is no set member)
        try:
            ident = _identity(doc.body)
            if ident[1] and names.is_namespace_name(ident[1]):
                mentioned.add(ident[1])
            if ident in seen and kind in {"Namespace", *SOURCE_KINDS, vocabulary.SYNC_RULE_KIND}:
                failures.append(
                    f"{manifests.describe(doc.body, doc.where)}: defined twice (also at {seen[ident]}); "
                    f"keep one definition"
                )
                continue
            seen[ident] = doc.where
            if kind == "Namespace" and doc.body.get("apiVersion") == "v1":
                ns = manifests.parse_namespace(doc.body, where=doc.where)
                spaces[ns.name] = ns
            elif kind in SOURCE_KINDS and doc.body.get("apiVersion") == "v1":
                obj = manifests.parse_config_object(doc.body, where=doc.where)
                objects[obj.ref] = obj
            elif kind == vocabulary.SYNC_RULE_KIND and str(doc.body.get("apiVersion", "")).startswith(
                "cfgsync.io/"
            ):
                rules.append(syncrule.rule_from_document(doc.body, where=doc.where))
        except errors.CfgsyncError as exc:
            failures.append(str(exc))
    if failures:
        raise errors.ManifestError("\n".join(failures))
    if implied_namespaces:
        for name in sorted(mentioned - set(spaces)):
            spaces[name] = Namespace(name=name)
    return Inventory(
        namespaces=tuple(sorted(spaces.values(), key=lambda n: n.name)),
        objects=tuple(sorted(objects.values(), key=lambda o: o.ref.sort_key)),
        rules=tuple(rules),
    )


def _identity(body: Mapping[str, object]) -> tuple[str, str, str]:
    meta = body.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return (str(body.get("kind")), str(meta.get("namespace", "")), str(meta.get("name", "")))
