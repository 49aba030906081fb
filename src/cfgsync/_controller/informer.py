"""List, then watch, one collection into a sink of typed objects; never miss an event, never stop.

I/O: GET list and watch requests, in a thread per collection. Each object is decoded once, here, into
the type the sink takes (a Namespace, an object's metadata, a copy's view, a SyncRule); an object the
API server accepted but cfgsync cannot read is reported (``on_poison``) and skipped, never fatal.

A watch resumes from the last resourceVersion seen (bookmarks keep it fresh while nothing changes). A
``410 Gone`` relists, and the relist is compared with the sink so deletions missed meanwhile are noticed.
Dropped connections and API server restarts are retried with capped exponential back-off, resuming from
the same version. A watch that falls silent is restarted: each watch asks the server to end it after
``WATCH_SECONDS`` (jittered), the server sends a bookmark just before that, and a stream that stays
silent for ``SILENCE_SECONDS`` (a half-open connection, a hung server) is given up and opened again. An
unexpected error in the loop is logged and the loop starts over with a relist; the thread only ends when
stopped (or on an error that is not an ``Exception``, which the controller turns into an exit).
"""

from __future__ import annotations

import logging
import random
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar

from cfgsync import errors
from cfgsync._adapters.kube import reading, view
from cfgsync._adapters.kube.connection import JSON, ApiError, Json, Kube

log = logging.getLogger("cfgsync.informer")

WATCH_SECONDS: Final = (45, 75)
"""Bounds of the server-side timeout of one watch request (chosen at random in between).

The API server sends a watch its first bookmark about two minutes in, then one a minute, and one just
before the watch's own timeout: with a timeout under two minutes, a healthy watch says something at
least every 75 seconds."""
SILENCE_SECONDS: Final = 85.0
"""A watch stream silent this long is taken for dead (a half-open connection) and opened again."""
MAX_BACKOFF: Final = 5.0
"""Seconds between reconnection attempts, at most."""

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
Key = tuple[str, str]
"""(namespace, name) of an object in a collection."""


class Sink(Protocol[T_contra]):
    """Where an informer puts what it reads."""

    def upsert(self, item: T_contra) -> None:
        """An object was added or changed (or listed)."""

    def delete(self, key: Key, uid: str | None) -> None:
        """The object ``key`` (with ``uid``, when known) is gone, or can no longer be read."""

    def known(self) -> set[Key]:
        """Every object the sink holds from this collection (to find the ones a relist misses)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Poison:
    """An object the API server holds but cfgsync cannot read."""

    collection: str
    """The informer that met it."""
    kind: str
    """Its kind."""
    namespace: str
    """Its namespace."""
    name: str
    """Its name."""
    uid: str | None
    """Its uid, for an Event about it."""
    labels: Mapping[str, str]
    """Its labels (a copy's origin labels name the source to tell)."""
    error: str
    """Why it cannot be read."""


class Informer(Generic[T]):
    """One collection, listed and watched in a thread (see the module docstring)."""

    def __init__(
        self,
        kube: Kube,
        *,
        name: str,
        path: str,
        kind: str,
        decode: Callable[[Json], T],
        sink: Sink[T],
        accept: str = JSON,
        watch_accept: str = JSON,
        label_selector: str | None = None,
        page_size: int = reading.PAGE_SIZE,
        on_event: Callable[[str, str], None] | None = None,
        on_poison: Callable[[Poison], None] | None = None,
    ) -> None:
        """No I/O: the thread starts with :meth:`start`."""
        self.kube = kube
        self.name = name
        self.path = path
        self.kind = kind
        self._decode = decode
        self._sink = sink
        self.accept = accept
        self.watch_accept = watch_accept
        self.label_selector = label_selector
        self.page_size = page_size
        self.on_event = on_event or (lambda informer, what: None)
        self.on_poison = on_poison or (lambda poison: None)
        self.synced = threading.Event()
        """Set once the first list is in the sink."""
        self.resource_version = ""
        """The last version seen; watches resume from it."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"informer-{name}", daemon=True)
        self.failed: BaseException | None = None
        """The error that ended the thread, if one did (the controller then exits)."""

    def start(self) -> None:
        """Start the list/watch thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop (the open watch is closed by closing the connection)."""
        self._stop.set()

    @property
    def alive(self) -> bool:
        """False once the thread ended on an error it could not survive."""
        return self.failed is None

    def _run(self) -> None:
        crashes = 0
        while not self._stop.is_set():
            try:
                self._loop()
                return
            except Exception:  # supervised: a bug in a handler must not end the watch
                crashes += 1
                log.exception("informer %s failed unexpectedly; listing again", self.name)
                self.on_event(self.name, "crash")
                self._stop.wait(_backoff(crashes))
            except BaseException as exc:  # noqa: BLE001 -- recorded: the controller exits on it
                self.failed = exc
                log.critical("informer %s stopped: %r", self.name, exc)

    def _loop(self) -> None:
        failures = 0
        need_list = True
        while not self._stop.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                self._watch()
                failures = 0
            except ApiError as exc:
                if self._stop.is_set():
                    return
                if exc.status == 410:
                    log.info("watch of %s expired (410 Gone); relisting", self.name)
                    self.on_event(self.name, "relist")
                    need_list = True
                    continue
                failures += 1
                delay = _backoff(failures)
                log.warning(
                    "watch of %s failed (%s); retrying in %.1fs from version %s",
                    self.name,
                    exc,
                    delay,
                    self.resource_version or "(relist)",
                )
                self.on_event(self.name, "error")
                self._stop.wait(delay)

    def _relist(self) -> None:
        pages = reading.Pages(
            self.kube,
            self.path,
            accept=self.accept,
            label_selector=self.label_selector,
            kind=self.kind,
            page_size=self.page_size,
        )
        seen: set[Key] = set()
        for raw in pages:
            key = _key(raw)
            if self._put(raw, key):
                seen.add(key)
        for key in self._sink.known() - seen:
            self._sink.delete(key, None)
        self.resource_version = pages.resource_version
        self.synced.set()

    def _watch(self) -> None:
        query = [
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", self.resource_version),
            ("timeoutSeconds", str(random.randint(*WATCH_SECONDS))),  # noqa: S311 -- spread renewals
        ]
        if self.label_selector:
            query.append(("labelSelector", self.label_selector))
        timeout = (10.0, SILENCE_SECONDS)  # reading nothing for this long ends the request
        for event in self.kube.stream(self.path, query=query, accept=self.watch_accept, timeout=timeout):
            if self._stop.is_set():
                return
            kind = event.get("type")
            obj = event.get("object")
            if not isinstance(obj, dict):
                continue
            if kind == "ERROR":
                code = int(obj.get("code", 0) or 0)
                message = f"watch of {self.name}: {obj.get('message', '')}"
                raise ApiError(message, status=code, reason=str(obj.get("reason", "")))
            version = view.metadata(obj).get("resourceVersion")
            if self.kind:
                obj["kind"] = self.kind
            if kind in {"ADDED", "MODIFIED"}:
                self._put(obj, _key(obj))
            elif kind == "DELETED":
                self._sink.delete(_key(obj), _uid(obj))
            if isinstance(version, str) and version:
                self.resource_version = version

    def _put(self, raw: Json, key: Key) -> bool:
        """Decode ``raw`` and hand it to the sink; an object that cannot be read is reported instead."""
        try:
            item = self._decode(raw)
        except errors.CfgsyncError as exc:
            meta = view.metadata(raw)
            self.on_poison(
                Poison(
                    collection=self.name,
                    kind=self.kind,
                    namespace=key[0],
                    name=key[1],
                    uid=_uid(raw),
                    labels=view.string_map(meta, "labels"),
                    error=str(exc),
                )
            )
            self._sink.delete(key, None)  # what it held before is no longer true
            return False
        self._sink.upsert(item)
        return True


def _backoff(failures: int) -> float:
    return min(MAX_BACKOFF, 0.1 * 2.0**failures) * (0.5 + random.random() / 2)  # noqa: S311 -- jitter


def _key(raw: Mapping[str, Any]) -> Key:
    meta = view.metadata(raw)
    return (sys.intern(str(meta.get("namespace", ""))), str(meta.get("name", "")))


def _uid(raw: Mapping[str, Any]) -> str | None:
    uid = view.metadata(raw).get("uid")
    return uid if isinstance(uid, str) else None
