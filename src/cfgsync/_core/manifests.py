"""Conversion between plain manifest data and the model, with validation.

Pure: works on already-parsed JSON-like data (from YAML files, a KRM ResourceList or the API
server) and never reads anything itself. Every error names the object and says how to fix it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Final, NotRequired, TypedDict

from cfgsync import errors
from cfgsync._core import names, vocabulary
from cfgsync._core.model import EMPTY, ConfigObject, Copy, Namespace, ObjectRef, frozen, is_source_kind

MAX_OBJECT_BYTES: Final = 1024 * 1024
"""The API server's limit on the data of one ConfigMap or Secret (1 MiB): the values' bytes, decoded
for base64 fields; keys do not count (the API server counts them so too)."""


class Metadata(TypedDict):
    """``metadata`` of a rendered copy."""

    name: str
    namespace: str
    labels: NotRequired[dict[str, str]]
    annotations: NotRequired[dict[str, str]]


class Manifest(TypedDict):
    """A rendered ConfigMap or Secret, in the field order ``kubectl`` users expect."""

    apiVersion: str
    kind: str
    metadata: Metadata
    type: NotRequired[str]
    immutable: NotRequired[bool]
    data: NotRequired[dict[str, str]]
    binaryData: NotRequired[dict[str, str]]


def to_manifest(obj: Copy | ConfigObject) -> Manifest:
    """The manifest of a copy (or the managed fields of an observed object), with sorted keys."""
    meta: Metadata = {"name": obj.ref.name, "namespace": obj.ref.namespace}
    if obj.labels:
        meta["labels"] = dict(obj.labels)
    annotations = obj.annotations
    if isinstance(obj, ConfigObject) and vocabulary.LAST_APPLIED in annotations:
        annotations = {k: v for k, v in annotations.items() if k != vocabulary.LAST_APPLIED}
    if annotations:
        meta["annotations"] = dict(annotations)
    manifest: Manifest = {"apiVersion": "v1", "kind": obj.ref.kind, "metadata": meta}
    if obj.type is not None:
        manifest["type"] = obj.type
    if obj.immutable is not None:
        manifest["immutable"] = obj.immutable
    if obj.data:
        manifest["data"] = dict(obj.data)
    if obj.binary_data:
        manifest["binaryData"] = dict(obj.binary_data)
    return manifest


def content_digest(data: Mapping[str, str], binary_data: Mapping[str, str]) -> str:
    """A digest of a ConfigMap's or Secret's payload: equal payloads, equal digests, whatever the order."""
    body = json.dumps(
        [dict(data), dict(binary_data)], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


def digested(obj: ConfigObject) -> ConfigObject:
    """``obj`` with its payload replaced by :func:`content_digest` (unchanged if already digested)."""
    if obj.content_digest is not None:
        return obj
    return replace(
        obj, data=EMPTY, binary_data=EMPTY, content_digest=content_digest(obj.data, obj.binary_data)
    )


def payload_digest(obj: Copy | ConfigObject) -> str:
    """The digest of an object's payload, whether it holds the payload or only its digest."""
    if isinstance(obj, ConfigObject) and obj.content_digest is not None:
        return obj.content_digest
    return content_digest(obj.data, obj.binary_data)


def _fail(where: str, message: str) -> errors.ManifestError:
    return errors.ManifestError(f"{where}: {message}")


def _str_map(raw: Mapping[str, object], field: str, where: str) -> dict[str, str]:
    value = raw.get(field)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(where, f"{field} must be a mapping of strings, got {type(value).__name__}")
    result: dict[str, str] = {}
    for raw_key, item in value.items():
        key = _key_text(raw_key)
        if key is None:
            raise _fail(where, f"{field} key {raw_key!r} is not a string; quote it in YAML")
        if not isinstance(item, str):
            raise _fail(
                where, f"{field}.{key} must be a string, got {type(item).__name__}; quote the value in YAML"
            )
        if key in result:  # 9000 and "9000": one key to the API server, which refuses it twice
            raise _fail(where, f"{field} key {key!r} is a duplicate key (once unquoted); keep one")
        result[key] = item
    return result


def _key_text(key: object) -> str | None:
    """A key as kubectl reads it: an unquoted integer or boolean is its text (``9000: x`` in
    ingress-nginx's tcp-services ConfigMap); None for any other key that is no string.

    A float is refused rather than guessed at: ``1.10`` would become ``1.1``.
    """
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, str | int):
        return str(key)
    return None


def _mapping(value: object, field: str, where: str) -> Mapping[str, object]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(where, f"{field} must be a mapping, got {type(value).__name__}")
    return value


def check_metadata(labels: Mapping[str, str], annotations: Mapping[str, str], *, subject: str) -> None:
    """Raise :class:`ManifestError` for label or annotation keys and label values the API server refuses.

    Annotation values are never shown: they may hold anything, a Secret's last applied state included.
    """
    for key, value in labels.items():
        problem = names.key_problem(key)
        if problem is not None:
            raise _fail(subject, f"metadata.labels key {key!r} is invalid: {problem}. Fix the label")
        problem = names.label_value_problem(value)
        if problem is not None:
            raise _fail(subject, f"metadata.labels.{key} value {value!r} is invalid: {problem}. Fix it")
    size = 0
    for key, value in annotations.items():
        problem = names.key_problem(key)
        if problem is not None:
            raise _fail(subject, f"metadata.annotations key {key!r} is invalid: {problem}. Fix the key")
        size += len(key.encode()) + len(value.encode())
    if size > names.ANNOTATIONS_MAX_BYTES:
        raise _fail(
            subject,
            f"metadata.annotations hold {size} bytes, over the {names.ANNOTATIONS_MAX_BYTES} the API server "
            f"accepts; remove large annotations (kubectl.kubernetes.io/last-applied-configuration is one)",
        )


def describe(raw: Mapping[str, object], where: str) -> str:
    """``Kind namespace/name (where)`` for a raw object, as far as it can be read."""
    meta = raw.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    # Only text is shown: a mis-indented Secret may hold its data where its name should be.
    kind, namespace, name = (
        value if isinstance(value, str) else "?"
        for value in (raw.get("kind"), meta.get("namespace"), meta.get("name"))
    )
    ident = f"{kind} {namespace}/{name}"
    return f"{ident} ({where})" if where else ident


def _shown(value: object) -> str:
    """A name for an error message: quoted when text, else only its type (it may hold a Secret's data)."""
    return repr(value) if isinstance(value, str) else f"(a {type(value).__name__})"


def parse_namespace(raw: Mapping[str, object], *, where: str = "") -> Namespace:
    """A ``Namespace`` object."""
    subject = describe(raw, where).replace(" ?/", " ")
    meta = _mapping(raw.get("metadata"), "metadata", subject)
    name = meta.get("name")
    if not isinstance(name, str) or not names.is_namespace_name(name):
        raise _fail(
            subject, f"metadata.name {_shown(name)} is not a valid namespace name (lower-case, digits, '-')"
        )
    status = _mapping(raw.get("status"), "status", subject)
    labels = _str_map(meta, "labels", subject)
    check_metadata(labels, {}, subject=subject)
    return Namespace(
        name=name,
        labels=frozen(labels),
        terminating=status.get("phase") == "Terminating",
        accept_from=accept_from(_str_map(meta, "annotations", subject)),
    )


def accept_from(annotations: Mapping[str, str]) -> tuple[str, ...] | None:
    """A Namespace's ``cfgsync.io/accept-from`` annotation as names and globs; None when it has none."""
    value = annotations.get(vocabulary.ACCEPT_FROM)
    if value is None:
        return None
    return tuple(item.strip() for item in value.split(",") if item.strip())


def parse_config_object(raw: Mapping[str, object], *, where: str = "") -> ConfigObject:
    """A ConfigMap or Secret, validated the way the API server would, with stringData folded in."""
    subject = describe(raw, where)
    kind = raw.get("kind")
    if not is_source_kind(kind):
        raise _fail(subject, "not a ConfigMap or Secret")
    meta = _mapping(raw.get("metadata"), "metadata", subject)
    name, namespace = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or not names.is_object_name(name):
        raise _fail(
            subject,
            f"metadata.name {_shown(name)} is not a valid name (lower-case letters, digits, '-', '.')",
        )
    if namespace is not None and not isinstance(namespace, str):
        raise _fail(subject, f"metadata.namespace must be a string, got {type(namespace).__name__}")
    if not namespace:
        raise _fail(subject, "metadata.namespace is missing; cfgsync needs each source's namespace, set it")
    if not names.is_namespace_name(namespace):
        raise _fail(subject, f"metadata.namespace {_shown(namespace)} is not a valid namespace name")
    data = _str_map(raw, "data", subject)
    if kind == "Secret" and raw.get("binaryData") is not None:
        raise _fail(
            subject,
            "a Secret has no binaryData field (that is a ConfigMap's); the API server would drop or refuse "
            "it. Move its base64 values to data",
        )
    binary = _str_map(raw, "binaryData", subject) if kind == "ConfigMap" else {}
    secret_type: str | None = None
    if kind == "Secret":
        for key, text in _str_map(raw, "stringData", subject).items():
            data[key] = base64.b64encode(text.encode()).decode()
        raw_type = raw.get("type", "Opaque")
        secret_type = raw_type if isinstance(raw_type, str) and raw_type else "Opaque"
    size = _check_data(data, binary, is_secret=kind == "Secret", subject=subject)
    if size > MAX_OBJECT_BYTES:
        raise _fail(
            subject,
            f"data is {size} bytes, over the 1 MiB ({MAX_OBJECT_BYTES} bytes) the API server accepts; "
            f"split it into several objects",
        )
    immutable = raw.get("immutable")
    if immutable is not None and not isinstance(immutable, bool):
        raise _fail(subject, f"immutable must be true or false, got {immutable!r}")
    uid, version, created = meta.get("uid"), meta.get("resourceVersion"), meta.get("creationTimestamp")
    labels, annotations = _str_map(meta, "labels", subject), _str_map(meta, "annotations", subject)
    check_metadata(labels, annotations, subject=subject)
    return ConfigObject(
        ref=ObjectRef(kind=kind, namespace=namespace, name=name),
        labels=frozen(labels),
        annotations=frozen(annotations),
        data=frozen(data),
        binary_data=frozen(binary),
        type=secret_type,
        immutable=immutable,
        uid=uid if isinstance(uid, str) else None,
        resource_version=version if isinstance(version, str) else None,
        created=created if isinstance(created, str) else None,
        where=where,
    )


def _check_data(data: dict[str, str], binary: dict[str, str], *, is_secret: bool, subject: str) -> int:
    size = 0
    for field, values, encoded in (("data", data, is_secret), ("binaryData", binary, True)):
        for key, value in values.items():
            if not names.is_config_key(key):
                raise _fail(
                    subject, f"{field} key {key!r} is invalid; keys use letters, digits, '-', '_', '.'"
                )
            if encoded:
                try:
                    size += len(base64.b64decode(value, validate=True))
                except (binascii.Error, ValueError) as exc:
                    raise _fail(
                        subject, f"{field}.{key} is not valid base64; encode it, or use stringData"
                    ) from exc
            else:
                size += len(value.encode())
    both = sorted(set(data) & set(binary))
    if both:
        raise _fail(subject, f"key {both[0]!r} is in both data and binaryData; keep it in one")
    return size
