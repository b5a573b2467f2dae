"""CSR signing controller (kube-controller-manager's ``csrsigning``): signs approved
CertificateSigningRequests of the built-in signers with the cluster CA
(``--cluster-signing-cert-file``/``--cluster-signing-key-file``, ``manager.cluster_signing``)
and writes the certificate to ``status.certificate``.

Signers: ``kubernetes.io/kube-apiserver-client`` and ``kube-apiserver-client-kubelet``
(client certificates: CN and O from the request, client auth), ``kubernetes.io/kubelet-serving``
(server auth with the request's SANs). The subject and SANs come from the request; the
lifetime is ``spec.expirationSeconds`` (at least 10 minutes) capped at one year. Requests of
other signers, denied or failed ones, and ones already signed are left alone.
"""

from __future__ import annotations

import base64
import datetime as _dt

from cryptography import x509

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.controllers.certutil import has_condition, parse_request, subject
from controlplane.log import get_logger
from controlplane.pki import certs
from controlplane.pki.certs import CertKey

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:certificate-controller (bootstrap_policy)
SERVICE_ACCOUNT = "certificate-controller"

log = get_logger(__name__)
CLIENT_SIGNERS = ("kubernetes.io/kube-apiserver-client", "kubernetes.io/kube-apiserver-client-kubelet")
SERVING_SIGNER = "kubernetes.io/kubelet-serving"


def sign(ca: CertKey, csr: dict) -> bytes | None:
    """The PEM certificate for an approved request, or None if this signer cannot sign it."""
    spec = csr.get("spec") or {}
    signer = spec.get("signerName")
    req = parse_request(csr)
    if req is None or not req.is_signature_valid:
        return None
    cn, orgs = subject(req)
    days = certs.LEAF_DAYS
    if spec.get("expirationSeconds"):
        days = max(600, int(spec["expirationSeconds"])) / 86400
    sans: list[str] = []
    try:
        ext = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [str(v) for v in ext.get_values_for_type(x509.DNSName)] + \
               [str(v) for v in ext.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    if signer in CLIENT_SIGNERS:
        ck = certs.issue(ca, cn, orgs=orgs, client=True, days=days, public_key=req.public_key())  # type: ignore[arg-type]
    elif signer == SERVING_SIGNER:
        ck = certs.issue(ca, cn, orgs=orgs, sans=sans, server=True, days=days, public_key=req.public_key())  # type: ignore[arg-type]
    else:
        return None
    return certs.cert_pem(ck.cert)


class CSRSigningController:
    def __init__(self, manager: Manager, ca: CertKey, *, workers: int = 1) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.ca = ca
        self.csrs = manager.informer(R.CERTIFICATESIGNINGREQUESTS)
        self.controller = Controller("csrsigning", self.reconcile, workers=workers)
        self.csrs.add_handler(lambda t, o, old: t != "DELETED" and self.controller.enqueue(o["metadata"]["name"]))
        manager.add(self.controller)

    async def reconcile(self, name: str) -> Result | None:
        csr = self.csrs.get(name)
        if csr is None or not has_condition(csr, "Approved") or has_condition(csr, "Denied") or has_condition(csr, "Failed"):
            return None
        if (csr.get("status") or {}).get("certificate"):
            return None
        pem = sign(self.ca, csr)
        if pem is None:
            return None
        body = {**csr, "status": {**(csr.get("status") or {}), "certificate": base64.b64encode(pem).decode()}}
        try:
            await self.client.update(R.CERTIFICATESIGNINGREQUESTS, body, subresource="status")
        except ApiStatusError as e:
            if e.not_found or e.conflict:
                return None
            raise
        log.info("csr signed", csr=name, signer=(csr.get("spec") or {}).get("signerName"),
                 not_after=_dt.datetime.now(_dt.timezone.utc).isoformat())
        return None


def setup(manager: Manager, workers: int = 1) -> CSRSigningController | None:
    signing = getattr(manager, "cluster_signing", None)
    if signing is None:
        log.info("csrsigning: no --cluster-signing-cert-file, not started")
        return None
    return CSRSigningController(manager, signing, workers=workers)
