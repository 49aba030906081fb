"""Replay the fuzz seed corpus and every input the fuzzer crashed on: each must end well now."""

from __future__ import annotations

from pathlib import Path

import pytest

from .targets import TARGETS

HERE = Path(__file__).resolve().parent
CASES = sorted(
    (target, path)
    for target in TARGETS
    for folder in ("corpus", "crashes")
    for path in (HERE / folder / target).glob("*")
    if path.is_file()
)


@pytest.mark.parametrize(
    ("target", "path"), CASES, ids=[f"{t}/{p.parent.parent.name}/{p.name}" for t, p in CASES]
)
def test_the_input_ends_in_a_result_or_a_cfgsync_error(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())
