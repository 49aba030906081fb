"""ArgoCD's environment, read into typed settings for ``cfgsync argocd generate``.

I/O: reads the environment mapping it is given (the command passes ``os.environ``). ArgoCD passes
plugin parameters as JSON in ``ARGOCD_APP_PARAMETERS`` (without the defaults ``plugin.yaml``
announces: cfgsync applies them here) and the Application's plugin env as ``ARGOCD_ENV_<NAME>``.
Every ``ARGOCD_ENV_CFGSYNC_*`` must be a known setting: a typo is an error, not a silent default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cfgsync import errors
from cfgsync._adapters import argocd
from cfgsync._core import patterns, planner, policy, validation, vocabularies

PARAMETERS_ENV: Final = "ARGOCD_APP_PARAMETERS"
"""JSON list of ``{"name": ..., "string" | "array" | "map": ...}``; ``null`` when the Application has a
``plugin:`` section without parameters (ArgoCD marshals a nil list, argo-cd#11900)."""
_SHAPES: Final = ("string", "array", "map")
"""The value fields an ArgoCD plugin parameter can carry."""
ENV_PREFIX: Final = "ARGOCD_ENV_CFGSYNC_"
"""The Application's plugin env for cfgsync: ``ARGOCD_ENV_CFGSYNC_CLUSTER_NAME`` and so on."""
PLUGINS_SETTING: Final = "PLUGINS"
"""``ARGOCD_ENV_CFGSYNC_PLUGINS``: comma-separated plugins to load, as ``CFGSYNC_PLUGINS``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Parameter:
    """One setting, as a plugin parameter (announced in ``deploy/argocd/plugin.yaml``) and an env var."""

    name: str
    """Parameter name; the env var is ``ARGOCD_ENV_CFGSYNC_`` plus it in upper case, ``-`` as ``_``."""
    array: bool = False
    """An array parameter (a comma-separated list in the env var); else a string."""
    default: str | tuple[str, ...] = ""
    """The value when neither the parameter nor the env var is set."""
    choices: tuple[str, ...] = ()
    """The allowed values, when limited."""

    @property
    def env(self) -> str:
        """The env var ArgoCD sets from the Application's ``plugin.env``."""
        return ENV_PREFIX + self.name.upper().replace("-", "_")


PARAMETERS: Final = (
    Parameter(name="cluster-name"),
    Parameter(name="source-namespace"),
    Parameter(name="exclude-namespaces", array=True, default=()),
    Parameter(name="output", default="all", choices=tuple(o.value for o in argocd.Output)),
    Parameter(name="namespaces", default="declared", choices=tuple(s.value for s in argocd.NamespaceSource)),
    Parameter(name="allow-empty", default="false", choices=("false", "true")),
    Parameter(name="allow-system-namespaces", default="false", choices=("false", "true")),
    Parameter(name="deny-source-types", array=True, default=()),
    Parameter(name="allow-sources-from", array=True, default=()),
    Parameter(name="allow-sources-from-selector"),
    Parameter(name="require-consent", default="false", choices=("false", "true")),
    Parameter(name="strip-metadata", array=True, default=()),
    Parameter(name="disable-vocabularies", array=True, default=()),
    Parameter(name="exclude-namespaces-regex", array=True, default=()),
)
"""Every setting of the plugin, in the order ``plugin.yaml`` announces them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ArgoEnvironment:
    """Everything ``generate`` takes from the environment."""

    settings: argocd.AppSettings
    """The typed settings."""
    plugins: frozenset[str] | None
    """Plugins to load (None: all installed)."""
    access: argocd.ClusterAccess
    """How to reach the API server for ``namespaces=cluster``."""
    kube_version: tuple[int, int] | None
    """``KUBE_VERSION`` (major, minor), when ArgoCD sets it."""


def _parameters(text: str | None) -> dict[str, str | tuple[str, ...]]:
    if not text:
        return {}
    where = f"{PARAMETERS_ENV} (the Application's plugin parameters)"
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise errors.CfgsyncError(f"{where}: not JSON ({exc.msg} at {exc.pos})") from exc
    except (ValueError, RecursionError) as exc:
        # Python's own limits (an integer of thousands of digits, thousands of nested lists): not
        # parameters ArgoCD sends. The message would quote the input, so it is left out.
        raise errors.CfgsyncError(
            f"{where}: not JSON cfgsync reads (a number too long or lists nested too deep)"
        ) from exc
    if raw is None:  # no parameters: what ArgoCD sends for `plugin: {name: ...}` alone
        return {}
    if not isinstance(raw, list):
        raise errors.CfgsyncError(f"{where}: must be a JSON list of parameters (or null)")
    known = {p.name: p for p in PARAMETERS}
    values: dict[str, str | tuple[str, ...]] = {}
    for entry in raw:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name not in known:
            raise errors.CfgsyncError(
                f"{where}: unknown parameter {name!r}; cfgsync knows {', '.join(known)}. Fix the "
                f"Application's spec.source.plugin.parameters"
            )
        if name in values:
            raise errors.CfgsyncError(f"{where}: parameter {name!r} is given twice")
        values[name] = _parameter_value(known[name], entry, where)
    return values


def _parameter_value(param: Parameter, entry: Mapping[str, object], where: str) -> str | tuple[str, ...]:
    """The value of one parameter entry, of the shape ``param`` takes, else an error naming the shape."""
    field = "array" if param.array else "string"
    value = entry.get(field)
    if param.array and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if not param.array and isinstance(value, str):
        return value
    given = [shape for shape in _SHAPES if shape in entry and shape != field]
    if field in entry:
        wrong = f"but its {field} holds {'something other than strings' if param.array else 'no string'}"
    else:
        wrong = f"not a {given[0]}" if given else "but has no value"
    article = "an" if param.array else "a"
    raise errors.CfgsyncError(
        f"{where}: parameter {param.name!r} takes {article} {field}, {wrong}. Fix the Application's "
        f"spec.source.plugin.parameters (e.g. `- name: {param.name}` with `{field}: ...`)"
    )


def _from_env(environ: Mapping[str, str]) -> dict[str, str | tuple[str, ...]]:
    known = {p.env: p for p in PARAMETERS}
    values: dict[str, str | tuple[str, ...]] = {}
    for key in sorted(k for k in environ if k.startswith(ENV_PREFIX)):
        if key == ENV_PREFIX + PLUGINS_SETTING:
            continue
        param = known.get(key)
        if param is None:
            names = ", ".join([*known, ENV_PREFIX + PLUGINS_SETTING])
            raise errors.CfgsyncError(
                f"{key}: unknown setting (the Application's plugin env "
                f"{key.removeprefix('ARGOCD_ENV_')}); cfgsync knows {names}"
            )
        text = environ[key]
        values[param.name] = tuple(p.strip() for p in text.split(",") if p.strip()) if param.array else text
    return values


def _kube_version(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    parts = text.lstrip("v").split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()))
    except (IndexError, ValueError):
        return None  # an odd version string must not stop the render; it only informs a warning


def _array(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)


OPERATOR_PREFIX: Final = "CFGSYNC_"
"""The sidecar's own environment (``CFGSYNC_ALLOW_SOURCES_FROM`` and so on): the operator's policy.

An Application sets its plugin parameters and ``ARGOCD_ENV_*`` itself; it cannot set the sidecar
container's environment, so that is where the operator puts the policy Applications may not loosen."""
_POLICY_SETTINGS: Final = (
    "allow-system-namespaces",
    "deny-source-types",
    "allow-sources-from",
    "allow-sources-from-selector",
    "require-consent",
    "strip-metadata",
)


def _operator(environ: Mapping[str, str]) -> dict[str, str]:
    """The operator's policy settings from the sidecar's environment (empty when unset)."""
    found = {}
    for name in _POLICY_SETTINGS:
        value = environ.get(OPERATOR_PREFIX + name.upper().replace("-", "_"), "").strip()
        if value:
            found[name] = value
    return found


def _policy(values: Mapping[str, str | tuple[str, ...]], operator: Mapping[str, str]) -> policy.Policy:
    """The Application's policy settings within the operator's: an Application may tighten, not loosen.

    System namespaces open only when the operator allows it (``CFGSYNC_ALLOW_SYSTEM_NAMESPACES=true``)
    and the Application asks; consent is required when either asks; protected types and stripped keys
    add up; where sources may live is the operator's alone once the operator has said it."""

    def env(name: str) -> str:
        return OPERATOR_PREFIX + name.upper().replace("-", "_")

    def listed(text: str) -> tuple[str, ...]:
        return tuple(p.strip() for p in text.split(",") if p.strip())

    for name in ("allow-system-namespaces", "require-consent"):
        if operator.get(name, "false") not in {"false", "true"}:
            raise errors.SettingsError(f"{env(name)} is {operator[name]!r}; it must be true or false")
    asks_system = values["allow-system-namespaces"] == "true"
    if asks_system and operator.get("allow-system-namespaces") != "true":
        raise errors.SettingsError(
            "setting allow-system-namespaces: an Application may not open the system namespaces; the "
            f"plugin's operator allows it with {env('allow-system-namespaces')}=true in the sidecar's env"
        )
    operator_sources = {"allow-sources-from", "allow-sources-from-selector"} & set(operator)
    app_sources = values["allow-sources-from"] or values["allow-sources-from-selector"]
    if operator_sources and app_sources:
        raise errors.SettingsError(
            "settings allow-sources-from(-selector): the plugin's operator decides where sources may live "
            f"({', '.join(env(n) for n in sorted(operator_sources))} in the sidecar's env); leave them unset"
        )
    if operator_sources:
        sources_from = listed(operator.get("allow-sources-from", ""))
        selector = operator.get("allow-sources-from-selector") or None
    else:
        sources_from = _array(values["allow-sources-from"])
        selector = str(values["allow-sources-from-selector"]) or None
    return policy.build_policy(
        allow_system_namespaces=asks_system,
        denied_source_types=(
            *_array(values["deny-source-types"]),
            *listed(operator.get("deny-source-types", "")),
        ),
        sources_from=sources_from,
        sources_from_selector=selector,
        require_consent=values["require-consent"] == "true" or operator.get("require-consent") == "true",
        strip_metadata=(*_array(values["strip-metadata"]), *listed(operator.get("strip-metadata", ""))),
        where="the sidecar's CFGSYNC_* env"
        if operator_sources
        else "plugin parameters (or ARGOCD_ENV_CFGSYNC_*)",
    )


def read_environment(environ: Mapping[str, str]) -> ArgoEnvironment:
    """Typed settings from ArgoCD's variables: parameters first, then env, then defaults."""
    values = {p.name: p.default for p in PARAMETERS}
    values.update(_from_env(environ))
    values.update(_parameters(environ.get(PARAMETERS_ENV)))
    for param in PARAMETERS:
        if param.choices and values[param.name] not in param.choices:
            raise errors.CfgsyncError(
                f"setting {param.name} is {values[param.name]!r}; it must be one of "
                f"{', '.join(param.choices)} (plugin parameter {param.name} or env {param.env})"
            )
    plan = planner.PlanSettings(
        cluster_name=str(values["cluster-name"]),
        source_namespace=str(values["source-namespace"]) or None,
        excluded_namespaces=_array(values["exclude-namespaces"]),
        policy=_policy(values, _operator(environ)),
        disabled_vocabularies=vocabularies.check_disabled(
            _array(values["disable-vocabularies"]), where="setting disable-vocabularies"
        ),
        excluded_namespace_regexes=tuple(
            entry
            for value in _array(values["exclude-namespaces-regex"])
            for entry in patterns.compile_list(
                value, patterns.Matching.ANYWHERE, where="setting exclude-namespaces-regex"
            )
        ),
    )
    spelled = {p.name: f"setting {p.name} (plugin parameter {p.name} or env {p.env})" for p in PARAMETERS}
    validation.check_settings(
        plan,
        validation.SettingNames(
            cluster_name=spelled["cluster-name"],
            source_namespace=spelled["source-namespace"],
            excluded_namespaces=spelled["exclude-namespaces"],
        ),
    )
    settings = argocd.AppSettings(
        plan=plan,
        output=argocd.Output(values["output"]),
        namespaces=argocd.NamespaceSource(values["namespaces"]),
        allow_empty=values["allow-empty"] == "true",
        app_namespace=environ.get("ARGOCD_APP_NAMESPACE") or None,
    )
    plugins_text = environ.get(ENV_PREFIX + PLUGINS_SETTING)
    plugins = (
        None if plugins_text is None else frozenset(n.strip() for n in plugins_text.split(",") if n.strip())
    )
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    kubeconfig = environ.get("KUBECONFIG") or None
    access = argocd.ClusterAccess(
        in_cluster=(host, port) if host and port and kubeconfig is None else None, kubeconfig=kubeconfig
    )
    return ArgoEnvironment(
        settings=settings,
        plugins=plugins,
        access=access,
        kube_version=_kube_version(environ.get("KUBE_VERSION")),
    )
