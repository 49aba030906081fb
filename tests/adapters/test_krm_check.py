"""The KRM function's safety net: a list that would not read back as its input is written by the emitter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cfgsync import errors
from cfgsync._adapters import krm, krm_check, yaml_input
from cfgsync._plugins.manager import load_plugins

HOOKS = load_plugins(only=())
FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
INPUTS = sorted(
    path for folder in ("corpus", "crashes") for path in (FUZZ / folder / "krm").glob("*") if path.is_file()
)
LIST = """\
# a comment the emitter cannot keep
apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: web, labels: {env: prod}}
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: ca
    namespace: default
    annotations: {kubed.appscode.com/sync: "env=prod"}
  data: {ca.crt: "x", mode: '0755'}
- &app !custom
  apiVersion: apps/v1
  kind: Deployment
  metadata: {name: app, namespace: web}
  spec:
    note: |+
      kept as it is

    replicas: 0x10
functionConfig: {apiVersion: v1, kind: ConfigMap, data: {cluster-name: unicorn}}
"""


class AnyTags(yaml.CSafeLoader):
    """Reads local tags (``!custom``) as the value they are on, and a timestamp as the text it is to
    Kubernetes (an item written from data has it quoted)."""


def _as_text(loader: yaml.CSafeLoader, node: yaml.ScalarNode) -> object:
    return loader.construct_scalar(node)


AnyTags.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_mapping(node))
AnyTags.add_constructor("tag:yaml.org,2002:timestamp", _as_text)


def load(text: str) -> Any:
    return yaml.load(text, Loader=AnyTags)  # noqa: S506 -- a safe loader


@pytest.fixture
def spliced_list_misreads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every spliced list counts as one that does not read back; returns the texts it judged."""
    judged: list[str] = []

    def never(text: str, expected: krm_check.Expected) -> bool:
        judged.append(text)
        return False

    monkeypatch.setattr(krm_check, "reads_back", never)
    return judged


def test_the_emitted_list_holds_the_same_items_copies_and_results(spliced_list_misreads: list[str]) -> None:
    emitted = krm.run_function(LIST, hooks=HOOKS)
    assert spliced_list_misreads, "the spliced list was not checked"
    spliced = spliced_list_misreads[0]
    assert "# a comment" in spliced
    assert "# a comment" not in emitted.text
    assert load(emitted.text) == load(spliced)
    back = load(emitted.text)
    assert [i["kind"] for i in back["items"]] == ["Namespace", "ConfigMap", "Deployment", "ConfigMap"]
    assert back["items"][3]["metadata"]["namespace"] == "web"
    assert back["items"][2]["spec"] == {"note": "kept as it is\n\n", "replicas": 16}
    assert back["items"][1]["data"]["mode"] == "0755"  # still text, not the number 493
    assert "&app !custom" in emitted.text  # the anchor and the tag are kept
    assert back["functionConfig"]["data"] == {"cluster-name": "unicorn"}


def test_a_spliced_list_that_reads_back_is_sent_as_it_is() -> None:
    done = krm.run_function(LIST, hooks=HOOKS)
    assert done.text.startswith("# a comment")
    assert "replicas: 0x10" in done.text


@pytest.mark.parametrize(
    ("written", "misread"),
    [
        pytest.param('"x"', '"y"', id="a value"),
        pytest.param("0x10", "'0x10'", id="a number become text"),
        pytest.param("!custom", "!other", id="a tag"),
        pytest.param("&app", "&ppa", id="an anchor"),
        pytest.param("cluster-name: unicorn", "cluster-name: other", id="a field"),
        pytest.param("kind: ResourceList\n", "", id="a missing field"),
        pytest.param("  kind: Namespace\n", "  kind: Namespace\n  x: 1\n", id="a key"),
        pytest.param("items:\n", "items:\n- {}\n", id="an item"),
        pytest.param("items:\n", "items:\n  x: [\n", id="no YAML"),
        pytest.param("functionConfig:", "---\nfunctionConfig:", id="a second document"),
    ],
)
def test_the_check_finds_what_a_splice_could_get_wrong(
    written: str, misread: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[bool] = []
    real = krm_check.reads_back

    def spy(text: str, expected: krm_check.Expected) -> bool:
        checked.append(real(text, expected))
        assert written in text
        checked.append(real(text.replace(written, misread, 1), expected))
        return checked[0]

    monkeypatch.setattr(krm_check, "reads_back", spy)
    krm.run_function(LIST, hooks=HOOKS)
    assert checked == [True, False]


@pytest.mark.parametrize("path", INPUTS, ids=[f"{p.parent.parent.name}/{p.name}" for p in INPUTS])
def test_every_fuzzed_list_emitted_reads_back(path: Path, spliced_list_misreads: list[str]) -> None:
    try:
        emitted = krm.run_function(yaml_input.decode(path.read_bytes(), "<stdin>"), hooks=HOOKS)
    except errors.CfgsyncError:
        assert not spliced_list_misreads  # refused before anything was written
        return
    spliced = spliced_list_misreads[0]
    try:
        assert load(emitted.text) == load(spliced)
    except yaml.YAMLError:  # an anchor named twice, which PyYAML's composer refuses: compare events
        assert _meaning(emitted.text) == _meaning(spliced)


def _meaning(text: str) -> list[object]:
    """Each node's event with its scalars' tags resolved: what the list says, not how it is written."""
    resolver = yaml.resolver.Resolver()
    meaning: list[object] = []
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.ScalarEvent):
            tag = event.tag or resolver.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
            meaning.append((event.anchor, "tag:yaml.org,2002:str" if tag == "!" else tag, event.value))
        elif not isinstance(event, yaml.DocumentStartEvent | yaml.DocumentEndEvent):
            meaning.append(krm_check.signature(event))
    return meaning


HEAD = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(HEAD + 'note: "x\n?\n# y"\nitems:\n- kind: Foo  # c\n', id="a ? line in a quoted value"),
        pytest.param(HEAD + "?\n\nitems:\n- kind: Foo  # c\n", id="an empty explicit key"),
        pytest.param(
            HEAD + "items:\n- kind: Foo  # c\n  note: |+\n    kept\n\n\n- kind: Bar\n",
            id="a keep block ending an item",
        ),
    ],
)
def test_a_list_whose_text_reads_back_goes_out_as_it_came(text: str) -> None:
    assert krm.run_function(text, hooks=HOOKS).text == text


def test_an_indented_list_goes_out_from_column_zero_with_its_comments() -> None:
    text = "".join("  " + line + "\n" for line in ["# indented", *HEAD.splitlines(), "note:", "  a: 1  # c"])
    text += "  items:\n  - kind: Foo\n"

    done = krm.run_function(text, hooks=HOOKS)

    assert done.text == "  # indented\n" + "".join(line[2:] + "\n" for line in text.splitlines()[1:])


def test_a_copy_of_a_value_ending_in_blank_lines_is_spliced_whole() -> None:
    source = LIST.replace('ca.crt: "x"', 'ca.crt: "x\\n\\n"')

    done = krm.run_function(source, hooks=HOOKS)

    assert done.text.startswith("# a comment")  # spliced, not written again by the emitter
    copies = [
        i
        for i in load(done.text)["items"]
        if i["metadata"].get("namespace") == "web" and i["kind"] == "ConfigMap"
    ]
    assert copies[0]["data"]["ca.crt"] == "x\n\n"


def test_an_item_ending_the_input_in_a_block_scalar_keeps_its_tags() -> None:
    text = HEAD + "items:\n- kind: Foo\n  om: !!omap [a: 1, b: 2]\n  x: !custom 1\n  s: |\n    abc"

    done = krm.run_function(text, hooks=HOOKS)

    item = yaml.load(done.text.replace("!custom", "!!int"), Loader=yaml.CSafeLoader)["items"][0]
    assert item == {"kind": "Foo", "om": [("a", 1), ("b", 2)], "x": 1, "s": "abc"}
    assert "!custom 1" in done.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"!!set\n{HEAD}items: []\n", "the ResourceList is tagged 'tag:yaml.org,2002:set'"),
        (f"--- !t\n{{{HEAD.replace(chr(10), ', ')}items: []}}\n", "the ResourceList is tagged '!t'"),
        (f"{HEAD}items: !!pairs\n- {{kind: Foo}}\n", "items must be a plain list of objects"),
    ],
)
def test_a_tagged_list_or_items_is_refused(text: str, message: str) -> None:
    with pytest.raises(errors.ManifestError, match=message):
        krm.run_function(text, hooks=HOOKS)


def test_the_emitter_keeps_what_non_specific_tags_and_empty_values_mean(
    spliced_list_misreads: list[str],
) -> None:
    text = (
        HEAD + 'items:\n- {kind: Foo, port: ! 8080, quoted: ! "12", hex: ! "0x10", flag: ! true, a: , b: }\n'
    )

    emitted = krm.run_function(text, hooks=HOOKS).text

    item = yaml.load(emitted, Loader=yaml.CSafeLoader)["items"][0]
    assert item == {"kind": "Foo", "port": 8080, "quoted": 12, "hex": 16, "flag": True, "a": None, "b": None}
    # A quoted value after `!` is a string to kustomize's reader: none may be written so.
    assert "! " not in emitted
