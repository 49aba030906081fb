"""The controller's picture of the cluster, kept current by the watches.

No I/O; thread-safe (one lock). What is held, and how much:

- namespaces: name, labels, terminating;
- every ConfigMap and Secret that is not a copy: only that its name is taken in a namespace (for
  conflicts), plus the resourceVersion of those that declare a sync rule (sources);
- copies (objects with origin labels): the planner's view, with data mappings shared between copies;
- sources: in full, fetched when their resourceVersion moves;
- SyncRules, and the names each source wants but does not hold (conflicts, failed creates).

Every change that matters calls ``on_change`` with the sources to reconcile again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cfgsync._adapters.kube import view
from cfgsync._core import origin
from cfgsync._core.model import ConfigObject, Namespace, ObjectRef, Problem
from cfgsync._core.policy import DEFAULT_POLICY, Policy
from cfgsync._core.rules import Rule

NameKey = tuple[str, str]
"""(kind, name): objects of one kind and name across namespaces."""


def newer(version: str | None, than: str | None) -> bool:
    """True when resourceVersion ``version`` is later than ``than``.

    resourceVersions are opaque, but the API server's are etcd revisions (integers); when either is
    not an integer, any different version counts as newer.
    """
    if than is None:
        return True
    if version is None:
        return False
    if version.isdigit() and than.isdigit():
        return int(version) > int(than)
    return version != than


@dataclass(slots=True)
class _Index:
    """Refs by (kind, name), so the reconciler finds what holds a copy's name in every namespace."""

    by_name: dict[NameKey, set[str]] = field(default_factory=dict)

    def add(self, ref: ObjectRef) -> bool:
        spaces = self.by_name.setdefault((ref.kind, ref.name), set())
        if ref.namespace in spaces:
            return False
        spaces.add(ref.namespace)
        return True

    def discard(self, ref: ObjectRef) -> bool:
        spaces = self.by_name.get((ref.kind, ref.name))
        if spaces is None or ref.namespace not in spaces:
            return False
        spaces.discard(ref.namespace)
        if not spaces:
            del self.by_name[(ref.kind, ref.name)]
        return True

    def namespaces(self, kind: str, name: str) -> frozenset[str]:
        return frozenset(self.by_name.get((kind, name), ()))


class Store:
    """See the module docstring."""

    def __init__(
        self,
        *,
        cluster_name: str,
        source_namespace: str | None = None,
        on_change: Callable[[Iterable[ObjectRef]], None] = lambda refs: None,
        policy: Policy = DEFAULT_POLICY,
    ) -> None:
        self.cluster_name = cluster_name
        self.source_namespace = source_namespace
        self.policy = policy
        self.on_change = on_change
        self.lock = threading.RLock()
        self.namespaces: dict[str, Namespace] = {}
        self._present = _Index()
        self._objects: dict[ObjectRef, str] = {}  # non-copy ref -> "s" (source) or "" (other)
        self.source_versions: dict[ObjectRef, str] = {}
        self.full_sources: dict[ObjectRef, ConfigObject] = {}
        self.copies: dict[ObjectRef, ConfigObject] = {}
        self._copy_names = _Index()
        self.by_owner: dict[ObjectRef, set[ObjectRef]] = {}
        self._tombstones: dict[str, None] = {}
        self.rules: dict[tuple[str, str], Rule | Problem] = {}
        self.claims: dict[ObjectRef, set[ObjectRef]] = {}
        self.claimed: dict[ObjectRef, frozenset[ObjectRef]] = {}
        self.interner = view.Interner()

    # -- namespaces ------------------------------------------------------------------------------

    def put_namespace(self, raw: Mapping[str, Any]) -> None:
        """A namespace was added or changed: every source may select it now, or no longer."""
        ns = view.namespace_of(raw)
        with self.lock:
            if self.namespaces.get(ns.name) == ns:
                return
            self.namespaces[ns.name] = ns
            affected = list(self.source_versions)
        self.on_change(affected)

    def drop_namespace(self, raw: Mapping[str, Any]) -> None:
        """A namespace is gone."""
        name = str(view.metadata(raw).get("name", ""))
        with self.lock:
            if self.namespaces.pop(name, None) is None:
                return
            affected = list(self.source_versions)
        self.on_change(affected)

    # -- ConfigMaps and Secrets, metadata only ----------------------------------------------------

    def is_source(self, ref: ObjectRef, meta: Mapping[str, Any]) -> bool:
        """True when the object declares a rule or a SyncRule names it (and its namespace counts)."""
        if self.source_namespace not in {None, ref.namespace}:
            return False
        if view.declares_rule(meta, self.cluster_name):
            return True
        return any(
            isinstance(r, Rule) and r.source == ref for r in self.rules.values()
        ) and not origin.is_copy(ref, view.string_map(meta, "labels"), self.cluster_name)

    def put_object(self, kind: str, meta: Mapping[str, Any]) -> None:
        """A ConfigMap or Secret (metadata) was added or changed."""
        ref = _ref(kind, meta)
        if origin.is_copy(ref, view.string_map(meta, "labels"), self.cluster_name):
            self.drop_object(kind, meta)  # the copy watch holds it now
            return
        source = self.is_source(ref, meta)
        version = str(meta.get("resourceVersion", ""))
        changed: list[ObjectRef] = []
        with self.lock:
            new = self._present.add(ref)
            self._objects[ref] = "s" if source else ""
            if source:
                if self.source_versions.get(ref) != version:
                    self.source_versions[ref] = version
                    changed.append(ref)
            elif self.source_versions.pop(ref, None) is not None:
                self.full_sources.pop(ref, None)
                changed.append(ref)
            if new:
                changed.extend(self.claims.get(ref, ()))
        if changed:
            self.on_change(changed)

    def drop_object(self, kind: str, meta: Mapping[str, Any]) -> None:
        """A ConfigMap or Secret that is not a copy is gone (or became a copy)."""
        ref = _ref(kind, meta)
        with self.lock:
            if self._objects.pop(ref, None) is None:
                return
            self._present.discard(ref)
            changed = list(self.claims.get(ref, ()))
            if self.source_versions.pop(ref, None) is not None:
                self.full_sources.pop(ref, None)
                changed.append(ref)
        if changed:
            self.on_change(changed)

    def object_refs(self, kind: str) -> set[ObjectRef]:
        """Refs of every non-copy object of ``kind`` (for a relist to find what vanished)."""
        with self.lock:
            return {r for r in self._objects if r.kind == kind}

    # -- copies, in full ---------------------------------------------------------------------------

    def put_copy(self, raw: Mapping[str, Any], *, written: ConfigObject | None = None) -> None:
        """A copy was added or changed (from the watch), or written by this controller (``written``)."""
        obj = written if written is not None else view.observed_copy(raw, self.interner, policy=self.policy)
        if not origin.is_copy(obj.ref, obj.labels, self.cluster_name):
            # A source kubed marked with its own origin: the metadata watch holds it as a source.
            with self.lock:
                owner = self._forget_copy(obj.ref)
            if owner is not None:
                self.on_change([owner])
            return
        with self.lock:
            if obj.uid in self._tombstones:
                return
            old = self.copies.get(obj.ref)
            if (
                old is not None
                and old.uid == obj.uid
                and not newer(obj.resource_version, old.resource_version)
            ):
                return  # an echo of a write already recorded, or an older event
            if written is not None:
                obj = self.interner.intern(obj)
            self._forget_copy(obj.ref)
            self.copies[obj.ref] = obj
            self._copy_names.add(obj.ref)
            owner = origin.owner_of(obj, self.cluster_name)
            if owner is not None:
                self.by_owner.setdefault(owner, set()).add(obj.ref)
        if owner is not None and written is None:
            self.on_change([owner])

    def drop_copy(self, ref: ObjectRef, uid: str | None, *, written: bool = False) -> None:
        """A copy is gone (deleted, or no longer labelled as one)."""
        with self.lock:
            old = self.copies.get(ref)
            if old is None or (uid is not None and old.uid != uid):
                return
            if written and uid is not None:
                self._tombstones[uid] = None
                if len(self._tombstones) > 10_000:
                    del self._tombstones[next(iter(self._tombstones))]
            owner = self._forget_copy(ref)
        if owner is not None and not written:
            self.on_change([owner])

    def _forget_copy(self, ref: ObjectRef) -> ObjectRef | None:
        old = self.copies.pop(ref, None)
        if old is None:
            return None
        self._copy_names.discard(ref)
        owner = origin.owner_of(old, self.cluster_name)
        if owner is not None:
            owned = self.by_owner.get(owner)
            if owned is not None:
                owned.discard(ref)
                if not owned:
                    del self.by_owner[owner]
        return owner

    def copy_refs(self, kind: str) -> set[ObjectRef]:
        """Refs of every cached copy of ``kind``."""
        with self.lock:
            return {r for r in self.copies if r.kind == kind}

    @property
    def managed_copies(self) -> int:
        """How many copies this controller manages (for the metric)."""
        with self.lock:
            return sum(len(refs) for refs in self.by_owner.values())

    # -- SyncRules -------------------------------------------------------------------------------

    def put_rule(self, key: tuple[str, str], rule: Rule | Problem) -> None:
        """A SyncRule was added or changed: its source (old and new) is reconciled."""
        with self.lock:
            old = self.rules.get(key)
            self.rules[key] = rule
        self.on_change(_rule_sources(old, rule))

    def drop_rule(self, key: tuple[str, str]) -> None:
        """A SyncRule is gone."""
        with self.lock:
            old = self.rules.pop(key, None)
        self.on_change(_rule_sources(old))

    # -- what the reconciler reads ------------------------------------------------------------------

    def holders(self, kind: str, name: str) -> tuple[list[ConfigObject], list[ObjectRef]]:
        """Everything holding the name ``name``: copies (views), and refs of other objects."""
        with self.lock:
            copies = [
                self.copies[ObjectRef(kind=kind, namespace=ns, name=name)]
                for ns in self._copy_names.namespaces(kind, name)
            ]
            others = [
                ObjectRef(kind=kind, namespace=ns, name=name) for ns in self._present.namespaces(kind, name)
            ]
        return copies, others

    def holds(self, ref: ObjectRef) -> bool:
        """True when something holds ``ref``."""
        with self.lock:
            return ref in self.copies or ref in self._objects

    def rules_for(self, sources: Iterable[ObjectRef]) -> list[Rule]:
        """The valid SyncRules of these sources."""
        wanted = set(sources)
        with self.lock:
            return [r for r in self.rules.values() if isinstance(r, Rule) and r.source in wanted]

    def rule_problems(self) -> list[Problem]:
        """Invalid SyncRules."""
        with self.lock:
            return [p for p in self.rules.values() if isinstance(p, Problem)]

    def record_claims(self, claims: Mapping[ObjectRef, frozenset[ObjectRef]]) -> None:
        """Remember which names each source wants but does not hold (conflicts, failed creates).

        When what holds such a name goes, or something takes one, those sources are reconciled again.
        """
        with self.lock:
            for source, refs in claims.items():
                for ref in self.claimed.get(source, frozenset()) - refs:
                    holders = self.claims.get(ref)
                    if holders is not None:
                        holders.discard(source)
                        if not holders:
                            del self.claims[ref]
                for ref in refs:
                    self.claims.setdefault(ref, set()).add(source)
                if refs:
                    self.claimed[source] = refs
                else:
                    self.claimed.pop(source, None)

    def all_keys(self) -> set[ObjectRef]:
        """Every source, and every owner of a copy (a copy whose source vanished must be removed)."""
        with self.lock:
            named = {r.source for r in self.rules.values() if isinstance(r, Rule)}
            return set(self.source_versions) | set(self.by_owner) | named


def _ref(kind: str, meta: Mapping[str, Any]) -> ObjectRef:
    return ObjectRef(kind=kind, namespace=str(meta.get("namespace", "")), name=str(meta.get("name", "")))


def _rule_sources(*rules: Rule | Problem | None) -> list[ObjectRef]:
    return [r.source for r in rules if isinstance(r, Rule)]
