"""YAML nodes to plain data, safely: the one constructor and the one error wording every reader uses.

No I/O. Whatever the input, reading it ends in plain data or a :class:`ManifestError` at
``file:line:column`` that says what is wrong and never quotes the input (a Secret's value may be
right there):

- duplicate keys and list or mapping keys are errors (the API server's strict decoding refuses them);
- a ``!!int``, ``!!float`` or ``!!bool`` tag on a value that is not one is an error naming the tag,
  not the value (PyYAML's own constructors raise exceptions that print it);
- timestamps stay text, as Kubernetes keeps them;
- integers written with more than :data:`MAX_INTEGER_TEXT` characters are errors: Python can neither
  read nor print one of thousands of digits (a CRD schema's ``maximum: 18446744073709551615``, beyond
  64 bits, is fine: the API server reads it as a float);
- aliases may not expand a document past :data:`MAX_EXPANDED_NODES` nodes, nor make it more than
  :data:`MAX_EXPANSION_RATIO` times its written size (a few hundred bytes of nested aliases would
  otherwise expand to gigabytes in whatever walks the data next), and no document may nest deeper
  than :data:`MAX_DEPTH` levels.
"""

from __future__ import annotations

import re
from typing import Any, Final

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cfgsync import errors

MAX_EXPANDED_NODES: Final = 5_000_000
"""The most nodes a document may have once its aliases are expanded."""
MAX_INTEGER_TEXT: Final = 1000
"""The longest an integer may be written; its value then has at most about 1,200 decimal digits, well
within what Python reads and prints (4,300)."""
MAX_DEPTH: Final = 200
"""The deepest a document may nest (a large CRD's schema is a few dozen levels). Deeper documents would
exhaust Python's stack in whatever walks or writes them next."""
MAX_EXPANSION_RATIO: Final = 10
"""Beyond its first 10,000 nodes, a document's aliases may not make it more than this many times larger."""
_FREE_NODES: Final = 10_000
_SHOWN_QUOTE: Final = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_SHORT_TAGS: Final = {"int": "an integer", "float": "a number", "bool": "true or false"}


class _RefusedValueError(ConstructorError):
    """Well-formed YAML, but a value no Kubernetes object holds (its message says the fix)."""


class Constructor(SafeConstructor):
    """PyYAML's safe constructor with the checks above."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A mapping; list or mapping keys and duplicate keys are errors at the key's place."""
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if not isinstance(key_node, ScalarNode):
                raise ConstructorError(
                    None, None, "a key is a list or mapping; keys must be plain strings", key_node.start_mark
                )
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise ConstructorError(
                    None, None, "duplicate key (keys of a mapping must be unique)", key_node.start_mark
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping

    def _typed(self, node: ScalarNode, kind: str) -> Any:
        construct = getattr(super(), f"construct_yaml_{kind}")
        try:
            return construct(node)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError):
            # The libraries' messages quote the value: say what is wrong without it.
            raise _RefusedValueError(
                None,
                None,
                f"a value tagged !!{kind} is not {_SHORT_TAGS[kind]}; remove the tag or fix the value",
                node.start_mark,
            ) from None

    def construct_yaml_int(self, node: ScalarNode) -> Any:
        """An integer, or an error that does not print the value."""
        if len(str(node.value)) > MAX_INTEGER_TEXT:
            raise _RefusedValueError(
                None,
                None,
                f"an integer of more than {MAX_INTEGER_TEXT} digits; quote it to keep it as text",
                node.start_mark,
            )
        return self._typed(node, "int")

    def construct_yaml_float(self, node: ScalarNode) -> Any:
        """A float, or an error that does not print the value."""
        return self._typed(node, "float")

    def construct_yaml_bool(self, node: ScalarNode) -> Any:
        """A boolean, or an error that does not print the value."""
        return self._typed(node, "bool")


# What add_constructor does, written out: its type hints accept loaders only, not a constructor class.
Constructor.yaml_constructors = {
    **SafeConstructor.yaml_constructors,
    "tag:yaml.org,2002:int": Constructor.construct_yaml_int,
    "tag:yaml.org,2002:float": Constructor.construct_yaml_float,
    "tag:yaml.org,2002:bool": Constructor.construct_yaml_bool,
    # Kubernetes keeps dates as strings in ConfigMap data; so does cfgsync (a date stays text).
    "tag:yaml.org,2002:timestamp": SafeConstructor.construct_yaml_str,
}


def _scrub(message: str) -> str:
    """``message`` with every quoted piece of input replaced; token names and tags are kept."""

    def replace(match: re.Match[str]) -> str:
        quoted = match.group(1) if match.group(1) is not None else match.group(2)
        keep = (
            (quoted.startswith("<") and quoted.endswith(">"))
            or quoted.startswith(("tag:", "!"))
            or (len(quoted) <= 2 and not any(c.isalnum() for c in quoted))
        )
        return match.group(0) if keep else "(input not shown)"

    return _SHOWN_QUOTE.sub(replace, message)


def yaml_error(exc: yaml.YAMLError, name: str) -> errors.ManifestError:
    """A :class:`ManifestError` for a YAML error: ``name:line:column``, what is wrong, never the input."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        at = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
        problem = _scrub(str(exc.problem or exc.context or "not valid YAML"))
        if isinstance(exc, _RefusedValueError):
            # Well-formed YAML holding a value no Kubernetes object can: the problem says the fix.
            return errors.ManifestError(f"{at}: {problem}")
        return errors.ManifestError(
            f"{at}: malformed YAML: {problem}; fix the syntax there (indentation, quotes, colons, "
            f"duplicate keys)"
        )
    return errors.ManifestError(f"{name}: malformed YAML ({type(exc).__name__}); fix the file's syntax")


def nesting_error(name: str) -> errors.ManifestError:
    """The error for a document nested deeper than a reader can follow."""
    return errors.ManifestError(
        f"{name}: the YAML is nested too deeply to read; Kubernetes objects are never nested this deep"
    )


def check_expansion(node: Node, name: str) -> None:
    """Raise :class:`ManifestError` when aliases would expand ``node`` too far, or refer to themselves,
    or when it nests deeper than :data:`MAX_DEPTH`."""
    expanded: dict[int, int] = {}
    open_nodes: set[int] = set()
    # Iterative post-order walk: each distinct node is counted once; an alias counts its whole subtree.
    stack: list[tuple[Node, bool, int]] = [(node, False, 0)]
    while stack:
        current, done, depth = stack.pop()
        key = id(current)
        if done:
            open_nodes.discard(key)
            children = _children(current)
            expanded[key] = 1 + sum(expanded[id(child)] for child in children)
            if expanded[key] > MAX_EXPANDED_NODES:
                raise _expansion_error(current, name)
            continue
        if key in expanded:
            continue
        if key in open_nodes:
            raise errors.ManifestError(
                f"{_at(current, name)}: a YAML alias refers to the node that contains it (recursive "
                f"alias); write the value out"
            )
        if depth > MAX_DEPTH:
            raise errors.ManifestError(
                f"{_at(current, name)}: the document nests deeper than {MAX_DEPTH} levels; Kubernetes "
                f"objects never do: flatten it"
            )
        open_nodes.add(key)
        stack.append((current, True, depth))
        children = _children(current)
        child_depth = depth + 1 if isinstance(current, SequenceNode | MappingNode) else depth
        stack.extend((child, False, child_depth) for child in children if id(child) not in expanded)
    if expanded[id(node)] > _FREE_NODES + MAX_EXPANSION_RATIO * len(expanded):
        raise _expansion_error(node, name)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _at(node: Node, name: str) -> str:
    return f"{name}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _expansion_error(node: Node, name: str) -> errors.ManifestError:
    return errors.ManifestError(
        f"{_at(node, name)}: YAML aliases expand this document far beyond its written size (over "
        f"{MAX_EXPANSION_RATIO}x, or {MAX_EXPANDED_NODES} nodes); write the repeated values out or use "
        f"fewer aliases"
    )
