"""Reading YAML: files, directories, stdin, List kinds, and errors with file:line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cfgsync import errors
from cfgsync._adapters.yaml_input import read_documents


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_multi_document_file_gives_each_document_its_line(tmp_path: Path) -> None:
    f = write(tmp_path / "a.yaml", "kind: A\n---\n# comment\nkind: B\n---\n")
    docs = read_documents([str(f)])
    assert [(d.body, d.where) for d in docs] == [({"kind": "A"}, f"{f}:1"), ({"kind": "B"}, f"{f}:4")]


def test_directories_are_read_recursively_in_name_order(tmp_path: Path) -> None:
    write(tmp_path / "b" / "x.yml", "kind: B\n")
    write(tmp_path / "a.yaml", "kind: A\n")
    write(tmp_path / "notes.txt", "kind: ignored\n")
    assert [d.body["kind"] for d in read_documents([str(tmp_path)])] == ["A", "B"]


def test_list_kinds_are_unwrapped() -> None:
    stdin = io.StringIO("kind: List\nitems:\n- kind: A\n- kind: B\n")
    docs = read_documents(["-"], stdin)
    assert [(d.body["kind"], d.where) for d in docs] == [
        ("A", "<stdin>:1 items[0]"),
        ("B", "<stdin>:1 items[1]"),
    ]


def test_scalars_are_plain_python_values(tmp_path: Path) -> None:
    f = write(tmp_path / "a.yaml", "kind: A\nn: 5\nb: true\nf: 1.5\ns: 'x'\nnull_value: null\n")
    body = read_documents([str(f)])[0].body
    assert body == {"kind": "A", "n": 5, "b": True, "f": 1.5, "s": "x", "null_value": None}
    assert [type(v) for v in body.values()] == [str, int, bool, float, str, type(None)]


def test_integers_beyond_64_bits_are_read_up_to_a_thousand_digits(tmp_path: Path) -> None:
    # A CRD schema's maximum may be 2**64 - 1: the API server reads it as a float.
    long = "0x" + "f" * 998
    f = write(tmp_path / "a.yaml", f"kind: A\nmaximum: 18446744073709551615\nlong: {long}\n")
    body = read_documents([str(f)])[0].body
    assert body["maximum"] == 2**64 - 1
    assert body["long"] == int(long, 16)

    write(f, f"kind: A\nlonger: {long}f\n")
    with pytest.raises(errors.ManifestError) as caught:
        read_documents([str(f)])
    assert f"{f}:2:9: an integer of more than 1000 digits; quote it to keep it as text" == str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: A\nmetadata:\n  name: x\n   bad: indent\n", ":4:"),
        ("kind: A\ndata: {a: 1\n", ":3:"),
        ("kind: A\nkind: B\n", "malformed YAML"),
        ("- just\n- a list\n", "a document is a list, not a Kubernetes object"),
    ],
)
def test_malformed_yaml_names_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    f = write(tmp_path / "bad.yaml", text)
    with pytest.raises(errors.ManifestError) as caught:
        read_documents([str(f)])
    assert str(f) in str(caught.value)
    assert expected in str(caught.value)


def test_missing_path_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(errors.ManifestError, match="no such file or directory"):
        read_documents([str(tmp_path / "nope.yaml")])
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"kind: \xff\xfe\n")
    with pytest.raises(errors.ManifestError, match="not UTF-8 text"):
        read_documents([str(binary)])
