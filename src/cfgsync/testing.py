"""Helpers for testing cfgsync and its plugins: build objects tersely, compare with golden files.

Public (``cfgsync.testing``) so plugin authors can use them; the only I/O is in
:func:`assert_golden`, which reads (and, on request, writes) a golden file.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from cfgsync._core.model import ConfigObject, Namespace, ObjectRef, Plan, frozen
from cfgsync._core.planner import DEFAULT_SETTINGS, PlanSettings, plan_copies
from cfgsync._core.rules import Rule
from cfgsync._plugins.manager import PluginHooks, load_plugins

UPDATE_GOLDEN_ENV = "CFGSYNC_UPDATE_GOLDEN"
"""Set to 1 to rewrite golden files instead of comparing with them."""


def namespace(
    name: str,
    labels: Mapping[str, str] | None = None,
    *,
    terminating: bool = False,
    accept_from: Iterable[str] | None = None,
) -> Namespace:
    """A namespace with optional labels (and, for consent mode, the source namespaces it accepts)."""
    return Namespace(
        name=name,
        labels=frozen(labels),
        terminating=terminating,
        accept_from=tuple(accept_from) if accept_from is not None else None,
    )


def config_map(
    namespace: str,
    name: str,
    data: Mapping[str, str] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    immutable: bool | None = None,
) -> ConfigObject:
    """A ConfigMap."""
    return ConfigObject(
        ref=ObjectRef(kind="ConfigMap", namespace=namespace, name=name),
        labels=frozen(labels),
        annotations=frozen(annotations),
        data=frozen(data),
        immutable=immutable,
    )


def secret(
    namespace: str,
    name: str,
    data: Mapping[str, str] | None = None,
    *,
    type: str = "Opaque",  # noqa: A002  # the Kubernetes field is called type
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> ConfigObject:
    """A Secret; ``data`` values are base64 text, as in the API."""
    return ConfigObject(
        ref=ObjectRef(kind="Secret", namespace=namespace, name=name),
        labels=frozen(labels),
        annotations=frozen(annotations),
        data=frozen(data),
        type=type,
    )


def plan(
    sources: Iterable[ConfigObject],
    namespaces: Iterable[Namespace],
    existing: Iterable[ConfigObject] = (),
    *,
    rules: Iterable[Rule] = (),
    settings: PlanSettings = DEFAULT_SETTINGS,
    extra_plugins: Iterable[object] = (),
    unreadable: Collection[ObjectRef] = (),
) -> Plan:
    """Plan with the built-in transforms and ``extra_plugins`` only (installed plugins are not loaded)."""
    hooks: PluginHooks = load_plugins(only=(), extra=extra_plugins)
    return plan_copies(
        sources, namespaces, existing, rules=rules, settings=settings, hooks=hooks, unreadable=unreadable
    )


def assert_golden(actual: str, golden: Path) -> None:
    """Assert ``actual`` equals the golden file byte for byte (``CFGSYNC_UPDATE_GOLDEN=1`` rewrites it)."""
    if os.environ.get(UPDATE_GOLDEN_ENV) == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
    expected = golden.read_text(encoding="utf-8") if golden.exists() else None
    assert expected is not None, f"{golden} is missing; run with {UPDATE_GOLDEN_ENV}=1 to create it"
    assert actual == expected, (
        f"output differs from {golden}; if the change is intended, rerun with {UPDATE_GOLDEN_ENV}=1"
    )
