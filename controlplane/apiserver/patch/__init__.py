"""PATCH and server-side apply for the apiserver: pure functions over decoded objects.

Public API (called by the write endpoints and the strategies' managedFields step):

- ``apply_patch(live, body, content_type, gvk, *, is_custom) -> dict``: apply a
  ``application/json-patch+json`` (RFC 6902, ``json_patch.py``), ``application/merge-patch+json``
  (RFC 7386, ``merge_patch.py``) or ``application/strategic-merge-patch+json``
  (``strategic.py``, built-in kinds only; 415 on custom resources) body to a copy of ``live``.
- ``server_side_apply(live, applied, *, manager, force, gvk, is_custom, now, subresource="",
  schema=None) -> dict`` (``ssa.py``): ``application/apply-patch+yaml``.
- ``update_managed_fields(old, new, *, manager, operation, gvk, now, subresource="",
  schema=None) -> dict`` (``ssa.py``): managedFields bookkeeping for create/update/patch.

Errors are ``ApiError`` (``controlplane/apiserver/meta/errors.py``): 400 malformed body, 415
strategic merge on a custom resource, 422 a patch that does not apply, 409 apply conflicts.
Patch metadata comes from ``schema.py`` (Kubernetes 1.32 OpenAPI definitions, loaded once).
"""

from __future__ import annotations

import json
from typing import Any

from controlplane.apiserver.meta import errors
from controlplane.apiserver.patch import ssa
from controlplane.apiserver.patch.json_patch import apply_json_patch
from controlplane.apiserver.patch.merge_patch import merge_patch
from controlplane.apiserver.patch.schema import builtin_node
from controlplane.apiserver.patch.strategic import strategic_merge_patch

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = ("application/apply-patch+yaml", "application/apply-patch+json")
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH)


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise errors.bad_request(f"error decoding patch: {e}") from None


def apply_patch(live: dict[str, Any], body: bytes, content_type: str, gvk: tuple[str, str, str], *,
                is_custom: bool) -> dict[str, Any]:
    """Apply a PATCH body of the given media type to a copy of ``live`` (raises ApiError)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == STRATEGIC_PATCH and is_custom:
        raise errors.ApiError(
            415, "UnsupportedMediaType",
            f'the body of the request was in an unknown format - accepted media types include: '
            f'{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH[0]}')
    if media not in PATCH_TYPES:
        raise errors.ApiError(
            415, "UnsupportedMediaType",
            f'the body of the request was in an unknown format - accepted media types include: '
            f'{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_PATCH}, {APPLY_PATCH[0]}')
    patch = _decode(body)
    if media == JSON_PATCH:
        result = apply_json_patch(live, patch)
    elif media == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise errors.bad_request("merge patch body must be a JSON object")
        result = merge_patch(live, patch)
    else:
        result = strategic_merge_patch(live, patch, builtin_node(tuple(gvk)))  # type: ignore[arg-type]
    if not isinstance(result, dict):
        raise errors.ApiError(422, "Invalid", "the patched object is not a JSON object")
    return result


def server_side_apply(live: dict[str, Any] | None, applied: dict[str, Any], *, manager: str, force: bool,
                      gvk: tuple[str, str, str], is_custom: bool, now: str, subresource: str = "",
                      schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Server-side apply (see ``ssa.server_side_apply``)."""
    return ssa.server_side_apply(live, applied, manager=manager, force=force, gvk=gvk, is_custom=is_custom,
                                 now=now, subresource=subresource, schema=schema)


def update_managed_fields(old: dict[str, Any] | None, new: dict[str, Any], *, manager: str, operation: str,
                          gvk: tuple[str, str, str], now: str, subresource: str = "",
                          schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """managedFields bookkeeping for a non-apply write (see ``ssa.update_managed_fields``)."""
    return ssa.update_managed_fields(old, new, manager=manager, operation=operation, gvk=gvk, now=now,
                                     subresource=subresource, schema=schema)


__all__ = ["apply_patch", "server_side_apply", "update_managed_fields", "PATCH_TYPES", "APPLY_PATCH"]
