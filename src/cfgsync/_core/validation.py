"""Validation of the settings every front end hands the planner: cluster name, source namespace, exclusions.

Pure: no I/O. Each front end names the settings as its users write them (``--cluster-name``, a plugin
parameter, a function config field), so the error points at what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from cfgsync import errors
from cfgsync._core import names, rules, vocabulary
from cfgsync._core.planner import PlanSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingNames:
    """How a front end's users spell each setting, for messages."""

    cluster_name: str = "--cluster-name"
    """Where the cluster name comes from."""
    source_namespace: str = "--source-namespace"
    """Where the source namespace comes from."""
    excluded_namespaces: str = "--exclude-namespace"
    """Where the excluded namespaces come from."""


def check_settings(settings: PlanSettings, spelled: SettingNames = SettingNames()) -> None:
    """Raise :class:`SettingsError` listing every invalid setting, before anything is planned.

    A cluster name that is no valid label value would put an invalid label on every copy; a source
    namespace that is no valid namespace name would yield no copy at all (and a GitOps tool that prunes
    would then delete every copy it deployed before).
    """
    problems: list[str] = []
    problem = names.label_value_problem(settings.cluster_name)
    if problem is not None:
        problems.append(
            f"{spelled.cluster_name} {settings.cluster_name!r} is invalid: it becomes the "
            f"{vocabulary.ORIGIN_CLUSTER} label of every copy, and {problem}"
        )
    namespace = settings.source_namespace
    if namespace is not None and not names.is_namespace_name(namespace):
        problems.append(
            f"{spelled.source_namespace} {namespace!r} is not a valid namespace name (lower-case letters, "
            f"digits and '-', at most 63 characters): no source could be in it, so nothing would be copied"
        )
    try:
        rules.check_namespace_patterns(settings.excluded_namespaces, where=spelled.excluded_namespaces)
    except errors.RuleError as exc:
        problems.append(str(exc))
    if problems:
        raise errors.SettingsError("\n".join(problems))
