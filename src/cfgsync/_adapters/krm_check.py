"""The KRM function's output read back before it is sent, and written by the YAML emitter when it
does not read back as the input did. No I/O.

The function writes its input items back as slices of the input text (:mod:`krm_text`). YAML has
corners where a slice moved into another place reads differently (a flow pair, an explicit key, a
block scalar at the end of the text, a document marker): each one found was fixed, but a function
that kustomize and kpt trust with a whole build must not depend on none being left. So the output is
parsed again, and every item and top-level field must give the very events the input gave (values,
tags, anchors, structure; not layout or comments). If one does not, the whole list is written again
from the input's events by libyaml's emitter: the same data, tags and anchors; comments and layout
are lost, which is the price of a list that reads back right.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml
from yaml import events as ev
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

_STR: Final = "tag:yaml.org,2002:str"
_WIDTH: Final = 1 << 30  # never fold a long line: libyaml's default folds plain scalars at 80


_OPENS: Final = frozenset({ev.MappingStartEvent, ev.SequenceStartEvent})
_CLOSES: Final = frozenset({ev.MappingEndEvent, ev.SequenceEndEvent})


def signature(event: Any) -> object:
    """What an event means, leaving out where it is and how it was laid out.

    Each kind of event gives a value of its own shape, so no two kinds can give equal values. (A
    list of 10 MB is read back in about a second; this is most of the check's cost beyond libyaml's.)
    """
    kind = type(event)
    if kind is ev.ScalarEvent:
        return (event.anchor, event.tag, event.implicit, event.value)
    if kind in _OPENS:
        return (kind is ev.MappingStartEvent, event.anchor, event.tag)
    if kind is ev.AliasEvent:
        return (event.anchor,)
    return kind is ev.MappingEndEvent


def digest(events: Iterable[Any]) -> int:
    """One number for a node's events (equal events, equal numbers)."""
    return hash(tuple(map(signature, events)))


@dataclass(frozen=True, slots=True)
class Expected:
    """What the written list must read back as."""

    keys: tuple[str, ...]
    """The top-level keys, in order."""
    fields: dict[str, int]
    """The digest of each top-level field's value that is written as it came."""
    items: tuple[int, ...]
    """The digest of each item, in order: the input's written back, then the added objects."""


def reads_back(text: str, expected: Expected) -> bool:
    """True when ``text`` parses to the expected top-level fields and items."""
    parser: Any = yaml.cyaml.CParser(text)  # type: ignore[attr-defined]
    try:
        return _matches(iter(parser.get_event, None), expected)
    except yaml.YAMLError:
        return False
    finally:
        parser.dispose()


def _events(text: str) -> Generator[Any, None, None]:
    parser: Any = yaml.cyaml.CParser(text)  # type: ignore[attr-defined]
    try:
        while True:
            event = parser.get_event()
            if event is None:
                return
            yield event
    finally:
        parser.dispose()


def node_events(first: Any, events: Iterator[Any]) -> list[Any]:
    """``first`` and the rest of its node's events."""
    node = [first]
    depth = 1 if type(first) in _OPENS else 0
    while depth:
        event = next(events)
        node.append(event)
        kind = type(event)
        if kind in _OPENS:
            depth += 1
        elif kind in _CLOSES:
            depth -= 1
    return node


def _matches(events: Iterator[Any], expected: Expected) -> bool:
    prefix = [next(events, None) for _ in range(3)]
    if not isinstance(prefix[2], ev.MappingStartEvent) or prefix[2].tag is not None:
        return False
    keys: list[str] = []
    for key in events:
        if isinstance(key, ev.MappingEndEvent):
            break
        if not isinstance(key, ev.ScalarEvent):
            return False
        keys.append(key.value)
        value = next(events)
        if key.value == "items":
            if not _items_match(value, events, expected):
                return False
        elif key.value in expected.fields:
            if digest(node_events(value, events)) != expected.fields[key.value]:
                return False
        else:
            node_events(value, events)
    rest = [type(event) for event in events]
    return tuple(keys) == expected.keys and rest == [ev.DocumentEndEvent, ev.StreamEndEvent]


def _items_match(first: Any, events: Iterator[Any], expected: Expected) -> bool:
    if not isinstance(first, ev.SequenceStartEvent) or first.tag is not None:
        return False
    wanted = expected.items
    for index, event in enumerate(events):
        if isinstance(event, ev.SequenceEndEvent):
            return index == len(wanted)
        if index >= len(wanted) or digest(node_events(event, events)) != wanted[index]:
            return False
    return False


@dataclass(frozen=True, slots=True)
class Parts:
    """What the emitter writes: the input, and what goes out of it."""

    text: str
    """The input ResourceList."""
    kept: Sequence[int]
    """The positions (in the input) of the items that go out, in order."""
    added: Sequence[str]
    """Each added object (a copy) as a YAML document."""
    results: Sequence[str]
    """Each result as a YAML document."""


def document_digest(document: str) -> int:
    """The digest of a YAML document's one node (an object the function adds, as written)."""
    return digest(_node_of(document))


def _node_of(document: str) -> list[Any]:
    """The events of a YAML document's node, without the stream's and document's."""
    events = _events(document)
    try:
        return [e for e in events if not isinstance(e, _FRAME)]
    finally:
        events.close()


def emit_node(events: Sequence[Any]) -> str:
    """One node's events as a YAML document, written by libyaml's emitter."""
    frame = [ev.StreamStartEvent(), ev.DocumentStartEvent(explicit=False)]
    end = [ev.DocumentEndEvent(explicit=False), ev.StreamEndEvent()]
    return _emitted([*frame, *events, *end])


def emit(parts: Parts) -> str:
    """The ResourceList written by libyaml's emitter from the input's events (see the module)."""
    out: list[Any] = [ev.StreamStartEvent(), ev.DocumentStartEvent(explicit=False)]
    events = _events(parts.text)
    try:
        for _ in range(3):  # stream, document and the top-level mapping start
            top = next(events)
        out.append(ev.MappingStartEvent(anchor=top.anchor, tag=top.tag, implicit=top.implicit))
        wrote_items = False
        for key in events:
            if isinstance(key, ev.MappingEndEvent):
                break
            value = node_events(next(events), events)
            if key.value == "results":
                continue
            out.append(key)
            if key.value == "items":
                out.extend(_item_events(value, parts))
                wrote_items = True
            else:
                out.extend(value)
    finally:
        events.close()
    if not wrote_items:
        out.append(_plain("items"))
        out.extend(_item_events([], parts))
    if parts.results:
        out.append(_plain("results"))
        out.extend(_sequence(parts.results))
    out += [ev.MappingEndEvent(), ev.DocumentEndEvent(explicit=False), ev.StreamEndEvent()]
    return _emitted(out)


def _emitted(events: Iterable[Any]) -> str:
    resolver = Resolver()
    return str(
        yaml.emit(
            (_explicit(event, resolver) for event in events),
            Dumper=yaml.CSafeDumper,
            width=_WIDTH,
            allow_unicode=True,
        )
    )


def _item_events(value: list[Any], parts: Parts) -> list[Any]:
    """The items sequence: the kept input items (from ``value``, the input's), then the added ones."""
    items: list[list[Any]] = []
    if value and isinstance(value[0], ev.SequenceStartEvent):
        rest = iter(value[1:-1])
        items = [node_events(event, rest) for event in rest]
    out: list[Any] = [ev.SequenceStartEvent(anchor=None, tag=None, implicit=True, flow_style=False)]
    for index in parts.kept:
        out.extend(items[index])
    out.extend(_sequence(parts.added)[1:-1])
    out.append(ev.SequenceEndEvent())
    return out


def _sequence(documents: Sequence[str]) -> list[Any]:
    """A block sequence of the given YAML documents' nodes."""
    out: list[Any] = [ev.SequenceStartEvent(anchor=None, tag=None, implicit=True, flow_style=False)]
    for document in documents:
        out.extend(_node_of(document))
    out.append(ev.SequenceEndEvent())
    return out


_FRAME: Final = (ev.StreamStartEvent, ev.StreamEndEvent, ev.DocumentStartEvent, ev.DocumentEndEvent)


def _plain(value: str) -> Any:
    return ev.ScalarEvent(anchor=None, tag=None, implicit=(True, False), value=value)


def _explicit(event: Any, resolver: Resolver) -> Any:
    """``event`` with the tag it resolves to written out, where a reader could otherwise read it another way.

    A scalar without a tag, or with the non-specific ``!``, is resolved as the function's reader
    resolves it (``! 8080`` is a number, as in PyYAML and kustomize). libyaml's emitter may then write
    it in another style than it came in (a plain scalar that cannot be plain there, like an empty
    value in a flow mapping), and would write ``!`` before a quoted one, which readers take for a
    string. So a value that does not resolve to a string is left untagged only when it is written
    plain wherever it stands; else its tag (``!!null ''``) is written with it.
    """
    if not isinstance(event, ev.ScalarEvent) or event.tag not in (None, "!"):
        return event
    tag = resolver.resolve(ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
    style = event.style
    if tag == _STR:
        implicit = (tag == resolver.resolve(ScalarNode, event.value, (True, False)), True)  # type: ignore[no-untyped-call]
    elif _ALWAYS_PLAIN.fullmatch(event.value):
        implicit, style = (True, False), None  # `! "12"` is the number 12: written plain, 12
    else:
        implicit = (False, False)
    return ev.ScalarEvent(anchor=event.anchor, tag=tag, implicit=implicit, value=event.value, style=style)


_ALWAYS_PLAIN: Final = re.compile(r"~|[-+.]{0,2}[A-Za-z0-9_][A-Za-z0-9_.+-]*")
"""Text libyaml's emitter writes plain in any place: numbers, booleans, ``null``."""
