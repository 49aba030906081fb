"""List, then watch, one collection into the store; never miss an event, never relist without need.

I/O: GET list and watch requests, in a thread per collection. A watch resumes from the last
resourceVersion seen (bookmarks keep it fresh while nothing changes). A ``410 Gone`` (the version is too
old) relists, and the relist is compared with the store so deletions missed meanwhile are noticed.
Dropped connections and API server restarts are retried with capped exponential back-off, resuming from
the same version.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cfgsync._adapters.kube import reading, view
from cfgsync._adapters.kube.connection import JSON, ApiError, Kube

log = logging.getLogger("cfgsync.informer")

WATCH_SECONDS: Final = 300
"""How long one watch request lasts before it is renewed (randomised up to twice that)."""
MAX_BACKOFF: Final = 5.0
"""Seconds between reconnection attempts, at most."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Handlers:
    """What an informer calls: each object added or changed, each deleted, and the refs a relist found."""

    upsert: Callable[[Mapping[str, Any]], None]
    """An object (full, or metadata only) was added or changed."""
    delete: Callable[[Mapping[str, Any]], None]
    """An object was deleted."""
    known: Callable[[], set[tuple[str, str]]]
    """(namespace, name) of every object the store holds from this collection (to find vanished ones)."""


class Informer:
    """One collection, listed and watched in a thread (see the module docstring)."""

    def __init__(
        self,
        kube: Kube,
        *,
        name: str,
        path: str,
        handlers: Handlers,
        kind: str = "",
        accept: str = JSON,
        watch_accept: str = JSON,
        label_selector: str | None = None,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        self.kube = kube
        self.name = name
        self.path = path
        self.kind = kind
        self.handlers = handlers
        self.accept = accept
        self.watch_accept = watch_accept
        self.label_selector = label_selector
        self.on_event = on_event or (lambda informer, what: None)
        self.synced = threading.Event()
        """Set once the first list is in the store."""
        self.resource_version = ""
        """The last version seen; watches resume from it."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"informer-{name}", daemon=True)
        self.failed: BaseException | None = None
        """The error that ended the thread, if one did (the controller then reports unhealthy)."""

    def start(self) -> None:
        """Start the list/watch thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop (the open watch is closed by closing the connection)."""
        self._stop.set()

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self.failed = exc
            log.exception("informer %s stopped on an unexpected error", self.name)
            raise

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
                delay = min(MAX_BACKOFF, 0.1 * 2**failures) * (0.5 + random.random() / 2)  # noqa: S311 -- jitter, not crypto
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
            self.kube, self.path, accept=self.accept, label_selector=self.label_selector, kind=self.kind
        )
        seen = set()
        for item in pages:
            meta = view.metadata(item)
            seen.add((sys.intern(str(meta.get("namespace", ""))), str(meta.get("name", ""))))
            self.handlers.upsert(item)
        for namespace, name in self.handlers.known() - seen:
            self.handlers.delete({"kind": self.kind, "metadata": {"namespace": namespace, "name": name}})
        self.resource_version = pages.resource_version
        self.synced.set()

    def _watch(self) -> None:
        query = [
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", self.resource_version),
            ("timeoutSeconds", str(int(WATCH_SECONDS * (1 + random.random())))),  # noqa: S311 -- spread renewals
        ]
        if self.label_selector:
            query.append(("labelSelector", self.label_selector))
        timeout = (10.0, WATCH_SECONDS * 3.0)  # the read timeout outlasts the server's own watch timeout
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
                self.handlers.upsert(obj)
            elif kind == "DELETED":
                self.handlers.delete(obj)
            if isinstance(version, str) and version:
                self.resource_version = version
