"""The cluster's certificates: a CA, serving and client certificates (``certs``) and their
layout and renewal under ``DATA_DIR/pki`` (``cluster``). See docs/security.md."""

from controlplane.pki.certs import CertKey
from controlplane.pki.cluster import ClusterPKI

__all__ = ["CertKey", "ClusterPKI"]
