"""A real, throw-away Kubernetes control plane for cfgsync's end-to-end tests and benchmarks.

etcd and kube-apiserver are built from their Go modules at pinned releases (``go/``), cached outside
the work tree, and started on 127.0.0.1 with RBAC, an admin and a restricted identity. Use it as a
context manager (``with ControlPlane() as cp: ...``), through the pytest fixtures in
``controlplane.fixtures``, or from the shell with ``python -m controlplane up|down --kubeconfig FILE``.
To break things on purpose: ``FaultProxy`` (hang, reset or refuse a client's connections), the API
server's audit log (``ControlPlane(audit=True).audit_events()``), and ``stop_etcd`` / ``start_etcd`` /
``pause_apiserver`` / ``resume_apiserver``. See docs/development.md.
"""

from .audit import AuditEvent
from .build import Binaries, ControlPlaneError, GoNotFoundError, ensure_binaries, pinned_versions
from .faults import ConnectionInfo, FaultProxy, FaultProxyError, Mode, ProxyStats
from .harness import ControlPlane
from .pki import ADMIN_USER, RESTRICTED_GROUP, RESTRICTED_USER

__all__ = [
    "ADMIN_USER",
    "RESTRICTED_GROUP",
    "RESTRICTED_USER",
    "AuditEvent",
    "Binaries",
    "ConnectionInfo",
    "ControlPlane",
    "ControlPlaneError",
    "FaultProxy",
    "FaultProxyError",
    "GoNotFoundError",
    "Mode",
    "ProxyStats",
    "ensure_binaries",
    "pinned_versions",
]
