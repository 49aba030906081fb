"""Helpers for the live tests: waiting on conditions, running the CLI, building objects."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client

T = TypeVar("T")

SYNC = "kubed.appscode.com/sync"
ORIGIN_LABELS = (
    "kubed.appscode.com/origin.name",
    "kubed.appscode.com/origin.namespace",
    "kubed.appscode.com/origin.cluster",
)


def wait_for(predicate: Callable[[], T], *, timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(0.1)


def cli_env() -> dict[str, str]:
    """The environment for running cfgsync: no KUBECONFIG or in-cluster variables leak in."""
    env = {k: v for k, v in os.environ.items() if k not in {"KUBECONFIG", "KUBERNETES_SERVICE_HOST"}}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cfgsync(*args: str, kubeconfig: Path | str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``cfgsync ARGS --kubeconfig FILE`` and return its result."""
    return subprocess.run(
        [sys.executable, "-m", "cfgsync", *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
        check=check,
    )


def configmap(
    name: str,
    data: Mapping[str, str],
    *,
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    immutable: bool | None = None,
) -> client.V1ConfigMap:
    """A ConfigMap body."""
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(
            name=name, annotations=dict(annotations or {}), labels=dict(labels or {})
        ),
        data=dict(data),
        immutable=immutable,
    )


def secret(
    name: str, data: Mapping[str, str], *, annotations: Mapping[str, str] | None = None
) -> client.V1Secret:
    """An Opaque Secret body (values given as text)."""
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, annotations=dict(annotations or {})),
        type="Opaque",
        data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    )


def _read_or_none(read: Any, namespace: str, name: str) -> Any:
    try:
        return read(name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def read_cm(core: Any, namespace: str, name: str) -> Any:
    """The ConfigMap, or None when it does not exist."""
    return _read_or_none(core.read_namespaced_config_map, namespace, name)


def read_secret(core: Any, namespace: str, name: str) -> Any:
    """The Secret, or None when it does not exist."""
    return _read_or_none(core.read_namespaced_secret, namespace, name)


def cm_data(core: Any, namespace: str, name: str) -> dict[str, str] | None:
    """The ConfigMap's data, or None when it does not exist."""
    found = read_cm(core, namespace, name)
    return None if found is None else dict(found.data or {})
