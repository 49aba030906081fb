"""pytest plugin: one control plane per test session, an admin API client, a namespace per test, and a
fault proxy in front of the API server per test.

Loaded by ``tests/conftest.py`` (``pytest_plugins = ["controlplane.fixtures"]``). Every test that uses
``control_plane`` (directly or through ``kube_api`` / ``namespace``) or ``controlplane_binaries`` is
marked ``e2e``, so ``pytest -m "not e2e"`` neither builds nor starts anything. The binaries are built
once, after collection and before the first test, so a cold build is not charged to any test's
timeout; its progress is printed even while output is captured. Without a Go toolchain the e2e
tests are skipped with the reason; any other build failure makes them error.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from .build import Binaries, ControlPlaneError, GoNotFoundError, ensure_binaries
from .faults import FaultProxy
from .harness import ControlPlane

E2E_FIXTURES = frozenset({"control_plane", "controlplane_binaries"})
"""Tests whose fixture closure includes one of these need the control plane, and are marked e2e."""

NAMESPACE_LABEL = "cfgsync.test/fixture"
"""Label (value ``namespace``) on every namespace the ``namespace`` fixture creates."""

_built = pytest.StashKey[Binaries | ControlPlaneError]()


def pytest_configure(config: pytest.Config) -> None:
    if not any(line.startswith("e2e:") for line in config.getini("markers")):  # when loaded on its own
        config.addinivalue_line("markers", "e2e: needs the real kube-apiserver + etcd control plane")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _needs_control_plane(item):
            item.add_marker(pytest.mark.e2e)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build (or find cached) binaries before any test runs, if a selected test needs them."""
    config = session.config
    if config.option.collectonly or not any(_needs_control_plane(item) for item in session.items):
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    suspended = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
    with suspended:
        _build(config)


@pytest.fixture(scope="session")
def controlplane_binaries(pytestconfig: pytest.Config) -> Binaries:
    """The built etcd and kube-apiserver; skips the test if there is no Go toolchain to build them."""
    built = pytestconfig.stash.get(_built, None) or _build(pytestconfig)
    if isinstance(built, GoNotFoundError):
        pytest.skip(f"no control plane: {built}")
    if isinstance(built, ControlPlaneError):
        raise built
    return built


@pytest.fixture(scope="session")
def control_plane(controlplane_binaries: Binaries) -> Iterator[ControlPlane]:
    """The session's control plane: etcd + kube-apiserver on 127.0.0.1, stopped after the last test.

    It keeps the audit log of writes (``audit_events()``), at 0.1 to 0.3 ms a write (docs/development.md).
    Do not stop, pause or restart it: a test that breaks the control plane starts one of its own.
    """
    with ControlPlane(controlplane_binaries, audit=True) as plane:
        yield plane


@pytest.fixture(scope="session")
def kube_api(control_plane: ControlPlane) -> Iterator[Any]:
    """A ``kubernetes.client.ApiClient`` authenticated as the admin (``system:masters``)."""
    with api_client(control_plane.kubeconfig) as api:
        yield api


@pytest.fixture
def namespace(kube_api: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted afterwards.

    Nothing finalizes namespace deletion (no controller-manager runs), so the namespace stays
    ``Terminating``; its unique name keeps tests apart regardless.
    """
    name = unique_namespace_name(request.node.name)
    core = kubernetes.client.CoreV1Api(kube_api)
    body = kubernetes.client.V1Namespace(
        metadata=kubernetes.client.V1ObjectMeta(name=name, labels={NAMESPACE_LABEL: "namespace"})
    )
    core.create_namespace(body)
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:  # the test may have deleted it itself
                raise


@pytest.fixture
def fault_proxy(control_plane: ControlPlane) -> Iterator[FaultProxy]:
    """A ``FaultProxy`` in front of the session's API server, passing; closed after the test.

    ``fault_proxy.kubeconfig(control_plane.kubeconfig)`` gives the admin a kubeconfig through it.
    """
    with FaultProxy(control_plane.server) as proxy:
        yield proxy


def api_client(kubeconfig: Path) -> Any:
    """A ``kubernetes.client.ApiClient`` for ``kubeconfig``; use it in a ``with`` block to close it.

    Typed ``Any``: the client's configuration loader and ``ApiClient`` methods carry no annotations.
    """
    load: Callable[..., Any] = kubernetes.config.new_client_from_config
    return load(config_file=str(kubeconfig), persist_config=False)


def wait_until(
    condition: Callable[[], bool], what: str, *, timeout: float = 30.0, poll: float = 0.05
) -> None:
    """Return once ``condition()`` is true; ``AssertionError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(poll)


def object_names(listing: Any) -> set[str]:
    """The names in a list response: ``{item.metadata.name for item in listing.items}``."""
    return {item.metadata.name for item in listing.items}


def unique_namespace_name(hint: str) -> str:
    """A valid, unique namespace name derived from ``hint`` (e.g. a test name)."""
    stem = re.sub(r"[^a-z0-9]+", "-", hint.lower()).strip("-")[:48].strip("-") or "test"
    return f"{stem}-{secrets.token_hex(4)}"


def _needs_control_plane(item: pytest.Item) -> bool:
    return not E2E_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


def _build(config: pytest.Config) -> Binaries | ControlPlaneError:
    try:
        built: Binaries | ControlPlaneError = ensure_binaries()
    except ControlPlaneError as exc:
        built = exc
    config.stash[_built] = built
    return built
