"""The pytest fixtures' pure helpers: namespace names that the API server accepts."""

from __future__ import annotations

import re

import pytest

from controlplane.fixtures import unique_namespace_name

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@pytest.mark.parametrize(
    ("hint", "stem"),
    [
        ("test_smoke", "test-smoke-"),
        ("test_x[ctrl-c]", "test-x-ctrl-c-"),
        ("Test__Upper--Case", "test-upper-case-"),
        ("___", "test-"),
        ("t" * 100, "t" * 48 + "-"),
    ],
)
def test_namespace_names_are_dns_labels_derived_from_the_test(hint: str, stem: str) -> None:
    name = unique_namespace_name(hint)

    assert name.startswith(stem)
    assert DNS_LABEL.fullmatch(name)
    assert len(name) <= 63


def test_namespace_names_are_unique() -> None:
    assert len({unique_namespace_name("same") for _ in range(50)}) == 50
