"""Reading the cluster: paginated lists, and the one-shot snapshot ``cfgsync apply`` plans from.

I/O: GET requests. ConfigMaps and Secrets are listed as metadata only; full objects are fetched only
for sources (objects with a sync rule or a pull allowance), pull targets (objects asking for a
source), copies (found by their origin labels) and the copies a peer made (found by its marks), so a
cluster full of large Helm release Secrets costs a few hundred bytes per Secret, not its payload.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cfgsync import errors
from cfgsync._adapters.kube import resources, view
from cfgsync._adapters.kube.connection import JSON, METADATA_LIST, ApiError, Json, Kube
from cfgsync._core import origin, syncrule, vocabularies, vocabulary
from cfgsync._core.model import ConfigObject, Namespace, ObjectRef, Problem
from cfgsync._core.policy import DEFAULT_POLICY, Policy
from cfgsync._core.rules import Rule

PAGE_SIZE: Final = 500
"""Objects per list page: bounds the memory one response takes."""


def copy_selector(cluster_name: str) -> str:
    """Label selector matching the copies made for ``cluster_name`` (the API server filters)."""
    return (
        f"{vocabulary.ORIGIN_NAME},{vocabulary.ORIGIN_NAMESPACE},{vocabulary.ORIGIN_CLUSTER}={cluster_name}"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Listing:
    """Every item of a list, and the resourceVersion to watch from."""

    items: list[Json] = field(default_factory=list)
    """The objects (or their metadata), as JSON."""
    resource_version: str = ""
    """The list's resourceVersion."""


class Pages:
    """The items of a list, one page at a time (a page is dropped once consumed, bounding memory).

    ``resource_version`` is set once the last page has been read. A continue token that expires
    (410) restarts the listing: items may then be seen twice, which consumers must accept.
    """

    def __init__(
        self,
        kube: Kube,
        path: str,
        *,
        accept: str = JSON,
        label_selector: str | None = None,
        kind: str = "",
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._kube = kube
        self._page_size = page_size
        self._path = path
        self._accept = accept
        self._selector = label_selector
        self._kind = kind
        self.resource_version = ""
        """The list's resourceVersion (after the last page)."""

    def __iter__(self) -> Iterator[Json]:
        token = ""
        while True:
            query = [("limit", str(self._page_size))]
            if self._selector:
                query.append(("labelSelector", self._selector))
            if token:
                query.append(("continue", token))
            try:
                page = self._kube.request("GET", self._path, query=query, accept=self._accept)
            except ApiError as exc:
                if exc.status != 410 or not token:
                    raise
                token = ""
                continue
            found = page.pop("items", None)
            for item in found if isinstance(found, list) else ():
                if isinstance(item, dict):
                    if self._kind:
                        item["kind"] = self._kind
                    yield item
            meta = view.metadata(page)
            token = str(meta.get("continue") or "")
            if not token:
                self.resource_version = str(meta.get("resourceVersion", ""))
                return


def list_all(
    kube: Kube, path: str, *, accept: str = JSON, label_selector: str | None = None, kind: str = ""
) -> Listing:
    """List a collection (page by page) into memory; items carry ``kind`` when it is given."""
    pages = Pages(kube, path, accept=accept, label_selector=label_selector, kind=kind)
    items = list(pages)
    return Listing(items=items, resource_version=pages.resource_version)


def syncrules_installed(kube: Kube) -> bool:
    """True when the SyncRule CRD is served."""
    try:
        kube.request("GET", resources.SYNC_RULES.prefix)
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def parse_syncrule(raw: Mapping[str, Any]) -> Rule | Problem:
    """A SyncRule object as a rule, or the problem with it."""
    meta = view.metadata(raw)
    where = f"SyncRule {meta.get('namespace', '?')}/{meta.get('name', '?')}"
    try:
        return syncrule.rule_from_document(raw)
    except errors.RuleError as exc:
        return Problem(subject=where, message=str(exc))


def get_object(kube: Kube, ref: ObjectRef, *, accept: str = JSON) -> Json | None:
    """One ConfigMap or Secret in full (or its metadata alone, ``accept=METADATA``), or None when it
    does not exist."""
    try:
        return kube.request("GET", resources.BY_KIND[ref.kind].item(ref.name, ref.namespace), accept=accept)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterState:
    """What the planner needs from one cluster."""

    namespaces: tuple[Namespace, ...] = ()
    """Every namespace."""
    sources: tuple[ConfigObject, ...] = ()
    """Sources (objects with a sync rule, or named by a SyncRule) and pull targets in live namespaces,
    in full; a source a target asks for that declares nothing, by its metadata alone."""
    existing: tuple[ConfigObject, ...] = ()
    """Copies (as the planner's view) and every other object (light: just who holds the name)."""
    rules: tuple[Rule, ...] = ()
    """Valid SyncRules."""
    problems: tuple[Problem, ...] = ()
    """Invalid SyncRules, and objects that cannot be read."""
    unreadable: tuple[ObjectRef, ...] = ()
    """Sources that exist but cannot be read: their copies are kept, not deleted."""


def read_cluster(
    kube: Kube,
    *,
    cluster_name: str,
    source_namespace: str | None = None,
    policy: Policy = DEFAULT_POLICY,
    disabled: frozenset[str] = frozenset(),
) -> ClusterState:
    """Read namespaces, SyncRules, sources and copies: the one-shot input of ``cfgsync apply``.

    ``policy`` says which labels and annotations copies never carry, which the view of a copy shows.
    An object the API server holds but cfgsync cannot read is a problem of the state, never an error
    of the whole read: it stays in ``existing`` as an object nobody manages, so nothing overwrites it,
    and a source that cannot be read is named in ``unreadable``, so its copies are kept.
    """
    namespaces = {
        ns.name: ns
        for ns in map(
            view.namespace_of, list_all(kube, resources.NAMESPACES.collection(), accept=METADATA_LIST).items
        )
    }
    rules, problems = _read_syncrules(kube)
    named = {rule.source for rule in rules}
    sources: list[ConfigObject] = []
    unreadable: list[ObjectRef] = []
    existing: list[ConfigObject] = []
    light: dict[ObjectRef, ConfigObject] = {}
    interner = view.Interner()
    for resource in (resources.CONFIGMAPS, resources.SECRETS):
        copies = _read_copies(
            kube,
            resource.kind,
            cluster_name=cluster_name,
            interner=interner,
            problems=problems,
            policy=policy,
        )
        existing.extend(copies.values())
        for meta_item in Pages(kube, resource.collection(), accept=METADATA_LIST):
            meta = view.metadata(meta_item)
            ref = ObjectRef(
                kind=resource.kind, namespace=str(meta.get("namespace")), name=str(meta.get("name"))
            )
            if ref in copies:
                continue
            annotations = view.string_map(meta, "annotations")
            wanted = source_namespace in {None, ref.namespace}
            source = wanted and (view.declares_rule(meta, cluster_name, disabled) or ref in named)
            target = vocabularies.asks(annotations, disabled)
            peer_made = vocabularies.peer_made(annotations, disabled)
            full = get_object(kube, ref) if source or target or peer_made else None
            if full is not None and (source or target):
                try:
                    sources.append(view.observed_source(full))
                except errors.CfgsyncError as exc:
                    problems.append(Problem(subject=str(ref), ref=ref, message=f"cannot be read: {exc}"))
                    if source:  # a source's copies are kept; a target that only asks has none
                        unreadable.append(ref)
            # Sources too: another source's copy must not land on one. A peer's copy in full, so that
            # it can be taken over in place.
            held = view.light_object(resource.kind, meta)
            if full is not None and peer_made:
                held = view.observed_or_bare({**full, "kind": resource.kind}, policy=policy)
            existing.append(held)
            light[ref] = held
    sources.extend(_asked_for(sources, light, disabled))
    return ClusterState(
        namespaces=tuple(sorted(namespaces.values(), key=lambda n: n.name)),
        sources=tuple(view.live_sources(sources, namespaces)),
        existing=tuple(existing),
        rules=tuple(rules),
        problems=tuple(problems),
        unreadable=tuple(unreadable),
    )


def _asked_for(
    sources: list[ConfigObject], held: dict[ObjectRef, ConfigObject], disabled: frozenset[str]
) -> list[ConfigObject]:
    """The objects targets ask for that declare nothing, by name only: the planner tells the targets
    that they allow no pulls, and their data is never read."""
    known = {s.ref for s in sources}
    found: dict[ObjectRef, ConfigObject] = {}
    for obj in sources:
        try:
            request = vocabularies.request_of(obj, disabled)
        except errors.RuleError:
            continue  # the planner reports it
        if request is not None and request.source not in known and request.source in held:
            found[request.source] = ConfigObject(ref=request.source)
    return list(found.values())


def _read_syncrules(kube: Kube) -> tuple[list[Rule], list[Problem]]:
    rules: list[Rule] = []
    problems: list[Problem] = []
    if syncrules_installed(kube):
        for raw in list_all(kube, resources.SYNC_RULES.collection()).items:
            parsed = parse_syncrule(raw)
            if isinstance(parsed, Rule):
                rules.append(parsed)
            else:
                problems.append(parsed)
    return rules, problems


def _read_copies(
    kube: Kube,
    kind: str,
    *,
    cluster_name: str,
    interner: view.Interner,
    problems: list[Problem],
    policy: Policy,
) -> dict[ObjectRef, ConfigObject]:
    """The copies made for ``cluster_name``; one that cannot be read becomes a problem instead."""
    copies: dict[ObjectRef, ConfigObject] = {}
    collection = resources.BY_KIND[kind].collection()
    for raw in Pages(kube, collection, label_selector=copy_selector(cluster_name), kind=kind):
        try:
            copy = view.observed_copy(raw, interner, policy=policy)
        except errors.CfgsyncError as exc:
            problems.append(Problem(subject=view.header(raw).describe(), message=f"cannot be read: {exc}"))
            continue
        if origin.owner_of(copy, cluster_name) is not None:
            copies[copy.ref] = copy
    return copies
