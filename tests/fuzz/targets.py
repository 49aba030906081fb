"""The fuzz targets: each takes bytes and must end in a value or a :class:`CfgsyncError`, nothing else.

Shared by the fuzzer (``tests/fuzz/run.py``, atheris) and the regression tests that replay the seed
corpus and every input the fuzzer ever crashed on (``tests/fuzz/test_regressions.py``). Each target
also checks a property of a successful result, so a wrong answer counts as a crash too.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import yaml

from cfgsync import errors
from cfgsync._adapters import krm, krm_check, output, yaml_input
from cfgsync._core import inventory, manifests, planner
from cfgsync._core.selectors import LabelSelector
from cfgsync._plugins.manager import load_plugins

_HOOKS = load_plugins(only=())


class _AnyTags(yaml.CSafeLoader):
    """A safe loader that reads local tags (``!foo``) as the plain value they are on, as kustomize does."""


def _untagged(loader: yaml.CSafeLoader, suffix: str, node: yaml.Node) -> object:
    del suffix
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


def _text(loader: yaml.CSafeLoader, node: yaml.Node) -> object:
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_AnyTags.add_multi_constructor("!", _untagged)
# A timestamp is text to Kubernetes (and to cfgsync, which may write one back quoted): the same value.
_AnyTags.add_constructor("tag:yaml.org,2002:timestamp", _text)


def yaml_reader(data: bytes) -> None:
    """The manifest reader of render, diff and argocd generate, on stdin."""
    try:
        documents = yaml_input.read_documents(["-"], io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    except errors.CfgsyncError:
        return
    for doc in documents:
        assert isinstance(doc.body, dict)
        assert doc.where.startswith("<stdin>:")


def manifest_parser(data: bytes) -> None:
    """Manifests read, sorted into an inventory, planned and written out, as ``render`` does."""
    try:
        text = yaml_input.decode(data, "<fuzz>")
        documents = yaml_input.read_documents(["-"], io.StringIO(text))
        found = inventory.build_inventory(documents)
    except errors.CfgsyncError:
        return
    plan = planner.plan_copies(
        found.objects, found.namespaces, found.objects, rules=found.rules, hooks=_HOOKS
    )
    for copy in plan.copies:
        written = output.dump_yaml(manifests.to_manifest(copy))
        assert yaml.safe_load(written) == manifests.to_manifest(copy)


def selector_parser(data: bytes) -> None:
    """The label selector grammar: what parses prints as a selector that parses to the same thing."""
    text = data.decode("utf-8", errors="replace")
    try:
        selector = LabelSelector.parse(text)
    except errors.CfgsyncError:
        return
    again = LabelSelector.parse(str(selector))
    assert str(again) == str(selector)
    labels = {"app": "kubed", "env": "prod", "tier": "1"}
    assert again.matches(labels) == selector.matches(labels)


def krm_reader(data: bytes) -> None:
    """The KRM function: its output is a ResourceList holding every input item, unchanged."""
    try:
        text = yaml_input.decode(data, "<stdin>")
        result = krm.run_function(text, hooks=_HOOKS)
    except errors.CfgsyncError:
        return
    try:
        yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        # YAML lets an anchor be named again (kustomize reads that), PyYAML's composer does not: the
        # items come back as written, so the output need only parse as the input did.
        list(yaml.parse(result.text, Loader=yaml.CSafeLoader))
    else:
        yaml.compose(result.text, Loader=yaml.CSafeLoader)  # the output is one valid YAML document
    emitted = _as_emitted(text)
    try:
        given = yaml.load(text, Loader=_AnyTags)  # noqa: S506 -- a safe loader
        back = yaml.load(result.text, Loader=_AnyTags)  # noqa: S506
    except Exception:  # noqa: BLE001 -- items cfgsync passes through unread may hold what PyYAML refuses
        return
    assert back["kind"] == "ResourceList"
    kept = [i for i in given.get("items") or [] if not _config(i)]
    assert [i for i in back["items"] if not _config(i)][: len(kept)] == kept
    assert yaml.load(emitted, Loader=_AnyTags) == back  # noqa: S506


def _as_emitted(text: str) -> str:
    """The function's answer as its safety net writes it (the emitter, from the input's events)."""
    checked = krm_check.reads_back
    krm_check.reads_back = lambda text, expected: False
    try:
        return krm.run_function(text, hooks=_HOOKS).text
    finally:
        krm_check.reads_back = checked


def _config(item: object) -> bool:
    return isinstance(item, dict) and item.get("kind") in ("ConfigMap", "Secret")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "yaml_reader": yaml_reader,
    "manifests": manifest_parser,
    "selector": selector_parser,
    "krm": krm_reader,
}
"""Each target by the name of its corpus directory."""
