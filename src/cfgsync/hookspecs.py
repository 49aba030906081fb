"""Every hook a cfgsync plugin can implement.

A plugin is a module or object with functions marked ``@cfgsync.hookimpl`` and named like the
specifications below; it is found through the ``cfgsync`` entry-point group::

    [project.entry-points.cfgsync]
    my_plugin = "my_package.plugin"

Hooks receive the plain immutable data of :mod:`cfgsync` (``Copy``, ``ConfigObject``, ``Namespace``,
``Rule``) and return new values; they never change what they are given. They must not do I/O that the
result depends on: the same input must give the same output in every mode (render, ArgoCD, KRM, apply,
controller). The built-in key filtering, key renaming and copy naming are plugins of this same kind
(``cfgsync._plugins.builtin``), marked ``tryfirst`` so that third-party transforms see their result.
"""

from __future__ import annotations

from collections.abc import Mapping

import pluggy

from cfgsync._core.model import ConfigObject, Copy, Namespace
from cfgsync._core.rules import Rule

PROJECT = "cfgsync"
"""The pluggy project name and the entry-point group plugins are found in."""

hookspec = pluggy.HookspecMarker(PROJECT)
"""Marks a hook specification (used in this module only)."""
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a plugin's hook implementation: ``@cfgsync.hookimpl``."""


@hookspec
def cfgsync_transform_copy(copy: Copy, source: ConfigObject, namespace: Namespace, rule: Rule) -> Copy | None:
    """Return a changed copy, or None to leave it as it is.

    Transforms are chained: each implementation receives the copy as the one before it left it
    (``tryfirst`` ones first, then the most recently registered first, as pluggy orders calls). Use
    :func:`dataclasses.replace` to change fields. Changing ``ref.name`` renames the copy;
    ``ref.namespace`` and ``source`` must stay as they are. Raising fails the plan for this source
    with an error naming the plugin and the object. Hook wrappers are not supported on this hook.
    """


@hookspec(firstresult=True)
def cfgsync_veto_copy(copy: Copy, source: ConfigObject, namespace: Namespace, rule: Rule) -> str | None:
    """Return a reason to refuse this copy, or None to allow it; stops at the first non-None result.

    A vetoed copy is not written (and an existing one is deleted); the veto is reported with the
    plugin's name and reason.
    """


@hookspec(firstresult=True)
def cfgsync_tree_object(copy: Copy, source: ConfigObject) -> Mapping[str, object] | None:
    """Return the object to write to a rendered tree instead of the copy, or None to write the copy.

    Stops at the first non-None result. Called for every copy ``cfgsync render -o`` writes to a
    directory (and ``cfgsync diff`` compares), since such files usually end up in git; output on
    stdout (pipelines, the ArgoCD plugin, the KRM function) never calls it. The use it is made for:
    a Secret copy replaced by an object that refers to the value instead of holding it (an encrypted
    Secret, an external-secret reference). A Secret copy no plugin replaces is refused unless
    ``--allow-secrets``, and so is a replacement of kind ``Secret``. The object needs ``apiVersion``,
    ``kind`` and ``metadata.name``; it is written to ``<namespace>/<kind>-<name>.yaml`` in the copy's
    namespace. ``source`` is the object the copy was made from; :func:`cfgsync.to_manifest` gives
    the copy as it would be written.
    """
