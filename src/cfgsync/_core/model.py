"""The plain, immutable data cfgsync works on: objects, namespaces, copies and plans.

Pure: no I/O. Mappings held by these classes are read-only views, so a value can be shared between
many copies (100,000 copies of one source share one data mapping) without anyone changing it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, NewType, TypeGuard

NamespaceName = NewType("NamespaceName", str)
"""The name of a Kubernetes namespace."""

EMPTY: Final[Mapping[str, str]] = MappingProxyType({})
"""The shared empty read-only mapping."""

KIND_RANK: Final[Mapping[str, int]] = MappingProxyType({"Namespace": 0, "ConfigMap": 1, "Secret": 2})
"""Order of kinds in every output: namespaces first, then ConfigMaps, then Secrets."""

SOURCE_KINDS: Final[frozenset[str]] = frozenset({"ConfigMap", "Secret"})
"""The kinds cfgsync copies."""


def is_source_kind(kind: object) -> TypeGuard[str]:
    """Whether ``kind`` (any value a document holds) names a kind cfgsync copies.

    A document's ``kind`` may be a mapping or a list, which a set membership test would raise on.
    """
    return isinstance(kind, str) and kind in SOURCE_KINDS


def frozen(mapping: Mapping[str, str] | None) -> Mapping[str, str]:
    """Return a read-only, key-sorted copy of ``mapping`` (the shared empty mapping when empty)."""
    if not mapping:
        return EMPTY
    if isinstance(mapping, MappingProxyType):
        return mapping
    return MappingProxyType(dict(sorted(mapping.items())))


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class ObjectRef:
    """Identity of a namespaced object: kind, namespace and name."""

    kind: str
    """``ConfigMap`` or ``Secret`` (``SyncRule`` for rules)."""
    namespace: str
    """The object's namespace."""
    name: str
    """The object's name."""

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def sort_key(self) -> tuple[str, int, str]:
        """Output order: namespace, then kind rank, then name."""
        return (self.namespace, KIND_RANK.get(self.kind, 9), self.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Namespace:
    """A namespace as far as rules care: its name, labels and whether it is being deleted."""

    name: str
    """The namespace's name."""
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Its labels (read-only)."""
    terminating: bool = False
    """True when ``status.phase`` is ``Terminating``: such a namespace receives no copy."""
    accept_from: tuple[str, ...] | None = None
    """Its ``cfgsync.io/accept-from`` annotation, split: the source namespaces (names or globs) it accepts
    copies from in consent mode; None when it has no such annotation."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigObject:
    """A ConfigMap or Secret as read from a manifest or the API server.

    Sources and existing objects (possible copies) are both ``ConfigObject``. Secret values are
    base64 text in ``data`` (``stringData`` already folded in, as the API server does).
    """

    ref: ObjectRef
    """Kind, namespace and name."""
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Labels (read-only)."""
    annotations: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Annotations (read-only)."""
    data: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """``data``: text for ConfigMaps, base64 for Secrets."""
    binary_data: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """ConfigMap ``binaryData`` (base64)."""
    type: str | None = None
    """Secret ``type``; None for ConfigMaps."""
    immutable: bool | None = None
    """The ``immutable`` field when set."""
    uid: str | None = None
    """Server-assigned uid, when known."""
    resource_version: str | None = None
    """Server-assigned resourceVersion, when known."""
    created: str | None = None
    """Server-assigned ``creationTimestamp`` (RFC 3339, UTC), when known: who came first."""
    api_version: str = "v1"
    """The object's apiVersion."""
    content_digest: str | None = None
    """When set, ``data`` and ``binary_data`` are left out and this digest of them stands in
    (:func:`cfgsync._core.manifests.content_digest`): a cache of many copies holds no payloads."""
    where: str = ""
    """Where it was read from (``file:line``), for messages; empty when read from the API server."""

    def describe(self) -> str:
        """``Kind namespace/name``, with ``(file:line)`` when known."""
        return f"{self.ref} ({self.where})" if self.where else str(self.ref)


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy:
    """A desired copy: the full object cfgsync wants to exist, and the source it comes from."""

    ref: ObjectRef
    """Kind, target namespace and (possibly renamed) name of the copy."""
    source: ObjectRef
    """The source the copy is made from."""
    rule: str
    """Which rule selected it, for messages (e.g. ``annotation kubed.appscode.com/sync``)."""
    vocabulary: str = "cfgsync"
    """Whose annotations the rule came from (``kubed``, ``cfgsync``, ``replicator``, ``reflector``)."""
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Labels of the copy: the source's plus the origin labels."""
    annotations: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Annotations: the source's minus sync keys, plus the origin annotation."""
    data: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """``data`` of the copy."""
    binary_data: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """``binaryData`` of the copy."""
    type: str | None = None
    """Secret ``type``."""
    immutable: bool | None = None
    """``immutable`` as on the source."""
    pulled: bool = False
    """True when this is the data of a target that asked for the source (a pull): the object is the
    target's own, cfgsync writes only its payload and the ``cfgsync.io/copied-from`` annotation, and
    never creates or deletes it. Its labels and annotations are the target's, for output."""


class ActionKind(enum.Enum):
    """What the plan does with one object."""

    CREATE = "create"
    """The copy does not exist yet."""
    UPDATE = "update"
    """The copy exists and differs; ``Action.patch`` says how."""
    REPLACE = "replace"
    """The copy is immutable and differs: it must be deleted and created again."""
    DELETE = "delete"
    """A managed copy that no rule wants any more."""
    UNCHANGED = "unchanged"
    """The copy exists exactly as desired."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """One step of a plan, with the reason for it."""

    kind: ActionKind
    """Create, update, replace, delete or unchanged."""
    ref: ObjectRef
    """The object acted on."""
    source: ObjectRef
    """The source the copy belongs to."""
    reason: str
    """Why, in words (shown by ``--dry-run`` and in logs)."""
    desired: Copy | None = None
    """The desired copy (None for deletes)."""
    observed: ConfigObject | None = None
    """The existing object (None for creates)."""
    patch: tuple[Mapping[str, object], ...] = ()
    """RFC 6902 operations from the observed object to the desired one (updates and replaces)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Conflict:
    """A copy that is not written (an unmanaged object holds its name), or that several sources want."""

    ref: ObjectRef
    """Where the copy would go."""
    sources: tuple[ObjectRef, ...]
    """The source(s) that want this copy."""
    reason: str
    """What is in the way and how to resolve it."""
    winner: ObjectRef | None = None
    """The source whose copy is (or stays) there, when several want it; None when none is written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LeftAlone:
    """A managed copy cfgsync neither updates nor deletes: one kubed put in a system namespace, or a copy
    of a source that exists but cannot be read."""

    ref: ObjectRef
    """The copy."""
    source: ObjectRef
    """The source its origin labels name."""
    policy: str
    """Why it is left alone: ``system-namespaces`` (the policy), or ``unreadable-source``."""
    reason: str
    """Why, and what the operator can do about it."""

    def __str__(self) -> str:
        return f"{self.ref} (copy of {self.source}) left alone: {self.reason}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PullRefusal:
    """A target that asked for a source and gets nothing (its data is left as it is)."""

    target: ObjectRef
    """The object that asked."""
    source: ObjectRef
    """The source it asked for."""
    request: str
    """The annotation it asked with (``cfgsync.io/copy-from``, ``replicate-from``, ``reflects``)."""
    reason: str
    """Why nothing is copied, and what would change that."""

    def __str__(self) -> str:
        return f"{self.target} asks for {self.source} ({self.request}): {self.reason}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Veto:
    """A copy a plugin refused, with its reason."""

    ref: ObjectRef
    """Where the copy would go."""
    source: ObjectRef
    """The source of the copy."""
    plugin: str
    """The plugin that refused it."""
    reason: str
    """The plugin's reason."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """An error about one source or rule; the rest of the plan is still computed."""

    subject: str
    """The object it is about (``Kind namespace/name (file:line)``)."""
    ref: ObjectRef | None = None
    """The source it is about, when it is about one."""
    message: str
    """What is wrong and how to fix it."""

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What should happen, in output order, plus everything that could not be planned."""

    actions: tuple[Action, ...] = ()
    """Every action, sorted by namespace, kind, name."""
    conflicts: tuple[Conflict, ...] = ()
    """Copies not written because something else holds their name."""
    vetoes: tuple[Veto, ...] = ()
    """Copies a plugin refused."""
    problems: tuple[Problem, ...] = ()
    """Invalid sources or rules, and failing plugins."""
    warnings: tuple[Problem, ...] = ()
    """Things worth a look that do not stop the plan (a SyncRule whose source does not exist)."""
    left_alone: tuple[LeftAlone, ...] = ()
    """Managed copies the policy leaves as they are: neither updated nor deleted."""
    pull_refusals: tuple[PullRefusal, ...] = ()
    """Targets that asked for a source and get nothing, with the reason."""

    def of_kind(self, kind: ActionKind) -> tuple[Action, ...]:
        """The actions of one kind, in plan order."""
        return tuple(a for a in self.actions if a.kind is kind)

    @property
    def copies(self) -> tuple[Copy, ...]:
        """Every desired copy (created, updated, replaced or unchanged), in output order."""
        return tuple(a.desired for a in self.actions if a.desired is not None)

    @property
    def changes(self) -> tuple[Action, ...]:
        """The actions that write: everything but unchanged."""
        return tuple(a for a in self.actions if a.kind is not ActionKind.UNCHANGED)
