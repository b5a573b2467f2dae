"""The one cluster a dashboard serves: the apiserver's URL and the CA that verifies it, read from
the cluster entry of a kubeconfig (``controlplane up`` passes its own) or given as flags. The
kubeconfig's user is never read: every request goes out with the signed-in user's credentials.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class ClusterInfo:
    server: str
    ca_pem: bytes | None = None

    @property
    def tls(self) -> bool:
        return self.server.startswith("https://")

    @property
    def ws_server(self) -> str:
        return "wss://" + self.server[8:] if self.tls else "ws://" + self.server[7:]

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying client context (None for plain HTTP); client certificates are added per
        session (``Credentials.apply_to``)."""
        if not self.tls:
            return None
        if self.ca_pem:
            return ssl.create_default_context(cadata=self.ca_pem.decode())
        return ssl.create_default_context()

    @classmethod
    def from_kubeconfig(cls, path: Path, context: str | None = None) -> "ClusterInfo":
        cfg = yaml.safe_load(Path(path).read_text()) or {}
        clusters = {c["name"]: c.get("cluster") or {} for c in cfg.get("clusters") or []}
        contexts = {c["name"]: c.get("context") or {} for c in cfg.get("contexts") or []}
        name = context or cfg.get("current-context")
        if name and name in contexts:
            cluster = clusters.get(contexts[name].get("cluster"), {})
        elif clusters:
            cluster = next(iter(clusters.values()))
        else:
            raise ValueError(f"kubeconfig {path} names no cluster")
        ca: bytes | None = None
        if cluster.get("certificate-authority-data"):
            ca = base64.b64decode(cluster["certificate-authority-data"])
        elif cluster.get("certificate-authority"):
            ca = Path(cluster["certificate-authority"]).read_bytes()
        return cls(server=str(cluster["server"]).rstrip("/"), ca_pem=ca)

    @classmethod
    def from_flags(cls, server: str, ca_file: Path | None) -> "ClusterInfo":
        return cls(server=server.rstrip("/"), ca_pem=Path(ca_file).read_bytes() if ca_file else None)
