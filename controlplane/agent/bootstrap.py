"""Joining a cluster from another machine (the kubelet's TLS bootstrap):
``controlplane agent --server URL --token T [--ca-cert-hash sha256:<hex>]``, ``T`` a join
token ``K10<ca hash>::<id>.<secret>`` (a bootstrap token) or the server token
``K10<ca hash>::server:<password>`` (``pki.servertoken``; the hash pins the CA as
``--ca-cert-hash`` does).

1. Learn the cluster CA: read ``kube-public/cluster-info`` (anonymous, as kubeadm publishes it)
   and check the CA against ``--ca-cert-hash`` (kubeadm's pin of its public key); without a
   pin the CA is trusted on first use and a warning is logged.
2. With the bootstrap token, create a ``CertificateSigningRequest`` for
   ``CN=system:node:<name>, O=system:nodes`` (signer
   ``kubernetes.io/kube-apiserver-client-kubelet``) and wait until the controller-manager's
   approver and signer filled in the certificate.
3. Write ``<root>/pki/node.kubeconfig`` (CA, certificate, key): from then on the agent is
   ``system:node:<name>``; later starts reuse it and ask for a new certificate (as the node
   itself, ``selfnodeclient``) when less than 20% of its lifetime is left.
4. The same way, a serving certificate for its own port (``kubernetes.io/kubelet-serving``,
   SANs: node name and address), so the apiserver can verify the agent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
import time
from pathlib import Path

import yaml

from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.kubeconfig import write_kubeconfig
from controlplane.log import get_logger
from controlplane.pki import certs, servertoken

log = get_logger(__name__)
CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
SERVING_SIGNER = "kubernetes.io/kubelet-serving"
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


class BootstrapError(Exception):
    pass


def ca_hash(ca_pem: bytes) -> str:
    """kubeadm's pin, the CA hash of the join token (``pki.servertoken``)."""
    return servertoken.ca_hash(ca_pem)


async def fetch_ca(server: str, pin: str | None) -> bytes:
    """The cluster CA from ``kube-public/cluster-info``, checked against ``pin``."""
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    async with RestClient(server, ssl_ctx=insecure) as c:
        cm = await c.request("GET", "/api/v1/namespaces/kube-public/configmaps/cluster-info")
    kc = yaml.safe_load(((cm or {}).get("data") or {}).get("kubeconfig") or "") or {}
    clusters = kc.get("clusters") or []
    data = ((clusters[0] if clusters else {}).get("cluster") or {}).get("certificate-authority-data")
    if not data:
        raise BootstrapError("cluster-info has no certificate-authority-data")
    ca = base64.b64decode(data)
    got = ca_hash(ca)
    if pin:
        if got != pin:
            raise BootstrapError(f"cluster CA public key hash {got} does not match --ca-cert-hash {pin}")
    else:
        log.warning("no --ca-cert-hash: trusting the cluster CA on first use", ca_hash=got)
    return ca


def _context(ca: bytes) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca.decode())


async def request_certificate(client: RestClient, name_prefix: str, cn: str, orgs: list[str], signer: str,
                              usages: list[str], sans: list[str] = (), timeout: float = 120.0,
                              ) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) through a CertificateSigningRequest."""
    key = certs.new_ec_key()
    req = certs.new_csr(key, cn, orgs, sans)
    name = f"{name_prefix}-{hashlib.sha256(req).hexdigest()[:10]}"
    body = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {"request": base64.b64encode(req).decode(), "signerName": signer, "usages": usages}}
    try:
        await client.request("POST", CSR_PATH, body=body)
    except ApiStatusError as e:
        if not e.already_exists:
            raise BootstrapError(f"creating the certificate signing request failed: {e}") from e
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        csr = await client.request("GET", f"{CSR_PATH}/{name}")
        st = (csr or {}).get("status") or {}
        for c in st.get("conditions") or []:
            if c.get("type") in ("Denied", "Failed") and c.get("status", "True") == "True":
                raise BootstrapError(f"certificate signing request {name} {c['type'].lower()}: {c.get('message', '')}")
        if st.get("certificate"):
            return base64.b64decode(st["certificate"]), certs.key_pem(key)
        await asyncio.sleep(0.5)
    raise BootstrapError(f"certificate signing request {name} was not signed within {timeout:.0f}s "
                         "(is the controller-manager running with --cluster-signing-cert-file?)")


def _needs_renewal(kubeconfig: Path) -> bool:
    cfg = yaml.safe_load(kubeconfig.read_text()) or {}
    user = (cfg.get("users") or [{}])[0].get("user") or {}
    pem = base64.b64decode(user.get("client-certificate-data") or "")
    if not pem:
        return True
    cert = certs.load_cert(pem)
    total = cert.not_valid_after_utc - cert.not_valid_before_utc
    return certs.remaining(cert) < total * 0.2


async def node_kubeconfig(root: Path, server: str, node: str, token: str | None, pin: str | None) -> Path:
    """The node's kubeconfig under ``root``: made with the bootstrap token on first start,
    renewed with the node's own identity when due."""
    path = Path(root) / "pki" / "node.kubeconfig"
    if path.exists() and not _needs_renewal(path):
        return path
    if path.exists():
        client = RestClient.from_kubeconfig(path, user_agent=f"agent/{node}")
        cfg = yaml.safe_load(path.read_text())
        ca = base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"])
    else:
        if not token:
            raise BootstrapError("no node credentials yet: --token <bootstrap token> is needed to join")
        ca = await fetch_ca(server, pin)
        client = RestClient(server, headers={"Authorization": f"Bearer {token}"}, ssl_ctx=_context(ca),
                            user_agent=f"agent/{node} (bootstrap)")
    async with client:
        cert, key = await request_certificate(client, f"node-csr-{node}", f"system:node:{node}", ["system:nodes"],
                                              CLIENT_SIGNER, ["digital signature", "client auth"])
    write_kubeconfig(path, server, ca_pem=ca, cert_pem=cert, key_pem=key, user=f"system:node:{node}")
    log.info("node client certificate obtained", node=node, kubeconfig=str(path))
    return path


async def serving_certificate(client: RestClient, root: Path, node: str, addresses: list[str]) -> tuple[Path, Path]:
    """(cert file, key file) of the agent's serving certificate, requested when missing or due."""
    crt, key_file = Path(root) / "pki" / "serving.crt", Path(root) / "pki" / "serving.key"
    if crt.exists() and key_file.exists():
        cert = certs.load_cert(crt.read_bytes())
        total = cert.not_valid_after_utc - cert.not_valid_before_utc
        if certs.remaining(cert) > total * 0.2 and set(addresses) <= certs.sans_of(cert) | {node}:
            return crt, key_file
    cert, key = await request_certificate(client, f"node-serving-{node}", f"system:node:{node}", ["system:nodes"],
                                          SERVING_SIGNER, ["digital signature", "server auth"], [node, *addresses])
    certs.write_file(key_file, key, 0o600)
    certs.write_file(crt, cert, 0o644)
    return crt, key_file
