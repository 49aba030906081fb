"""The one exception hierarchy of cfgsync.

Every error cfgsync raises on purpose is a :class:`CfgsyncError`. Messages say what went wrong, where
(a file and line, or ``Kind namespace/name``), and how to fix it. Exceptions of the libraries cfgsync
uses never cross a public signature; they are wrapped and chained (``raise ... from exc``).
"""

from __future__ import annotations

__all__ = [
    "ApplyError",
    "CfgsyncError",
    "ManifestError",
    "OutputError",
    "PluginError",
    "RuleError",
    "SelectorError",
    "SettingsError",
]


class CfgsyncError(Exception):
    """Root of every error cfgsync raises on purpose."""


class ManifestError(CfgsyncError):
    """Input manifests cannot be read: malformed YAML, an invalid object, an oversize object."""


class SelectorError(CfgsyncError):
    """A label selector string does not follow the Kubernetes label-selector grammar.

    ``position`` is the 0-based character offset where parsing failed.
    """

    def __init__(self, message: str, *, selector: str, position: int) -> None:
        super().__init__(message)
        self.selector = selector
        self.position = position


class RuleError(CfgsyncError):
    """A sync rule (annotation or ``SyncRule`` document) is invalid.

    The message names the object and the annotation or field. ``field`` is the field path within the
    object (``spec.keys.rename``, ``metadata.annotations``) when the error is about one field.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SettingsError(CfgsyncError):
    """A setting (command-line option, environment variable, plugin parameter, function config) is invalid.

    The message names the setting as the user gave it and says which values are valid.
    """


class OutputError(CfgsyncError):
    """Writing or reading a rendered tree failed: a file cfgsync may not touch, a file system error.

    The message names the path and says how to fix it; the tree is left as it was, or with a journal
    that the next ``render -o`` finishes or rolls back.
    """


class PluginError(CfgsyncError):
    """A plugin raised while transforming or vetoing a copy; the message names the plugin and the object."""


class ApplyError(CfgsyncError):
    """Talking to the Kubernetes API failed in a way that stops the whole operation."""
