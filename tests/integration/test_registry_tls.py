"""The local registry as ``controlplane up`` runs it: HTTPS with the cluster CA, and only clients
presenting a cluster certificate may use it (``/v2/_catalog`` without one fails); the image
puller pulls with a node's certificate."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

import pytest

from controlplane.images.puller import Puller
from controlplane.images.reference import Mirrors, parse
from controlplane.images.registry import LocalRegistry, RegistryTLS
from controlplane.images.store import ImageStore
from controlplane.pki.cluster import ClusterPKI

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def tls_registry(tmp_path):
    pki = ClusterPKI(tmp_path / "pki")
    pki.ensure(hostname="h")
    pki.serving("registry", "controlplane-registry", ["127.0.0.1", "localhost"])
    reg = LocalRegistry(tmp_path / "registry", tls=RegistryTLS(pki.crt("registry"), pki.key("registry"), pki.ca_file,
                                                                pki.crt("admin"), pki.key("admin")))
    reg.start(seed=True)
    yield reg, pki
    reg.stop()


def test_catalog_needs_a_cluster_certificate(tls_registry):
    reg, pki = tls_registry
    assert reg.url.startswith("https://")
    no_cert = ssl.create_default_context(cafile=str(pki.ca_file))
    with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
        urllib.request.urlopen(reg.url + "/v2/_catalog", timeout=5, context=no_cert).read()
    with pytest.raises((urllib.error.URLError, OSError)):
        urllib.request.urlopen(reg.url.replace("https", "http") + "/v2/_catalog", timeout=5).read()
    with urllib.request.urlopen(reg.url + "/v2/_catalog", timeout=5, context=reg.tls.client_context()) as r:
        assert b"library/busybox" in r.read()


async def test_puller_uses_node_certificate(tls_registry, tmp_path):
    reg, pki = tls_registry
    node = pki.node_client("n1")
    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    import tempfile, os
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "c"), "wb").write(node.cert_pem)
        open(os.path.join(d, "k"), "wb").write(node.key_pem)
        ctx.load_cert_chain(os.path.join(d, "c"), os.path.join(d, "k"))
    store = ImageStore(tmp_path / "images")
    rec = await Puller(store, Mirrors({"docker.io": [reg.url]}), ssl=ctx).pull(parse("busybox"))
    assert rec.id.startswith("sha256:") and rec.layers
