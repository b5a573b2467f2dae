"""System fields of ``ObjectMeta`` the apiserver fills: ``uid`` and names made from
``generateName`` (timestamps are ``controlplane.machinery.timestamps``). User: the generic
create rules (``strategy/generic.py``)."""

from __future__ import annotations

import secrets
import uuid


def new_uid() -> str:
    return str(uuid.uuid4())


_GEN_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def generate_name(prefix: str) -> str:
    """Kubernetes' generateName: prefix + 5 random characters from its alphabet."""
    return prefix + "".join(secrets.choice(_GEN_ALPHABET) for _ in range(5))
