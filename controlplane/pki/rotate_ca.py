"""``k3s certificate rotate-ca`` for ``DATA_DIR/pki``: new CA certificates and keys, taken from
a directory laid out as ``DATA_DIR/pki`` (``ca.crt``/``ca.key``, ``etcd/ca.crt``/``.key``,
``front-proxy-ca.crt``/``.key``; a CA whose files are absent is kept), checked, then installed
in place of the current ones (which are copied to ``DATA_DIR/pki-<unix time>`` first).

The checks, as k3s's ``validateBootstrap`` makes them:

- the certificate parses and the key is its key (k3s: "cannot be loaded as X509KeyPair");
- it is a CA (``basicConstraints: CA:TRUE``; ``keyUsage``, when present, has ``keyCertSign``)
  and is valid now;
- unless ``force``: the bundle holds more than the new certificate (k3s: "new CA bundle contains
  only a single certificate but should include root or intermediate CA certificates"), and the
  new certificate chains to the current CA through the bundle's other certificates (k3s: "new
  CA cert cannot be verified using old CA chain"). That is a cross-signed CA: the bundle is the
  new CA certificate signed by the old CA's key, then the old root, so whatever trusts the old
  CA trusts what the new key signs, and the bundle installed as ``ca.crt`` still trusts the
  certificates the old key signed. A self-signed replacement breaks every existing trust
  (kubeconfigs handed out, agents' copies of ``ca.crt``, join tokens' CA pin): ``force`` only.

The chain walk is hand-written (a few lines): ``cryptography``'s verifier checks end-entity
certificates against a web PKI policy and refuses a CA certificate as the leaf.

Installed, the next ``controlplane up`` finds every leaf certificate "signed by another CA"
(``ClusterPKI._due``) and issues it again from the new key, and rewrites the kubeconfigs with
the new bundle; the ServiceAccount signing key (``sa.key``) is not rotated here (refused).
Neighbours: ``pki.cluster`` (issuing), ``pki.rotate`` (leaf rotation), ``cmd/certificate.py``.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from controlplane.pki import certs

CAS = ("ca", "etcd/ca", "front-proxy-ca")
MAX_CHAIN = 8


class RotateCAError(ValueError):
    pass


@dataclass
class NewCA:
    stem: str
    bundle: bytes  # the new ca.crt: the new certificate first, then its chain
    key: bytes
    self_signed: bool


def _spki(key_or_cert: object) -> bytes:
    pub = key_or_cert.public_key()  # type: ignore[attr-defined]
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _issuer_in(cert: x509.Certificate, pool: list[x509.Certificate]) -> x509.Certificate | None:
    for c in pool:
        if c.subject == cert.issuer and certs.signed_by(cert, c):
            return c
    return None


def chains_to(cert: x509.Certificate, intermediates: list[x509.Certificate],
              anchors: list[x509.Certificate]) -> bool:
    """Whether ``cert`` was signed, directly or through ``intermediates``, by an ``anchors`` key."""
    pool = list(intermediates)
    for _ in range(MAX_CHAIN):
        if _issuer_in(cert, anchors) is not None:
            return True
        nxt = _issuer_in(cert, pool)
        if nxt is None:
            return False
        pool.remove(nxt)
        cert = nxt
    return False


def validate(stem: str, old_bundle: bytes, new_bundle: bytes, new_key: bytes, *, force: bool = False,
             now: _dt.datetime | None = None) -> tuple[NewCA | None, list[str]]:
    """(the CA to install, or None when it is the current one unchanged; problems found)."""
    errs: list[str] = []
    try:
        new = certs.load_certs(new_bundle)
    except ValueError as e:
        return None, [f"{stem}.crt: not a PEM certificate bundle ({e})"]
    if not new:
        return None, [f"{stem}.crt: no certificate"]
    try:
        key = certs.load_key(new_key)
    except (ValueError, TypeError) as e:
        return None, [f"{stem}.key: not a PEM private key ({e})"]
    first = new[0]
    old = certs.load_certs(old_bundle)
    if old and first == old[0] and _spki(key) == _spki(old[0]):
        return None, []  # the CA in place: nothing to do
    if _spki(key) != _spki(first):
        errs.append(f"{stem}: new CA cert and key cannot be loaded as X509KeyPair: the key is not the "
                    "certificate's key")
    try:
        bc = first.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not bc.ca:
            errs.append(f"{stem}.crt: not a CA certificate (basicConstraints CA:FALSE)")
    except x509.ExtensionNotFound:
        errs.append(f"{stem}.crt: not a CA certificate (no basicConstraints extension)")
    try:
        ku = first.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.key_cert_sign:
            errs.append(f"{stem}.crt: keyUsage lacks keyCertSign: it cannot sign certificates")
    except x509.ExtensionNotFound:
        pass
    t = now or certs.now()
    if not first.not_valid_before_utc <= t < first.not_valid_after_utc:
        errs.append(f"{stem}.crt: not valid now (valid {first.not_valid_before_utc.isoformat()} to "
                    f"{first.not_valid_after_utc.isoformat()})")
    self_signed = first.subject == first.issuer and certs.signed_by(first, first)
    if not force:
        if len(new) == 1:
            errs.append(f"{stem}.crt: new CA bundle contains only a single certificate but should include root or "
                        "intermediate CA certificates (the current CA that cross-signed it)")
        if not chains_to(first, new[1:], old):
            why = "it is self-signed" if self_signed else "no certificate of the bundle leads to the current CA"
            errs.append(f"{stem}.crt: new CA cert cannot be verified using old CA chain: {why}; --force installs it "
                        "anyway, and everything that trusts the current CA stops trusting the cluster")
    return NewCA(stem, new_bundle, new_key, self_signed), errs


def collect(pki_dir: Path, new_dir: Path, *, force: bool = False) -> tuple[list[NewCA], list[str]]:
    """Every CA of ``new_dir`` validated against ``pki_dir``'s; (to install, problems)."""
    new_dir = Path(new_dir)
    if not new_dir.is_dir():
        return [], [f"{new_dir}: not a directory"]
    errs: list[str] = []
    if (new_dir / "sa.key").exists() or (new_dir / "service.key").exists():
        errs.append("sa.key: rotating the ServiceAccount signing key is not supported (remove it from the directory)")
    out: list[NewCA] = []
    found = 0
    for stem in CAS:
        crt, key = new_dir / f"{stem}.crt", new_dir / f"{stem}.key"
        if not crt.exists() and not key.exists():
            continue
        found += 1
        if not (crt.exists() and key.exists()):
            errs.append(f"{stem}: both {stem}.crt and {stem}.key are needed")
            continue
        ca, problems = validate(stem, (Path(pki_dir) / f"{stem}.crt").read_bytes(), crt.read_bytes(),
                                key.read_bytes(), force=force)
        errs += problems
        if ca is not None:
            out.append(ca)
    if not found:
        errs.append(f"{new_dir}: no CA certificate and key found (want {', '.join(f'{s}.crt/.key' for s in CAS)})")
    return out, errs


def install(pki_dir: Path, cas: list[NewCA], backup: Path) -> list[str]:
    """Copy the current files of ``cas`` to ``backup``, then write the new ones; the files written."""
    pki_dir = Path(pki_dir)
    backup.mkdir(mode=0o700, parents=True)
    for ca in cas:
        for suffix in (".crt", ".key"):
            src = pki_dir / f"{ca.stem}{suffix}"
            if src.exists():
                target = backup / f"{ca.stem}{suffix}"
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                shutil.copy2(src, target)
                with open(target, "rb") as f:
                    os.fsync(f.fileno())
    written: list[str] = []
    for ca in cas:  # only once every backup is on disk
        certs.write_file(pki_dir / f"{ca.stem}.key", ca.key, 0o600)
        certs.write_file(pki_dir / f"{ca.stem}.crt", ca.bundle, 0o644)
        written += [f"{ca.stem}.crt", f"{ca.stem}.key"]
    return written
