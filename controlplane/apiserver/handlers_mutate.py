"""The rules every write goes through, whatever the verb: Kubernetes' "strategy" layer.

``prepare_create`` and ``prepare_update`` turn what a client sent into what gets stored:
identity and system fields (uid, creationTimestamp, generation), status only through
``/status``, defaults and validation (``defaults.py``, ``validation.py``, ``crd_schema.py``),
and managedFields (``patch/ssa.py``). ``handlers_write``/``handlers_delete``/``handlers_sub``
call them; nothing here touches storage.
"""

from __future__ import annotations

import contextvars
import copy
import importlib
from typing import Any, Callable

from controlplane.apiserver import errors
from controlplane.apiserver.handlers_common import name_causes
from controlplane.apiserver.registry import ResourceInfo
from controlplane.apiserver.store import new_uid, now_rfc3339

# Group/resources that carry metadata.generation (bumped on spec changes).
GENERATION_TRACKED = {
    ("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"), ("apps", "daemonsets"),
    ("batch", "jobs"), ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("policy", "poddisruptionbudgets"),
}
# Resources whose create keeps the client's status (the rest start with an empty status).
KEEP_STATUS_ON_CREATE = {("", "nodes"), ("", "events")}
# Warnings for the current request (unknown fields under fieldValidation=Warn), sent by
# app.dispatch as ``Warning: 299 - "..."`` headers.
WARNINGS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("warnings", default=None)


def warn(messages: list[str] | None) -> None:
    box = WARNINGS.get()
    if box is not None and messages:
        box.extend(m for m in messages if m not in box)


SYSTEM_META = ("uid", "creationTimestamp", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


_resolved: dict[tuple[str, str], Callable[..., Any] | None] = {}


def _optional(module: str, attr: str) -> Callable[..., Any] | None:
    """A sibling component's function, or None while that component is not part of the tree."""
    if (module, attr) in _resolved:
        return _resolved[(module, attr)]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            _resolved[(module, attr)] = None
            return None
        raise
    fn = _resolved[(module, attr)] = getattr(mod, attr, None)
    return fn


def tracks_generation(info: ResourceInfo) -> bool:
    return info.is_custom or (info.group, info.plural) in GENERATION_TRACKED


def check_type(info: ResourceInfo, obj: dict[str, Any], *, apply: bool = False) -> None:
    """The body's apiVersion/kind must name the addressed resource (filled in when absent)."""
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if not kind and not apply:
        obj["kind"] = kind = info.kind
    if not api_version and not apply:
        obj["apiVersion"] = api_version = info.api_version
    if kind != info.kind:
        raise errors.bad_request(f"the kind of the object ({kind}) does not match the resource ({info.kind})")
    if api_version != info.api_version:
        gv_group = api_version.rsplit("/", 1)[0] if "/" in (api_version or "") else ""
        if gv_group != info.group or not info.is_custom:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({info.api_version})")
    if not isinstance(obj.get("metadata", {}), dict):
        raise errors.bad_request("metadata must be an object")


def check_namespace(info: ResourceInfo, obj: dict[str, Any], namespace: str | None) -> None:
    meta = obj.setdefault("metadata", {})
    if info.namespaced:
        body_ns = meta.get("namespace")
        if body_ns and namespace and body_ns != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if not (namespace or body_ns):
            raise errors.bad_request("the namespace of the object must be set")
        meta["namespace"] = namespace or body_ns
    else:
        meta.pop("namespace", None)


def _spec_part(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    skip = {"metadata", "status"} if info.has("status") else {"metadata"}
    return {k: v for k, v in obj.items() if k not in skip and k not in ("apiVersion", "kind")}


def _defaults_and_validation(info: ResourceInfo, obj: dict[str, Any], *, strict: bool,
                             old: dict[str, Any] | None) -> dict[str, Any]:
    if info.is_custom:
        if info.schema is not None:
            prune = _optional("controlplane.apiserver.crd_schema", "validate_and_prune")
            if prune is not None:
                found: list[str] = []
                obj = prune(obj, info.schema, kind=info.kind, name=(obj.get("metadata") or {}).get("name", ""),
                            group=info.group, strict=strict, warnings=found)
                warn(found)
    else:
        apply_defaults = _optional("controlplane.apiserver.defaults", "apply_defaults")
        if apply_defaults is not None:
            obj = apply_defaults(obj, info.gvk)
    validate = _optional("controlplane.apiserver.validation", "validate")
    if validate is not None:  # built-ins: schema + rules; custom resources: metadata
        warn(validate(obj, info.gvk, strict=strict, is_update=old is not None, old=old))
    if info.is_custom:  # stored at the storage version ("None" conversion: apiVersion only)
        obj["apiVersion"] = f"{info.group}/{info.storage_version}"
    return obj


def managed_fields(info: ResourceInfo, old: dict[str, Any] | None, new: dict[str, Any], *, manager: str,
                   operation: str, subresource: str = "") -> dict[str, Any]:
    update = _optional("controlplane.apiserver.patch.ssa", "update_managed_fields")
    if update is None:
        return new
    return update(old, new, manager=manager, operation=operation, gvk=info.gvk, now=now_rfc3339(),
                  subresource=subresource, schema=info.schema if info.is_custom else None)


def prepare_create(info: ResourceInfo, obj: dict[str, Any], *, strict: bool, manager: str | None,
                   generate: Callable[[str], str]) -> dict[str, Any]:
    """Fill system fields, default and validate a new object (raises ApiError)."""
    meta = obj["metadata"]
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = generate(meta["generateName"])
    causes = name_causes(info, meta.get("name") or "")
    if info.namespaced and meta.get("namespace"):
        causes += name_causes(ResourceInfo("", "v1", "Namespace", "namespaces", "namespace", False),
                              meta["namespace"], "metadata.namespace")
    if causes:
        raise errors.invalid(info.kind, meta.get("name") or "", causes, info.group)
    for k in SYSTEM_META + ("resourceVersion",):
        meta.pop(k, None)
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now_rfc3339()
    if tracks_generation(info):
        meta["generation"] = 1
    else:
        meta.pop("generation", None)
    if info.has("status") and (info.group, info.plural) not in KEEP_STATUS_ON_CREATE:
        obj.pop("status", None)
    if info.group == "" and info.plural == "namespaces":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
    elif info.group == "" and info.plural == "pods":
        obj["status"] = {"phase": "Pending"}
    obj = _defaults_and_validation(info, obj, strict=strict, old=None)
    if manager:
        obj = managed_fields(info, None, obj, manager=manager, operation="Update")
    return obj


def prepare_update(info: ResourceInfo, old: dict[str, Any], new: dict[str, Any], *, subresource: str,
                   strict: bool, manager: str | None, operation: str = "Update") -> dict[str, Any]:
    """Merge what may change from ``new`` onto ``old`` and default/validate the result."""
    old_meta = old["metadata"]
    if subresource == "finalize":
        # namespaces/<name>/finalize: only spec.finalizers changes (the namespace controller).
        merged = copy.deepcopy(old)
        merged.setdefault("spec", {})["finalizers"] = list((new.get("spec") or {}).get("finalizers") or [])
        new = merged
    elif subresource == "status":
        # Only status (and managedFields bookkeeping) changes through /status.
        merged = copy.deepcopy(old)
        if "status" in new:
            merged["status"] = new["status"]
        else:
            merged.pop("status", None)
        if "managedFields" in new.get("metadata", {}):
            merged["metadata"]["managedFields"] = new["metadata"]["managedFields"]
        new = merged
    else:
        check_type(info, new)
        meta = new.setdefault("metadata", {})
        if meta.get("name") not in (None, old_meta["name"]):
            raise errors.bad_request(
                f'the name of the object ({meta.get("name")}) does not match the name on the URL ({old_meta["name"]})')
        if info.has("status"):
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        for k in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                  "deletionGracePeriodSeconds", "generation"):
            if k in old_meta:
                meta[k] = old_meta[k]
            else:
                meta.pop(k, None)
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise errors.invalid(info.kind, old_meta["name"], [{
                    "reason": "FieldValueForbidden", "field": "metadata.finalizers",
                    "message": f"Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {sorted(added)!r}"}],
                    info.group)
    new["metadata"]["resourceVersion"] = old_meta.get("resourceVersion")
    ns_finalizers = (new.get("spec") or {}).get("finalizers") if (info.group, info.plural) == ("", "namespaces") else None
    new = _defaults_and_validation(info, new, strict=strict, old=old)
    # generation follows spec changes only, compared after defaulting (an unchanged replace
    # of a manifest that omits defaulted fields does not bump it)
    if subresource not in ("status", "finalize") and tracks_generation(info) \
            and _spec_part(info, new) != _spec_part(info, old):
        new["metadata"]["generation"] = int(old_meta.get("generation") or 0) + 1
    if ns_finalizers is not None or (subresource == "finalize"):
        # namespace spec.finalizers are defaulted on create only (the finalize call empties them)
        new.setdefault("spec", {})["finalizers"] = list(ns_finalizers or [])
    if manager:
        new = managed_fields(info, old, new, manager=manager, operation=operation, subresource=subresource)
    return new


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    mf = meta.pop("managedFields", None)
    if mf:
        meta["managedFields"] = [{k: v for k, v in e.items() if k != "time"} for e in mf if isinstance(e, dict)]
    return {**obj, "metadata": meta}


def unchanged(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when a write would change nothing but bookkeeping timestamps (then nothing is written)."""
    return _strip(old) == _strip(new)


def deletion_complete(info: ResourceInfo, obj: dict[str, Any]) -> bool:
    """An object being deleted whose last finalizer is gone (and, for pods, whose grace period
    the node agent has ended with a zero-grace delete) leaves storage."""
    meta = obj["metadata"]
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if info.group == "" and info.plural == "namespaces" and (obj.get("spec") or {}).get("finalizers"):
        return False
    return not meta.get("deletionGracePeriodSeconds")
