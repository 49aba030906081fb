"""``cfgsync render`` and ``cfgsync explain`` on each vocabulary's example, as a user runs them.

The examples under examples/pull, examples/replicator and examples/reflector are annotated exactly
as each tool's users annotate their objects; the copies, the refused pulls and the explanations are
compared with golden files byte for byte (``CFGSYNC_UPDATE_GOLDEN=1`` rewrites them).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from cfgsync.testing import assert_golden

GOLDEN = Path(__file__).parent / "golden"
Run = Callable[..., subprocess.CompletedProcess[str]]

REFUSALS = {
    "pull": "warning: pull refused: Secret team-b/regcred asks for Secret platform/registry-pull "
    "(cfgsync.io/copy-from): Secret platform/registry-pull does not allow team-b",
    "replicator": "warning: pull refused: ConfigMap team-b/database asks for ConfigMap platform/db-config "
    "(replicator.v1.mittwald.de/replicate-from): ConfigMap platform/db-config does not allow team-b",
    "reflector": "warning: pull refused: ConfigMap sandbox/ca-bundle asks for ConfigMap platform/ca-bundle "
    "(reflector.v1.k8s.emberstack.com/reflects): ConfigMap platform/ca-bundle does not allow sandbox",
}


@pytest.mark.parametrize("example", sorted(REFUSALS))
def test_render_matches_golden_and_reports_the_refused_pull(cfgsync_cli: Run, example: str) -> None:
    result = cfgsync_cli("render", f"examples/{example}")
    assert result.returncode == 0, result.stderr
    assert_golden(result.stdout, GOLDEN / f"{example}.yaml")
    assert result.stderr.startswith(REFUSALS[example]), result.stderr


@pytest.mark.parametrize("example", sorted(REFUSALS))
def test_strict_refuses_to_render_past_a_refused_pull(cfgsync_cli: Run, example: str) -> None:
    result = cfgsync_cli("render", "--strict", f"examples/{example}")
    assert result.returncode == 3
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("example", "namespace"),
    [
        ("pull", "team-b"),
        ("replicator", "team-b"),
        ("replicator", "team-a"),
        ("reflector", "sandbox"),
        ("reflector", "team-a"),
    ],
)
def test_explain_names_the_vocabulary_and_every_check(cfgsync_cli: Run, example: str, namespace: str) -> None:
    result = cfgsync_cli("explain", f"examples/{example}", "-n", namespace)
    assert result.returncode == 0, result.stderr
    assert_golden(result.stdout, GOLDEN / f"explain-{example}-{namespace}.txt")


def test_switching_a_vocabulary_off_renders_none_of_its_copies(cfgsync_cli: Run) -> None:
    result = cfgsync_cli("render", "--disable-vocabulary", "replicator", "examples/replicator")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


def test_an_unknown_vocabulary_is_a_usage_error(cfgsync_cli: Run) -> None:
    result = cfgsync_cli("render", "--disable-vocabulary", "kubed", "examples/basic")
    assert result.returncode == 1
    assert (
        "'kubed' is not a vocabulary that can be switched off; choose from replicator, reflector"
        in result.stderr
    )


def test_exclusion_regexes_match_anywhere_like_replicators_flag(cfgsync_cli: Run) -> None:
    result = cfgsync_cli("render", "--exclude-namespace-regex", "a$", "examples/replicator")
    assert result.returncode == 0, result.stderr
    assert "namespace: team-a\n" not in result.stdout
    assert "namespace: team-1\n" in result.stdout
