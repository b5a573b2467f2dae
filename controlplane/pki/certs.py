"""Certificates and keys with PyPI ``cryptography``: a self-signed CA, serving certificates
(with DNS and IP SANs) and client certificates (CN = user, O = groups) signed by it.

Keys are ECDSA P-256 (what k3s uses: small, fast to make, cheap TLS handshakes); the
ServiceAccount signing key is RSA 2048 (RS256 is what every JWT consumer of Kubernetes'
OIDC discovery expects). Everything is PEM on disk, private keys mode 0600 and written
atomically, so a reader never sees half a file. Neighbours: ``pki.cluster`` (the cluster's
files and their renewal), ``controlplane.kubeconfig`` (embeds them), the authenticators
(``apiserver/authentication``) that read users out of client certificates.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

CA_DAYS = 3650
LEAF_DAYS = 365
BACKDATE = _dt.timedelta(minutes=5)  # tolerate small clock differences between machines


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def new_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_key(data: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    assert isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
    return key


def load_cert(data: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data)


def load_certs(data: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(data)


@dataclass
class CertKey:
    """A certificate and its private key (both parsed)."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        return cert_pem(self.cert)

    @property
    def key_pem(self) -> bytes:
        return key_pem(self.key)

    def write(self, cert_path: Path, key_path: Path) -> None:
        write_file(key_path, self.key_pem, 0o600)
        write_file(cert_path, self.cert_pem, 0o644)

    @classmethod
    def read(cls, cert_path: Path, key_path: Path) -> "CertKey":
        return cls(load_cert(Path(cert_path).read_bytes()), load_key(Path(key_path).read_bytes()))


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with ``mode`` from the start (a key is never world-readable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _name(cn: str, orgs: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def new_ca(cn: str, *, days: int = CA_DAYS, key: PrivateKey | None = None) -> CertKey:
    """A self-signed CA (basicConstraints CA:true, keyCertSign + cRLSign)."""
    key = key or new_ec_key()
    t = now()
    name = _name(cn)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(t - BACKDATE).not_valid_after(t + _dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertKey(cert, key)


def split_sans(sans: Iterable[str]) -> list[x509.GeneralName]:
    """``["127.0.0.1", "localhost", "::1"]`` -> IP and DNS general names (deduplicated, ordered)."""
    out: list[x509.GeneralName] = []
    seen: set[str] = set()
    for s in sans:
        if not s or s in seen:
            continue
        seen.add(s)
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(s)))
        except ValueError:
            out.append(x509.DNSName(s))
    return out


def issue(ca: CertKey, cn: str, *, orgs: Iterable[str] = (), sans: Iterable[str] = (), server: bool = False,
          client: bool = False, days: int = LEAF_DAYS, key: PrivateKey | None = None,
          public_key=None) -> CertKey:  # type: ignore[no-untyped-def]
    """A leaf certificate signed by ``ca``: serving (``server``, with ``sans``), client
    (``client``: CN = user, O = groups) or both (etcd peers). ``public_key`` signs a key the
    caller does not hold (a CertificateSigningRequest); the returned ``key`` is then None."""
    if public_key is None:
        key = key or new_ec_key()
        public_key = key.public_key()
    t = now()
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, orgs)).issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(t - BACKDATE)
        .not_valid_after(min(t + _dt.timedelta(days=days), ca.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    names = split_sans(sans)
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = b.sign(ca.key, hashes.SHA256())
    return CertKey(cert, key)  # type: ignore[arg-type]


def subject_user(cert: x509.Certificate) -> tuple[str, list[str]]:
    """(CN, [O, ...]) of a certificate's subject: Kubernetes' user name and groups."""
    cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return (str(cn[0]) if cn else ""), [str(o) for o in orgs]


def sans_of(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n) for n in ext.get_values_for_type(x509.DNSName)} | \
        {str(n) for n in ext.get_values_for_type(x509.IPAddress)}


def remaining(cert: x509.Certificate) -> _dt.timedelta:
    return cert.not_valid_after_utc - now()


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Whether ``ca``'s key signed ``cert`` (a CA regenerated since makes old leaves stale)."""
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except (ValueError, TypeError, Exception):  # noqa: BLE001 - InvalidSignature and friends
        return False


def parse_csr(pem: bytes) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(pem)


def new_csr(key: PrivateKey, cn: str, orgs: Iterable[str] = (), sans: Iterable[str] = ()) -> bytes:
    """A PEM PKCS#10 request (what an agent sends in a CertificateSigningRequest)."""
    b = x509.CertificateSigningRequestBuilder().subject_name(_name(cn, orgs))
    names = split_sans(sans)
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
