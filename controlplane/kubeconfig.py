"""Writing a kubeconfig for a plain-HTTP apiserver (``controlplane up`` and the test fixtures).

One cluster, one user without credentials, one current context: enough for kubectl, the
``kubernetes`` client and kopf. Neighbours: ``cmd/up.py``, ``tests/fixtures/apiserver.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml


def kubeconfig_dict(server: str, *, name: str = "controlplane", namespace: str = "default") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": name, "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(path: Path, server: str, *, name: str = "controlplane") -> Path:
    """Write atomically (a reader never sees half a file); mode 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(kubeconfig_dict(server, name=name), sort_keys=False))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
