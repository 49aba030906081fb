"""cfgsync: keep ConfigMaps and Secrets copied across namespaces and clusters.

A drop-in successor to kubed's config-syncer. The public API is what this module exports; every
other module is private. See docs/library.md.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from cfgsync._api import (
    ApplyReport,
    apply_cluster,
    check_plan,
    copy_manifests,
    load_manifests,
    load_plugin_hooks,
    plan_copies,
    plan_inventory,
    render_yaml,
)
from cfgsync._core.explain import Explanation, explain_namespace
from cfgsync._core.guard import DeleteGuard, GuardVerdict
from cfgsync._core.inventory import Document, Inventory, build_inventory
from cfgsync._core.manifests import Manifest, parse_config_object, parse_namespace, to_manifest
from cfgsync._core.model import (
    Action,
    ActionKind,
    ConfigObject,
    Conflict,
    Copy,
    LeftAlone,
    Namespace,
    NamespaceName,
    ObjectRef,
    Plan,
    Problem,
    PullRefusal,
    Veto,
)
from cfgsync._core.planner import PlanSettings
from cfgsync._core.policy import Policy, Refusal, build_policy
from cfgsync._core.rules import KeyTransforms, NamespaceTargets, Rule, rules_from_annotations
from cfgsync._core.selectors import LabelSelector
from cfgsync._core.syncrule import rule_from_document
from cfgsync._plugins.manager import PluginHooks
from cfgsync.errors import (
    ApplyError,
    CfgsyncError,
    ManifestError,
    OutputError,
    PluginError,
    RuleError,
    SelectorError,
    SettingsError,
)
from cfgsync.hookspecs import hookimpl, hookspec

try:
    __version__ = version("cfgsync")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Action",
    "ActionKind",
    "ApplyError",
    "ApplyReport",
    "CfgsyncError",
    "ConfigObject",
    "Conflict",
    "Copy",
    "DeleteGuard",
    "Document",
    "Explanation",
    "GuardVerdict",
    "Inventory",
    "KeyTransforms",
    "LabelSelector",
    "LeftAlone",
    "Manifest",
    "ManifestError",
    "Namespace",
    "NamespaceName",
    "NamespaceTargets",
    "ObjectRef",
    "OutputError",
    "Plan",
    "PlanSettings",
    "PluginError",
    "PluginHooks",
    "Policy",
    "Problem",
    "PullRefusal",
    "Refusal",
    "Rule",
    "RuleError",
    "SelectorError",
    "SettingsError",
    "Veto",
    "__version__",
    "apply_cluster",
    "build_inventory",
    "build_policy",
    "check_plan",
    "copy_manifests",
    "explain_namespace",
    "hookimpl",
    "hookspec",
    "load_manifests",
    "load_plugin_hooks",
    "parse_config_object",
    "parse_namespace",
    "plan_copies",
    "plan_inventory",
    "render_yaml",
    "rule_from_document",
    "rules_from_annotations",
    "to_manifest",
]
