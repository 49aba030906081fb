"""Argo CD's own plugin server, run as the sidecar runs it, and a client calling it as the repo server does.

Does I/O: builds (once, cached) and starts ``argocd-cmp-server`` from Argo CD's Go module, and runs the
``cmp-client`` program of the same Go module (tests/gitops/go/argocd) with a JSON request on stdin.
The server gets what the sidecar gets (deploy/argocd): the repository's ``plugin.yaml`` in its config
directory, a socket directory shared with the client, its own temporary directory, and ``cfgsync`` on
``PATH`` as in the plugin image. Nothing else of the test environment reaches it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import gotools
from live.helpers import wait_for

from .helpers import REPO, VENV_BIN

GO_MODULE = Path(__file__).resolve().parent / "go" / "argocd"
"""The wrapper module: ``cmd/argocd-cmp-server`` (Argo CD's command) and ``cmd/cmp-client``."""
_UPSTREAM = "github.com/argoproj/argo-cd/v3"
_UNSTAMPED = gotools.GoModule(name="argocd", directory=GO_MODULE, upstream=_UPSTREAM)
ARGOCD = dataclasses.replace(
    _UNSTAMPED,
    # As Argo CD's Makefile stamps its release (no commit is known here, so it reports v<version>+unknown).
    ldflags=("-s", "-w", f"-X={_UPSTREAM}/common.version={_UNSTAMPED.version.removeprefix('v')}"),
)
"""Argo CD at the release pinned in ``go/argocd/go.mod``."""
PLUGIN_YAML = REPO / "deploy/argocd/plugin.yaml"
"""The plugin configuration the sidecar mounts at ``/home/argocd/cmp-server/config/plugin.yaml``."""
_START_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginServer:
    """A running ``argocd-cmp-server``."""

    sockets: Path
    """The socket directory (the repo server's ``/home/argocd/cmp-server/plugins``)."""
    socket: Path
    """The plugin's socket, ``<name>-<version>.sock``."""
    log: Path
    """Its log (text format): every command it runs, with stderr, and every gRPC call."""
    workdir: Path
    """Its own temporary directory, where it unpacks each request's files."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """What the client printed, and how it exited (0: the call succeeded; 1: ``error`` says why)."""

    code: int
    """The client's exit status."""
    body: Mapping[str, Any]
    """The JSON response."""

    @property
    def error(self) -> str:
        """The error the repo server would report; empty when the call succeeded."""
        return str(self.body.get("error", ""))


def socket_name(plugin_yaml: Path = PLUGIN_YAML) -> str:
    """``<metadata.name>-<spec.version>.sock``, as the server names its socket."""
    config = yaml.safe_load(plugin_yaml.read_text(encoding="utf-8"))
    name, version = config["metadata"]["name"], config["spec"].get("version", "")
    return f"{name}-{version}.sock" if version else f"{name}.sock"


@contextmanager
def running_server(
    binary: Path, home: Path, *, plugin_yaml: Path = PLUGIN_YAML, image_env: Mapping[str, str] | None = None
) -> Iterator[PluginServer]:
    """Start ``argocd-cmp-server`` with ``plugin_yaml``; wait for its socket; stop it (SIGTERM) on exit.

    ``home`` holds its config directory, temporary directory and log. The socket directory is a short
    path of its own under the system's temporary directory (a unix socket path is limited to 107 bytes).
    ``image_env`` is the plugin image's environment (default: this test run's cfgsync first on PATH).
    """
    config = home / "config"
    config.mkdir(parents=True)
    shutil.copyfile(plugin_yaml, config / "plugin.yaml")
    workdir = home / "tmp"
    workdir.mkdir()
    log = home / "argocd-cmp-server.log"
    sockets = Path(tempfile.mkdtemp(prefix="cmp-"))
    server = PluginServer(
        sockets=sockets, socket=sockets / socket_name(plugin_yaml), log=log, workdir=workdir
    )
    env = {
        # The plugin image: cfgsync (and a shell's basics) on PATH, a home, nothing from this machine.
        "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(home),
        **(image_env or {}),
        "TMPDIR": str(workdir),  # the sidecar's own /tmp (an emptyDir)
        "ARGOCD_PLUGINSOCKFILEPATH": str(sockets),
        "ARGOCD_CMP_SERVER_LOGFORMAT": "text",
    }
    command = [str(binary), f"--config-dir-path={config}"]
    try:
        with log.open("wb") as sink:
            proc = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=home)
        try:

            def listening() -> bool:
                assert proc.poll() is None, f"argocd-cmp-server exited:\n{tail(log)}"
                return server.socket.is_socket()

            wait_for(
                listening, timeout=_START_TIMEOUT, what=f"argocd-cmp-server to listen on {server.socket}"
            )
            yield server
        finally:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def basic_app_request(git: Path) -> dict[str, Any]:
    """examples/basic as an Application's folder in a checkout at ``git`` (made here, with the
    ``cfgsync.yaml`` discovery looks for), and the GenerateManifest request the repo server sends for it.
    The answer is tests/gitops/golden/argocd-basic.yaml."""
    shutil.copytree(REPO / "examples/basic", git / "shared-config")
    (git / "shared-config" / "cfgsync.yaml").write_text("", encoding="utf-8")
    return {
        "call": "GenerateManifest",
        "repoPath": str(git),
        "appName": "shared-config",
        "namespace": "demo",
        "revision": "0123456789abcdef0123456789abcdef01234567",
        "source": {
            "repoURL": "https://git.example.invalid/config.git",
            "path": "shared-config",
            "plugin": {},
        },
        "kubeVersion": "v1.34.2",
    }


def call(client: Path, server: PluginServer, request: Mapping[str, Any], *, timeout: float = 120.0) -> Reply:
    """Run ``cmp-client`` with ``request`` (see its package comment); the plugin sockets are the server's."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(server.workdir),
        "ARGOCD_PLUGINSOCKFILEPATH": str(server.sockets),
    }
    done = subprocess.run(
        [str(client)],
        input=json.dumps(request),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode not in {0, 1}:
        raise AssertionError(f"cmp-client failed (exit {done.returncode}):\n{done.stderr}")
    body: dict[str, Any] = json.loads(done.stdout)
    return Reply(code=done.returncode, body=body)


def tail(log: Path, lines: int = 40) -> str:
    """The last lines of the server's log."""
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
