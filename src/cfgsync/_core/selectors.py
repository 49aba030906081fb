"""Kubernetes label selectors: parse them, match label maps against them, explain the outcome.

Pure: no I/O. The string grammar and its meaning are those of ``labels.Parse`` in k8s.io/apimachinery,
which kubed used for the ``kubed.appscode.com/sync`` annotation; cfgsync must pick the same namespaces.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, NoReturn

from cfgsync import errors

__all__ = ["LabelSelector", "Operator", "Requirement", "RequirementResult"]

_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# Kubernetes takes exactly these four blanks; any other character is part of a word. Unlike Go's lexer,
# which stops at a NUL byte (so "\x00x" would select everything), a NUL here is just an invalid character.
_TOKEN = re.compile(r"[ \t\r\n]*(?:(?P<symbol>!=|==|[=!(),<>])|(?P<word>[^ \t\r\n=!(),<>]+))")
_INT64_LIMIT = 2**63
_KEY_HINT = 'label keys look like "team" or "example.com/team"'
_VALUE_HINT = 'label values look like "prod" or "web-1", or are empty'
_NEXT_HINT = 'separate requirements with ",", e.g. "env=prod,tier in (web,api)"'
_START_HINT = 'a requirement looks like "env=prod", "env in (dev,qa)", "team" or "!legacy"'


class Operator(enum.Enum):
    """How a requirement relates a label to its values; the value is the operator's Kubernetes name."""

    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = ">"
    LESS_THAN = "<"


_RANK = {operator: rank for rank, operator in enumerate(Operator)}
_TRUE_WHEN_ABSENT = frozenset({Operator.NOT_EQUALS, Operator.NOT_IN, Operator.DOES_NOT_EXIST})
_SETS = frozenset({Operator.IN, Operator.NOT_IN})
_NUMERIC = frozenset({Operator.GREATER_THAN, Operator.LESS_THAN})
_BY_TOKEN = {"=": Operator.EQUALS, "==": Operator.EQUALS, "!=": Operator.NOT_EQUALS, "in": Operator.IN}
_BY_TOKEN |= {"notin": Operator.NOT_IN, ">": Operator.GREATER_THAN, "<": Operator.LESS_THAN}
_STRUCTURED = {"In": Operator.IN, "NotIn": Operator.NOT_IN, "Exists": Operator.EXISTS}
_STRUCTURED |= {"DoesNotExist": Operator.DOES_NOT_EXIST}
_STRUCTURED_NAME = {operator: name for name, operator in _STRUCTURED.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    """One condition on one label; a selector matches a label map when all its requirements do.

    Build requirements with :meth:`LabelSelector.parse` or :meth:`LabelSelector.from_structured`,
    which validate them; constructing one directly only sorts and de-duplicates its values.
    """

    key: str
    """The label key, e.g. ``team`` or ``example.com/team``."""
    operator: Operator
    """How the label's value is compared with :attr:`values`."""
    values: tuple[str, ...] = ()
    """The values compared with; sorted and de-duplicated on construction, empty for (does not) exist."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(sorted(set(self.values))))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy the requirement; ``!=`` and ``notin`` also hold for an absent key."""
        operator = self.operator
        value = labels.get(self.key)
        if value is None:
            return operator in _TRUE_WHEN_ABSENT
        if operator is Operator.EQUALS or operator is Operator.IN:
            return value in self.values
        if operator is Operator.NOT_EQUALS or operator is Operator.NOT_IN:
            return value not in self.values
        if operator is Operator.EXISTS or operator is Operator.DOES_NOT_EXIST:
            return operator is Operator.EXISTS
        number, bound = _int64(value), _int64(self.values[0]) if len(self.values) == 1 else None
        if number is None or bound is None:
            return False
        return number > bound if operator is Operator.GREATER_THAN else number < bound

    def __str__(self) -> str:
        """The canonical text, e.g. ``env in (a,b)``, ``!legacy`` or ``team=x``."""
        if self.operator is Operator.EXISTS:
            return self.key
        if self.operator is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if self.operator in _SETS:
            return f"{self.key} {self.operator.value} ({','.join(self.values)})"
        return f"{self.key}{self.operator.value}{','.join(self.values)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequirementResult:
    """How one requirement fared against one label map (for ``cfgsync explain``)."""

    requirement: Requirement
    """The requirement evaluated."""
    matched: bool
    """Whether the label map satisfied it."""
    reason: str
    """Why, in words, e.g. ``label env is "prod", not in (dev,qa)`` or ``label team is absent``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelSelector:
    """A conjunction of requirements; with none it matches every label map."""

    requirements: tuple[Requirement, ...] = ()
    """The requirements, put in canonical order (key, then operator, then values) on construction."""

    def __post_init__(self) -> None:
        ordered = sorted(self.requirements, key=lambda r: (r.key, _RANK[r.operator], r.values))
        object.__setattr__(self, "requirements", tuple(ordered))

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse selector text such as ``env in (dev,qa),!legacy``; raise :class:`SelectorError` if bad."""
        return cls(requirements=_Parser(text).selector())

    @classmethod
    def from_structured(
        cls,
        match_labels: Mapping[str, str],
        match_expressions: Sequence[Mapping[str, object]],
        *,
        where: str,
    ) -> LabelSelector:
        """Build a selector from the ``matchLabels``/``matchExpressions`` form of a ``SyncRule``.

        Errors start with ``where`` and name the bad field; as there is no selector text, their
        ``selector`` is that field's path and their ``position`` is 0.
        """
        found = [
            _checked(f"{where}.matchLabels[{k}]", k, Operator.EQUALS, [v]) for k, v in match_labels.items()
        ]
        for index, item in enumerate(match_expressions):
            path = f"{where}.matchExpressions[{index}]"
            if not isinstance(item, Mapping):
                raise _structured_error(path, f"{item!r} is not a mapping of key, operator and values")
            operator = _STRUCTURED.get(str(item.get("operator")))
            if unknown := sorted(set(item) - {"key", "operator", "values"}):
                raise _structured_error(
                    path, f"unknown field {unknown[0]!r}; the fields are key, operator, values"
                )
            if operator is None:
                raise _structured_error(
                    path, f"operator {item.get('operator')!r} is not {', '.join(_STRUCTURED)}"
                )
            found.append(_checked(path, item.get("key"), operator, item.get("values") or []))
        return cls(requirements=tuple(found))

    @property
    def matches_everything(self) -> bool:
        """Whether the selector has no requirements, so every label map (even an empty one) matches."""
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy every requirement."""
        for requirement in self.requirements:  # noqa: SIM110 - a loop is twice as fast as all() on a genexpr
            if not requirement.matches(labels):
                return False
        return True

    def explain(self, labels: Mapping[str, str]) -> tuple[RequirementResult, ...]:
        """Evaluate every requirement (without stopping at the first failure) and say why each fared so."""
        return tuple(_explain(requirement, labels) for requirement in self.requirements)

    def __str__(self) -> str:
        """The canonical selector text; ``LabelSelector.parse(str(selector)) == selector``."""
        return ",".join(str(requirement) for requirement in self.requirements)


def _int64(text: str) -> int | None:
    """Read ``text`` as Go's ``strconv.ParseInt(text, 10, 64)`` would, or return None."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits.lstrip("0")) > 19:
        return None
    number = int(text)
    return number if -_INT64_LIMIT <= number < _INT64_LIMIT else None


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _key_problem(key: str) -> str | None:
    """Say why ``key`` is not a label key (``[prefix/]name``), or return None if it is one."""
    prefix, slash, name = key.rpartition("/")
    if "/" in prefix:
        return 'a key has at most one "/"'
    if slash and not (len(prefix) <= 253 and _DNS_SUBDOMAIN.fullmatch(prefix)):
        return "the prefix must be a lowercase DNS subdomain of at most 253 characters"
    return _value_problem(name) if name else "the name must not be empty"


def _value_problem(value: str) -> str | None:
    """Say why ``value`` is not a label value, or return None if it is one (the empty value is one)."""
    if len(value) > 63:
        return f"{len(value)} characters, at most 63 allowed"
    if value and not _NAME.fullmatch(value):
        return "only letters, digits, -, _ and . are allowed, starting and ending with a letter or digit"
    return None


def _explain(requirement: Requirement, labels: Mapping[str, str]) -> RequirementResult:
    matched = requirement.matches(labels)
    value, operator, values = labels.get(requirement.key), requirement.operator, requirement.values
    reason = f"label {requirement.key} is absent"
    if value is not None:
        reason = f"label {requirement.key} is {_quote(value)}"
        if operator in _SETS:
            reason += f", {'' if value in values else 'not '}in ({','.join(values)})"
        elif operator in _NUMERIC and _int64(value) is None:
            reason += ", not an integer"
        elif operator in _NUMERIC:
            comparison = "greater" if operator is Operator.GREATER_THAN else "less"
            reason += f", {'' if matched else 'not '}{comparison} than {','.join(values)}"
        elif operator in (Operator.EQUALS, Operator.NOT_EQUALS) and value not in values:
            reason += f", not {_quote(','.join(values))}"
    return RequirementResult(requirement=requirement, matched=matched, reason=reason)


def _structured_error(path: str, problem: str) -> errors.SelectorError:
    return errors.SelectorError(f"{path}: {problem}", selector=path, position=0)


def _checked(path: str, key: object, operator: Operator, values: object) -> Requirement:
    """Validate one requirement of the structured form; ``path`` names it in errors."""
    if not isinstance(key, str):
        raise _structured_error(path, f"label key {key!r} is not a string")
    if not isinstance(values, list | tuple):
        raise _structured_error(path, f"values {values!r} are not a list")
    if why := _key_problem(key):
        raise _structured_error(path, f"label key {key!r} is invalid ({why}); {_KEY_HINT}")
    if (operator in _SETS or operator is Operator.EQUALS) != bool(values):
        need = "some" if operator in _SETS else "no"
        raise _structured_error(path, f"{_STRUCTURED_NAME[operator]} takes {need} values")
    for value in values:
        if why := _value_problem(value) if isinstance(value, str) else "not a string":
            raise _structured_error(path, f"label value {value!r} is invalid ({why}); {_VALUE_HINT}")
    return Requirement(key=key, operator=operator, values=tuple(values))


class _Token(NamedTuple):
    kind: str
    """``word``, ``end``, or the symbol itself: ``=`` ``==`` ``!=`` ``!`` ``(`` ``)`` ``,`` ``<`` ``>``."""
    text: str
    position: int


def _tokenize(text: str) -> list[_Token]:
    """Split ``text`` into words and symbols (blanks only separate them) and end it with an ``end``."""
    tokens = []
    for match in _TOKEN.finditer(text):
        symbol, word = match.group("symbol", "word")
        tokens.append(_Token(symbol or "word", symbol or word, match.start("symbol" if symbol else "word")))
    return [*tokens, _Token("end", "", len(text))]


class _Parser:
    """Recursive descent over the tokens of one selector; each method reads one part of the grammar."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def fail(self, token: _Token, expected: str, hint: str, why: str | None = None) -> NoReturn:
        found = "end of string" if token.kind == "end" else _quote(token.text)
        found += f" ({why})" if why else ""
        message = f"bad label selector {_quote(self.text)}: expected {expected} at position {token.position}"
        raise errors.SelectorError(
            f"{message}, found {found}; {hint}", selector=self.text, position=token.position
        )

    def selector(self) -> tuple[Requirement, ...]:
        if self.peek().kind == "end":
            return ()
        found = [self.requirement()]
        while (token := self.take()).kind != "end":
            if token.kind != ",":
                self.fail(token, '"," or end of string', _NEXT_HINT)
            if self.peek().kind == "end":
                self.fail(self.peek(), 'a requirement after ","', f'remove the trailing ","; {_NEXT_HINT}')
            found.append(self.requirement())
        return tuple(found)

    def requirement(self) -> Requirement:
        token = self.take()
        negated = token.kind == "!"
        if negated:
            token = self.take()
        if token.kind != "word":
            self.fail(token, "a label key" if negated else 'a label key or "!"', _START_HINT)
        if why := _key_problem(key := token.text):
            self.fail(token, "a label key", _KEY_HINT, why)
        if negated or self.peek().kind in (",", "end"):
            return Requirement(key=key, operator=Operator.DOES_NOT_EXIST if negated else Operator.EXISTS)
        token = self.take()
        operator = _BY_TOKEN.get(token.text)
        if operator is None:
            hint = f'e.g. "{key}=prod" or "{key} in (dev,qa)"'
            self.fail(token, "an operator: =, ==, !=, in, notin, > or <", hint)
        values = self.value_set(key) if operator in _SETS else (self.exact_value(key, operator),)
        return Requirement(key=key, operator=operator, values=values)

    def exact_value(self, key: str, operator: Operator) -> str:
        token = self.peek()
        if token.kind == "word":
            self.take()
        elif token.kind not in (",", "end"):  # "key=" compares with the empty value
            self.fail(
                token, "a value", f'e.g. "{key}{operator.value}prod", or "{key}{operator.value}" for ""'
            )
        text = token.text if token.kind == "word" else ""
        if operator not in _NUMERIC and (why := _value_problem(text)):
            self.fail(token, "a label value", _VALUE_HINT, why)
        if operator in _NUMERIC and not (
            len(text) <= 63 and text.isascii() and text.isdigit() and int(text) < _INT64_LIMIT
        ):
            self.fail(token, "a non-negative 64-bit integer", f'e.g. "{key}{operator.value}2"')
        return text

    def value_set(self, key: str) -> tuple[str, ...]:
        example = f'e.g. "{key} in (dev,qa)"'
        if (token := self.take()).kind != "(":
            self.fail(token, '"("', f"put the values in parentheses, {example}")
        values: list[str] = []
        awaiting, commas = True, 0  # whether a value may come next; how many "," in a row just came
        while True:
            token = self.take()
            if token.kind == "word" and awaiting:
                if why := _value_problem(token.text):
                    self.fail(token, "a label value", _VALUE_HINT, why)
                values.append(token.text)
                awaiting, commas = False, 0
            elif token.kind == ",":
                if awaiting:  # an empty value, as in "(,a)" and "(a,,b)"
                    values.append("")
                awaiting, commas = True, commas + 1
            elif token.kind == ")" and commas % 2 == 0 and commas:
                # apimachinery's list reader takes commas in pairs and so rejects "(a,,)" but not "(a,)".
                self.fail(token, "a value", 'Kubernetes rejects an even number of "," before ")"')
            elif token.kind == ")":
                if awaiting:  # "()" and "(a,)" hold the empty value
                    values.append("")
                return tuple(values)
            elif token.kind == "end":
                self.fail(token, 'a value or ")"' if awaiting else '")"', f"close the list, {example}")
            else:
                self.fail(token, 'a value, "," or ")"' if awaiting else '"," or ")"', example)
