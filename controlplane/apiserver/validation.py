"""Request validation for built-in kinds, as kube-apiserver 1.32 reports it.

Three stages, in Kubernetes' order:
1. decoding against the real schema (``k8s_schemas``, compiled by ``validation_decode``): a value of the wrong JSON type is a
   400 BadRequest (``json: cannot unmarshal …``), as is bad base64 in ``[]byte`` fields;
   unknown fields are a 400 ``strict decoding error: unknown field "spec.foo"`` under
   ``fieldValidation=Strict`` and warnings otherwise (returned to the caller);
2. object metadata (names, generateName, labels, annotations, finalizers);
3. kind-specific rules and immutable fields (``validation_rules.py``) -> 422 Invalid with
   causes ``{reason, message, field}``.
Custom resources are checked against their CRD schema by ``crd_schema.py``; here they only get
the metadata checks. Neighbours: ``defaults.py`` (runs first), the handlers (callers).
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver import validation_decode, validation_rules
from controlplane.apiserver.errors import ApiError, bad_request, invalid, too_large
from controlplane.apiserver.validation_rules import Errors

MAX_REQUEST_BYTES = 3 * 1024 * 1024


def check_body_size(body: bytes | str) -> None:
    """413 when a request body is over Kubernetes' 3 MiB limit."""
    if len(body) > MAX_REQUEST_BYTES:
        raise too_large(f"Request entity too large: limit is {MAX_REQUEST_BYTES}")


def validate(obj: dict[str, Any], gvk: tuple[str, str, str], *, strict: bool,
             is_update: bool = False, old: dict[str, Any] | None = None) -> list[str]:
    """Raise ApiError (400 or 422) when ``obj`` is not acceptable; return warnings otherwise."""
    group, version, kind = gvk
    if not isinstance(obj, dict):
        raise bad_request("the body of the request must be a JSON object")
    root = validation_decode.root_node(group, version, kind)
    warnings: list[str] = []
    if root is not None:
        unknown, type_error = validation_decode.decode(obj, root, kind)
        if type_error:
            raise bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: '
                              f"{type_error}")
        if unknown:
            msgs = [f'unknown field "{p}"' for p in unknown]
            if strict:
                raise bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: '
                                  f"strict decoding error: {', '.join(msgs)}")
            warnings.extend(msgs)
    errs = Errors()
    validation_rules.validate_metadata(obj, gvk, errs, is_update=is_update)
    validation_rules.validate_kind(obj, gvk, errs, is_update=is_update, old=old)
    if errs.causes:
        name = (obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName") or ""
        raise invalid(kind, name, errs.causes, group=group)
    return warnings


def validation_error(exc: ApiError) -> bool:
    """True for the errors this module raises (400 decode / 422 invalid)."""
    return exc.code in (400, 422)
