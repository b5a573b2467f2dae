"""System fields of ``ObjectMeta`` the apiserver fills: ``uid`` and names made from
``generateName`` (timestamps are ``controlplane.machinery.timestamps``). User: the generic
create rules (``strategy/generic.py``)."""

from __future__ import annotations

import os
import secrets


def new_uid() -> str:
    """A random (version 4, RFC 4122 variant) UUID as ``str(uuid.uuid4())`` writes it, formatted
    straight from the 16 random bytes: every create takes one, and building a ``uuid.UUID``
    object only to print it was ~2 % of a busy apiserver worker's CPU."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_GEN_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def generate_name(prefix: str) -> str:
    """Kubernetes' generateName: prefix + 5 random characters from its alphabet."""
    return prefix + "".join(secrets.choice(_GEN_ALPHABET) for _ in range(5))
