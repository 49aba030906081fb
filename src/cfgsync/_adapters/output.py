"""Writing copies as deterministic YAML or JSON streams.

I/O: writes to the stream it is given. PyYAML's libyaml emitter writes YAML (the fastest well-kept
emitter, see docs/performance.md); literal block style keeps multi-line values (CA bundles) readable.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import IO, Any

import yaml

from cfgsync._core import manifests
from cfgsync._core.manifests import Manifest
from cfgsync._core.model import Copy

_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc]  # the base is chosen at import time
    """Safe dumper with block style for multi-line strings."""


def _represent_str(dumper: Any, value: str) -> Any:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(manifest: Manifest | dict[str, object]) -> str:
    """One manifest as a YAML document (no leading ``---``)."""
    text: str = yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 16)
    return text


_PLACEHOLDER = "cfgsync-namespace-placeholder"


def dump_json(manifest: Manifest | dict[str, object]) -> str:
    """One manifest as compact JSON."""
    return json.dumps(manifest, separators=(",", ":"), ensure_ascii=False)


class CopyEmitter:
    """Emits copies as YAML or JSON, running the emitter once per distinct copy content.

    The copies of one source differ only in their namespace (they share their label, annotation and
    data mappings), so each distinct content is dumped once with a placeholder namespace, and every
    copy then takes that text with its own namespace, itself dumped once by the same emitter (so a
    namespace such as ``"123"`` or ``"true"`` is quoted exactly as a direct dump would quote it).
    The output is byte-identical to dumping each copy on its own.
    """

    def __init__(self, fmt: str = "yaml") -> None:
        self._dump = dump_json if fmt == "json" else dump_yaml
        self._marker = self._field(_PLACEHOLDER)
        self._templates: dict[tuple[object, ...], tuple[str, Copy]] = {}
        self._namespaces: dict[str, str] = {}

    def _field(self, namespace: str) -> str:
        if self._dump is dump_json:
            return f'"namespace":{dump_json(namespace)},'  # type: ignore[arg-type]
        return f"\n  {dump_yaml({'namespace': namespace})}"

    def render(self, copy: Copy) -> str:
        """The document of one copy (YAML without a leading ``---``, or one line of JSON)."""
        key = (
            copy.ref.kind,
            copy.ref.name,
            id(copy.labels),
            id(copy.annotations),
            id(copy.data),
            id(copy.binary_data),
            copy.type,
            copy.immutable,
        )
        cached = self._templates.get(key)
        if cached is None:
            template = self._dump(manifests.to_manifest(_with_namespace(copy, _PLACEHOLDER)))
            if template.count(self._marker) != 1:
                return self._dump(manifests.to_manifest(copy))
            # The copy is kept with its template so the ids in the key stay unique while cached.
            cached = (template, copy)
            self._templates[key] = cached
        field = self._namespaces.get(copy.ref.namespace)
        if field is None:
            field = self._namespaces[copy.ref.namespace] = self._field(copy.ref.namespace)
        return cached[0].replace(self._marker, field, 1)


def _with_namespace(copy: Copy, namespace: str) -> Copy:
    return dataclasses.replace(copy, ref=dataclasses.replace(copy.ref, namespace=namespace))


def write_copies_yaml(copies: Iterable[Copy], stream: IO[str]) -> int:
    """Write copies as a multi-document YAML stream; return how many were written."""
    emitter = CopyEmitter("yaml")
    count = 0
    for copy in copies:
        stream.write("---\n")
        stream.write(emitter.render(copy))
        count += 1
    return count


def write_copies_json(copies: Iterable[Copy], stream: IO[str]) -> int:
    """Write copies as a ``v1`` ``List`` in JSON, one item per line; return how many were written."""
    emitter = CopyEmitter("json")
    count = 0
    stream.write('{"apiVersion":"v1","kind":"List","items":[')
    for copy in copies:
        stream.write(",\n" if count else "\n")
        stream.write(emitter.render(copy))
        count += 1
    stream.write("\n]}\n")
    return count


def write_yaml_stream(manifests: Iterable[Manifest | dict[str, object]], stream: IO[str]) -> int:
    """Write a multi-document YAML stream, one document at a time; return how many were written."""
    count = 0
    for manifest in manifests:
        stream.write("---\n")
        stream.write(dump_yaml(manifest))
        count += 1
    return count
