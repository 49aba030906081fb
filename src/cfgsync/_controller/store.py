"""The controller's picture of the cluster, kept current by the watches; the only owner of that state.

No I/O; thread-safe (one lock, never held by anyone else). Every query answers with a snapshot
(immutable objects, fresh containers), so nobody edits the Store but its own methods. What is held, and
how much:

- namespaces: name, labels, terminating;
- every ConfigMap and Secret: that its name is taken in a namespace (for conflicts), plus the
  resourceVersion of those that declare a sync rule (sources);
- this controller's copies (origin labels with its cluster name, selected by the API server): the
  planner's view, with a digest of the payload instead of the payload, and shared label and annotation
  mappings, so a copy costs the same whether it holds 10 bytes or 1 MiB;
- sources: in full, fetched when their resourceVersion moves;
- pull targets (objects that ask for a source): only which source each asks for and its version, from
  the metadata watch, and once fetched, a view with a digest of its payload; nothing for objects that
  ask for nothing;
- the objects a peer (replicator, reflector) made as copies: their names only, so they are read in full
  when cfgsync may take them over;
- SyncRules, and the names each source wants but does not hold (conflicts, failed creates).

Every change that matters calls ``on_change`` with the sources to reconcile again.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from cfgsync import errors
from cfgsync._adapters.kube import view
from cfgsync._core import manifests, origin, vocabularies
from cfgsync._core.model import ConfigObject, Namespace, ObjectRef, Problem
from cfgsync._core.policy import DEFAULT_POLICY, Policy
from cfgsync._core.rules import Rule

Key = tuple[str, str]
"""(namespace, name) of an object in a collection."""
NameKey = tuple[str, str]
"""(kind, name): objects of one kind and name across namespaces."""
_TOMBSTONES = 10_000  # uids of copies this controller deleted, so a late watch echo does not revive one
SOURCE_CACHE_BYTES = 16 * 1024 * 1024
"""Payload bytes of full sources kept between reconciles (the rest are fetched again when needed)."""


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

    def __contains__(self, ref: ObjectRef) -> bool:
        return ref.namespace in self.by_name.get((ref.kind, ref.name), ())

    def namespaces(self, kind: str, name: str) -> frozenset[str]:
        return frozenset(self.by_name.get((kind, name), ()))

    def keys(self, kind: str) -> set[Key]:
        return {(ns, name) for (k, name), spaces in self.by_name.items() if k == kind for ns in spaces}


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceState:
    """What the Store knows of one source."""

    exists: bool
    """True when something holds that name."""
    version: str | None
    """Its resourceVersion when it is a source (declares a rule, or a SyncRule names it)."""
    cached: ConfigObject | None
    """The full object, when fetched at that version."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Neighbourhood:
    """What a group of sources plans against: the objects at their copies' names, and who else owns them."""

    existing: Mapping[ObjectRef, ConfigObject]
    """Their copies, every copy at a candidate name, and a bare ref for any other object there."""
    owners: frozenset[ObjectRef]
    """Sources outside the group owning one of those copies (they compete for the name)."""


class Store:
    """See the module docstring."""

    def __init__(
        self,
        *,
        cluster_name: str,
        source_namespace: str | None = None,
        on_change: Callable[[Iterable[ObjectRef]], None] = lambda refs: None,
        policy: Policy = DEFAULT_POLICY,
        disabled: frozenset[str] = frozenset(),
    ) -> None:
        self._cluster = cluster_name
        self._disabled = disabled
        self._requests: dict[ObjectRef, ObjectRef] = {}
        self._requesters: dict[ObjectRef, set[ObjectRef]] = {}
        self._target_versions: dict[ObjectRef, str] = {}
        self._targets: dict[ObjectRef, ConfigObject] = {}
        self._peer_made: set[ObjectRef] = set()
        self._source_namespace = source_namespace
        self._on_change = on_change
        self._lock = threading.RLock()
        self._namespaces: dict[str, Namespace] = {}
        self._namespace_list: tuple[Namespace, ...] | None = None
        self._present = _Index()
        self._source_versions: dict[ObjectRef, str] = {}
        self._full_sources: OrderedDict[ObjectRef, ConfigObject] = OrderedDict()
        self._full_bytes = 0
        self._copies: dict[ObjectRef, ConfigObject] = {}
        self._copy_names = _Index()
        self._by_owner: dict[ObjectRef, set[ObjectRef]] = {}
        self._tombstones: dict[str, None] = {}
        self._rules: dict[Key, Rule | Problem] = {}
        self._ruled: Counter[ObjectRef] = Counter()  # sources named by valid SyncRules, how many times
        self._claims: dict[ObjectRef, set[ObjectRef]] = {}
        self._claimed: dict[ObjectRef, frozenset[ObjectRef]] = {}
        self._interner = view.Interner()

    # -- namespaces ------------------------------------------------------------------------------

    def put_namespace(self, ns: Namespace) -> None:
        """A namespace was added or changed: every source may select it now, or no longer."""
        with self._lock:
            if self._namespaces.get(ns.name) == ns:
                return
            self._namespaces[ns.name] = ns
            self._namespace_list = None
            affected = list(self._source_versions)
        self._on_change(affected)

    def drop_namespace(self, key: Key, uid: str | None = None) -> None:
        """A namespace is gone."""
        del uid
        with self._lock:
            if self._namespaces.pop(key[1], None) is None:
                return
            self._namespace_list = None
            affected = list(self._source_versions)
        self._on_change(affected)

    def namespace_keys(self) -> set[Key]:
        """("", name) of every namespace."""
        with self._lock:
            return {("", name) for name in self._namespaces}

    def namespaces(self) -> tuple[Namespace, ...]:
        """Every namespace, by name."""
        with self._lock:
            if self._namespace_list is None:
                self._namespace_list = tuple(sorted(self._namespaces.values(), key=lambda n: n.name))
            return self._namespace_list

    def namespace(self, name: str) -> Namespace | None:
        """One namespace, if it exists."""
        with self._lock:
            return self._namespaces.get(name)

    # -- every ConfigMap and Secret, by its metadata ------------------------------------------------

    def put_object(self, header: ConfigObject) -> None:
        """A ConfigMap or Secret was added or changed (its metadata: labels, annotations, version)."""
        ref = header.ref
        source = not origin.is_copy(ref, header.labels, self._cluster) and self._is_source(header)
        version = header.resource_version or ""
        changed: list[ObjectRef] = self._put_request(header)
        with self._lock:
            if vocabularies.peer_made(header.annotations, self._disabled) and not origin.is_copy(
                ref, header.labels, self._cluster
            ):
                self._peer_made.add(ref)
            else:
                self._peer_made.discard(ref)
            new = self._present.add(ref)
            if source:
                if self._source_versions.get(ref) != version:
                    self._source_versions[ref] = version
                    changed.append(ref)
            elif self._source_versions.pop(ref, None) is not None:
                self._forget_source(ref)
                changed.append(ref)
            if new:
                changed.extend(self._claims.get(ref, ()))
        if changed:
            self._on_change(changed)

    def drop_object(self, kind: str, key: Key, uid: str | None = None) -> None:
        """A ConfigMap or Secret is gone."""
        del uid
        ref = ObjectRef(kind=kind, namespace=key[0], name=key[1])
        asked = self._forget_request(ref)
        with self._lock:
            self._peer_made.discard(ref)
            if not self._present.discard(ref):
                if asked is not None:
                    self._on_change([asked])
                return
            changed = list(self._claims.get(ref, ()))
            if asked is not None:
                changed.append(asked)
            if self._source_versions.pop(ref, None) is not None:
                self._forget_source(ref)
                changed.append(ref)
        if changed:
            self._on_change(changed)

    def object_keys(self, kind: str) -> set[Key]:
        """Every object of ``kind`` the metadata watch reported (for a relist to find what vanished)."""
        with self._lock:
            return self._present.keys(kind)

    def _is_source(self, header: ConfigObject) -> bool:
        if self._source_namespace not in {None, header.ref.namespace}:
            return False
        if vocabularies.declares_rule(header.annotations, self._disabled):
            return True
        with self._lock:
            return header.ref in self._ruled

    # -- pull targets ------------------------------------------------------------------------------

    def _put_request(self, header: ConfigObject) -> list[ObjectRef]:
        """Index what ``header`` asks for; the sources to reconcile (old and new, or the target itself
        when its request is malformed, so that the problem is reported on it)."""
        ref = header.ref
        asked: ObjectRef | None = None
        if vocabularies.asks(header.annotations, self._disabled):
            try:
                request = vocabularies.request_of(header, self._disabled)
                asked = request.source if request is not None else None
            except errors.RuleError:
                asked = ref
        if asked is None:
            old = self._forget_request(ref)
            return [old] if old is not None else []
        version = header.resource_version or ""
        with self._lock:
            old = self._requests.get(ref)
            moved = self._target_versions.get(ref) != version
            self._requests[ref] = asked
            self._target_versions[ref] = version
            if old is not None and old != asked:
                self._unlink(ref, old)
            self._requesters.setdefault(asked, set()).add(ref)
        changed = [asked] if moved or old != asked else []
        return [*changed, old] if old is not None and old != asked else changed

    def _forget_request(self, ref: ObjectRef) -> ObjectRef | None:
        with self._lock:
            old = self._requests.pop(ref, None)
            self._target_versions.pop(ref, None)
            self._targets.pop(ref, None)
            if old is not None:
                self._unlink(ref, old)
        return old

    def _unlink(self, target: ObjectRef, source: ObjectRef) -> None:
        asking = self._requesters.get(source)
        if asking is not None:
            asking.discard(target)
            if not asking:
                del self._requesters[source]

    def requesters(self, sources: Iterable[ObjectRef]) -> set[ObjectRef]:
        """The targets asking for one of ``sources`` (a target whose request is malformed asks for itself)."""
        with self._lock:
            return {t for s in sources for t in self._requesters.get(s, ())}

    def target(self, ref: ObjectRef) -> tuple[str | None, ConfigObject | None]:
        """A target's current version and its view, when fetched at that version."""
        with self._lock:
            version = self._target_versions.get(ref)
            cached = self._targets.get(ref)
        fresh = cached if cached is not None and cached.resource_version == version else None
        return version, fresh

    def remember_target(self, target: ConfigObject) -> None:
        """Keep a target's view, if it still asks (its version is checked when it is used)."""
        with self._lock:
            if target.ref in self._requests:
                self._targets[target.ref] = target

    def forget_target(self, ref: ObjectRef) -> None:
        """Drop a target's view (cfgsync just wrote it: the next reconcile reads it again)."""
        with self._lock:
            self._targets.pop(ref, None)

    def peer_made(self, refs: Iterable[ObjectRef]) -> set[ObjectRef]:
        """Those of ``refs`` a peer made as copies (their marks say so): read them in full to take over."""
        with self._lock:
            return {ref for ref in refs if ref in self._peer_made}

    # -- sources, in full -------------------------------------------------------------------------

    def source(self, ref: ObjectRef) -> SourceState:
        """What is known of source ``ref``: whether it exists, its version, the full object if fetched."""
        with self._lock:
            version = self._source_versions.get(ref)
            cached = self._full_sources.get(ref)
            if cached is not None:
                self._full_sources.move_to_end(ref)
            exists = ref in self._present or ref in self._copies
        fresh = cached if cached is not None and cached.resource_version == version else None
        return SourceState(exists=exists, version=version, cached=fresh)

    def remember_source(self, source: ConfigObject, version: str | None) -> None:
        """Keep a source fetched at ``version``, if it is still a source at that version.

        The sources kept are bounded by :data:`SOURCE_CACHE_BYTES` of payload, the least recently used
        going first: whoever may create objects that declare a rule must not grow the controller."""
        size = _payload_bytes(source)
        with self._lock:
            if version is None or self._source_versions.get(source.ref) != version:
                return
            self._forget_source(source.ref)
            if size > SOURCE_CACHE_BYTES:
                return  # fetched again when needed
            self._full_sources[source.ref] = source
            self._full_bytes += size
            while self._full_bytes > SOURCE_CACHE_BYTES:
                self._forget_source(next(iter(self._full_sources)))

    def _forget_source(self, ref: ObjectRef) -> None:
        old = self._full_sources.pop(ref, None)
        if old is not None:
            self._full_bytes -= _payload_bytes(old)

    # -- this controller's copies, in digest form ---------------------------------------------------

    def put_copy(self, copy: ConfigObject) -> None:
        """A copy was added or changed (from the watch)."""
        if self._keep_copy(copy):
            owner = origin.owner_of(copy, self._cluster)
            if owner is not None:
                self._on_change([owner])

    def record_write(self, ref: ObjectRef, *, stored: ConfigObject | None, replaced_uid: str | None) -> None:
        """Record this controller's own write at once, so its echo from the watch is not planned again.

        ``replaced_uid`` is the uid of the copy it deleted (a delete, or the first half of a replace);
        ``stored`` the copy the API server now holds (after a create, update or replace).
        """
        if replaced_uid is not None:
            with self._lock:
                current = self._copies.get(ref)
                if current is not None and current.uid == replaced_uid:
                    self._tombstones[replaced_uid] = None
                    if len(self._tombstones) > _TOMBSTONES:
                        del self._tombstones[next(iter(self._tombstones))]
                    self._forget_copy(ref)
        if stored is not None:
            self._keep_copy(stored)

    def drop_copy(self, kind: str, key: Key, uid: str | None = None) -> None:
        """A copy is gone (deleted, no longer labelled as one, or no longer readable)."""
        ref = ObjectRef(kind=kind, namespace=key[0], name=key[1])
        with self._lock:
            old = self._copies.get(ref)
            if old is None or (uid is not None and old.uid != uid):
                return
            owner = self._forget_copy(ref)
        if owner is not None:
            self._on_change([owner])

    def copy_keys(self, kind: str) -> set[Key]:
        """Every copy of ``kind`` held (for a relist to find what vanished)."""
        with self._lock:
            return self._copy_names.keys(kind)

    @property
    def managed_copies(self) -> int:
        """How many copies this controller manages."""
        with self._lock:
            return sum(len(refs) for refs in self._by_owner.values())

    def _keep_copy(self, copy: ConfigObject) -> bool:
        """Hold ``copy`` (digested, shared); False when it is a source, stale, or an echo."""
        if not origin.is_copy(copy.ref, copy.labels, self._cluster):
            with self._lock:  # a source marked with its own origin: the metadata watch holds it
                owner = self._forget_copy(copy.ref)
            if owner is not None:
                self._on_change([owner])
            return False
        kept = self._interner.intern(manifests.digested(copy))
        with self._lock:
            if kept.uid in self._tombstones:
                return False
            old = self._copies.get(kept.ref)
            if (
                old is not None
                and old.uid == kept.uid
                and not newer(kept.resource_version, old.resource_version)
            ):
                return False  # an echo of a write already recorded, or an older event
            self._forget_copy(kept.ref)
            self._copies[kept.ref] = kept
            self._copy_names.add(kept.ref)
            owner = origin.owner_of(kept, self._cluster)
            if owner is not None:
                self._by_owner.setdefault(owner, set()).add(kept.ref)
        return True

    def _forget_copy(self, ref: ObjectRef) -> ObjectRef | None:
        old = self._copies.pop(ref, None)
        if old is None:
            return None
        self._copy_names.discard(ref)
        owner = origin.owner_of(old, self._cluster)
        if owner is not None:
            owned = self._by_owner.get(owner)
            if owned is not None:
                owned.discard(ref)
                if not owned:
                    del self._by_owner[owner]
        return owner

    # -- SyncRules -------------------------------------------------------------------------------

    def put_rule(self, key: Key, rule: Rule | Problem) -> None:
        """A SyncRule was added or changed (a ``Problem`` when invalid): its sources are reconciled."""
        with self._lock:
            old = self._rules.get(key)
            self._rules[key] = rule
            self._count_rules(old, -1)
            self._count_rules(rule, +1)
        self._on_change(_rule_sources(old, rule))

    def drop_rule(self, key: Key, uid: str | None = None) -> None:
        """A SyncRule is gone."""
        del uid
        with self._lock:
            old = self._rules.pop(key, None)
            self._count_rules(old, -1)
        self._on_change(_rule_sources(old))

    def drop_all_rules(self) -> None:
        """The SyncRule resource is gone from the API (its CRD was removed)."""
        with self._lock:
            old = list(self._rules.values())
            self._rules.clear()
            self._ruled.clear()
        self._on_change(_rule_sources(*old))

    def _count_rules(self, rule: Rule | Problem | None, step: int) -> None:
        if isinstance(rule, Rule):
            self._ruled[rule.source] += step
            if self._ruled[rule.source] <= 0:
                del self._ruled[rule.source]

    def rule_keys(self) -> set[Key]:
        """Every SyncRule held."""
        with self._lock:
            return set(self._rules)

    def rules_for(self, sources: Iterable[ObjectRef]) -> list[Rule]:
        """The valid SyncRules of these sources."""
        wanted = set(sources)
        with self._lock:
            return [r for r in self._rules.values() if isinstance(r, Rule) and r.source in wanted]

    def rule_problems(self) -> list[Problem]:
        """Invalid SyncRules."""
        with self._lock:
            return [p for p in self._rules.values() if isinstance(p, Problem)]

    # -- what the reconciler plans against ----------------------------------------------------------

    def neighbourhood(self, group: Iterable[ObjectRef], names: Iterable[NameKey]) -> Neighbourhood:
        """The copies of ``group``, and everything at the names in ``names`` (see :class:`Neighbourhood`)."""
        group = set(group)
        existing: dict[ObjectRef, ConfigObject] = {}
        owners: set[ObjectRef] = set()
        with self._lock:
            for source in group:
                for ref in self._by_owner.get(source, ()):
                    existing[ref] = self._copies[ref]
            for kind, name in set(names):
                for namespace in self._copy_names.namespaces(kind, name):
                    copy = self._copies[ObjectRef(kind=kind, namespace=namespace, name=name)]
                    existing[copy.ref] = copy
                    owner = origin.owner_of(copy, self._cluster)
                    if owner is not None and owner not in group:
                        owners.add(owner)
                for namespace in self._present.namespaces(kind, name):
                    ref = ObjectRef(kind=kind, namespace=namespace, name=name)
                    existing.setdefault(ref, ConfigObject(ref=ref))
        return Neighbourhood(existing=existing, owners=frozenset(owners))

    def holds(self, ref: ObjectRef) -> bool:
        """True when something holds ``ref``."""
        with self._lock:
            return ref in self._copies or ref in self._present

    def sources_named(self, kind: str, name: str) -> set[ObjectRef]:
        """The sources of ``kind`` called ``name``, in any namespace (they want copies of that name)."""
        with self._lock:
            found = (
                ObjectRef(kind=kind, namespace=ns, name=name) for ns in self._present.namespaces(kind, name)
            )
            return {ref for ref in found if ref in self._source_versions}

    def claimants(self, refs: Iterable[ObjectRef]) -> set[ObjectRef]:
        """The sources that want one of ``refs`` but do not hold it."""
        with self._lock:
            return {source for ref in refs for source in self._claims.get(ref, ())}

    def claimed(self, source: ObjectRef) -> frozenset[ObjectRef]:
        """The names ``source`` wants but does not hold."""
        with self._lock:
            return self._claimed.get(source, frozenset())

    def record_claims(self, claims: Mapping[ObjectRef, frozenset[ObjectRef]]) -> None:
        """Remember which names each source wants but does not hold (conflicts, failed creates).

        When what holds such a name goes, or something takes one, those sources are reconciled again.
        """
        with self._lock:
            for source, refs in claims.items():
                for ref in self._claimed.get(source, frozenset()) - refs:
                    holders = self._claims.get(ref)
                    if holders is not None:
                        holders.discard(source)
                        if not holders:
                            del self._claims[ref]
                for ref in refs:
                    self._claims.setdefault(ref, set()).add(source)
                if refs:
                    self._claimed[source] = refs
                else:
                    self._claimed.pop(source, None)

    def all_keys(self) -> set[ObjectRef]:
        """Every source, every owner of a copy (a copy whose source vanished must be removed), and every
        source a target asks for (it may not exist, or allow nothing: the target hears of it)."""
        with self._lock:
            named = set(self._ruled)
            return set(self._source_versions) | set(self._by_owner) | named | set(self._requesters)


def _payload_bytes(obj: ConfigObject) -> int:
    return sum(len(k) + len(v) for part in (obj.data, obj.binary_data) for k, v in part.items())


def _rule_sources(*found: Rule | Problem | None) -> list[ObjectRef]:
    return [r.source for r in found if isinstance(r, Rule)]
