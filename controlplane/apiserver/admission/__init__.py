"""Admission: the checks a write passes after authorization and before it is stored.

Issue 14's item 4 builds the chain here (built-in mutating and validating plugins in
Kubernetes' order, webhooks, ValidatingAdmissionPolicy). What runs today is one built-in
validating plugin, NodeRestriction (``noderestriction.py``): ``validate`` is called by the
write endpoints with the final object (create: after the strategy prepared it; update and
patch: the new and the old object; delete and eviction: the stored object) and raises 403.
Who is asking comes from the request context (``meta.request.current()``: user, authorization
attributes, and an authorizer for further questions); writes without one (the apiserver's own
start-up writes) are not checked. See docs/security.md, "Where the admission chain plugs in".
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.admission import noderestriction
from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.request import current


def validate(operation: str, info: ResourceInfo, namespace: str | None, name: str | None,
             obj: dict[str, Any] | None, old: dict[str, Any] | None, subresource: str = "") -> None:
    """``operation``: ``create``, ``update`` or ``delete``. Raises ``ApiError`` 403 when a
    validating plugin refuses the write."""
    ctx = current()
    if ctx is None or ctx.user.node_name() is None:
        return  # (NodeRestriction concerns nodes only)
    name = name or ((obj or old or {}).get("metadata") or {}).get("name", "")
    msg = noderestriction.check(ctx.user, operation, info.group, info.plural, subresource, namespace or "",
                                name or "", obj, old)
    if msg:
        gr = f"{info.plural}.{info.group}" if info.group else info.plural
        raise errors.ApiError(403, "Forbidden", f'{gr} "{name}" is forbidden: {msg}',
                              details={"name": name, "group": info.group, "kind": info.plural})
