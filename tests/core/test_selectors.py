"""Label selectors: the grammar and meaning of Kubernetes' ``labels.Parse``, errors, structured form."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgsync import errors
from cfgsync._core.selectors import LabelSelector, Operator, Requirement

parse = LabelSelector.parse


# --- parsing: accepted text and its canonical form ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("", "", id="empty"),
        pytest.param(" \t\r\n ", "", id="only-blanks"),
        pytest.param("env=prod", "env=prod", id="equals"),
        pytest.param("env==prod", "env=prod", id="double-equals"),
        pytest.param("env!=prod", "env!=prod", id="not-equals"),
        pytest.param("env in (qa,dev,qa)", "env in (dev,qa)", id="in-sorted-deduplicated"),
        pytest.param("env notin (qa,dev)", "env notin (dev,qa)", id="notin"),
        pytest.param("team", "team", id="exists"),
        pytest.param("!legacy", "!legacy", id="does-not-exist"),
        pytest.param("rank>2", "rank>2", id="greater-than"),
        pytest.param("rank<10", "rank<10", id="less-than"),
        pytest.param("rank>007", "rank>007", id="integer-text-kept"),
        pytest.param("rank<9223372036854775807", "rank<9223372036854775807", id="largest-int64"),
        pytest.param("  env =  prod ,  tier in(web , api)  ", "env=prod,tier in (api,web)", id="blanks"),
        pytest.param("env\t=\nprod\r", "env=prod", id="tab-newline-return"),
        pytest.param("! legacy", "!legacy", id="blank-after-bang"),
        pytest.param("env in(a)", "env in (a)", id="no-blank-before-paren"),
        pytest.param("tier,env=prod,!legacy", "env=prod,!legacy,tier", id="sorted-by-key"),
        pytest.param("env,env in (a),env!=b", "env!=b,env in (a),env", id="same-key-sorted-by-operator"),
        pytest.param("a,a", "a,a", id="duplicates-kept"),
        pytest.param("env=", "env=", id="equals-empty"),
        pytest.param("env==", "env=", id="double-equals-empty"),
        pytest.param("env!=", "env!=", id="not-equals-empty"),
        pytest.param("env= ,tier", "env=,tier", id="empty-value-before-comma"),
        pytest.param("env in ()", "env in ()", id="empty-parens-hold-the-empty-value"),
        pytest.param("env in (,)", "env in ()", id="lone-comma"),
        pytest.param("env in (,a)", "env in (,a)", id="leading-empty"),
        pytest.param("env in (a,)", "env in (,a)", id="trailing-empty"),
        pytest.param("env in (a,,b)", "env in (,a,b)", id="inner-empty"),
        pytest.param("env in (,,,)", "env in ()", id="three-commas"),
        pytest.param("env in (a,,,)", "env in (,a)", id="three-trailing-commas"),
        pytest.param("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()", id="documented-example"),
        pytest.param("in in (in,notin)", "in in (in,notin)", id="keywords-as-key-and-values"),
        pytest.param("notin notin (in)", "notin notin (in)", id="notin-as-key"),
        pytest.param("env=in,!notin", "env=in,!notin", id="keywords-as-value-and-negated-key"),
        pytest.param("example.com/team=a", "example.com/team=a", id="prefixed-key"),
        pytest.param(
            "kubernetes.io/metadata.name in (default,kube-system)",
            "kubernetes.io/metadata.name in (default,kube-system)",
            id="namespace-name-label",
        ),
        pytest.param("a-b.c/D_e.F=G-h.I_j", "a-b.c/D_e.F=G-h.I_j", id="all-allowed-characters"),
        pytest.param("k" * 63 + "=" + "v" * 63, "k" * 63 + "=" + "v" * 63, id="longest-name-and-value"),
        pytest.param("p" * 253 + "/n", "p" * 253 + "/n", id="longest-prefix"),
    ],
)
def test_parse_accepts_and_canonicalises(text: str, canonical: str) -> None:
    selector = parse(text)
    assert str(selector) == canonical
    assert parse(canonical) == selector


def test_parse_builds_requirements_with_sorted_unique_values() -> None:
    assert parse("tier notin (b,a,b), env==prod, !legacy, team, rank>3").requirements == (
        Requirement(key="env", operator=Operator.EQUALS, values=("prod",)),
        Requirement(key="legacy", operator=Operator.DOES_NOT_EXIST, values=()),
        Requirement(key="rank", operator=Operator.GREATER_THAN, values=("3",)),
        Requirement(key="team", operator=Operator.EXISTS, values=()),
        Requirement(key="tier", operator=Operator.NOT_IN, values=("a", "b")),
    )


@pytest.mark.parametrize("word", ["false", "true"])
def test_boolean_words_are_label_keys(word: str) -> None:
    # kubed users write `sync: "false"`; like apimachinery, that is "has a label named false".
    selector = parse(word)
    assert selector.requirements == (Requirement(key=word, operator=Operator.EXISTS),)
    assert selector.matches({word: ""})
    assert not selector.matches({})
    assert not selector.matches({"sync": word})


@pytest.mark.parametrize("text", ["", " ", "\t\n"])
def test_empty_selector_matches_everything(text: str) -> None:
    selector = parse(text)
    assert selector.matches_everything
    assert selector == LabelSelector()
    assert selector.matches({})
    assert selector.matches({"env": "prod"})
    assert selector.explain({"env": "prod"}) == ()


@pytest.mark.parametrize("text", ["a", "!a", "a notin (b)"])
def test_any_requirement_means_not_everything(text: str) -> None:
    assert not parse(text).matches_everything


@pytest.mark.parametrize(
    ("requirement", "text"),
    [
        (Requirement(key="team", operator=Operator.EQUALS, values=("x",)), "team=x"),
        (Requirement(key="team", operator=Operator.NOT_EQUALS, values=("x",)), "team!=x"),
        (Requirement(key="env", operator=Operator.IN, values=("b", "a")), "env in (a,b)"),
        (Requirement(key="env", operator=Operator.NOT_IN, values=("a", "", "a")), "env notin (,a)"),
        (Requirement(key="env", operator=Operator.IN, values=("",)), "env in ()"),
        (Requirement(key="team", operator=Operator.EXISTS), "team"),
        (Requirement(key="legacy", operator=Operator.DOES_NOT_EXIST), "!legacy"),
        (Requirement(key="rank", operator=Operator.GREATER_THAN, values=("2",)), "rank>2"),
        (Requirement(key="rank", operator=Operator.LESS_THAN, values=("2",)), "rank<2"),
    ],
)
def test_requirement_text(requirement: Requirement, text: str) -> None:
    assert str(requirement) == text
    assert parse(text).requirements == (requirement,)


def test_construction_normalises_order() -> None:
    team = Requirement(key="team", operator=Operator.EXISTS)
    env_in = Requirement(key="env", operator=Operator.IN, values=("b", "a", "b"))
    env_not = Requirement(key="env", operator=Operator.NOT_EQUALS, values=("c",))
    assert env_in.values == ("a", "b")
    selector = LabelSelector(requirements=(team, env_in, env_not))
    assert selector.requirements == (env_not, env_in, team)
    assert str(selector) == "env!=c,env in (a,b),team"


def test_values_are_frozen() -> None:
    selector = parse("env=prod")
    with pytest.raises(dataclasses.FrozenInstanceError):
        selector.requirements = ()  # type: ignore[misc]
    assert hash(selector) == hash(parse("env==prod"))


# --- matching ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("env=prod", {"env": "prod"}, True),
        ("env=prod", {"env": "dev"}, False),
        ("env=prod", {}, False),
        ("env=prod", {"Env": "prod"}, False),
        ("env=prod", {"env": "Prod"}, False),
        ("env=", {"env": ""}, True),
        ("env=", {}, False),
        ("env!=prod", {"env": "dev"}, True),
        ("env!=prod", {"env": "prod"}, False),
        ("env!=prod", {}, True),
        ("env in (dev,qa)", {"env": "qa"}, True),
        ("env in (dev,qa)", {"env": "prod"}, False),
        ("env in (dev,qa)", {}, False),
        ("env in ()", {"env": ""}, True),
        ("env in ()", {"env": "x"}, False),
        ("env notin (dev,qa)", {"env": "prod"}, True),
        ("env notin (dev,qa)", {"env": "dev"}, False),
        ("env notin (dev,qa)", {}, True),
        ("team", {"team": ""}, True),
        ("team", {"other": "team"}, False),
        ("!legacy", {}, True),
        ("!legacy", {"legacy": ""}, False),
        ("!legacy", {"legacy": "true"}, False),
        ("rank>5", {"rank": "6"}, True),
        ("rank>5", {"rank": "5"}, False),
        ("rank>5", {}, False),
        ("rank>5", {"rank": "high"}, False),
        ("rank>5", {"rank": ""}, False),
        ("rank>5", {"rank": "007"}, True),
        ("rank>5", {"rank": "+6"}, True),  # Go's strconv.ParseInt takes a sign
        ("rank<5", {"rank": "-6"}, True),
        ("rank<5", {"rank": "--6"}, False),
        ("rank>5", {"rank": "+-6"}, False),
        ("rank>5", {"rank": "++6"}, False),
        ("rank<5", {"rank": "4"}, True),
        ("rank<5", {"rank": "5"}, False),
        ("rank<5", {"rank": "absent-number"}, False),
        ("rank>0", {"rank": "0" * 40 + "1"}, True),
        ("rank>5", {"rank": "9223372036854775807"}, True),
        ("rank>5", {"rank": "9223372036854775808"}, False),  # beyond int64: not an integer to Go
        ("rank<5", {"rank": "-9223372036854775808"}, True),
        ("rank<5", {"rank": "-9223372036854775809"}, False),
        ("rank>5", {"rank": "9" * 5000}, False),
        ("rank>5", {"rank": "1_000"}, False),  # Python's int() would accept these three
        ("rank>5", {"rank": " 7"}, False),
        ("rank>5", {"rank": "\u0667"}, False),
        ("rank>5", {"rank": "6.0"}, False),
        ("env=prod,tier in (web,api),!legacy", {"env": "prod", "tier": "web"}, True),
        ("env=prod,tier in (web,api),!legacy", {"env": "prod", "tier": "web", "legacy": "1"}, False),
        ("env=prod,tier in (web,api),!legacy", {"env": "prod", "tier": "db"}, False),
        ("", {}, True),
    ],
)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    selector = parse(text)
    assert selector.matches(labels) is expected
    assert all(result.matched for result in selector.explain(labels)) is expected


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "fragments"),
    [
        pytest.param(
            "env in (a,b",
            11,
            ['expected ")" at position 11', "found end of string", "close the list"],
            id="unclosed",
        ),
        pytest.param("env in (a,", 10, ['expected a value or ")" at position 10'], id="unclosed-after-comma"),
        pytest.param(
            "env in (a b)", 10, ['expected "," or ")" at position 10', 'found "b"'], id="missing-comma"
        ),
        pytest.param("env in (a,,)", 11, ['even number of ","'], id="two-trailing-commas"),
        pytest.param("env in (,,)", 10, ["expected a value at position 10"], id="two-commas"),
        pytest.param("env in (a=b)", 9, ['found "="'], id="operator-in-list"),
        pytest.param(
            "env in a", 7, ['expected "(" at position 7', 'found "a"', "parentheses"], id="in-no-parens"
        ),
        pytest.param(
            "env notin", 9, ['expected "(" at position 9', "found end of string"], id="notin-nothing"
        ),
        pytest.param("env=(", 4, ["expected a value at position 4", 'found "("'], id="paren-as-value"),
        pytest.param(
            "rank>", 5, ["expected a non-negative 64-bit integer", "end of string"], id="gt-missing"
        ),
        pytest.param("rank<x", 5, ["non-negative 64-bit integer", 'found "x"', '"rank<2"'], id="lt-word"),
        pytest.param("rank>-1", 5, ['found "-1"'], id="gt-negative"),
        pytest.param("rank>1.5", 5, ['found "1.5"'], id="gt-fraction"),
        pytest.param("rank>9223372036854775808", 5, ["64-bit"], id="gt-overflow"),
        pytest.param(
            "rank >= 2", 6, ["expected a value at position 6", 'found "="'], id="no-greater-or-equal"
        ),
        pytest.param(
            "==prod", 0, ['expected a label key or "!" at position 0', 'found "=="'], id="equals-no-key"
        ),
        pytest.param("==", 0, ['found "=="'], id="double-equals-alone"),
        pytest.param(
            "env==prod==x", 9, ['expected "," or end of string at position 9'], id="double-equals-twice"
        ),
        pytest.param(
            "env=prod,", 9, ['a requirement after ","', 'remove the trailing ","'], id="trailing-comma"
        ),
        pytest.param(
            ",env", 0, ['expected a label key or "!" at position 0', 'found ","'], id="leading-comma"
        ),
        pytest.param("a,,b", 2, ["at position 2", 'found ","'], id="double-comma"),
        pytest.param(
            "-env=prod",
            0,
            ["expected a label key at position 0", 'found "-env"', "letter or digit"],
            id="bad-key",
        ),
        pytest.param(
            "Example.com/team", 0, ["prefix must be a lowercase DNS subdomain"], id="uppercase-prefix"
        ),
        pytest.param("a/b/c", 0, ['at most one "/"'], id="two-slashes"),
        pytest.param("/team", 0, ["prefix must be"], id="empty-prefix"),
        pytest.param("example.com/", 0, ["name must not be empty"], id="empty-name"),
        pytest.param("k" * 64, 0, ["64 characters, at most 63"], id="name-too-long"),
        pytest.param("p" * 254 + "/n", 0, ["at most 253"], id="prefix-too-long"),
        pytest.param(
            "env=" + "v" * 64, 4, ["expected a label value at position 4", "64 characters"], id="long-value"
        ),
        pytest.param("env=pr*d", 4, ['found "pr*d"', "only letters, digits"], id="bad-value"),
        pytest.param("env=prod-", 4, ["letter or digit"], id="value-ends-with-dash"),
        pytest.param("env in (a,-b)", 10, ["expected a label value at position 10"], id="bad-value-in-set"),
        pytest.param("env in (a," + "v" * 64 + ")", 10, ["64 characters"], id="long-value-in-set"),
        pytest.param(
            "env=prod extra",
            9,
            ['expected "," or end of string at position 9', 'found "extra"'],
            id="stray-word",
        ),
        pytest.param("env=prod)", 8, ['found ")"'], id="stray-paren"),
        pytest.param("env=prod;tier=web", 4, ['found "prod;tier"'], id="semicolon"),
        pytest.param("env&&tier", 0, ['found "env&&tier"'], id="ampersands"),
        pytest.param("env prod", 4, ["expected an operator", 'found "prod"'], id="missing-operator"),
        pytest.param("env IN (a)", 4, ['found "IN"'], id="keywords-are-lowercase"),
        pytest.param("env ! b", 4, ["expected an operator", 'found "!"'], id="bang-as-operator"),
        pytest.param(
            "!env=prod", 4, ['expected "," or end of string at position 4'], id="negated-with-value"
        ),
        pytest.param("!!env", 1, ["expected a label key at position 1", 'found "!"'], id="double-bang"),
        pytest.param("!", 1, ["expected a label key at position 1", "end of string"], id="bang-alone"),
        pytest.param("env\u00a0=prod", 0, ["expected a label key"], id="no-break-space-is-not-blank"),
        pytest.param("env\v=prod", 0, ["expected a label key"], id="vertical-tab-is-not-blank"),
        pytest.param("\venv", 0, ["expected a label key"], id="leading-vertical-tab"),
        pytest.param(
            "env=\u00a0prod", 4, ["expected a label value at position 4"], id="leading-no-break-space"
        ),
        pytest.param("\x00", 0, ["expected a label key"], id="nul-is-not-end-of-string"),
    ],
)
def test_parse_rejects(text: str, position: int, fragments: list[str]) -> None:
    with pytest.raises(errors.SelectorError) as caught:
        parse(text)
    error = caught.value
    assert error.selector == text
    assert error.position == position
    message = str(error)
    assert message.startswith("bad label selector ")
    if text.isascii() and text.isprintable():
        assert message.startswith(f'bad label selector "{text}": ')
    for fragment in fragments:
        assert fragment in message
    assert message.index("; ") > message.index(f"position {position}")  # a hint follows the problem


def test_error_message_quotes_selector_and_position_exactly() -> None:
    with pytest.raises(errors.SelectorError) as caught:
        parse("env in (a,b")
    assert str(caught.value) == (
        'bad label selector "env in (a,b": expected ")" at position 11, found end of string; '
        'close the list, e.g. "env in (dev,qa)"'
    )


# --- the structured (matchLabels / matchExpressions) form -----------------------------------------------


WHERE = "spec.namespaceSelector"


def test_from_structured_equals_the_text_form() -> None:
    selector = LabelSelector.from_structured(
        {"env": "prod", "example.com/team": ""},
        [
            {"key": "tier", "operator": "In", "values": ["web", "api", "web"]},
            {"key": "stage", "operator": "NotIn", "values": ["", "old"]},
            {"key": "legacy", "operator": "DoesNotExist"},
            {"key": "owner", "operator": "Exists", "values": []},
            {"key": "zone", "operator": "Exists", "values": None},
        ],
        where=WHERE,
    )
    assert selector == parse(
        "env=prod,example.com/team=,tier in (api,web),stage notin (,old),!legacy,owner,zone"
    )


def test_from_structured_empty_matches_everything() -> None:
    selector = LabelSelector.from_structured({}, [], where=WHERE)
    assert selector.matches_everything
    assert selector.matches({"anything": "at-all"})


@pytest.mark.parametrize(
    ("match_labels", "match_expressions", "path", "fragment"),
    [
        ({"Bad Key": "x"}, [], f"{WHERE}.matchLabels[Bad Key]", "label key 'Bad Key' is invalid"),
        ({"env": "v" * 64}, [], f"{WHERE}.matchLabels[env]", "64 characters, at most 63"),
        ({"env": "-x"}, [], f"{WHERE}.matchLabels[env]", "label value '-x' is invalid"),
        ({"version": 1}, [], f"{WHERE}.matchLabels[version]", "label value 1 is invalid (not a string)"),
        (
            {},
            [{"key": "env", "operator": "In", "values": []}],
            f"{WHERE}.matchExpressions[0]",
            "In takes some",
        ),
        (
            {},
            [{"key": "env", "operator": "NotIn"}],
            f"{WHERE}.matchExpressions[0]",
            "NotIn takes some values",
        ),
        (
            {},
            [{"key": "env", "operator": "Exists", "values": ["x"]}],
            f"{WHERE}.matchExpressions[0]",
            "no values",
        ),
        (
            {},
            [{"key": "e", "operator": "DoesNotExist", "values": ["x"]}],
            f"{WHERE}.matchExpressions[0]",
            "no",
        ),
        (
            {},
            [{"key": "env", "operator": "in", "values": ["a"]}],
            f"{WHERE}.matchExpressions[0]",
            "'in' is not In",
        ),
        (
            {},
            [{"key": "env", "operator": "Gt", "values": ["1"]}],
            f"{WHERE}.matchExpressions[0]",
            "'Gt' is not",
        ),
        ({}, [{"key": "env", "values": ["a"]}], f"{WHERE}.matchExpressions[0]", "operator None is not"),
        ({}, ["env"], f"{WHERE}.matchExpressions[0]", "'env' is not a mapping"),
        ({}, [["key", "env"]], f"{WHERE}.matchExpressions[0]", "is not a mapping"),
        (
            {},
            [{"operator": "Exists"}],
            f"{WHERE}.matchExpressions[0]",
            "label key None is not a string",
        ),
        (
            {},
            [{"key": "env", "operator": "In", "values": "web"}],
            f"{WHERE}.matchExpressions[0]",
            "values 'web' are not a list",
        ),
        (
            {},
            [{"key": "env", "operator": "In", "values": [1]}],
            f"{WHERE}.matchExpressions[0]",
            "label value 1 is invalid (not a string)",
        ),
        (
            {},
            [{"key": "env", "operator": "In", "value": ["a"]}],
            f"{WHERE}.matchExpressions[0]",
            "field 'value'",
        ),
        (
            {},
            [{"key": "env", "operator": "Exists"}, {"key": "a/b/c", "operator": "Exists"}],
            f"{WHERE}.matchExpressions[1]",
            'at most one "/"',
        ),
        (
            {},
            [{"key": "env", "operator": "In", "values": ["ok", "not ok"]}],
            f"{WHERE}.matchExpressions[0]",
            "label value 'not ok' is invalid",
        ),
    ],
)
def test_from_structured_rejects(
    match_labels: Mapping[str, object],
    match_expressions: Sequence[Mapping[str, object]],
    path: str,
    fragment: str,
) -> None:
    with pytest.raises(errors.SelectorError) as caught:
        LabelSelector.from_structured(cast("Mapping[str, str]", match_labels), match_expressions, where=WHERE)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert fragment in message
    assert caught.value.selector == path
    assert caught.value.position == 0


# --- explain ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "matched", "reason"),
    [
        ("env in (dev,qa)", {"env": "prod"}, False, 'label env is "prod", not in (dev,qa)'),
        ("env in (dev,qa)", {"env": "dev"}, True, 'label env is "dev", in (dev,qa)'),
        ("env in (dev,qa)", {}, False, "label env is absent"),
        ("env notin (dev,qa)", {"env": "prod"}, True, 'label env is "prod", not in (dev,qa)'),
        ("env notin (dev,qa)", {"env": "qa"}, False, 'label env is "qa", in (dev,qa)'),
        ("env notin (dev,qa)", {}, True, "label env is absent"),
        ("env=prod", {"env": "prod"}, True, 'label env is "prod"'),
        ("env=prod", {"env": "dev"}, False, 'label env is "dev", not "prod"'),
        ("env=", {"env": "dev"}, False, 'label env is "dev", not ""'),
        ("env!=prod", {"env": "prod"}, False, 'label env is "prod"'),
        ("env!=prod", {"env": "dev"}, True, 'label env is "dev", not "prod"'),
        ("team", {}, False, "label team is absent"),
        ("team", {"team": "a"}, True, 'label team is "a"'),
        ("!legacy", {}, True, "label legacy is absent"),
        ("!legacy", {"legacy": "yes"}, False, 'label legacy is "yes"'),
        ("rank>5", {"rank": "7"}, True, 'label rank is "7", greater than 5'),
        ("rank>5", {"rank": "3"}, False, 'label rank is "3", not greater than 5'),
        ("rank<5", {"rank": "3"}, True, 'label rank is "3", less than 5'),
        ("rank<5", {"rank": "x"}, False, 'label rank is "x", not an integer'),
        ("rank<5", {}, False, "label rank is absent"),
        ("env=prod", {"env": 'say "hi"'}, False, 'label env is "say \\"hi\\"", not "prod"'),
    ],
)
def test_explain_reason(text: str, labels: dict[str, str], matched: bool, reason: str) -> None:
    (result,) = parse(text).explain(labels)
    assert result.requirement == parse(text).requirements[0]
    assert result.matched is matched
    assert result.reason == reason


def test_explain_evaluates_every_requirement_in_order() -> None:
    results = parse("team,env=prod,!legacy").explain({"env": "dev", "legacy": "1"})
    assert [(str(r.requirement), r.matched, r.reason) for r in results] == [
        ("env=prod", False, 'label env is "dev", not "prod"'),
        ("!legacy", False, 'label legacy is "1"'),
        ("team", False, "label team is absent"),
    ]


# --- properties ------------------------------------------------------------------------------------------


def _words(first: str, inner: str, max_inner: int) -> st.SearchStrategy[str]:
    """Words of ``first`` characters, optionally with ``inner`` ones between two ``first`` ones."""
    ends = st.sampled_from(first)
    longer = st.builds("{}{}{}".format, ends, st.text(inner, max_size=max_inner), ends)
    return ends | longer


NAMES = _words("abyzABYZ0189", "abyzABYZ0189-_.", 61)
PREFIXES = st.lists(_words("abz019", "abz019-", 8), min_size=1, max_size=4).map(".".join)
KEYS = NAMES | st.builds("{}/{}".format, PREFIXES, NAMES)
VALUES = st.just("") | NAMES


@st.composite
def requirements(draw: st.DrawFn) -> Requirement:
    operator = draw(st.sampled_from(Operator))
    values: tuple[str, ...] = ()
    if operator in (Operator.IN, Operator.NOT_IN):
        values = tuple(draw(st.lists(VALUES, min_size=1, max_size=4)))
    elif operator in (Operator.GREATER_THAN, Operator.LESS_THAN):
        values = (str(draw(st.integers(0, 2**63 - 1))),)
    elif operator in (Operator.EQUALS, Operator.NOT_EQUALS):
        values = (draw(VALUES),)
    return Requirement(key=draw(KEYS), operator=operator, values=values)


@given(st.lists(requirements(), max_size=5))
def test_text_round_trip(found: list[Requirement]) -> None:
    selector = LabelSelector(requirements=tuple(found))
    assert parse(str(selector)) == selector
    assert str(parse(str(selector))) == str(selector)


# A small world of keys and values, so generated requirements and labels often meet.
SMALL_KEYS = st.sampled_from(["env", "tier", "example.com/team", "in", "rank"])
SMALL_VALUES = st.sampled_from(["", "prod", "dev", "in", "notin", "7", "010"])
NUMBERS = st.sampled_from(["0", "5", "7", "10", "0010", "9223372036854775807"])
LABEL_VALUES = (
    SMALL_VALUES
    | NUMBERS
    | st.sampled_from(["-3", "+8", "--3", "+-3", "1_0", " 7", "9223372036854775808", "x y"])
)
BLANKS = st.sampled_from(["", " ", "\t", " \n ", "\r"])
SEPARATORS = st.sampled_from([" ", "\t", "  \n"])
Spec = tuple[str, str, tuple[str, ...]]


@st.composite
def specs(draw: st.DrawFn) -> tuple[Spec, str]:
    """One requirement as plain data, and a text for it written with varied spacing and spelling."""
    key, op = draw(SMALL_KEYS), draw(st.sampled_from(["=", "==", "!=", "in", "notin", "", "!", ">", "<"]))
    blank = draw(BLANKS)
    if op in ("in", "notin"):
        values = draw(st.lists(SMALL_VALUES, min_size=1, max_size=4))
        if "" in values:  # at most one empty value: Kubernetes rejects some runs of empty ones, e.g. "(a,,)"
            values = [v for v in values if v] + [""]
            values.insert(draw(st.integers(0, len(values) - 1)), values.pop())
        listed = f"{blank},{blank}".join(values)
        return (key, op, tuple(values)), f"{key}{draw(SEPARATORS)}{op}{blank}({blank}{listed}{blank})"
    if op == "":
        return (key, op, ()), key
    if op == "!":
        return (key, op, ()), f"!{blank}{key}"
    value = draw(NUMBERS if op in (">", "<") else SMALL_VALUES)
    return (key, op, (value,)), f"{key}{blank}{op}{blank}{value}"


def go_int(text: str) -> int | None:
    """What Go's strconv.ParseInt(text, 10, 64) makes of ``text``."""
    if re.fullmatch(r"[+-]?[0-9]+", text) is None or not -(2**63) <= int(text) < 2**63:
        return None
    return int(text)


def oracle(found: Sequence[Spec], labels: Mapping[str, str]) -> bool:
    """The Kubernetes meaning of each operator, spelled out plainly."""
    for key, op, values in found:
        present = key in labels
        if op in ("=", "=="):
            ok = present and labels[key] == values[0]
        elif op == "!=":
            ok = not present or labels[key] != values[0]
        elif op == "in":
            ok = present and labels[key] in values
        elif op == "notin":
            ok = not present or labels[key] not in values
        elif op == "":
            ok = present
        elif op == "!":
            ok = not present
        else:
            number = go_int(labels[key]) if present else None
            bound = int(values[0])
            ok = number is not None and (number > bound if op == ">" else number < bound)
        if not ok:
            return False
    return True


@given(
    st.lists(specs(), max_size=4),
    st.dictionaries(SMALL_KEYS | st.just("other"), LABEL_VALUES, max_size=5),
    st.sampled_from([",", " ,", ", ", "\t,\n"]),
)
def test_matches_agrees_with_oracle(
    found: list[tuple[Spec, str]], labels: dict[str, str], comma: str
) -> None:
    selector = parse(comma.join(text for _, text in found))
    expected = oracle([spec for spec, _ in found], labels)
    assert selector.matches(labels) is expected
    assert all(result.matched for result in selector.explain(labels)) is expected
    assert parse(str(selector)).matches(labels) is expected


SOUP = st.lists(
    st.sampled_from(
        ["a", "b1", "in", "notin", "=", "==", "!=", "!", "(", ")", ",", "<", ">", " ", "\t", "/", "-", "."]
    )
    | st.sampled_from(["9", "x.io/", "\x00", "\u00e9", "_", "*"]),
    max_size=12,
).map("".join)


@given(st.text() | SOUP)
def test_parse_raises_only_selector_errors(text: str) -> None:
    try:
        selector, failure = parse(text), None
    except errors.SelectorError as error:
        selector, failure = None, error
    if selector is not None:
        assert parse(str(selector)) == selector
    else:
        assert failure is not None
        assert failure.selector == text
        assert 0 <= failure.position <= len(text)
        assert str(failure).startswith("bad label selector ")
