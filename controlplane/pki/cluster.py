"""The cluster's PKI on disk (``DATA_DIR/pki``): what ``controlplane up`` creates on first start
and renews on every start, as k3s does.

Two CAs, as kubeadm lays them out: the cluster CA (``ca.crt``) signs the apiserver's and the
agents' serving certificates and every client certificate (users, components, nodes); the
etcd CA (``etcd/ca.crt``) signs etcd's server and peer certificates and the one client
certificate etcd accepts (``apiserver-etcd-client``), so no user certificate can talk to
etcd. ``sa.key``/``sa.pub`` sign and verify ServiceAccount tokens.

Renewal: a leaf certificate is issued again (new key) when it expires within
``RENEW_WITHIN`` (90 days, k3s' figure), was not signed by the current CA, or lacks a wanted
SAN (the hostname changed). CAs last 10 years and are not renewed (a warning is logged
within the window). Neighbours: ``pki.certs`` (the crypto), ``cmd/up.py`` (calls
``ensure`` and writes the kubeconfigs), ``etcd_process.EtcdTLS``.
"""

from __future__ import annotations

import datetime as _dt
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from controlplane.log import get_logger
from controlplane.pki import certs
from controlplane.pki.certs import CertKey

log = get_logger(__name__)

RENEW_WITHIN = _dt.timedelta(days=90)
_CA_NAMES = {"ca": "controlplane-ca", "etcd/ca": "controlplane-etcd-ca", "front-proxy-ca": "front-proxy-ca"}
DEFAULT_SERVICE_IP = "10.43.0.1"  # the `kubernetes` Service of the default 10.43.0.0/16 CIDR

# Identities of the components (Kubernetes' names); (file stem, CN, O)
ADMIN = ("admin", "kubernetes-admin", ("system:masters",))
CONTROLLER_MANAGER = ("controller-manager", "system:kube-controller-manager", ())
SCHEDULER = ("scheduler", "system:kube-scheduler", ())
KUBE_PROXY = ("kube-proxy", "system:kube-proxy", ())
COREDNS = ("coredns", "system:coredns", ())  # the cluster DNS (CoreDNS's role, docs/networking.md)
INGRESS = ("ingress-controller", "system:ingress-controller", ())  # the ingress controller (Traefik's role)
APISERVER_KUBELET_CLIENT = ("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ())
APISERVER_ETCD_CLIENT = "kube-apiserver-etcd-client"
# the resource metrics component (metrics-server's ClusterRole system:metrics-server is bound to
# this user) and Prometheus (system:monitoring reads /metrics; its role reads nodes/metrics)
METRICS_SERVER = ("metrics-server", "system:metrics-server", ())
PROMETHEUS = ("prometheus", "system:prometheus", ("system:monitoring",))
# the custom and external metrics component (prometheus-adapter's role: it reads the objects a
# metric describes and delegates authn/authz)
METRICS_ADAPTER = ("metrics-adapter", "system:prometheus-adapter", ())
# kube-aggregator's identity towards aggregated API servers (--proxy-client-cert-file), signed
# by a CA of its own (front-proxy-ca, kubeadm's layout) that those servers trust for
# X-Remote-User/X-Remote-Group headers only
FRONT_PROXY_CLIENT = ("front-proxy-client", "front-proxy-client", ())


def node_identity(node: str) -> tuple[str, str, tuple[str, ...]]:
    return (f"node-{node}", f"system:node:{node}", ("system:nodes",))


def apiserver_sans(hostname: str | None = None, service_ip: str = DEFAULT_SERVICE_IP,
                   extra: Iterable[str] = ()) -> list[str]:
    host = (hostname or socket.gethostname()).lower()
    return ["127.0.0.1", "localhost", "::1", host, service_ip, "kubernetes", "kubernetes.default",
            "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", *extra]


@dataclass
class ClusterPKI:
    """The files under ``dir``; ``ensure()`` makes them exist and be current."""

    dir: Path
    renew_within: _dt.timedelta = RENEW_WITHIN

    def __post_init__(self) -> None:
        self.dir = Path(self.dir)
        self._cas: dict[str, CertKey] = {}

    # -- paths ---------------------------------------------------------------------------
    def crt(self, stem: str) -> Path:
        return self.dir / f"{stem}.crt"

    def key(self, stem: str) -> Path:
        return self.dir / f"{stem}.key"

    @property
    def ca_file(self) -> Path:
        return self.crt("ca")

    @property
    def etcd_ca_file(self) -> Path:
        return self.crt("etcd/ca")

    @property
    def sa_key_file(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub_file(self) -> Path:
        return self.dir / "sa.pub"

    @property
    def ca_pem(self) -> bytes:
        return self.ca_file.read_bytes()

    # -- making sure ---------------------------------------------------------------------
    def ensure(self, *, hostname: str | None = None, service_ip: str = DEFAULT_SERVICE_IP,
               extra_sans: Iterable[str] = (), etcd_sans: Iterable[str] = ()) -> list[str]:
        """Create what is missing, renew what is due; returns the stems written. ``etcd_sans``:
        the addresses this etcd member advertises beyond loopback (peers check them)."""
        done: list[str] = []
        self.ca("ca", "controlplane-ca", done)
        self.ca("etcd/ca", "controlplane-etcd-ca", done)
        self.serving("apiserver", "kube-apiserver", apiserver_sans(hostname, service_ip, extra_sans), done=done)
        etcd_names = ["127.0.0.1", "localhost", "::1", *(s for s in etcd_sans if s not in ("127.0.0.1", "localhost"))]
        self.serving("etcd/server", "etcd-server", etcd_names, ca="etcd/ca", done=done)
        self.leaf("etcd/peer", "etcd-peer", (), etcd_names, ca="etcd/ca", server=True, client=True, done=done)
        self.client("apiserver-etcd-client", APISERVER_ETCD_CLIENT, ca="etcd/ca", done=done)
        for stem, cn, orgs in (ADMIN, CONTROLLER_MANAGER, SCHEDULER, KUBE_PROXY, COREDNS, APISERVER_KUBELET_CLIENT,
                               METRICS_SERVER, PROMETHEUS, INGRESS, METRICS_ADAPTER):
            self.client(stem, cn, orgs, done=done)
        self.ca("front-proxy-ca", "front-proxy-ca", done)
        self.client(*FRONT_PROXY_CLIENT, ca="front-proxy-ca", done=done)
        self.service_account_key(done)
        if done:
            log.info("pki written", dir=str(self.dir), files=done)
        return done

    def ca(self, stem: str = "ca", cn: str = "", done: list[str] | None = None) -> CertKey:
        if stem in self._cas:
            return self._cas[stem]
        crt, key = self.crt(stem), self.key(stem)
        if crt.exists() and key.exists():
            ck = CertKey.read(crt, key)
            if certs.remaining(ck.cert) < self.renew_within:
                log.warning("CA certificate expires soon; leaf certificates cannot outlive it", ca=str(crt),
                            not_after=ck.cert.not_valid_after_utc.isoformat())
        else:
            ck = certs.new_ca(cn or _CA_NAMES.get(stem, stem))
            ck.write(crt, key)
            if done is not None:
                done.append(stem)
        self._cas[stem] = ck
        return ck

    def chain(self, ca: str = "ca") -> bytes:
        """The certificates a leaf of ``ca`` is served with after it: the CA file's certificates
        that are not self-signed (none for the CA ``up`` makes; the cross-signed CA and its
        intermediates after ``certificate rotate-ca``, so that what trusts only the previous CA
        still verifies the leaf)."""
        return b"".join(certs.cert_pem(c) for c in certs.load_certs(self.crt(ca).read_bytes())
                        if not (c.subject == c.issuer and certs.signed_by(c, c)))

    def _due(self, stem: str, ca: str, sans: Iterable[str], cn: str, orgs: Iterable[str]) -> bool:
        crt, key = self.crt(stem), self.key(stem)
        if not (crt.exists() and key.exists()):
            return True
        cert = certs.load_cert(crt.read_bytes())
        if certs.remaining(cert) < self.renew_within:
            return True
        if not certs.signed_by(cert, self.ca(ca).cert):
            return True
        if not set(s for s in sans if s) <= certs.sans_of(cert):
            return True
        return certs.subject_user(cert) != (cn, list(orgs))

    def leaf(self, stem: str, cn: str, orgs: Iterable[str], sans: Iterable[str], *, ca: str = "ca",
             server: bool = False, client: bool = False, done: list[str] | None = None) -> CertKey:
        sans, orgs = list(sans), list(orgs)
        if self._due(stem, ca, sans, cn, orgs):
            ck = certs.issue(self.ca(ca), cn, orgs=orgs, sans=sans, server=server, client=client)
            certs.write_file(self.key(stem), ck.key_pem, 0o600)
            certs.write_file(self.crt(stem), ck.cert_pem + self.chain(ca), 0o644)
            if done is not None:
                done.append(stem)
            return ck
        return CertKey.read(self.crt(stem), self.key(stem))

    def serving(self, stem: str, cn: str, sans: Iterable[str], *, ca: str = "ca",
                done: list[str] | None = None) -> CertKey:
        return self.leaf(stem, cn, (), sans, ca=ca, server=True, done=done)

    def client(self, stem: str, cn: str, orgs: Iterable[str] = (), *, ca: str = "ca",
               done: list[str] | None = None) -> CertKey:
        return self.leaf(stem, cn, orgs, (), ca=ca, client=True, done=done)

    def node_client(self, node: str) -> CertKey:
        stem, cn, orgs = node_identity(node)
        return self.client(stem, cn, orgs)

    def node_serving(self, node: str, addresses: Iterable[str]) -> CertKey:
        return self.serving(f"node-{node}-serving", f"system:node:{node}", [node, *addresses])

    def user_cert(self, user: str, groups: Iterable[str] = (), *, days: int = certs.LEAF_DAYS) -> CertKey:
        """A client certificate for any user (not stored): how to make a user."""
        return certs.issue(self.ca("ca"), user, orgs=list(groups), client=True, days=days)

    def service_account_key(self, done: list[str] | None = None) -> bytes:
        if not self.sa_key_file.exists():
            k = certs.new_rsa_key()
            certs.write_file(self.sa_key_file, certs.key_pem(k), 0o600)
            certs.write_file(self.sa_pub_file, certs.public_pem(k), 0o644)
            if done is not None:
                done.append("sa")
        elif not self.sa_pub_file.exists():
            k = certs.load_key(self.sa_key_file.read_bytes())
            certs.write_file(self.sa_pub_file, certs.public_pem(k), 0o644)
        return self.sa_key_file.read_bytes()
