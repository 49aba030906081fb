"""Reading manifests into the model: the API server's validation, with errors that say where and how."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from cfgsync import errors
from cfgsync._core import manifests
from cfgsync._core.inventory import Document, build_inventory


def cm(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "n"},
    }
    body.update(fields)
    return body


def test_secret_string_data_is_folded_into_data_as_base64() -> None:
    raw = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "n"},
        "data": {"a": base64.b64encode(b"old").decode(), "b": "Yg=="},
        "stringData": {"a": "new", "c": "ç"},
    }
    obj = manifests.parse_config_object(raw)
    assert dict(obj.data) == {"a": "bmV3", "b": "Yg==", "c": base64.b64encode("ç".encode()).decode()}
    assert obj.type == "Opaque"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (cm(metadata={"name": "Bad_Name", "namespace": "n"}), "metadata.name 'Bad_Name' is not a valid name"),
        (cm(metadata={"name": "c"}), "metadata.namespace is missing"),
        (
            cm(metadata={"name": "c", "namespace": "Bad"}),
            "metadata.namespace 'Bad' is not a valid namespace name",
        ),
        (cm(data={"n": 5}), "data.n must be a string, got int; quote the value in YAML"),
        (cm(data={"bad/key": "x"}), "data key 'bad/key' is invalid"),
        (cm(data={"k": "x"}, binaryData={"k": "eA=="}), "key 'k' is in both data and binaryData"),
        (cm(binaryData={"k": "not base64!"}), "binaryData.k is not valid base64"),
        (cm(data={"k": "x" * (1024 * 1024 + 1)}), "over the 1 MiB (1048576 bytes) the API server accepts"),
        (cm(data=["x"]), "data must be a mapping of strings, got list"),
        (cm(immutable="yes"), "immutable must be true or false"),
        (cm(kind={"kind": "ConfigMap"}), "not a ConfigMap or Secret"),
        (cm(kind=["Secret"]), "not a ConfigMap or Secret"),
        (
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s", "namespace": "n"},
                "data": {"k": "@@"},
            },
            "data.k is not valid base64; encode it, or use stringData",
        ),
    ],
)
def test_invalid_objects_are_explained(raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(errors.ManifestError) as caught:
        manifests.parse_config_object(raw, where="in.yaml:4")
    assert expected in str(caught.value)
    assert "(in.yaml:4)" in str(caught.value)


def test_object_at_the_size_limit_is_accepted_whatever_its_keys() -> None:
    # The API server counts the values' bytes only: exactly 1 MiB of values under long keys is valid.
    key = "k" * 250
    obj = manifests.parse_config_object(cm(data={key: "x" * (1024 * 1024)}))
    assert len(obj.data[key]) == 1024 * 1024


def test_inventory_sorts_and_implies_namespaces() -> None:
    docs = [
        Document(body=cm(metadata={"name": "z", "namespace": "b"}), where="f:1"),
        Document(
            body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"x": "y"}}},
            where="f:5",
        ),
        Document(
            body={"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "c"}},
            where="f:9",
        ),
    ]
    found = build_inventory(docs)
    assert [(ns.name, dict(ns.labels)) for ns in found.namespaces] == [
        ("a", {"x": "y"}),
        ("b", {}),
        ("c", {}),
    ]
    assert [str(o.ref) for o in found.objects] == ["ConfigMap b/z"]


def test_inventory_reports_every_bad_document_and_duplicates() -> None:
    docs = [
        Document(body=cm(), where="f:1"),
        Document(body=cm(), where="g:3"),
        Document(body=cm(metadata={"name": "x"}), where="g:9"),
    ]
    with pytest.raises(errors.ManifestError) as caught:
        build_inventory(docs)
    lines = str(caught.value).splitlines()
    assert lines == [
        "ConfigMap n/c (g:3): defined twice (also at f:1); keep one definition",
        "ConfigMap ?/x (g:9): metadata.namespace is missing; cfgsync needs each source's namespace, set it",
    ]


def test_terminating_namespace_is_read_from_status() -> None:
    ns = manifests.parse_namespace(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "old"},
            "status": {"phase": "Terminating"},
        }
    )
    assert ns.terminating


def test_unquoted_integer_and_boolean_keys_are_their_text_as_kubectl_reads_them() -> None:
    obj = manifests.parse_config_object(cm(data={9000: "a", True: "b", False: "c"}))
    assert dict(obj.data) == {"9000": "a", "true": "b", "false": "c"}


@pytest.mark.parametrize(("key", "shown"), [(1.5, "1.5"), (None, "None")])
def test_other_keys_that_are_no_string_are_refused(key: object, shown: str) -> None:
    with pytest.raises(errors.ManifestError, match=f"data key {shown} is not a string; quote it in YAML"):
        manifests.parse_config_object(cm(data={key: "a"}))


def test_a_name_that_is_no_string_is_described_by_its_type_only() -> None:
    secret = {"password": "aHVudGVyMg=="}
    with pytest.raises(errors.ManifestError) as caught:
        manifests.parse_config_object(cm(metadata={"name": secret, "namespace": secret}))
    assert "aHVudGVyMg" not in str(caught.value)
    assert "ConfigMap ?/?: metadata.name (a dict) is not a valid name" in str(caught.value)
