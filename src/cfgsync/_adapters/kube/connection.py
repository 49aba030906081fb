"""One authenticated connection to an API server: raw JSON requests and watch streams.

I/O: HTTP to the API server. The official client loads kubeconfig files and in-cluster credentials
(exec plugins, OIDC, token refresh); requests go through its ``ApiClient`` but skip its model classes:
bodies are parsed as plain JSON, which costs a fraction of the memory for large lists. Every error is
an :class:`ApiError` (a :class:`~cfgsync.errors.ApplyError`) carrying the HTTP status.
"""

from __future__ import annotations

import importlib.metadata
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import kubernetes
import urllib3

from cfgsync import errors

JSON: Final = "application/json"
"""Accept header for full objects."""
METADATA_LIST: Final = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
"""Accept header that makes a list return metadata only."""
METADATA: Final = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
"""Accept header that makes a watch (or get) return metadata only."""
APPLY_PATCH: Final = "application/apply-patch+yaml"
"""Content type of server-side apply (a JSON body is valid YAML)."""
JSON_PATCH: Final = "application/json-patch+json"
"""Content type of RFC 6902 patches."""
WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods that change the cluster; each one is counted as a write call."""
_config: Any = kubernetes.config  # the client's config loaders are untyped
REQUEST_TIMEOUT: Final = (5.0, 20.0)
"""Seconds to connect, and to wait for each read of the answer, for a request that is not a watch: a
hung server or a dead path is given up soon enough that a retry on a fresh connection still helps."""

Json = dict[str, Any]
"""A decoded JSON object as the API server sends it."""
Timeout = float | tuple[float, float]
"""Seconds for the whole request, or (connect, read) seconds."""


class ApiError(errors.ApplyError):
    """The API server answered with an error status, or could not be reached (status 0)."""

    def __init__(self, message: str, *, status: int, reason: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status; 0 when the server could not be reached."""
        self.reason = reason
        """The ``reason`` of the API server's Status (``AlreadyExists``, ``Conflict``, ``Expired``...)."""
        self.detail = detail
        """The ``message`` of the API server's Status, as the server wrote it."""


class NotLeadingError(ApiError):
    """This replica does not (or no longer) provably hold the lease, so the write was not sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionSettings:
    """Where the credentials come from: kubeconfig files (and a context), or the pod's service account."""

    kubeconfig: tuple[str, ...] = ()
    """Kubeconfig files, merged in order as ``KUBECONFIG`` does; empty means in-cluster."""
    context: str | None = None
    """The kubeconfig context; None means the file's current context."""

    @property
    def in_cluster(self) -> bool:
        """True when the pod's service account is used."""
        return not self.kubeconfig


class Kube:
    """A thread-safe connection to one API server (``name`` is its context, for messages)."""

    def __init__(
        self,
        api_client: Any,
        *,
        name: str = "",
        namespace: str | None = None,
        on_write: Callable[[str, str], None] | None = None,
    ) -> None:
        self._api = api_client
        self.name = name
        """The context name (``in-cluster`` for the service account)."""
        self.namespace = namespace
        """The context's namespace, when the kubeconfig names one."""
        self.on_write = on_write
        """Called with (method, resource path) before each write call; metrics count them."""
        self.fence: Callable[[], bool] | None = None
        """Asked right before each write request; a write it refuses is not sent (leader election)."""
        self._streams: set[Any] = set()
        self._lock = threading.Lock()

    @property
    def api_client(self) -> Any:
        """The official client's ``ApiClient`` (for the few adapters that use its typed APIs)."""
        return self._api

    @property
    def server(self) -> str:
        """The API server's URL."""
        return str(self._api.configuration.host)

    def close(self) -> None:
        """Stop every open watch stream and release the connection pool."""
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            _shutdown(stream)
        self._api.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: object = None,
        content_type: str | None = None,
        accept: str = JSON,
        timeout: Timeout = REQUEST_TIMEOUT,
    ) -> Json:
        """Send one request and return the decoded JSON answer; raise :class:`ApiError` on failure."""
        response = self._send(
            method, path, query, body=body, content_type=content_type, accept=accept, timeout=timeout
        )
        try:
            raw = response.data
        except urllib3.exceptions.HTTPError as exc:
            raise self._unreachable(method, path, exc) from exc
        finally:
            response.release_conn()
        if not 200 <= response.status < 300:
            raise _status_error(method, path, response.status, raw)
        decoded = json.loads(raw) if raw else {}
        return decoded if isinstance(decoded, dict) else {}

    def stream(
        self, path: str, *, query: Sequence[tuple[str, str]], accept: str, timeout: Timeout
    ) -> Iterator[Json]:
        """Open a watch and yield its events as decoded JSON, one per line, until it ends.

        ``close()`` from another thread ends the iteration. Raises :class:`ApiError` when the watch
        cannot be opened or breaks off.
        """
        response = self._send(
            "GET",
            path,
            [*query, ("watch", "true")],
            body=None,
            content_type=None,
            accept=accept,
            timeout=timeout,
        )
        if not 200 <= response.status < 300:
            raw = response.data
            response.release_conn()
            raise _status_error("WATCH", path, response.status, raw)
        with self._lock:
            self._streams.add(response)
        try:
            pending = b""
            for chunk in response.stream(64 * 1024, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise self._unreachable("WATCH", path, exc) from exc
        finally:
            with self._lock:
                self._streams.discard(response)
            _shutdown(response)

    def _send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        *,
        body: object,
        content_type: str | None,
        accept: str,
        timeout: Timeout,
    ) -> Any:
        headers = {"Accept": accept}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if method in WRITE_METHODS:
            if self.fence is not None and not self.fence():
                raise NotLeadingError(
                    f"{method} {path}: not sent, this replica does not hold the lease (the leader writes)",
                    status=0,
                )
            if self.on_write is not None:
                self.on_write(method, path)
        try:
            serialized = self._api.param_serialize(
                method,
                path,
                query_params=list(query),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            return self._api.call_api(*serialized, _request_timeout=timeout).response
        except kubernetes.client.ApiException as exc:
            raise ApiError(f"{method} {path}: {exc.reason}", status=exc.status or 0) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unreachable(method, path, exc) from exc

    def _unreachable(self, method: str, path: str, exc: Exception) -> ApiError:
        # When one request (or watch) times out or is reset, the idle pooled connections travelled the
        # same path and are suspect too: drop them, so that the retry opens a fresh connection rather
        # than waiting out a dead one again.
        pool = getattr(getattr(self._api, "rest_client", None), "pool_manager", None)
        if pool is not None:
            pool.clear()
        return ApiError(
            f"{method} {path}: the API server {self.server} ({self.name or 'default context'}) could not be "
            f"reached or broke off ({type(exc).__name__}: {exc}); cfgsync retries",
            status=0,
        )


def _status_error(method: str, path: str, status: int, raw: bytes) -> ApiError:
    reason, message = "", raw.decode(errors="replace")[:500]
    try:
        decoded = json.loads(raw)
        if isinstance(decoded, dict):
            reason, message = str(decoded.get("reason", "")), str(decoded.get("message", message))
    except ValueError:
        pass
    return ApiError(
        f"{method} {path}: {status} {reason}: {message}", status=status, reason=reason, detail=message
    )


def _shutdown(response: Any) -> None:
    # shutdown() unblocks a read in progress on another thread; close() alone would not.
    shutdown = getattr(response, "shutdown", None)
    try:
        if shutdown is not None:
            shutdown()
        response.close()
    except (OSError, ValueError, RuntimeError, urllib3.exceptions.HTTPError):
        pass  # already closed, or closed by the server


def user_agent(identity: str = "") -> str:
    """``cfgsync/<version>``, plus the replica's identity, so audit logs tell replicas apart."""
    try:
        version = importlib.metadata.version("cfgsync")
    except importlib.metadata.PackageNotFoundError:
        version = "0.0.0+unknown"
    return f"cfgsync/{version} ({identity})" if identity else f"cfgsync/{version}"


def connect(
    settings: ConnectionSettings,
    *,
    pool_size: int = 16,
    on_write: Callable[[str, str], None] | None = None,
    identity: str = "",
) -> Kube:
    """A connection from kubeconfig files (merged, like ``KUBECONFIG``) or the in-cluster service account.

    Requests carry the User-Agent ``cfgsync/<version> (<identity>)``.
    """
    configuration = kubernetes.client.Configuration()
    namespace: str | None = None
    try:
        if settings.in_cluster:
            _config.load_incluster_config(client_configuration=configuration)
            name = "in-cluster"
        else:
            files = ":".join(settings.kubeconfig)
            _config.load_kube_config(
                config_file=files,
                context=settings.context,
                client_configuration=configuration,
                persist_config=False,
            )
            contexts, active = _config.list_kube_config_contexts(config_file=files)
            chosen = next((c for c in contexts if c["name"] == settings.context), active)
            name = str(chosen["name"])
            namespace = chosen.get("context", {}).get("namespace")
    except (kubernetes.config.ConfigException, OSError, ValueError, KeyError, TypeError) as exc:
        where = "the in-cluster service account" if settings.in_cluster else ", ".join(settings.kubeconfig)
        raise errors.ApplyError(
            f"cannot load Kubernetes credentials from {where}"
            + (f" (context {settings.context})" if settings.context else "")
            + f": {exc}; pass --kubeconfig and --context, or run inside a pod with a service account"
        ) from exc
    configuration.connection_pool_maxsize = pool_size
    # urllib3 would send a failed request again by itself, up to three times, after the lease fence
    # was checked (and, with a read timeout, long after): cfgsync retries at its own level instead.
    configuration.retries = False
    api = kubernetes.client.ApiClient(configuration)
    api.user_agent = user_agent(identity)
    return Kube(api, name=name, namespace=namespace, on_write=on_write)


def list_contexts(kubeconfig: str) -> list[tuple[str, str | None]]:
    """Every context of a kubeconfig file as (name, namespace or None)."""
    try:
        contexts, _ = _config.list_kube_config_contexts(config_file=kubeconfig)
    except (kubernetes.config.ConfigException, OSError, ValueError, KeyError, TypeError) as exc:
        raise errors.ApplyError(f"{kubeconfig}: cannot read its contexts: {exc}; check the file") from exc
    return [(str(c["name"]), c.get("context", {}).get("namespace")) for c in contexts]
