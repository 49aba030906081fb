"""The built-in copy transforms as pure functions: key filtering, key renaming, copy naming.

Pure: no I/O. The plugin layer (``cfgsync._plugins.builtin``) exposes them as ordinary hook
implementations, so they run exactly like third-party transforms.
"""

from __future__ import annotations

import dataclasses
from fnmatch import fnmatchcase

from cfgsync import errors
from cfgsync._core.model import Copy, ObjectRef, frozen
from cfgsync._core.rules import KeyTransforms


def _kept(key: str, keys: KeyTransforms) -> bool:
    if keys.include and not any(fnmatchcase(key, p) for p in keys.include):
        return False
    return not any(fnmatchcase(key, p) for p in keys.exclude)


def filter_keys(copy: Copy, keys: KeyTransforms) -> Copy:
    """Keep only the data keys ``keys.include`` admits and ``keys.exclude`` does not name."""
    if not (keys.include or keys.exclude):
        return copy
    return dataclasses.replace(
        copy,
        data=frozen({k: v for k, v in copy.data.items() if _kept(k, keys)}),
        binary_data=frozen({k: v for k, v in copy.binary_data.items() if _kept(k, keys)}),
    )


def rename_keys(copy: Copy, keys: KeyTransforms) -> Copy:
    """Rename data keys; renaming onto a key that stays is an error (it would lose a value)."""
    if not keys.rename:
        return copy
    renames = dict(keys.rename)
    result: list[dict[str, str]] = []
    for values in (copy.data, copy.binary_data):
        renamed: dict[str, str] = {}
        for key, value in values.items():
            new = renames.get(key, key)
            if new in renamed:
                raise errors.RuleError(
                    f"{copy.source}: renaming keys gives two values for {new!r} in the copy for "
                    f"namespace {copy.ref.namespace}; rename or exclude one of them"
                )
            renamed[new] = value
        result.append(renamed)
    if set(result[0]) & set(result[1]):
        raise errors.RuleError(
            f"{copy.source}: a renamed key is in both data and binaryData; rename it apart"
        )
    return dataclasses.replace(copy, data=frozen(result[0]), binary_data=frozen(result[1]))


def rename_copy(copy: Copy, name: str | None) -> Copy:
    """Give the copy another name."""
    if name is None or name == copy.ref.name:
        return copy
    return dataclasses.replace(
        copy, ref=ObjectRef(kind=copy.ref.kind, namespace=copy.ref.namespace, name=name)
    )
