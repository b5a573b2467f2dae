"""Object validation for built-in kinds, as kube-apiserver 1.32 reports it.

Three stages, in Kubernetes' order:
1. decoding against the real schema (``discovery/k8s_schemas``, compiled by ``decode.py``): a
   value of the wrong JSON type is a 400 BadRequest (``json: cannot unmarshal …``), as is bad
   base64 in ``[]byte`` fields; unknown fields are a 400 ``strict decoding error: unknown field
   "spec.foo"`` under ``fieldValidation=Strict`` and warnings otherwise (returned to the caller);
2. object metadata (``metadata.py``: names, generateName, labels, annotations, finalizers);
3. kind-specific rules and immutable fields (``rules.py``) -> 422 Invalid with causes
   ``{reason, message, field}``.
Custom resources are checked against their CRD schema by ``crd/schema.py``; here they only get
the metadata checks. Caller: the strategies (``strategy/base.py``), after defaulting.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.meta.errors import bad_request, invalid
from controlplane.apiserver.meta.names import Errors
from controlplane.apiserver.validation import core, decode, metadata, rules


def check_decodable(obj: Any, gvk: tuple[str, str, str]) -> None:
    """Stage 1 alone, without unknown fields: a value of the wrong JSON type is a 400, as
    kube-apiserver's decoding refuses it before admission (the admission chain calls this
    before its mutating plugins read the object)."""
    group, version, kind = gvk
    if not isinstance(obj, dict):
        raise bad_request("the body of the request must be a JSON object")
    root = decode.root_node(group, version, kind)
    if root is not None:
        _, type_error = decode.decode(obj, root, kind)
        if type_error:
            raise bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: {type_error}')


def validate(obj: dict[str, Any], gvk: tuple[str, str, str], *, strict: bool,
             is_update: bool = False, old: dict[str, Any] | None = None, subresource: str = "") -> list[str]:
    """Raise ApiError (400 or 422) when ``obj`` is not acceptable; return warnings otherwise.
    ``subresource="ephemeralcontainers"`` (a pod's): its own update rules in place of the kind's."""
    group, version, kind = gvk
    if not isinstance(obj, dict):
        raise bad_request("the body of the request must be a JSON object")
    root = decode.root_node(group, version, kind)
    warnings: list[str] = []
    if root is not None:
        unknown, type_error = decode.decode(obj, root, kind)
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
    metadata.validate_metadata(obj, gvk, errs, is_update=is_update)
    if subresource == "ephemeralcontainers" and gvk[0] == "" and gvk[2] == "Pod":
        core.pod_ephemeral_containers(obj, errs, old or {})
    else:
        rules.validate_kind(obj, gvk, errs, is_update=is_update, old=old)
    if errs.causes:
        name = (obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName") or ""
        raise invalid(kind, name, errs.causes, group=group)
    return warnings

