"""One resource's value transformer: writes with the first provider, reads with whichever
provider's prefix the stored bytes carry (``identity`` reads unprefixed bytes) and says
whether the value is *stale* -- not written with the current first provider and key --
so the persistence layer writes it again on the next update even when nothing changed.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.persistence.encryption.providers import ENC_PREFIX, DecryptError, Identity, Provider


class Transformer:
    def __init__(self, providers: list[Any]) -> None:
        self.providers = providers
        self.write_provider = providers[0]
        self.encrypting = not isinstance(providers[0], Identity)

    def to_storage(self, plaintext: bytes, context: bytes) -> bytes:
        return self.write_provider.encrypt(plaintext, context)

    def from_storage(self, stored: bytes, context: bytes) -> tuple[bytes, bool]:
        """(plaintext, stale); raises ``DecryptError`` for data no provider can read."""
        if stored.startswith(ENC_PREFIX):
            for i, p in enumerate(self.providers):
                if isinstance(p, Provider):
                    m = p.match(stored)
                    if m is not None:
                        key, payload = m
                        plain = p.decrypt(key, payload, context)
                        return plain, (i != 0 or key is not p.keys[0])
            raise DecryptError("no matching prefix found")
        if any(isinstance(p, Identity) for p in self.providers):
            return stored, self.encrypting
        raise DecryptError("identity transformer tried to read encrypted data")
