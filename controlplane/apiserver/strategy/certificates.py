"""CertificateSigningRequests (``certificates.k8s.io/v1``, ``pkg/registry/certificates``): on
create the requester's identity is recorded in ``spec.username``/``uid``/``groups``/``extra``
(whatever the client sent there is replaced) and the status starts empty; the spec never
changes afterwards. ``/approval`` may only change the Approved/Denied conditions (and needs
``approve`` on ``signers`` for the request's signer), ``/status`` the certificate and other
conditions.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.request import current
from controlplane.apiserver.strategy.base import Strategy

Obj = dict[str, Any]
GROUP = "certificates.k8s.io"
KNOWN_USAGES = {"signing", "digital signature", "content commitment", "key encipherment", "key agreement",
                "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
                "server auth", "client auth", "code signing", "email protection", "s/mime", "ipsec end system",
                "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc"}


def _invalid(obj: Obj, field: str, message: str) -> errors.ApiError:
    return errors.invalid("CertificateSigningRequest", (obj.get("metadata") or {}).get("name", ""),
                          [{"reason": "FieldValueInvalid", "field": field, "message": message}], GROUP)


class CertificateSigningRequestStrategy(Strategy):
    def prepare_for_create(self, info: ResourceInfo, obj: Obj) -> None:
        super().prepare_for_create(info, obj)
        spec = obj.setdefault("spec", {})
        ctx = current()
        for k in ("username", "uid", "groups", "extra"):
            spec.pop(k, None)
        if ctx is not None:
            u = ctx.user
            spec["username"] = u.name
            if u.uid:
                spec["uid"] = u.uid
            spec["groups"] = list(u.groups)
            if u.extra:
                spec["extra"] = u.extra_dict

    def validate(self, info: ResourceInfo, obj: Obj, *, strict: bool, old: Obj | None) -> list[str]:
        spec = obj.get("spec") or {}
        if old is not None and (old.get("spec") or {}) != spec:
            raise _invalid(obj, "spec", "field is immutable")
        if old is None:
            try:
                req = x509.load_pem_x509_csr(base64.b64decode(spec.get("request") or ""))
            except ValueError:
                raise _invalid(obj, "spec.request", "Invalid value: []byte{...}: PEM block type must be "
                                                    "CERTIFICATE REQUEST") from None
            if not req.is_signature_valid:
                raise _invalid(obj, "spec.request", "Invalid value: []byte{...}: signature verification failed")
            if not spec.get("signerName"):
                raise _invalid(obj, "spec.signerName", "Required value")
            if "/" not in spec["signerName"]:
                raise _invalid(obj, "spec.signerName", "Invalid value: must be a fully qualified domain and path "
                                                       "of the form 'example.com/signer-name'")
            if not spec.get("usages"):
                raise _invalid(obj, "spec.usages", "Required value")
            for i, u in enumerate(spec["usages"]):
                if u not in KNOWN_USAGES:
                    raise _invalid(obj, f"spec.usages[{i}]", f'Unsupported value: "{u}"')
            if spec.get("expirationSeconds") is not None and int(spec["expirationSeconds"]) < 600:
                raise _invalid(obj, "spec.expirationSeconds", "Invalid value: may not specify a duration less "
                                                              "than 600 seconds (10 minutes)")
        return []

    def prepare_approval(self, old: Obj, new: Obj) -> Obj:
        """``/approval``: the stored object with only the request's Approved/Denied conditions
        taken from ``new``; 403 without ``approve`` on the signer."""
        signer = (old.get("spec") or {}).get("signerName", "")
        ctx = current()
        if ctx is not None:
            domain = signer.split("/", 1)[0]
            if not (ctx.allowed("approve", group=GROUP, resource="signers", name=signer)
                    or ctx.allowed("approve", group=GROUP, resource="signers", name=f"{domain}/*")):
                raise errors.ApiError(403, "Forbidden", f'certificatesigningrequests.{GROUP} "{old["metadata"]["name"]}" '
                                                        f'is forbidden: user not permitted to approve requests with '
                                                        f'signerName "{signer}"',
                                      details={"name": old["metadata"]["name"], "group": GROUP,
                                               "kind": "certificatesigningrequests"})
        keep = [c for c in ((old.get("status") or {}).get("conditions") or []) if c.get("type") not in ("Approved", "Denied")]
        want = [c for c in ((new.get("status") or {}).get("conditions") or []) if c.get("type") in ("Approved", "Denied")]
        types = {c.get("type") for c in want}
        if {"Approved", "Denied"} <= types:
            raise _invalid(old, "status.conditions", "Approved and Denied conditions are mutually exclusive")
        return {**old, "status": {**(old.get("status") or {}), "conditions": keep + want}}
