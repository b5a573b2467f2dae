"""Encryption-at-rest providers with Kubernetes' stored formats, so data written here reads
the same way kube-apiserver's does:

- ``aescbc``: ``k8s:enc:aescbc:v1:<key name>:`` + 16-byte IV + AES-CBC(PKCS#7 padded data)
- ``aesgcm``: ``k8s:enc:aesgcm:v1:<key name>:`` + 12-byte nonce + AES-GCM(data), the storage
  key as additional authenticated data (a value copied to another key does not decrypt)
- ``secretbox``: ``k8s:enc:secretbox:v1:<key name>:`` + 24-byte nonce + XSalsa20-Poly1305 (PyNaCl)
- ``identity``: the plain bytes, no prefix.

All crypto is PyPI ``cryptography`` and ``PyNaCl``; none is hand-made. A provider holds one or
more named keys: the first encrypts, any decrypts (key rotation). Neighbours: ``config``
(EncryptionConfiguration -> transformers), ``transformer`` (per resource, stale detection).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.exceptions import InvalidTag

ENC_PREFIX = b"k8s:enc:"


class DecryptError(Exception):
    pass


@dataclass
class Key:
    name: str
    secret: bytes


class Provider:
    """Encrypts with its first key; decrypts values carrying ``prefix(key)``."""

    kind = ""

    def __init__(self, keys: list[Key]) -> None:
        if not keys:
            raise ValueError(f"{self.kind}: at least one key is required")
        self.keys = keys
        self._by_prefix = {self.prefix(k): k for k in keys}

    def prefix(self, key: Key) -> bytes:
        return f"k8s:enc:{self.kind}:v1:{key.name}:".encode()

    def match(self, data: bytes) -> tuple[Key, bytes] | None:
        """(key, payload) when ``data`` was written by this provider with one of its keys."""
        if not data.startswith(ENC_PREFIX + self.kind.encode() + b":"):
            return None
        for p, k in self._by_prefix.items():
            if data.startswith(p):
                return k, data[len(p):]
        return None

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        k = self.keys[0]
        return self.prefix(k) + self._seal(k.secret, plaintext, context)

    def decrypt(self, key: Key, payload: bytes, context: bytes) -> bytes:
        return self._open(key.secret, payload, context)

    def _seal(self, secret: bytes, plaintext: bytes, context: bytes) -> bytes:  # pragma: no cover
        raise NotImplementedError

    def _open(self, secret: bytes, payload: bytes, context: bytes) -> bytes:  # pragma: no cover
        raise NotImplementedError


class AESCBC(Provider):
    kind = "aescbc"

    def __init__(self, keys: list[Key]) -> None:
        for k in keys:
            if len(k.secret) not in (16, 24, 32):
                raise ValueError(f"aescbc key {k.name!r}: secret must be 16, 24 or 32 bytes, got {len(k.secret)}")
        super().__init__(keys)

    def _seal(self, secret: bytes, plaintext: bytes, context: bytes) -> bytes:
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
        enc = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
        return iv + enc.update(padded) + enc.finalize()

    def _open(self, secret: bytes, payload: bytes, context: bytes) -> bytes:
        if len(payload) < 32 or len(payload) % 16:
            raise DecryptError("the stored data is not a multiple of the AES block size")
        iv, body = payload[:16], payload[16:]
        dec = Cipher(algorithms.AES(secret), modes.CBC(iv)).decryptor()
        padded = dec.update(body) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError as e:
            raise DecryptError("invalid padding on input") from e


class AESGCM_(Provider):
    kind = "aesgcm"

    def __init__(self, keys: list[Key]) -> None:
        for k in keys:
            if len(k.secret) not in (16, 24, 32):
                raise ValueError(f"aesgcm key {k.name!r}: secret must be 16, 24 or 32 bytes, got {len(k.secret)}")
        super().__init__(keys)
        self._aead = {k.name: AESGCM(k.secret) for k in keys}

    def _seal(self, secret: bytes, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead[self.keys[0].name].encrypt(nonce, plaintext, context or None)

    def decrypt(self, key: Key, payload: bytes, context: bytes) -> bytes:
        if len(payload) < 12 + 16:
            raise DecryptError("the stored data was shorter than the required size")
        try:
            return self._aead[key.name].decrypt(payload[:12], payload[12:], context or None)
        except InvalidTag as e:
            raise DecryptError("cipher: message authentication failed") from e


class SecretBox(Provider):
    kind = "secretbox"

    def __init__(self, keys: list[Key]) -> None:
        from nacl.secret import SecretBox as _Box

        for k in keys:
            if len(k.secret) != 32:
                raise ValueError(f"secretbox key {k.name!r}: secret must be 32 bytes, got {len(k.secret)}")
        super().__init__(keys)
        self._boxes = {k.name: _Box(k.secret) for k in keys}

    def _seal(self, secret: bytes, plaintext: bytes, context: bytes) -> bytes:
        return bytes(self._boxes[self.keys[0].name].encrypt(plaintext))  # 24-byte nonce + box

    def decrypt(self, key: Key, payload: bytes, context: bytes) -> bytes:
        from nacl.exceptions import CryptoError

        if len(payload) < 24 + 16:
            raise DecryptError("the stored data was shorter than the required size")
        try:
            return self._boxes[key.name].decrypt(payload)
        except CryptoError as e:
            raise DecryptError("output array was not large enough for encryption") from e


class Identity:
    kind = "identity"

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        return plaintext


PROVIDERS: dict[str, type[Provider]] = {"aescbc": AESCBC, "aesgcm": AESGCM_, "secretbox": SecretBox}
