"""The Argo CD plugin's policy: an Application may tighten the operator's, never loosen it.

An Application's author sets its plugin parameters and ``ARGOCD_ENV_*``; the operator sets the sidecar
container's own environment (``CFGSYNC_*``), which Applications cannot reach.
"""

from __future__ import annotations

import json

import pytest

from cfgsync import errors
from cfgsync.cli import _argocd_env


def read(parameters: dict[str, object], **operator: str) -> _argocd_env.ArgoEnvironment:
    env = {"ARGOCD_APP_PARAMETERS": json.dumps([{"name": k, **_shape(v)} for k, v in parameters.items()])}
    env |= {f"CFGSYNC_{k.upper()}": v for k, v in operator.items()}
    return _argocd_env.read_environment(env)


def _shape(value: object) -> dict[str, object]:
    return {"array": value} if isinstance(value, list) else {"string": value}


def test_an_application_may_not_open_the_system_namespaces_by_itself() -> None:
    with pytest.raises(errors.SettingsError, match="CFGSYNC_ALLOW_SYSTEM_NAMESPACES=true"):
        read({"allow-system-namespaces": "true"})

    allowed = read({"allow-system-namespaces": "true"}, allow_system_namespaces="true")

    assert allowed.settings.plan.policy.allow_system_namespaces


def test_where_sources_live_is_the_operators_once_said() -> None:
    fixed = read({}, allow_sources_from="platform,shared-*")

    assert fixed.settings.plan.policy.sources_from == ("platform", "shared-*")
    with pytest.raises(errors.SettingsError, match="the plugin's operator decides where sources may live"):
        read({"allow-sources-from": ["team-*"]}, allow_sources_from="platform")


def test_protections_add_up_and_consent_holds_if_either_asks() -> None:
    env = read(
        {"deny-source-types": ["example.com/a"], "strip-metadata": ["a/*"]},
        deny_source_types="example.com/b",
        strip_metadata="b/*",
        require_consent="true",
    )

    policy = env.settings.plan.policy
    assert set(policy.denied_source_types) >= {"example.com/a", "example.com/b"}
    assert set(policy.strip_metadata) >= {"a/*", "b/*"}
    assert policy.require_consent


def test_without_an_operator_policy_the_application_chooses_within_the_defaults() -> None:
    env = read({"allow-sources-from": ["team-*"], "require-consent": "true"})

    assert env.settings.plan.policy.sources_from == ("team-*",)
    assert env.settings.plan.policy.require_consent
    assert not env.settings.plan.policy.allow_system_namespaces
