"""Every Python example in docs/library.md runs, in order, from the repository root."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
EXAMPLES = BLOCK.findall((REPO / "docs" / "library.md").read_text(encoding="utf-8"))


def test_the_page_has_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example-{i}" for i in range(len(EXAMPLES))])
def test_example_runs(code: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setitem(os.environ, "CFGSYNC_PLUGINS", "")
    exec(compile(code, "docs/library.md", "exec"), {"__name__": "docs_example"})  # noqa: S102  # the doc's own code
    capsys.readouterr()
