"""Developer sessions: tests, e2e, lint, typing, fuzz, bench, docs, controlplane, manifests.

Every session installs the project through one helper so they all test the same thing.
"""

from __future__ import annotations

import sys

import nox

# The tests last: a CI transcript keeps its tail, which then holds the failures.
nox.options.sessions = ["lint", "typing", "fuzz", "tests"]
nox.options.reuse_venv = "yes"

PYTHON = "3.11"
PLUGINS = ["plugins/cfgsync-key-prefix", "plugins/cfgsync-secret-reference"]


def install(session: nox.Session, *extras: str, plugins: bool = True) -> None:
    """Install cfgsync (editable) with the given extras, plus the example plugins."""
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", spec)
    if plugins:
        for plugin in PLUGINS:
            session.install("-e", plugin)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite: pure unit tests and the end-to-end tests on a real control plane."""
    install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def unit(session: nox.Session) -> None:
    """Only the tests that need no control plane."""
    install(session, "test")
    session.run("pytest", "-m", "not e2e", *session.posargs)


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    """Only the tests that run against the real kube-apiserver and etcd."""
    install(session, "test")
    session.run("pytest", "-m", "e2e", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint and format check) and the import-linter layering contracts."""
    install(session, plugins=False)
    session.install("ruff", "import-linter")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session(python=PYTHON)
def typing(session: nox.Session) -> None:
    """mypy --strict over the package, its tests and the plugins."""
    install(session, "test")
    session.install("mypy", "types-PyYAML", "nox")
    session.run("mypy")


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Coverage-guided fuzzing (atheris) of the YAML, manifest, selector and KRM readers: 30 s each.

    ``nox -s fuzz -- --seconds 600 krm`` runs one target longer. A crash fails the session and leaves
    its input in tests/fuzz/crashes/, which the unit tests then replay.
    """
    install(session, "test", plugins=False)
    # atheris: Google's coverage-guided fuzzer for Python (libFuzzer inside), the well-kept choice.
    session.install("atheris>=2.3")
    session.run("python", "tests/fuzz/run.py", *(session.posargs or ["--seconds", "30"]))


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks (not part of the test run); figures land in bench-results/."""
    install(session, "test")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(venv_backend="none")
def controlplane(session: nox.Session) -> None:
    """A real etcd + kube-apiserver for manual work: `-- up --kubeconfig FILE` / `-- down --kubeconfig FILE`.

    The harness (tests/controlplane) needs only the standard library, so it runs in nox's own interpreter.
    """
    session.run(sys.executable, "-m", "controlplane", *session.posargs, env={"PYTHONPATH": "tests"})


@nox.session(venv_backend="none")
def manifests(session: nox.Session) -> None:
    """Regenerate deploy/manifests/ from the Helm chart (builds the pinned helm on first use; needs Go)."""
    session.run(sys.executable, "-m", "deploy.chart", env={"PYTHONPATH": "tests"})
