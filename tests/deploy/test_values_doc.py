"""docs/helm.md lists every value of the chart with its default, and nothing else."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import yaml

from deploy.chart import CHART

DOC = Path(__file__).resolve().parents[2] / "docs" / "helm.md"
_ROW = re.compile(r"^\| `(?P<key>[A-Za-z][\w.]*)` \| `(?P<default>[^`]*)` \|", re.MULTILINE)


def flatten(values: Mapping[str, object], prefix: str = "") -> Iterator[tuple[str, object]]:
    """``(dotted.key, value)`` for every leaf; an empty map or any list is a leaf."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{path}.")
        else:
            yield path, value


def documented() -> dict[str, object]:
    """Key and default (JSON) of each row of the values table."""
    section = DOC.read_text(encoding="utf-8").split("## Values", 1)[1].split("\n## ", 1)[0]
    return {m["key"]: json.loads(m["default"]) for m in _ROW.finditer(section)}


def test_every_value_is_documented_with_its_default() -> None:
    values = dict(flatten(yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))))

    doc = documented()

    assert sorted(set(values) - set(doc)) == [], "values missing from docs/helm.md"
    assert sorted(set(doc) - set(values)) == [], "docs/helm.md lists values the chart does not have"
    wrong = {key: (doc[key], values[key]) for key in values if doc[key] != values[key]}
    assert wrong == {}, "docs/helm.md default != values.yaml default"


def test_the_table_is_in_the_order_of_values_yaml() -> None:
    values = [key for key, _ in flatten(yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8")))]

    assert list(documented()) == values
