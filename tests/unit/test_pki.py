"""The cluster PKI: CAs, serving and client certificates, renewal (pure, on a temp dir)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl

import pytest
from cryptography import x509

from controlplane.pki import certs
from controlplane.pki.cluster import ClusterPKI, apiserver_sans


@pytest.fixture
def pki(tmp_path):
    p = ClusterPKI(tmp_path / "pki")
    p.ensure(hostname="Host-A")
    return p


def test_layout_and_modes(pki):
    for stem in ("ca", "etcd/ca", "apiserver", "etcd/server", "etcd/peer", "apiserver-etcd-client", "admin",
                 "controller-manager", "scheduler", "kube-proxy", "apiserver-kubelet-client", "metrics-server",
                 "prometheus", "front-proxy-ca", "front-proxy-client"):
        assert pki.crt(stem).exists() and pki.key(stem).exists(), stem
        assert pki.key(stem).stat().st_mode & 0o077 == 0, f"{stem}.key is readable by others"
    assert pki.sa_key_file.stat().st_mode & 0o077 == 0 and pki.sa_pub_file.exists()


def test_apiserver_sans(pki):
    cert = certs.load_cert(pki.crt("apiserver").read_bytes())
    sans = certs.sans_of(cert)
    assert {"127.0.0.1", "localhost", "::1", "host-a", "10.43.0.1", "kubernetes.default.svc"} <= sans
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("10.43.0.1") in ext.get_values_for_type(x509.IPAddress)


@pytest.mark.parametrize("stem,cn,orgs,ca", [
    ("admin", "kubernetes-admin", ["system:masters"], "ca"),
    ("scheduler", "system:kube-scheduler", [], "ca"),
    ("controller-manager", "system:kube-controller-manager", [], "ca"),
    ("kube-proxy", "system:kube-proxy", [], "ca"),
    ("apiserver-etcd-client", "kube-apiserver-etcd-client", [], "etcd/ca"),
    ("metrics-server", "system:metrics-server", [], "ca"),
    ("prometheus", "system:prometheus", ["system:monitoring"], "ca"),
    ("front-proxy-client", "front-proxy-client", [], "front-proxy-ca"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_client_identities(pki, stem, cn, orgs, ca):
    cert = certs.load_cert(pki.crt(stem).read_bytes())
    assert certs.subject_user(cert) == (cn, orgs)
    assert certs.signed_by(cert, pki.ca(ca).cert)
    for other in {"ca", "etcd/ca", "front-proxy-ca"} - {ca}:  # valid for one trust domain only
        assert not certs.signed_by(cert, pki.ca(other).cert), f"{stem} must not be valid under {other}"


def test_node_identity(pki):
    ck = pki.node_client("n1")
    assert certs.subject_user(ck.cert) == ("system:node:n1", ["system:nodes"])


def test_ensure_is_idempotent_and_renews(tmp_path):
    p = ClusterPKI(tmp_path / "pki")
    assert "apiserver" in p.ensure(hostname="h")
    assert ClusterPKI(tmp_path / "pki").ensure(hostname="h") == []
    # a new hostname: the serving certificate gets it
    assert ClusterPKI(tmp_path / "pki").ensure(hostname="h2") == ["apiserver"]
    # nearing expiry (everything within 400 days is "near"): every leaf, not the CAs
    again = ClusterPKI(tmp_path / "pki", renew_within=dt.timedelta(days=400)).ensure(hostname="h2")
    assert "apiserver" in again and "admin" in again and "ca" not in again


def test_tls_handshake_with_issued_certs(pki, tmp_path):
    """The files work with Python's ssl as server and client (mutual TLS)."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(pki.crt("apiserver"), pki.key("apiserver"))
    server.load_verify_locations(pki.ca_file)
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(cafile=str(pki.ca_file))
    client.load_cert_chain(pki.crt("admin"), pki.key("admin"))
    a, b = ssl.MemoryBIO(), ssl.MemoryBIO()
    c, d = ssl.MemoryBIO(), ssl.MemoryBIO()
    s_obj = server.wrap_bio(a, b, server_side=True)
    c_obj = client.wrap_bio(c, d, server_hostname="localhost")
    for _ in range(10):
        for obj in (c_obj, s_obj):
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
        a.write(d.read())
        c.write(b.read())
    peer = s_obj.getpeercert()
    assert dict(x[0] for x in peer["subject"])["commonName"] == "kubernetes-admin"


def test_user_cert_and_csr(pki):
    ck = pki.user_cert("alice", ["dev", "ops"])
    assert certs.subject_user(ck.cert) == ("alice", ["dev", "ops"])
    key = certs.new_ec_key()
    csr = certs.parse_csr(certs.new_csr(key, "system:node:x", ["system:nodes"]))
    signed = certs.issue(pki.ca("ca"), "system:node:x", orgs=["system:nodes"], client=True, public_key=csr.public_key())
    assert signed.key is None and certs.signed_by(signed.cert, pki.ca("ca").cert)


def test_apiserver_sans_default_service_ip():
    assert "10.43.0.1" in apiserver_sans("h")
