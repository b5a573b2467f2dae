"""Writing kubeconfigs (``controlplane up``, the test fixtures, ``controlplane kubeconfig``).

One cluster, one user, one current context: enough for kubectl, the ``kubernetes`` client and
kopf. With ``ca_pem`` the cluster entry carries ``certificate-authority-data`` so clients
verify the apiserver (never ``insecure-skip-tls-verify``); the user carries a client
certificate (``client-certificate-data``/``client-key-data``) or a bearer ``token``.
Everything is embedded, so a file is self-contained and can be copied. Neighbours:
``pki.cluster`` (the certificates), ``client.rest.load_kubeconfig`` (the reader).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig_dict(server: str, *, name: str = "controlplane", namespace: str = "default",
                    ca_pem: bytes | None = None, cert_pem: bytes | None = None, key_pem: bytes | None = None,
                    token: str | None = None, user: str | None = None) -> dict:
    cluster: dict = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = _b64(ca_pem)
    creds: dict = {}
    if cert_pem and key_pem:
        creds["client-certificate-data"] = _b64(cert_pem)
        creds["client-key-data"] = _b64(key_pem)
    if token:
        creds["token"] = token
    uname = user or name
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": uname, "user": creds}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": uname, "namespace": namespace}}],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(path: Path, server: str, *, name: str = "controlplane", ca_pem: bytes | None = None,
                     cert_pem: bytes | None = None, key_pem: bytes | None = None, token: str | None = None,
                     user: str | None = None, namespace: str = "default") -> Path:
    """Write atomically (a reader never sees half a file); mode 0600 (it holds a key)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    doc = kubeconfig_dict(server, name=name, namespace=namespace, ca_pem=ca_pem, cert_pem=cert_pem,
                          key_pem=key_pem, token=token, user=user)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(yaml.safe_dump(doc, sort_keys=False))
    os.replace(tmp, path)
    return path
