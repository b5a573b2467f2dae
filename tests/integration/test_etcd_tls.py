"""etcd with TLS and client-certificate authentication (what ``controlplane up`` runs): etcdctl
without a client certificate, or with one from the cluster CA (a user's), is refused; the
apiserver's etcd client certificate works."""

from __future__ import annotations

import subprocess

import pytest

from controlplane.etcd_process import EtcdProcess, EtcdTLS
from controlplane.pki.cluster import ClusterPKI


@pytest.fixture
def tls_etcd(tmp_path):
    pki = ClusterPKI(tmp_path / "pki")
    pki.ensure(hostname="test")
    p = EtcdProcess(data_dir=tmp_path / "etcd", tls=EtcdTLS.from_pki(pki.dir))
    p.start_sync()
    yield p, pki
    p.stop()


def _etcdctl(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["etcdctl", "--endpoints", endpoint, "--dial-timeout", "1s", "--command-timeout", "3s",
                           *args], capture_output=True, text=True, timeout=30, env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"})


def test_etcd_refuses_clients_without_certificate(tls_etcd):
    etcd, pki = tls_etcd
    assert etcd.endpoint.startswith("https://")
    ok = _etcdctl(etcd.endpoint, *etcd.tls.etcdctl_args(), "put", "/k", "v")
    assert ok.returncode == 0, ok.stderr
    # the CA only: TLS works but etcd wants a client certificate
    no_cert = _etcdctl(etcd.endpoint, "--cacert", str(etcd.tls.ca), "get", "/k")
    assert no_cert.returncode != 0 and "v" not in no_cert.stdout
    # a user's certificate from the cluster CA is not one etcd trusts
    user = _etcdctl(etcd.endpoint, "--cacert", str(etcd.tls.ca), "--cert", str(pki.crt("admin")),
                    "--key", str(pki.key("admin")), "get", "/k")
    assert user.returncode != 0 and "v" not in user.stdout
    # plain http on the TLS port
    plain = _etcdctl(etcd.endpoint.replace("https", "http"), "get", "/k")
    assert plain.returncode != 0
