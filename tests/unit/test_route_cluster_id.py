"""What names a cluster in the host's route tags (``routes.cluster_id``): the hash of its CA's
public key, the same for every server and agent whichever apiserver URL they use; read from a
kubeconfig (``kubeconfig_ca_pem``) and, before a server starts, from its data dir or a ``K10``
join token (``up._route_cluster_id``)."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest
import yaml

from controlplane.client.rest import kubeconfig_ca_pem
from controlplane.cmd.up import _route_cluster_id
from controlplane.network.addressing import ClusterNetworks
from controlplane.network.routes import cluster_id
from controlplane.pki import certs, servertoken

CA = certs.new_ca("test-ca")
CA_PEM = certs.cert_pem(CA.cert)
OTHER_PEM = certs.cert_pem(certs.new_ca("other-ca").cert)


@pytest.mark.parametrize("ca,fallback,expected", [
    (CA_PEM, "https://127.0.0.1:6443", servertoken.ca_hash(CA_PEM)),
    (CA_PEM, "https://127.0.0.1:7443", servertoken.ca_hash(CA_PEM)),   # another server of the cluster: same
    (None, "https://127.0.0.1:6443", "https://127.0.0.1:6443"),       # no CA (plain http): the URL
    (b"not a certificate", "http://x", "http://x"),
], ids=["ca", "ca-other-server", "no-ca", "garbage"])
def test_cluster_id(ca, fallback, expected):
    assert cluster_id(ca, fallback) == expected


def test_servers_of_one_cluster_share_the_tag_and_clusters_differ():
    nets = ClusterNetworks.parse("10.42.0.0/16", "10.43.0.0/16")
    a = nets.cluster_tag(cluster_id(CA_PEM, "https://127.0.0.1:6443"))
    assert a == nets.cluster_tag(cluster_id(CA_PEM, "https://127.0.0.1:7443"))
    assert a != nets.cluster_tag(cluster_id(OTHER_PEM, "https://127.0.0.1:6443"))


def _kubeconfig(tmp_path, cluster: dict) -> str:
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
           "clusters": [{"name": "other", "cluster": {"server": "https://o", "certificate-authority-data":
                                                       base64.b64encode(OTHER_PEM).decode()}},
                        {"name": "k", "cluster": {"server": "https://127.0.0.1:6443", **cluster}}],
           "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}], "users": [{"name": "u", "user": {}}]}
    p = tmp_path / "kubeconfig"
    p.write_text(yaml.safe_dump(cfg))
    return str(p)


def test_kubeconfig_ca_pem(tmp_path):
    (tmp_path / "ca.crt").write_bytes(CA_PEM)
    assert kubeconfig_ca_pem(_kubeconfig(tmp_path, {"certificate-authority-data": base64.b64encode(CA_PEM).decode()})) == CA_PEM
    assert kubeconfig_ca_pem(_kubeconfig(tmp_path, {"certificate-authority": str(tmp_path / "ca.crt")})) == CA_PEM
    assert kubeconfig_ca_pem(_kubeconfig(tmp_path, {"certificate-authority": str(tmp_path / "gone.crt")})) is None
    assert kubeconfig_ca_pem(_kubeconfig(tmp_path, {})) is None


def _ctx(tmp_path, with_ca: bool):
    ca_file = tmp_path / "pki" / "ca.crt"
    if with_ca:
        ca_file.parent.mkdir(parents=True, exist_ok=True)
        ca_file.write_bytes(CA_PEM)
    return SimpleNamespace(server="https://127.0.0.1:6443", pki=SimpleNamespace(ca_file=ca_file, ca_pem=CA_PEM))


HASH = servertoken.ca_hash(CA_PEM)


@pytest.mark.parametrize("with_ca,token,expected", [
    (True, None, HASH),                                                     # a started server: its CA
    (True, "K10" + "0" * 64 + "::server:pw", HASH),                         # its CA wins over a token
    (False, "K10" + HASH.removeprefix("sha256:") + "::server:pw", HASH),    # joining: the token's pin
    (False, "server:pw", "https://127.0.0.1:6443"),                         # a short token: not known yet
    (False, "K10nothex::x", "https://127.0.0.1:6443"),                      # a bad token: not known
    (False, None, "https://127.0.0.1:6443"),                                # a new cluster
], ids=["own-ca", "own-ca-over-token", "k10-token", "short-token", "bad-token", "new"])
def test_route_cluster_id_before_start(tmp_path, with_ca, token, expected):
    assert _route_cluster_id(_ctx(tmp_path, with_ca), token) == expected
