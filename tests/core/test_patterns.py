"""The peers' namespace regexes: how each entry matches a namespace name, in a table.

Three readings side by side: cfgsync's for replicator's lists (the whole name), replicator's own
(``^``/``$`` added only where missing), and reflector's (the first match must span the name).
"""

from __future__ import annotations

import pytest

from cfgsync import errors
from cfgsync._core import patterns
from cfgsync._core.patterns import Matching

# entry, namespace, cfgsync (whole name), replicator's reading, reflector (first match spans the name)
TABLE = [
    ("team-a", "team-a", True, True, True),
    ("team-a", "team-ab", False, False, False),
    ("team-a", "my-team-a", False, False, False),
    ("team-[0-9]+", "team-12", True, True, True),
    ("team-[0-9]+", "team-x", False, False, False),
    ("team-.*", "team-", True, True, True),
    (" team-a ", "team-a", True, True, True),  # spaces around an entry are trimmed
    # The quirk: replicator reads a|b as ^a|b$, "starts with a, or ends with b".
    ("a|b", "a", True, True, True),
    ("a|b", "b", True, True, True),
    ("a|b", "ab", False, True, False),
    ("a|b", "xb", False, True, False),
    ("a|b", "ax", False, True, False),
    ("team-a|team-b", "team-a-evil", False, True, False),
    ("(a|b)", "ab", False, False, False),  # parenthesised, every reading agrees
    ("^a|b$", "ab", False, True, False),
    ("^team-a$", "team-a", True, True, True),
    # reflector's first match must span the name: a|ab never matches "ab" (the first match is "a").
    ("a|ab", "ab", True, True, False),
    ("ab|a", "ab", True, True, True),
    (".*", "anything", True, True, True),
]


@pytest.mark.parametrize(("entry", "name", "whole", "replicator", "reflector"), TABLE)
def test_each_reading_of_an_entry(
    entry: str, name: str, whole: bool, replicator: bool, reflector: bool
) -> None:
    assert patterns.compile_entry(entry, Matching.WHOLE_NAME, where="t").matches(name) is whole
    assert patterns.replicator_matches(entry, name) is replicator
    assert (
        patterns.compile_entry(entry, Matching.FIRST_MATCH_SPANS_NAME, where="t").matches(name) is reflector
    )


@pytest.mark.parametrize(
    ("entry", "reading"),
    [("a|b", "^a|b$"), ("^a", "^a$"), ("a$", "^a$"), ("^a$", "^a$"), ("(a|b)", "^(a|b)$"), (" x ", "^x$")],
)
def test_replicator_adds_anchors_only_where_missing(entry: str, reading: str) -> None:
    assert patterns.replicator_reading(entry) == reading


@pytest.mark.parametrize(
    ("entry", "name", "hit"),
    [
        ("kube", "kube-system", True),
        ("kube", "my-kube", True),
        ("^kube-", "my-kube-x", False),
        ("sys", "team-a", False),
    ],
)
def test_exclusions_match_anywhere_as_replicator_does(entry: str, name: str, hit: bool) -> None:
    assert patterns.compile_entry(entry, Matching.ANYWHERE, where="t").matches(name) is hit


def test_a_list_drops_blank_entries_and_keeps_the_order() -> None:
    found = patterns.compile_list("a, ,b,,", Matching.WHOLE_NAME, where="t")
    assert [str(e) for e in found] == ["a", "b"]


@pytest.mark.parametrize("entry", ["team-(", "(?=lookahead)", r"(a)\1", "[z-a]"])
def test_an_entry_re2_cannot_read_is_an_error_naming_where(entry: str) -> None:
    with pytest.raises(errors.RuleError) as caught:
        patterns.compile_entry(entry, Matching.WHOLE_NAME, where="ConfigMap a/b: annotation x")
    assert str(caught.value).startswith("ConfigMap a/b: annotation x: ")
    assert "RE2" in str(caught.value)


def test_a_pathological_pattern_matches_in_linear_time() -> None:
    # (a*)*b on 60 a's takes a backtracking engine longer than the test's timeout; RE2 answers at once.
    entry = patterns.compile_entry("(a*)*b", Matching.WHOLE_NAME, where="t")
    assert entry.matches("a" * 60) is False
    assert (
        patterns.compile_entry("(a*)*b", Matching.FIRST_MATCH_SPANS_NAME, where="t").matches("a" * 60)
        is False
    )
