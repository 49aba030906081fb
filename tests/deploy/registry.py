"""A private registry like a Harbor project: the CNCF distribution registry, a login, TLS or plain HTTP,
on loopback.

Does I/O: makes a throw-away CA and serving certificate with ``openssl`` (as tests/controlplane/pki.py
does), a bcrypt htpasswd file with ``htpasswd``, starts ``docker-registry`` (Debian's build of the
distribution registry 2.8) on 127.0.0.1 and a free port, and talks to its HTTP API. The process dies
with the test process and is stopped (SIGTERM, then SIGKILL) when the ``with`` block ends.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import functools
import http.client
import json
import os
import secrets
import signal
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.running import free_port
from live.helpers import wait_for

USER = "robot-cfgsync"
"""The registry account (Harbor names its robot accounts ``robot$...``)."""
IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
_ACCEPT = f"{IMAGE_MANIFEST}, {DOCKER_MANIFEST}"
_CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Registry:
    """A running registry and what a client needs to use it."""

    address: str
    """``127.0.0.1:PORT``: the registry's host, as image references and ``oci://`` URLs name it."""
    certs: Path
    """A directory holding ``ca.crt``: skopeo's ``--cert-dir``; ``certs/ca.crt`` is helm's ``--ca-file``."""
    user: str
    """The account."""
    password: str
    """Its password."""
    log: Path
    """The registry's log."""
    tls: bool = True
    """False: it serves plain HTTP (``certs`` is then empty), as many a private Harbor does."""

    def request(self, method: str, path: str, *, accept: str = _ACCEPT) -> tuple[int, dict[str, str], bytes]:
        """``METHOD https://ADDRESS/PATH`` (``http://`` without TLS) with the account's basic auth; status,
        headers, body."""
        host, port = self.address.split(":")
        conn: http.client.HTTPConnection
        if self.tls:
            context = ssl.create_default_context(cafile=str(self.certs / "ca.crt"))
            conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
        else:
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        try:
            conn.request(method, path, headers={"Authorization": f"Basic {token}", "Accept": accept})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def catalog(self) -> list[str]:
        """Every repository the registry holds."""
        status, _, body = self.request("GET", "/v2/_catalog")
        assert status == 200, body
        repositories: list[str] = json.loads(body)["repositories"]
        return sorted(repositories)

    def tags(self, repository: str) -> list[str]:
        """The tags of ``repository``."""
        status, _, body = self.request("GET", f"/v2/{repository}/tags/list")
        assert status == 200, body
        tags: list[str] = json.loads(body)["tags"]
        return sorted(tags)

    def manifest(self, repository: str, reference: str) -> tuple[str, dict[str, Any]]:
        """The manifest of ``repository:reference``: its digest (as the registry computes it) and content."""
        status, headers, body = self.request("GET", f"/v2/{repository}/manifests/{reference}")
        assert status == 200, body
        manifest: dict[str, Any] = json.loads(body)
        return headers["docker-content-digest"], manifest

    def blob(self, repository: str, digest: str) -> bytes:
        """A blob (an image's configuration, say)."""
        status, _, body = self.request("GET", f"/v2/{repository}/blobs/{digest}", accept="*/*")
        assert status == 200, digest
        return body


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A fresh CA and a serving certificate for 127.0.0.1, valid for a day: (CA, certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    cert, key = directory / "registry.crt", directory / "registry.key"
    _openssl("req", "-x509", *_CURVE, "-keyout", str(ca_key), "-out", str(ca), "-days", "1",
             "-subj", "/CN=cfgsync-test-registry-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    _openssl("req", "-x509", *_CURVE, "-keyout", str(key), "-out", str(cert), "-days", "1",
             "-CA", str(ca), "-CAkey", str(ca_key), "-subj", "/CN=127.0.0.1",
             "-addext", "basicConstraints=critical,CA:FALSE",
             "-addext", "keyUsage=critical,digitalSignature",
             "-addext", "extendedKeyUsage=serverAuth",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")  # fmt: skip
    return ca, cert, key


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """In the child: be killed when the test process dies, so no registry outlives a crashed run."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


@contextlib.contextmanager
def running_registry(workdir: Path, *, tls: bool = True) -> Iterator[Registry]:
    """A registry with TLS (or plain HTTP) and htpasswd auth on 127.0.0.1, its storage under ``workdir``,
    stopped on exit."""
    certs = workdir / "certs"
    certs.mkdir(parents=True)
    serving: dict[str, str] = {}
    if tls:
        ca, cert, key = make_certificates(workdir / "tls")
        (certs / "ca.crt").write_bytes(ca.read_bytes())
        serving = {"certificate": str(cert), "key": str(key)}
    password = secrets.token_urlsafe(18)
    htpasswd = subprocess.run(
        ["htpasswd", "-Bbn", USER, password], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    (workdir / "htpasswd").write_text(htpasswd, encoding="utf-8")
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}},
        "http": {
            "addr": f"127.0.0.1:{port}",
            "secret": secrets.token_hex(16),
            **({"tls": serving} if serving else {}),
        },
        "auth": {"htpasswd": {"realm": "cfgsync-test", "path": str(workdir / "htpasswd")}},
    }
    (workdir / "config.yml").write_text(json.dumps(config, indent=2), encoding="utf-8")  # JSON is YAML
    log = workdir / "registry.log"
    registry = Registry(
        address=f"127.0.0.1:{port}", certs=certs, user=USER, password=password, log=log, tls=tls
    )
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(workdir / "config.yml")],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=functools.partial(_die_with_parent, os.getpid()),  # noqa: PLW1509 -- only prctl
        )
    try:

        def answers() -> bool:
            assert proc.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            try:
                status, _, _ = registry.request("GET", "/v2/")
            except OSError:
                return False
            return status == 200

        wait_for(answers, timeout=30, what=f"the registry on {registry.address} to answer /v2/")
        yield registry
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
