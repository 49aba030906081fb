"""Kubernetes Events on sources: conflicts, failures and replacements, where ``kubectl describe`` shows them.

I/O: POST to the events collection of the source's namespace. Each (source, reason, message) is
reported once per source version, so a conflict that persists does not write an Event on every resync.
A failure to write an Event is logged, never raised: Events are a courtesy, not the job.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import threading
from collections import OrderedDict
from typing import Final

from cfgsync._adapters.kube import resources
from cfgsync._adapters.kube.connection import ApiError, Kube
from cfgsync._core.model import ConfigObject

log = logging.getLogger("cfgsync.events")

COMPONENT: Final = "cfgsync"
"""``source.component`` and ``reportingComponent`` of every Event."""
_REMEMBERED: Final = 10_000
_MESSAGE_MAX: Final = 1024


class EventRecorder:
    """Writes Events about sources, each once (see the module docstring)."""

    def __init__(self, kube: Kube, *, instance: str = "") -> None:
        self.kube = kube
        self.instance = instance
        self._seen: OrderedDict[tuple[str, str, str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def warning(self, source: ConfigObject, reason: str, message: str) -> bool:
        """A Warning event on ``source``; False when the same one was already written for this version."""
        return self._emit(source, "Warning", reason, message)

    def normal(self, source: ConfigObject, reason: str, message: str) -> bool:
        """A Normal event on ``source``; False when the same one was already written for this version."""
        return self._emit(source, "Normal", reason, message)

    def _emit(self, source: ConfigObject, kind: str, reason: str, message: str) -> bool:
        key = (source.uid or str(source.ref), source.resource_version or "", reason, message)
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            if len(self._seen) > _REMEMBERED:
                self._seen.popitem(last=False)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ref = source.ref
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{ref.name[:200]}.{secrets.token_hex(8)}", "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": source.api_version,
                "kind": ref.kind,
                "namespace": ref.namespace,
                "name": ref.name,
                "uid": source.uid,
                "resourceVersion": source.resource_version,
            },
            "reason": reason,
            "message": message[:_MESSAGE_MAX],
            "type": kind,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self.kube.request("POST", resources.EVENTS.collection(ref.namespace), body=body)
        except ApiError as exc:
            log.warning("could not record event %s on %s: %s", reason, ref, exc)
            with self._lock:
                self._seen.pop(key, None)  # try again next time
        return True
