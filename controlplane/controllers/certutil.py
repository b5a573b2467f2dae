"""Shared by the certificate controllers (``csrapproving``, ``csrsigning``): reading the PKCS#10
request of a CertificateSigningRequest and its subject (CN, sorted O), and its conditions."""

from __future__ import annotations

import base64

from cryptography import x509
from cryptography.x509.oid import NameOID


def parse_request(csr: dict) -> x509.CertificateSigningRequest | None:
    try:
        return x509.load_pem_x509_csr(base64.b64decode((csr.get("spec") or {}).get("request") or ""))
    except ValueError:
        return None


def subject(req: x509.CertificateSigningRequest) -> tuple[str, list[str]]:
    cn = [a.value for a in req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [a.value for a in req.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return (str(cn[0]) if cn else ""), sorted(str(o) for o in orgs)


def has_condition(csr: dict, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status", "True") == "True"
               for c in (csr.get("status") or {}).get("conditions") or [])
