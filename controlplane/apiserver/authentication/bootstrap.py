"""Bootstrap tokens (Kubernetes' ``bootstrap.kubernetes.io/token`` Secrets in ``kube-system``):
how an agent on another machine first reaches the apiserver (``controlplane agent --server
URL --token <id>.<secret>``) to ask for its node client certificate.

A token ``abcdef.0123456789abcdef`` is valid while the Secret ``bootstrap-token-abcdef`` exists,
holds the same ``token-secret``, allows ``usage-bootstrap-authentication``, is not expired
(``expiration``, RFC 3339) and not being deleted. The user is ``system:bootstrap:<id>`` in
``system:bootstrappers`` plus the Secret's ``auth-extra-groups``. ``new_token_secret`` makes
such a Secret (``controlplane token create``).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hmac
import re
import secrets
import string
from typing import Any

from controlplane.apiserver.authentication.serviceaccount import Getter
from controlplane.machinery.userinfo import BOOTSTRAPPERS, UserInfo

TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
GROUP_RE = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")
SECRET_TYPE = "bootstrap.kubernetes.io/token"
SECRET_PREFIX = "bootstrap-token-"
NAMESPACE = "kube-system"
_ALPHABET = string.ascii_lowercase + string.digits


def new_token() -> str:
    pick = lambda n: "".join(secrets.choice(_ALPHABET) for _ in range(n))  # noqa: E731
    return f"{pick(6)}.{pick(16)}"


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def new_token_secret(token: str, *, ttl: _dt.timedelta | None = _dt.timedelta(hours=24),
                     extra_groups: list[str] | None = None, description: str = "",
                     usages: tuple[str, ...] = ("authentication", "signing")) -> dict[str, Any]:
    m = TOKEN_RE.match(token)
    if not m:
        raise ValueError("a bootstrap token looks like [a-z0-9]{6}.[a-z0-9]{16}")
    for g in extra_groups or []:
        if not GROUP_RE.match(g):
            raise ValueError(f"extra group {g!r} must match {GROUP_RE.pattern}")
    data = {"token-id": _b64(m.group(1)), "token-secret": _b64(m.group(2))}
    for usage in usages:
        data[f"usage-bootstrap-{usage}"] = _b64("true")
    if ttl is not None:
        exp = (_dt.datetime.now(_dt.timezone.utc) + ttl).replace(microsecond=0)
        data["expiration"] = _b64(exp.isoformat().replace("+00:00", "Z"))
    if extra_groups:
        data["auth-extra-groups"] = _b64(",".join(extra_groups))
    if description:
        data["description"] = _b64(description)
    return {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {"name": SECRET_PREFIX + m.group(1), "namespace": NAMESPACE}, "data": data}


def _field(secret: dict[str, Any], key: str) -> str:
    v = (secret.get("data") or {}).get(key)
    if v is None:
        return ""
    try:
        return base64.b64decode(v).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


def _expired(value: str, now: _dt.datetime) -> bool:
    if not value:
        return False
    try:
        t = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return True  # unparseable: treated as expired, as Kubernetes does
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t <= now


async def authenticate(token: str, get: Getter, now: _dt.datetime | None = None) -> UserInfo | None:
    """The bootstrap user of ``token``, or None (not a bootstrap token, or not valid)."""
    m = TOKEN_RE.match(token)
    if not m:
        return None
    tid, tsecret = m.group(1), m.group(2)
    secret = await get("Secret", NAMESPACE, SECRET_PREFIX + tid)
    if secret is None or secret.get("type") != SECRET_TYPE:
        return None
    if (secret.get("metadata") or {}).get("deletionTimestamp"):
        return None
    if _field(secret, "token-id") != tid or not hmac.compare_digest(_field(secret, "token-secret"), tsecret):
        return None
    if _field(secret, "usage-bootstrap-authentication") != "true":
        return None
    if _expired(_field(secret, "expiration"), now or _dt.datetime.now(_dt.timezone.utc)):
        return None
    groups = [BOOTSTRAPPERS]
    for g in _field(secret, "auth-extra-groups").split(","):
        g = g.strip()
        if g and GROUP_RE.match(g):
            groups.append(g)
    return UserInfo.make(f"system:bootstrap:{tid}", groups)
