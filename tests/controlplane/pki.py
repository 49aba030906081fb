"""Throw-away certificates, keys and kubeconfigs for one test control plane.

Does I/O: runs the ``openssl`` command and writes files into the directory it is given. Every key is
ECDSA P-256 (fast to make), every certificate is signed by a fresh CA and valid for one day, and the
serving certificate names only 127.0.0.1 and localhost.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .build import ControlPlaneError

ADMIN_USER = "cfgsync-admin"
"""The admin identity; its group ``system:masters`` bypasses RBAC."""

RESTRICTED_USER = "cfgsync-restricted"
"""The restricted identity: authenticated, but bound to no Role, so RBAC refuses it almost everything."""

RESTRICTED_GROUP = "cfgsync:restricted"
"""The one group of the restricted identity (besides ``system:authenticated``); nothing is bound to it."""

_CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyPair:
    """A certificate and its private key, both PEM files."""

    cert: Path
    """The certificate (for a bare key pair such as the service-account key: the public key)."""
    key: Path
    """The unencrypted private key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Pki:
    """Everything the API server and its clients need to trust and identify each other."""

    ca: KeyPair
    """The CA that signs every other certificate; the API server trusts client certificates it signed."""
    serving: KeyPair
    """The API server's TLS certificate, for 127.0.0.1 and localhost."""
    service_account: KeyPair
    """The key the API server signs service-account tokens with; ``cert`` holds its public half."""
    admin: KeyPair
    """Client certificate of ``ADMIN_USER`` in group ``system:masters``."""
    restricted: KeyPair
    """Client certificate of ``RESTRICTED_USER`` in group ``RESTRICTED_GROUP``."""


def make_pki(directory: Path) -> Pki:
    """Create a fresh CA, serving certificate, service-account key and two client identities."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ControlPlaneError("the `openssl` command is needed to make test certificates; install openssl")
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        result = subprocess.run([openssl, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ControlPlaneError(f"openssl {args[0]} failed: {result.stderr.strip()}")

    def pair(name: str) -> KeyPair:
        return KeyPair(cert=directory / f"{name}.crt", key=directory / f"{name}.key")

    ca = pair("ca")
    run("req", "-x509", *_CURVE, "-keyout", str(ca.key), "-out", str(ca.cert), "-days", "1",
        "-subj", "/CN=cfgsync-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip

    def leaf(name: str, subject: str, *extensions: str) -> KeyPair:
        issued = pair(name)
        addext = [arg for ext in extensions for arg in ("-addext", ext)]
        run("req", "-x509", *_CURVE, "-keyout", str(issued.key), "-out", str(issued.cert), "-days", "1",
            "-CA", str(ca.cert), "-CAkey", str(ca.key), "-subj", subject,
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "keyUsage=critical,digitalSignature", *addext)  # fmt: skip
        return issued

    serving = leaf(
        "serving",
        "/CN=127.0.0.1",
        "extendedKeyUsage=serverAuth",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
    )
    admin = leaf("admin", f"/O=system:masters/CN={ADMIN_USER}", "extendedKeyUsage=clientAuth")
    restricted = leaf(
        "restricted", f"/O={RESTRICTED_GROUP}/CN={RESTRICTED_USER}", "extendedKeyUsage=clientAuth"
    )
    service_account = pair("service-account")
    run(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(service_account.key)
    )
    run("pkey", "-in", str(service_account.key), "-pubout", "-out", str(service_account.cert))
    return Pki(ca=ca, serving=serving, service_account=service_account, admin=admin, restricted=restricted)


def write_kubeconfig(path: Path, *, server: str, ca: Path, client: KeyPair, user: str) -> None:
    """Write a self-contained kubeconfig (certificates embedded) for ``user`` talking to ``server``.

    It is JSON, which every kubeconfig reader accepts since JSON is YAML; the file is private (0600).
    """

    def embed(pem: Path) -> str:
        return base64.b64encode(pem.read_bytes()).decode("ascii")

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "cfgsync-test", "cluster": {"server": server, "certificate-authority-data": embed(ca)}}
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": embed(client.cert), "client-key-data": embed(client.key)},
            }
        ],
        "contexts": [{"name": user, "context": {"cluster": "cfgsync-test", "user": user}}],
        "current-context": user,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
