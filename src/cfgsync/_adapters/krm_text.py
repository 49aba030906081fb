"""A ResourceList read fast and written back with its items exactly as they came. No I/O.

libyaml's event parser reads the whole list in C. Only what cfgsync plans with is built into Python
data: Namespaces, ConfigMaps, Secrets, SyncRules, items that use aliases, and the functionConfig,
with the constructor every reader uses (:mod:`cfgsync._adapters.yaml_nodes`). Every other item is
only located: its kind, namespace and place in the text. Written back, an item is the very text it
came as (quotes, comments, key order), only re-indented; so the function costs little more than
the parse, where building and dumping a round-trip tree of every item cost tens of seconds on a
10 MB list (docs/performance.md). The list written is read back before it is sent (:mod:`krm_check`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml
from yaml import events as ev
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from cfgsync import errors
from cfgsync._adapters import krm_check, output, yaml_nodes

NAME: Final = "<stdin>"
"""How messages name the ResourceList."""
PLANNED_KINDS: Final = frozenset({"Namespace", "ConfigMap", "Secret", "SyncRule"})
"""Kinds whose items are built into data: the planner reads them."""
_Parser: Any = yaml.cyaml.CParser if yaml.__with_libyaml__ else None  # type: ignore[attr-defined]


@dataclass(slots=True)
class Item:
    """One item of the list: where its text is, and its data when cfgsync needs it."""

    start: int
    """Offset of its first character in the text."""
    end: int
    """Offset just past it."""
    column: int
    """Column of its first character (block items are re-indented from it)."""
    flow: bool
    """Written in flow style (``{...}``, e.g. JSON)."""
    line: int
    """1-based line where it starts."""
    position: int
    """Its place in the list (0 for the first item)."""
    digest: int = 0
    """What its events mean (:func:`krm_check.digest`): the written list must read it back the same."""
    kind: str | None = None
    """Its ``kind``, when a plain string."""
    api_version: str | None = None
    """Its ``apiVersion``, when a plain string."""
    namespace: str | None = None
    """Its ``metadata.namespace``, when a plain string."""
    body: dict[str, Any] | None = None
    """The item as data, for the kinds cfgsync plans with (and items using aliases); else None."""
    ends_in_block_scalar: bool = False
    """Its last value is a block scalar (``|``, ``>``), whose trailing blank lines may be its own."""
    events: list[Any] | None = None
    """Its events, when its text cannot be reused: it ends the input inside a block scalar without a
    final line break (another line after it would change that value), so it is written from them."""


@dataclass(slots=True)
class ResourceListText:
    """A parsed ResourceList: the text, where its top-level fields are, its items and functionConfig."""

    text: str
    """The whole input."""
    header: str
    """Everything before the top-level mapping (comments, ``---``, directives)."""
    flow: bool
    """The top-level mapping is in flow style (JSON)."""
    column: int = 0
    """The column of the top-level mapping's first key (a block mapping is written from column 0)."""
    fields: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    """Each top-level field: its key, key start, value start, value end, and where the next field starts."""
    values: dict[str, object] = field(default_factory=dict)
    """Plain values of the small top-level fields (``apiVersion``, ``kind``, ``functionConfig``)."""
    digests: dict[str, int] = field(default_factory=dict)
    """What each of those fields' events mean (:func:`krm_check.digest`)."""
    items: list[Item] = field(default_factory=list)
    """The items, in order."""


def parse(text: str) -> ResourceListText:
    """Read a ResourceList; raise :class:`ManifestError` at ``<stdin>:line:column``, never quoting input."""
    if _Parser is None:  # pragma: no cover - PyYAML wheels bundle libyaml
        raise errors.ManifestError("the KRM function needs PyYAML built with libyaml (its wheels are)")
    parser = _Parser(text)
    try:
        return _Reader(parser, text).read()
    except yaml.YAMLError as exc:
        raise yaml_nodes.yaml_error(exc, NAME) from None
    except RecursionError:
        raise yaml_nodes.nesting_error(NAME) from None
    finally:
        parser.dispose()


def _start(event: Any) -> Any:
    """Where an event or node starts (libyaml's marks are typed loosely)."""
    return event.start_mark


def _end(event: Any) -> Any:
    """Where an event or node ends."""
    return event.end_mark


def _at(mark: Any) -> str:
    return f"{NAME}:{mark.line + 1}:{mark.column + 1}"


class _Reader:
    """Walks the event stream once."""

    def __init__(self, parser: Any, text: str) -> None:
        self.parser = parser
        self.text = text
        self.resolver = Resolver()
        self.constructor = yaml_nodes.Constructor()

    def next(self) -> Any:
        return self.parser.get_event()

    def read(self) -> ResourceListText:
        self.next()  # stream start
        start = self.next()
        if isinstance(start, ev.StreamEndEvent):
            raise _no_list("stdin is empty")
        top = self.next()
        if not isinstance(top, ev.MappingStartEvent):
            raise _no_list("stdin holds no ResourceList (its document is not a mapping)")
        if top.tag not in (None, "!", _MAP):
            raise errors.ManifestError(
                f"{_at(_start(top))}: the ResourceList is tagged {top.tag[:40]!r}; it must be a plain "
                f"mapping, so remove the tag"
            )
        flow = bool(top.flow_style)
        column = _start(top).column
        header = self.text[: _start(top).index]
        # The fields go out in block style from column 0: the text before the mapping on its own line
        # (indentation, or a `---` that a block mapping may not follow) ends there.
        line = header.rfind("\n") + 1
        header = header[:line] if not header[line:].strip() else header.rstrip(" \t") + "\n"
        result = ResourceListText(text=self.text, header=header, flow=flow, column=0 if flow else column)
        floor = _start(top).index
        seen: set[str] = set()
        while True:
            key = self.next()
            if isinstance(key, ev.MappingEndEvent):
                end = _end(key).index
                break
            if not isinstance(key, ev.ScalarEvent):
                raise errors.ManifestError(f"{_at(_start(key))}: a ResourceList's keys are plain strings")
            if key.value in seen:
                raise errors.ManifestError(f"{_at(_start(key))}: duplicate key {key.value[:40]!r}")
            seen.add(key.value)
            value = self.next()
            if key.value == "items":
                value_end = self._items(value, result)
            else:
                events = krm_check.node_events(value, iter(self.next, None))
                result.digests[key.value] = krm_check.digest(events)
                node = _compose(iter(events), self.resolver, {}, where="a top-level field")
                yaml_nodes.check_expansion(node, NAME)
                result.values[key.value] = self.constructor.construct_document(node)
                value_end = _end(node).index
            key_at = _start(key).index if flow else self._entry_start(_start(key).index, column, floor)
            result.fields.append((key.value, key_at, _start(value).index, value_end, -1))
            floor = value_end
        self.next()  # document end
        if not isinstance(self.next(), ev.StreamEndEvent):
            raise _no_list("stdin holds more than one YAML document; a function gets one ResourceList")
        # Each field ends where the next begins (so comments between fields stay with them).
        fields = result.fields
        for index, (name, key_start, value_start, value_end, _) in enumerate(fields):
            stop = fields[index + 1][1] if index + 1 < len(fields) else end
            fields[index] = (name, key_start, value_start, value_end, stop)
        return result

    def _entry_start(self, key_at: int, column: int, floor: int) -> int:
        """Where a block mapping's entry starts: its key, or the ``?`` of an explicit key before it.

        The ``?`` stands on the key's line or alone on a line above it (blank and comment lines between),
        at the mapping's ``column``, after ``floor`` (where the previous entry's value ends): a line
        holding only ``?`` there can be nothing else."""
        text = self.text
        line = text.rfind("\n", 0, key_at) + 1
        before = text[line:key_at]
        if before.strip() == "?":
            return line + before.index("?")
        while not before.strip() and line > floor:
            line = text.rfind("\n", 0, line - 1) + 1
            if line < floor:
                break
            before = text[line : text.index("\n", line)]
            indicator = before[column : column + 1]
            if indicator == "?" and not before[:column].strip():
                after = before[column + 1 :].strip()
                if not after or (after.startswith("#") and before[column + 1] in " \t"):
                    return line + column
            if before.lstrip(" \t").startswith("#"):
                before = ""
        return key_at

    def _items(self, start: Any, result: ResourceListText) -> int:
        """Read the items; return where the list ends."""
        if (
            isinstance(start, ev.ScalarEvent)
            and start.value in {"", "null", "~"}
            and not start.style
            and start.tag in (None, _NULL)
        ):
            return int(_end(start).index)
        if not isinstance(start, ev.SequenceStartEvent) or start.tag not in (None, "!", _SEQ):
            # A tag (`!!omap`, `!!pairs`) would make the list another value than a list of objects.
            raise errors.ManifestError(f"{_at(_start(start))}: items must be a plain list of objects")
        index = 0
        while True:
            first = self.next()
            if isinstance(first, ev.SequenceEndEvent):
                return int(_end(first).index)
            if not isinstance(first, ev.MappingStartEvent):
                what = "list" if isinstance(first, ev.SequenceStartEvent) else "value"
                raise errors.ManifestError(
                    f"{_at(_start(first))}: items[{index}] is a {what}, not an object; every item of a "
                    f"ResourceList must be a Kubernetes object"
                )
            result.items.append(self._item(first, index))
            index += 1

    def _item(self, first: Any, index: int) -> Item:
        """Read one item's events; build its data only when cfgsync plans with it."""
        item = Item(
            start=_start(first).index,
            end=0,
            column=_start(first).column,
            flow=bool(first.flow_style),
            line=_start(first).line + 1,
            position=index,
        )
        scan = _ItemScan(item=item, index=index, recorded=[first])
        while scan.keys:
            scan.see(self.next())
        text = self.text
        item.ends_in_block_scalar = scan.last_style in {"|", ">"}
        if item.ends_in_block_scalar and not text[item.start : item.end].endswith("\n"):
            item.events = scan.recorded
        item.digest = krm_check.digest(scan.recorded)
        if scan.aliased or item.kind in PLANNED_KINDS:
            node = _compose(iter(scan.recorded), self.resolver, {}, where=f"items[{index}]")
            yaml_nodes.check_expansion(node, NAME)
            item.body = self.constructor.construct_document(node)
        return item


@dataclass(slots=True)
class _ItemScan:
    """One pass over an item's events: nesting, duplicate keys per mapping, the fields that locate it."""

    item: Item
    index: int
    recorded: list[Any]
    keys: list[set[str] | None] = field(default_factory=lambda: [set()])
    """Per open collection: the keys seen so far (a mapping), or None (a sequence)."""
    expecting_key: list[bool] = field(default_factory=lambda: [True])
    path: list[str | None] = field(default_factory=lambda: [None])
    """The key each open mapping is at."""
    aliased: bool = False
    last_style: str | None = None
    """The style of the last scalar seen (``|`` and ``>`` are block scalars)."""

    def see(self, event: Any) -> None:
        self.recorded.append(event)
        keys = self.keys[-1]
        is_key = keys is not None and self.expecting_key[-1]
        if isinstance(event, ev.MappingStartEvent | ev.SequenceStartEvent):
            if is_key:
                raise self._fail(event, "a key is a list or mapping; keys must be plain strings")
            self.keys.append(set() if isinstance(event, ev.MappingStartEvent) else None)
            self.expecting_key.append(True)
            self.path.append(None)
            return
        if isinstance(event, ev.MappingEndEvent | ev.SequenceEndEvent):
            self.keys.pop()
            self.expecting_key.pop()
            self.path.pop()
            if not self.keys:
                self.item.end = _end(event).index
                return
        elif isinstance(event, ev.ScalarEvent):
            self.last_style = event.style
            if is_key:
                assert keys is not None
                if event.value in keys:
                    raise self._fail(
                        event, "malformed YAML: duplicate key (keys of a mapping must be unique)"
                    )
                keys.add(event.value)
                self.path[-1] = event.value
            else:
                self._note(event.value)
        elif isinstance(event, ev.AliasEvent):
            self.aliased = True
            if is_key:
                raise self._fail(event, "an alias is a key; keys must be plain strings")
        if self.keys[-1] is not None:
            self.expecting_key[-1] = not self.expecting_key[-1]

    def _note(self, value: str) -> None:
        """Remember the item's kind, apiVersion and namespace as their values go by."""
        path = self.path
        if len(path) == 1:
            if path[0] == "kind":
                self.item.kind = value
            elif path[0] == "apiVersion":
                self.item.api_version = value
        elif len(path) == 2 and path[0] == "metadata" and path[1] == "namespace":
            self.item.namespace = value

    def _fail(self, event: Any, what: str) -> errors.ManifestError:
        return errors.ManifestError(f"{_at(_start(event))}: {what} (items[{self.index}]); fix it there")


def _resolved(resolver: Resolver, kind: type[Node], event: Any) -> str:
    tag: str | None = event.tag
    if tag is None or tag == "!":
        value = event.value if kind is ScalarNode else None
        tag = resolver.resolve(kind, value, event.implicit)  # type: ignore[no-untyped-call]
    return str(tag)


def _compose(events: Iterator[Any], resolver: Resolver, anchors: dict[str, Node], *, where: str) -> Node:
    """Nodes from one node's events, as PyYAML's composer builds them (tags resolved the same way)."""
    stack: list[Node] = []
    pending_key: list[Node | None] = []
    node: Node | None = None
    for event in events:
        if isinstance(event, ev.SequenceEndEvent | ev.MappingEndEvent):
            done = stack.pop()
            pending_key.pop()
            done.end_mark = _end(event)
            if not stack:
                return done
            continue
        if isinstance(event, ev.AliasEvent):
            if event.anchor not in anchors:
                raise errors.ManifestError(
                    f"{_at(_start(event))}: an alias names an anchor not defined before it in {where}; "
                    f"a function's items stand alone, so write the value out"
                )
            node = anchors[event.anchor]
        elif isinstance(event, ev.ScalarEvent):
            tag = _resolved(resolver, ScalarNode, event)
            node = ScalarNode(tag, event.value, _start(event), _end(event), style=event.style)
        elif isinstance(event, ev.SequenceStartEvent | ev.MappingStartEvent):
            cls = MappingNode if isinstance(event, ev.MappingStartEvent) else SequenceNode
            node = cls(_resolved(resolver, cls, event), [], _start(event), None, flow_style=event.flow_style)
        else:
            continue
        if getattr(event, "anchor", None) is not None and not isinstance(event, ev.AliasEvent):
            anchors[event.anchor] = node
        _attach(stack, pending_key, node)
        if isinstance(node, ScalarNode) or isinstance(event, ev.AliasEvent):
            if not stack:
                return node
        else:
            stack.append(node)
            pending_key.append(None)
    raise errors.ManifestError(f"{NAME}: {where} ends before its last node does; the input is cut short")


def _attach(stack: list[Node], pending_key: list[Node | None], node: Node) -> None:
    if not stack:
        return
    parent = stack[-1]
    if isinstance(parent, SequenceNode):
        parent.value.append(node)
    elif pending_key[-1] is None:
        pending_key[-1] = node
    else:
        parent.value.append((pending_key[-1], node))
        pending_key[-1] = None


def _no_list(what: str) -> errors.ManifestError:
    return errors.ManifestError(
        f"{what}; run cfgsync krm as a kustomize or kpt function, which sends a ResourceList on stdin"
    )


_MAP: Final = "tag:yaml.org,2002:map"
_SEQ: Final = "tag:yaml.org,2002:seq"
_NULL: Final = "tag:yaml.org,2002:null"
_PROPERTIES: Final = re.compile(r"^(?:(?:&|!)\S*\s+)*")
"""A node's anchor and tag (``&a !t {...}``): what may stand before a flow mapping's brace."""


def _reindent(body: str, shift: int) -> str:
    """``body`` with every line after the first moved ``shift`` columns (left when negative)."""
    lines = body.split("\n")
    if shift > 0:
        pad = " " * shift
        return "\n".join([lines[0], *(pad + line if line else line for line in lines[1:])])
    if shift < 0:
        cut = -shift
        moved = [line[min(cut, len(line) - len(line.lstrip(" "))) :] for line in lines[1:]]
        return "\n".join([lines[0], *moved])
    return body


def item_text(parsed: ResourceListText, item: Item) -> str:
    """One item as an entry of a block sequence at column 0 (``- ...``), its text otherwise untouched."""
    if item.events is not None:
        return document_entry(krm_check.emit_node(item.events))
    body = parsed.text[item.start : item.end]
    cut = body.rfind("\n")
    if cut != -1 and not body[cut + 1 :].strip(" "):
        body = body[: cut + 1]  # the next entry's indentation, not part of this item
    if item.flow and not _PROPERTIES.sub("", body).startswith("{"):
        # A single pair in a flow sequence (`[a: b]`) is a mapping only there: braces keep it one.
        body = "{" + body.rstrip("\n") + "}"
    shift = 2 if item.flow else 2 - item.column
    stripped = body.rstrip("\n")
    # A keep-chomped block scalar (`|+`) at the end owns the blank lines after it.
    tail = body[len(stripped) :] if item.ends_in_block_scalar else ""
    return f"- {_reindent(stripped, shift)}{tail or chr(10)}"


def document_entry(document: str) -> str:
    """A YAML document of one node as an entry of a block sequence at column 0."""
    if document.endswith("\n...\n"):  # the end marker after a node that may not end the stream
        document = document[: -len("...\n")]
    stripped = document.rstrip("\n")
    return "- " + _reindent(stripped, 2) + (document[len(stripped) :] or "\n")


def object_text(obj: object) -> str:
    """A new object (a copy, a result) as an entry of a block sequence at column 0."""
    return document_entry(output.dump_yaml(obj))  # type: ignore[arg-type]


def write(
    parsed: ResourceListText,
    kept: Sequence[Item],
    added: Sequence[object],
    results: Sequence[dict[str, object]],
) -> str:
    """The ResourceList with ``kept`` items (as they came), then ``added`` objects, then ``results``.

    Read back before it is returned; written by the emitter when it does not read back right
    (:mod:`krm_check`)."""
    documents = [output.dump_yaml(obj) for obj in added]  # type: ignore[arg-type]
    text = _spliced(parsed, kept, documents, results)
    if krm_check.reads_back(text, _expected(parsed, kept, documents, bool(results))):
        return text
    return krm_check.emit(
        krm_check.Parts(
            text=parsed.text,
            kept=[item.position for item in kept],
            added=documents,
            results=[output.dump_yaml(r) for r in results],
        )
    )


def _expected(
    parsed: ResourceListText, kept: Sequence[Item], added: Sequence[str], results: bool
) -> krm_check.Expected:
    keys = [name for name, *_ in parsed.fields if name != "results"]
    if "items" not in keys:
        keys.append("items")
    if results:
        keys.append("results")
    return krm_check.Expected(
        keys=tuple(keys),
        fields={name: digest for name, digest in parsed.digests.items() if name != "results"},
        items=(*(item.digest for item in kept), *map(krm_check.document_digest, added)),
    )


def _spliced(
    parsed: ResourceListText,
    kept: Sequence[Item],
    added: Sequence[str],
    results: Sequence[dict[str, object]],
) -> str:
    """The list with its items and fields spliced from the input text (see the module)."""
    entries = [item_text(parsed, item) for item in kept] + [document_entry(doc) for doc in added]
    items = "items:\n" + "".join(entries) if entries else "items: []\n"
    out = [parsed.header]
    wrote_items = False
    for name, key_start, value_start, value_end, stop in parsed.fields:
        if name == "results":
            continue
        if name == "items":
            out.append(items)
            wrote_items = True
        elif parsed.flow:
            key = parsed.text[key_start:value_start].rstrip().removesuffix(":").rstrip()
            out.append(f"{key}: {_reindent(parsed.text[value_start:value_end], 2)}\n")
        else:
            text = _reindent(parsed.text[key_start:stop], -parsed.column)
            out.append(text if text.endswith("\n") else text + "\n")
    if not wrote_items:
        out.append(items)
    if results:
        out.append("results:\n" + "".join(object_text(r) for r in results))
    return "".join(out)
