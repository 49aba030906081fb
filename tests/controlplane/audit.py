"""The API server's audit log: the policy the test control plane records with, and a typed reader.

The policy records every write (create, update, patch, delete, deletecollection) at the Metadata level
(who, what object, when, the response code; no bodies) and nothing else, so tests can count who wrote
what and when, and tell controller replicas apart by their User-Agent. Lease writes alone are recorded
with their request bodies (a few hundred bytes), so tests can tell a renewal from a release. The log is
one JSON event per line, written by the API server in blocking mode (as each request completes), never
rotated.

Does I/O: ``write_policy`` writes a file; ``AuditLog`` reads the log the API server appends to.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .build import ControlPlaneError

WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
"""The verbs the policy records."""

RESPONSE_COMPLETE = "ResponseComplete"
"""The stage at which an event carries the response code: the one tests count."""

POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    # RequestReceived would double the lines without saying anything ResponseComplete does not
    # (it carries requestReceivedTimestamp too); a request that never completes is not a write.
    "omitStages": ["RequestReceived"],
    "rules": [
        # Lease bodies say who took, renewed or released a lease; other bodies may hold Secret data.
        {
            "level": "Request",
            "verbs": list(WRITE_VERBS),
            "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}],
        },
        {"level": "Metadata", "verbs": list(WRITE_VERBS)},
        {"level": "None"},
    ],
}
"""The audit policy (``audit.k8s.io/v1``); JSON is valid YAML, which the API server reads."""


def write_policy(path: Path) -> None:
    """Write ``POLICY`` to ``path``."""
    path.write_text(json.dumps(POLICY, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """One audit event: a request, who made it, on what, and how it ended."""

    audit_id: str
    """The request's unique id (the same in each stage's event)."""
    stage: str
    """``ResponseComplete``, or ``ResponseStarted`` / ``Panic``."""
    verb: str
    """The Kubernetes verb: ``create``, ``update``, ``patch``, ``delete`` or ``deletecollection``."""
    user: str
    """The authenticated user name (a client certificate's CN)."""
    groups: tuple[str, ...]
    """The user's groups."""
    user_agent: str
    """The client's User-Agent header ('' if it sent none)."""
    resource: str
    """The resource, plural and lowercase (``configmaps``); '' for a non-resource URL."""
    subresource: str
    """The subresource (``status``), or ''."""
    api_group: str
    """The API group ('' for the core group)."""
    namespace: str
    """The object's namespace ('' for a cluster-scoped object)."""
    name: str
    """The object's name ('' for a collection, e.g. ``deletecollection``)."""
    request_uri: str
    """The request's path and query."""
    code: int | None
    """The HTTP status of the response (None if the event has none)."""
    received: datetime
    """When the API server received the request (UTC)."""
    at: datetime
    """When the API server reached ``stage`` (UTC); for ResponseComplete, when it answered."""
    request_object: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    """The request's body as the API server decoded it: Lease writes only (None for the rest)."""


def parse_event(line: str) -> AuditEvent:
    """Decode one line of the JSON audit log; ``ValueError`` (with the reason) if it is not an event."""
    raw = json.loads(line)
    if not isinstance(raw, dict) or raw.get("kind") != "Event":
        raise ValueError(f"not an audit event: {line[:200]!r}")
    user = raw.get("user") or {}
    ref = raw.get("objectRef") or {}
    status = raw.get("responseStatus") or {}
    return AuditEvent(
        audit_id=raw["auditID"],
        stage=raw["stage"],
        verb=raw["verb"],
        user=user.get("username", ""),
        groups=tuple(user.get("groups") or ()),
        user_agent=raw.get("userAgent", ""),
        resource=ref.get("resource", ""),
        subresource=ref.get("subresource", ""),
        api_group=ref.get("apiGroup", ""),
        namespace=ref.get("namespace", ""),
        name=ref.get("name", ""),
        request_uri=raw.get("requestURI", ""),
        code=status.get("code"),
        received=datetime.fromisoformat(raw["requestReceivedTimestamp"]),
        at=datetime.fromisoformat(raw["stageTimestamp"]),
        request_object=raw.get("requestObject"),
    )


class AuditLog:
    """Reads an audit log as the API server appends to it; each call parses only the new lines."""

    def __init__(self, path: Path) -> None:
        """A reader for the log at ``path`` (which need not exist yet)."""
        self.path = path
        self._offset = 0
        self._lines = 0
        self._events: list[AuditEvent] = []
        self._lock = threading.Lock()

    def events(self, *, stage: str | None = RESPONSE_COMPLETE) -> tuple[AuditEvent, ...]:
        """Every event logged so far at ``stage`` (all stages if None), in the order they were written.

        A line the API server is still writing is left for the next call.
        """
        with self._lock:
            self._read_new_lines()
            events = tuple(self._events)
        return events if stage is None else tuple(e for e in events if e.stage == stage)

    def _read_new_lines(self) -> None:
        try:
            with self.path.open("rb") as log:
                log.seek(self._offset)
                chunk = log.read()
        except FileNotFoundError:
            return
        complete, _, _ = chunk.rpartition(b"\n")
        if not complete:
            return
        for line in complete.split(b"\n"):
            try:
                event = parse_event(line.decode("utf-8"))
            except (ValueError, KeyError) as exc:
                raise ControlPlaneError(
                    f"{self.path}:{self._lines + 1}: not an audit event ({exc!r}); "
                    "was the API server started with --audit-log-format=json?"
                ) from exc
            self._events.append(event)
            self._lines += 1
            self._offset += len(line) + 1
