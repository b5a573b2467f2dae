"""The cluster's join token, shaped like k3s's: ``K10<ca hash>::<credential>``.

- ``K10`` marks the full ("secure") form; ``<ca hash>`` is the hex SHA-256 of the cluster CA's
  public key (kubeadm's ``--ca-cert-hash`` pin without ``sha256:``), so whoever holds the token
  checks the server's CA before sending it anything secret.
- ``<credential>`` is ``server:<password>`` for the **server token** (k3s's form: joins
  further servers and, as in k3s, agents) or a bootstrap token ``<id>.<secret>`` for agents
  only (``controlplane token create``, expiring).
- A short token (a bare password, or a bare ``<id>.<secret>``) is accepted where the CA can be
  pinned another way (``--ca-cert-hash``) or trusted on first use, as k3s does.

The server token's password authenticates the holder to the apiserver as
``controlplane:server`` in the groups ``controlplane:servers`` and ``system:bootstrappers``
(a line of the apiserver's ``--token-auth-file``). The **bootstrap data** a joining server
needs (the cluster and etcd CAs with their keys, the ServiceAccount key pair, the
encryption-at-rest configuration, the etcd client URLs) is kept in the Secret
``kube-system/controlplane-server-bootstrap``, encrypted with a key derived from the password
(PBKDF2-HMAC-SHA256, AES-256-GCM), as k3s keeps its bootstrap data in the datastore encrypted
with the token: RBAC lets only the servers' group read it, and only the token opens it.

Pure functions (no I/O but what the caller hands in). Neighbours: ``cmd/serverjoin.py`` (the
join), ``cmd/up.py`` (writes the token), ``agent/bootstrap.py`` (agents parse it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from controlplane.pki import certs

PREFIX = "K10"
SERVER_USER = "controlplane:server"
SERVERS_GROUP = "controlplane:servers"
BOOTSTRAPPERS_GROUP = "system:bootstrappers"
BOOTSTRAP_SECRET = "controlplane-server-bootstrap"  # in kube-system
BOOTSTRAP_KEY = "bootstrap"  # the Secret's data key
KDF_ITERATIONS = 100_000
_SALT = 16
_NONCE = 12


class TokenError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    ca_hash: str | None  # "sha256:<hex>" or None (short token)
    credential: str  # "server:<password>" or "<id>.<secret>"

    @property
    def is_server(self) -> bool:
        return self.credential.startswith("server:")

    @property
    def is_bootstrap(self) -> bool:
        head, dot, tail = self.credential.partition(".")
        return bool(dot) and len(head) == 6 and len(tail) == 16 and ":" not in self.credential

    @property
    def password(self) -> str:
        """What is sent as the bearer token: the server password, or the whole bootstrap token."""
        return self.credential.split(":", 1)[1] if self.is_server else self.credential

    def __str__(self) -> str:
        return format_token(self.ca_hash, self.credential)


def ca_hash(ca_pem: bytes) -> str:
    """``sha256:<hex>`` of the CA certificate's public key (kubeadm's pin)."""
    spki = certs.load_cert(ca_pem).public_key().public_bytes(serialization.Encoding.DER,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def format_token(ca_hash_: str | None, credential: str) -> str:
    if not ca_hash_:
        return credential
    return f"{PREFIX}{ca_hash_.removeprefix('sha256:')}::{credential}"


def parse(text: str) -> Token:
    """A full (``K10…::…``) or short token. A short one that is neither a bootstrap token nor
    ``server:<password>`` is taken as a server password (k3s: a bare ``--token`` value)."""
    text = text.strip()
    if not text:
        raise TokenError("empty token")
    if text.startswith(PREFIX) and "::" in text:
        head, cred = text[len(PREFIX):].split("::", 1)
        if len(head) != 64 or any(c not in "0123456789abcdef" for c in head.lower()):
            raise TokenError("token: the CA hash after K10 must be 64 hex digits")
        if not cred:
            raise TokenError("token: nothing after '::'")
        return _with_kind(Token("sha256:" + head.lower(), cred))
    return _with_kind(Token(None, text))


def _with_kind(t: Token) -> Token:
    if t.is_bootstrap or t.is_server:
        if t.is_server and not t.password:
            raise TokenError("token: empty server password")
        return t
    if "," in t.credential or any(c.isspace() for c in t.credential):
        raise TokenError("token: a password may not contain commas or spaces")
    return Token(t.ca_hash, "server:" + t.credential)


def new_server_token(ca_pem: bytes, password: str | None = None) -> Token:
    return Token(ca_hash(ca_pem), "server:" + (password or secrets.token_hex(16)))


def token_file_line(token: Token) -> str:
    """The apiserver's ``--token-auth-file`` line for the server password."""
    uid = hashlib.sha256(token.password.encode()).hexdigest()[:16]
    return f'{token.password},{SERVER_USER},{uid},"{SERVERS_GROUP},{BOOTSTRAPPERS_GROUP}"\n'


def _key(password: str, salt: bytes) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=KDF_ITERATIONS)
    return kdf.derive(password.encode())


def encrypt_bootstrap(password: str, data: dict[str, Any]) -> bytes:
    """salt | nonce | AES-256-GCM(JSON of ``data``) under PBKDF2(password, salt)."""
    salt, nonce = os.urandom(_SALT), os.urandom(_NONCE)
    plain = json.dumps(data, sort_keys=True).encode()
    return salt + nonce + AESGCM(_key(password, salt)).encrypt(nonce, plain, b"controlplane-bootstrap")


def decrypt_bootstrap(password: str, blob: bytes) -> dict[str, Any]:
    if len(blob) < _SALT + _NONCE + 16:
        raise TokenError("bootstrap data: too short")
    salt, nonce, ct = blob[:_SALT], blob[_SALT:_SALT + _NONCE], blob[_SALT + _NONCE:]
    try:
        plain = AESGCM(_key(password, salt)).decrypt(nonce, ct, b"controlplane-bootstrap")
    except InvalidTag as e:
        raise TokenError("bootstrap data does not open with this token (a token of another cluster?)") from e
    return json.loads(plain)


def files_payload(files: dict[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode() for k, v in sorted(files.items())}


def payload_files(payload: dict[str, str]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in payload.items()}
