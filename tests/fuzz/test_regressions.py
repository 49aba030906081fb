"""Replay the fuzz seed corpus and every input the fuzzer crashed on: each must end well now."""

from __future__ import annotations

import base64
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
    data = path.read_bytes()
    # A crash CI's fuzzing just found exists only on the CI machine: its transcript, which keeps the
    # failures, then carries the input itself (``base64 -d`` gives the file back).
    print(f"input ({len(data)} bytes, base64): {base64.b64encode(data).decode()}")
    TARGETS[target](data)
