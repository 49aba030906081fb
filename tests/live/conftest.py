"""Fixtures of the live tests: API clients and throw-away namespaces with chosen labels."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from kubernetes import client

from controlplane import Binaries, ControlPlane
from controlplane.fixtures import unique_namespace_name

NamespaceFactory = Callable[..., str]


@pytest.fixture
def core(kube_api: Any) -> Any:
    """CoreV1Api as the admin."""
    return client.CoreV1Api(kube_api)


@pytest.fixture
def make_namespace(core: Any, request: pytest.FixtureRequest) -> Iterator[NamespaceFactory]:
    """Create namespaces named after the test, with labels; all are deleted (left Terminating) afterwards."""
    made: list[str] = []

    def make(hint: str = "", labels: Mapping[str, str] | None = None) -> str:
        name = unique_namespace_name(f"{hint or request.node.name}")
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=dict(labels or {})))
        )
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            core.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture(scope="session")
def second_control_plane(controlplane_binaries: Binaries) -> Iterator[ControlPlane]:
    """A second, independent control plane: the 'other cluster' of inter-cluster sync."""
    with ControlPlane(controlplane_binaries) as plane:
        yield plane
