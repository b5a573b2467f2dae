"""System fields of ``ObjectMeta`` the apiserver fills: ``uid``, ``creationTimestamp`` (and the
other server timestamps, Kubernetes' ``metav1.Time`` at second precision) and names made from
``generateName``. Users: the strategies (create), the binding/CRD-status writes, patch."""

from __future__ import annotations

import datetime as _dt
import secrets
import time
import uuid

_now_cache: tuple[int, str] = (0, "")


def now_rfc3339() -> str:
    """The current UTC time at second precision (Kubernetes' metav1.Time), formatted once per second."""
    global _now_cache
    sec = int(time.time())
    if _now_cache[0] != sec:
        _now_cache = (sec, _dt.datetime.fromtimestamp(sec, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _now_cache[1]


def rfc3339(t: _dt.datetime) -> str:
    """``t`` (aware, UTC) as a metav1.Time string."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


_GEN_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def generate_name(prefix: str) -> str:
    """Kubernetes' generateName: prefix + 5 random characters from its alphabet."""
    return prefix + "".join(secrets.choice(_GEN_ALPHABET) for _ in range(5))
