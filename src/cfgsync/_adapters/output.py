"""Writing copies as deterministic YAML or JSON streams.

I/O: writes to the stream it is given. PyYAML's libyaml emitter writes YAML (the fastest well-kept
emitter, see docs/performance.md); literal block style keeps multi-line values (CA bundles) readable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO, Any

import yaml

from cfgsync._core.manifests import Manifest

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


def write_yaml_stream(manifests: Iterable[Manifest | dict[str, object]], stream: IO[str]) -> int:
    """Write a multi-document YAML stream, one document at a time; return how many were written."""
    count = 0
    for manifest in manifests:
        stream.write("---\n")
        stream.write(dump_yaml(manifest))
        count += 1
    return count


def write_json_list(manifests: Iterable[Manifest | dict[str, object]], stream: IO[str]) -> int:
    """Write a ``v1`` ``List`` as JSON, one item per line, streaming; return the number of items."""
    count = 0
    stream.write('{"apiVersion":"v1","kind":"List","items":[')
    for manifest in manifests:
        stream.write(",\n" if count else "\n")
        stream.write(json.dumps(manifest, separators=(",", ":"), ensure_ascii=False))
        count += 1
    stream.write("\n]}\n")
    return count
