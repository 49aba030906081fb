"""Example cfgsync plugin: prefix the data keys of copies; let namespaces opt out of copies.

Pure: reads only the objects it is given, as every hook must.
"""

from __future__ import annotations

import dataclasses

import cfgsync

PREFIX_ANNOTATION = "key-prefix.cfgsync.io/prefix"
"""On a source: the prefix its copies' data keys get."""
OPT_OUT_LABEL = "key-prefix.cfgsync.io/opt-out"
"""On a namespace: ``"true"`` refuses every copy."""


@cfgsync.hookimpl
def cfgsync_transform_copy(copy: cfgsync.Copy, source: cfgsync.ConfigObject) -> cfgsync.Copy | None:
    """Prefix every data key of the copy when the source asks for it."""
    prefix = source.annotations.get(PREFIX_ANNOTATION)
    if not prefix:
        return None
    return dataclasses.replace(
        copy,
        data={f"{prefix}{key}": value for key, value in copy.data.items()},
        binary_data={f"{prefix}{key}": value for key, value in copy.binary_data.items()},
        # The instruction is for this plugin, not for whoever reads the copy.
        annotations={k: v for k, v in copy.annotations.items() if k != PREFIX_ANNOTATION},
    )


@cfgsync.hookimpl
def cfgsync_veto_copy(namespace: cfgsync.Namespace) -> str | None:
    """Refuse copies into namespaces that opted out."""
    if namespace.labels.get(OPT_OUT_LABEL) == "true":
        return f"namespace {namespace.name} opted out ({OPT_OUT_LABEL}=true)"
    return None
