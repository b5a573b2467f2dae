"""The kubeconfigs ``controlplane up`` writes, one per identity, each verifying the apiserver
with the cluster CA and carrying its own client certificate:

- ``DATA_DIR/kubeconfig``: ``kubernetes-admin`` in ``system:masters`` (people, kubectl)
- ``DATA_DIR/kubeconfigs/controller-manager.kubeconfig``: ``system:kube-controller-manager``
- ``DATA_DIR/kubeconfigs/scheduler.kubeconfig``: ``system:kube-scheduler``
- ``DATA_DIR/kubeconfigs/kube-proxy.kubeconfig``: ``system:kube-proxy`` (the agent's service proxy)
- ``DATA_DIR/kubeconfigs/coredns.kubeconfig``: ``system:coredns`` (the cluster DNS)
- ``DATA_DIR/kubeconfigs/ingress-controller.kubeconfig``: ``system:ingress-controller`` (the
  ingress controller)
- ``DATA_DIR/kubeconfigs/metrics-server.kubeconfig``: ``system:metrics-server``
- ``DATA_DIR/kubeconfigs/metrics-adapter.kubeconfig``: ``system:prometheus-adapter``
- ``DATA_DIR/kubeconfigs/node-<name>.kubeconfig``: ``system:node:<name>`` in ``system:nodes``

``user_kubeconfig`` makes one for any user and groups (``controlplane kubeconfig --user``,
the test fixtures' ``as_user``). Neighbours: ``pki.cluster``, ``controlplane.kubeconfig``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from controlplane.kubeconfig import write_kubeconfig
from controlplane.pki.certs import CertKey
from controlplane.pki.cluster import (
    ADMIN, CONTROLLER_MANAGER, COREDNS, INGRESS, KUBE_PROXY, METRICS_ADAPTER, METRICS_SERVER, SCHEDULER, ClusterPKI,
)


def _write(path: Path, server: str, pki: ClusterPKI, ck: CertKey, user: str) -> Path:
    return write_kubeconfig(path, server, ca_pem=pki.ca_pem, cert_pem=ck.cert_pem, key_pem=ck.key_pem, user=user)


def write_component_kubeconfigs(pki: ClusterPKI, server: str, data_dir: Path,
                                nodes: Iterable[str] = ()) -> dict[str, Path]:
    data_dir = Path(data_dir)
    out: dict[str, Path] = {}
    stem, cn, orgs = ADMIN
    out["admin"] = _write(data_dir / "kubeconfig", server, pki, pki.client(stem, cn, orgs), cn)
    for stem, cn, orgs in (CONTROLLER_MANAGER, SCHEDULER, KUBE_PROXY, COREDNS, METRICS_SERVER, INGRESS, METRICS_ADAPTER):
        out[stem] = _write(data_dir / "kubeconfigs" / f"{stem}.kubeconfig", server, pki, pki.client(stem, cn, orgs), cn)
    for node in nodes:
        out[f"node-{node}"] = node_kubeconfig(pki, server, data_dir, node)
    return out


def node_kubeconfig(pki: ClusterPKI, server: str, data_dir: Path, node: str) -> Path:
    return _write(Path(data_dir) / "kubeconfigs" / f"node-{node}.kubeconfig", server, pki, pki.node_client(node),
                  f"system:node:{node}")


def user_kubeconfig(pki: ClusterPKI, server: str, path: Path, user: str, groups: Iterable[str] = (),
                    days: int = 365) -> Path:
    """A kubeconfig for ``user`` in ``groups`` with a fresh client certificate (not stored)."""
    return _write(Path(path), server, pki, pki.user_cert(user, groups, days=days), user)
