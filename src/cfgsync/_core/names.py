"""Validation of Kubernetes names, keys and label values, and deterministic shortening.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
"""RFC 1123 label: namespace names (at most 63 characters)."""
DNS_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
"""RFC 1123 subdomain: ConfigMap and Secret names (at most 253 characters)."""
CONFIG_KEY: Final = re.compile(r"[-._a-zA-Z0-9]+")
"""A key of ConfigMap or Secret data (at most 253 characters, not ``.`` or ``..``)."""
GLOB: Final = re.compile(r"[-a-z0-9*?\[\]!]+")
"""A namespace name pattern: the characters of names plus shell glob syntax."""

QUALIFIED_NAME: Final = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
"""The name part of a label or annotation key, and a non-empty label value (at most 63 characters)."""
LABEL_VALUE_MAX: Final = 63
"""Longest label value the API server accepts."""
ANNOTATIONS_MAX_BYTES: Final = 256 * 1024
"""Most bytes the API server accepts in all of one object's annotation keys and values together."""
_HASH_LEN: Final = 10


def is_namespace_name(name: str) -> bool:
    """True when ``name`` is a valid namespace name."""
    return len(name) <= 63 and DNS_LABEL.fullmatch(name) is not None


def is_object_name(name: str) -> bool:
    """True when ``name`` is a valid ConfigMap/Secret name."""
    return len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name) is not None


def is_config_key(key: str) -> bool:
    """True when ``key`` may be a key of ConfigMap or Secret data."""
    return len(key) <= 253 and key not in {".", ".."} and CONFIG_KEY.fullmatch(key) is not None


def is_glob(pattern: str) -> bool:
    """True when ``pattern`` contains glob syntax (``*``, ``?``, ``[``)."""
    return any(c in pattern for c in "*?[")


def shorten_label_value(value: str) -> str:
    """Return ``value`` if it fits in a label value, else a deterministic 63-character stand-in.

    The stand-in is the first 52 characters, ``-``, and the first 10 hex digits of the SHA-256 of
    the whole value: stable across runs and versions, unique in practice, and always a valid label
    value (names start with an alphanumeric and hex digits end it).
    """
    if len(value) <= LABEL_VALUE_MAX:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:_HASH_LEN]
    return f"{value[: LABEL_VALUE_MAX - _HASH_LEN - 1]}-{digest}"


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label or annotation key (``[prefix/]name``), or None when it is."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or DNS_SUBDOMAIN.fullmatch(prefix) is None):
        return "its prefix (before '/') must be a lower-case DNS subdomain of at most 253 characters"
    if not name or len(name) > 63 or QUALIFIED_NAME.fullmatch(name) is None:
        return (
            "its name must be 1-63 characters: letters, digits, '-', '_', '.', starting and ending with a "
            "letter or digit"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None when it is."""
    if len(value) > LABEL_VALUE_MAX or (value and QUALIFIED_NAME.fullmatch(value) is None):
        return (
            "a label value must be empty or 1-63 characters: letters, digits, '-', '_', '.', starting and "
            "ending with a letter or digit"
        )
    return None
