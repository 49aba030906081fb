"""Small glue between the watches and the Store: a sink made of three callables, and SyncRule entries.

No I/O. An informer hands each decoded object to a :class:`~cfgsync._controller.informer.Sink`;
:class:`Handlers` builds one from the Store's methods, and :func:`decode_syncrule` turns a SyncRule
object into what the Store keeps (the rule, or the problem with it, plus what an Event about it needs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cfgsync._adapters.kube import reading, resources, view
from cfgsync._adapters.kube.connection import Json
from cfgsync._core.model import ConfigObject, ObjectRef, Problem
from cfgsync._core.rules import Rule

T = TypeVar("T")
Key = tuple[str, str]
"""(namespace, name) of an object in a collection."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Handlers(Generic[T]):
    """A sink made of three callables (see ``informer.Sink``)."""

    upsert: Callable[[T], None]
    """An object was added or changed."""
    delete: Callable[[Key, str | None], None]
    """The object with this key (and uid, when known) is gone."""
    known: Callable[[], set[Key]]
    """Every key the sink holds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncRuleEntry:
    """One SyncRule as read: its key, its rule or the problem with it, and the object for Events."""

    key: Key
    """(namespace, name)."""
    rule: Rule | Problem
    """The rule, or why it is invalid."""
    subject: ConfigObject
    """The SyncRule's identity (kind, namespace, name, uid, version) for an Event about it."""

    @property
    def problem(self) -> Problem | None:
        """The problem, when the SyncRule is invalid."""
        return self.rule if isinstance(self.rule, Problem) else None


def decode_syncrule(raw: Json) -> SyncRuleEntry:
    """A SyncRule object as the Store keeps it."""
    meta = view.metadata(raw)
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    uid, version = meta.get("uid"), meta.get("resourceVersion")
    subject = ConfigObject(
        ref=ObjectRef(kind=resources.SYNC_RULES.kind, namespace=namespace, name=name),
        uid=uid if isinstance(uid, str) else None,
        resource_version=version if isinstance(version, str) else None,
        api_version=resources.SYNC_RULES.api_version,
    )
    return SyncRuleEntry(key=(namespace, name), rule=reading.parse_syncrule(raw), subject=subject)
