"""The rules every write goes through, whatever the resource and the verb (kube-apiserver's
``rest.BeforeCreate``/``rest.BeforeUpdate``), calling the resource's strategy where it differs.

``prepare_create`` and ``prepare_update`` turn what a client sent into what gets stored:
apiVersion/kind/namespace checks, identity and system fields (uid, creationTimestamp,
generation), status only through ``/status``, then the strategy's defaults and validation, and
managedFields (``patch/ssa.py``). ``unchanged`` tells a write that changes nothing (not
written); ``deletion_complete`` an object whose deletion is finished. Callers: the write,
delete and subresource endpoints; nothing here touches storage. Deletion's own rules are in
``deletion.py``.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.objectmeta import generate_name, new_uid
from controlplane.apiserver.patch.ssa import update_managed_fields
from controlplane.apiserver.strategy.base import NameRule, Strategy
from controlplane.machinery.timestamps import now_rfc3339

Obj = dict[str, Any]

SYSTEM_META = ("uid", "creationTimestamp", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def dumps_compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def strategy_of(info: ResourceInfo) -> Strategy:
    strategy: Strategy = info.strategy
    return strategy


def check_type(info: ResourceInfo, obj: Obj, *, apply: bool = False) -> None:
    """The body's apiVersion/kind must name the addressed resource (filled in when absent)."""
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if info.is_custom and not apply:
        # apiextensions decodes custom resources with the unstructured scheme, which takes no
        # defaults from the URL: a body without kind is 400 (transformDecodeError's wording)
        if not kind:
            data = dumps_compact(obj)
            summary = data if len(data) <= 30 else data[:30] + " ..."
            raise errors.bad_request(f"the object provided is unrecognized (must be of type {info.kind}): "
                                     f"Object 'Kind' is missing in '{data}' ({summary})")
    elif not kind and not apply:  # built-in types: the URL's group/version/kind fill what is missing
        obj["kind"] = kind = info.kind
    if not api_version and not apply and not info.is_custom:
        obj["apiVersion"] = api_version = info.api_version
    if kind != info.kind:
        raise errors.bad_request(f"the kind of the object ({kind}) does not match the resource ({info.kind})")
    if api_version != info.api_version:
        gv_group = api_version.rsplit("/", 1)[0] if "/" in (api_version or "") else ""
        if gv_group != info.group or not info.is_custom:
            raise errors.bad_request(
                f"the API version in the data ({api_version or ''}) does not match the expected API version "
                f"({info.api_version})")
    if not isinstance(obj.get("metadata", {}), dict):
        raise errors.bad_request("metadata must be an object")


def check_namespace(info: ResourceInfo, obj: Obj, namespace: str | None) -> None:
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


def name_causes(rule: NameRule, name: str, field: str = "metadata.name") -> list[dict[str, str]]:
    """What is wrong with ``name`` under ``rule`` (as kube-apiserver's name validation words it)."""
    if not name:
        return [{"reason": "FieldValueRequired", "message": "Required value: name or generateName is required",
                 "field": field}]
    if rule == "segment":
        bad = name in (".", "..") or "/" in name or "%" in name
        return [{"reason": "FieldValueInvalid", "field": field,
                 "message": f'Invalid value: "{name}": may not contain \'/\' or \'%\''}] if bad else []
    if rule == "label":
        if len(name) > 63 or not _DNS_LABEL.match(name):
            return [{"reason": "FieldValueInvalid", "field": field, "message":
                     f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case '
                     "alphanumeric characters or '-', and must start and end with an alphanumeric "
                     "character (e.g. 'my-name',  or '123-abc')"}]
        return []
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return [{"reason": "FieldValueInvalid", "field": field, "message":
                 f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                 "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                 "character (e.g. 'example.com')"}]
    return []


def _spec_part(info: ResourceInfo, obj: Obj) -> Obj:
    skip = {"metadata", "status"} if info.has("status") else {"metadata"}
    return {k: v for k, v in obj.items() if k not in skip and k not in ("apiVersion", "kind")}


def managed_fields(info: ResourceInfo, old: Obj | None, new: Obj, *, manager: str, operation: str,
                   subresource: str = "") -> Obj:
    return update_managed_fields(old, new, manager=manager, operation=operation, gvk=info.gvk, now=now_rfc3339(),
                                 subresource=subresource, schema=info.schema if info.is_custom else None)


def prepare_create(info: ResourceInfo, obj: Obj, *, strict: bool, manager: str | None) -> Obj:
    """Fill system fields, default and validate a new object (raises ApiError)."""
    strategy = strategy_of(info)
    meta = obj["metadata"]
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = generate_name(meta["generateName"])
    causes = name_causes(strategy.name_rule, meta.get("name") or "")
    if info.namespaced and meta.get("namespace"):
        causes += name_causes("label", meta["namespace"], "metadata.namespace")
    if causes:
        raise errors.invalid(info.kind, meta.get("name") or "", causes, info.group)
    for k in SYSTEM_META + ("resourceVersion",):
        meta.pop(k, None)
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now_rfc3339()
    if strategy.tracks_generation:
        meta["generation"] = 1
    else:
        meta.pop("generation", None)
    strategy.prepare_for_create(info, obj)
    obj = strategy.default_and_validate(info, obj, strict=strict, old=None)
    if manager:
        obj = managed_fields(info, None, obj, manager=manager, operation="Update")
    omit_empty_meta(obj)
    return obj


def prepare_update(info: ResourceInfo, old: Obj, new: Obj, *, subresource: str, strict: bool,
                   manager: str | None, operation: str = "Update") -> Obj:
    """Merge what may change from ``new`` onto ``old`` and default/validate the result."""
    strategy = strategy_of(info)
    old_meta = old["metadata"]
    if subresource == "finalize":
        new = strategy.prepare_finalize(info, old, new)
    elif subresource == "approval":  # CertificateSigningRequests: only the Approved/Denied conditions
        new = strategy.prepare_approval(old, new)
    elif subresource == "ephemeralcontainers":  # pods: only spec.ephemeralContainers changes
        new = strategy.prepare_ephemeral_containers(info, old, new)
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
        if meta.get("uid") and old_meta.get("uid") and meta["uid"] != old_meta["uid"]:
            # ValidateObjectMetaUpdate: a patch that changes the uid is refused (controllers'
            # adoption patches carry the object's uid as their precondition); a PUT's body
            # uid is checked before this, as a storage precondition (409, write.py)
            raise errors.invalid(info.kind, old_meta["name"], [{
                "reason": "FieldValueInvalid", "field": "metadata.uid",
                "message": f'Invalid value: "{meta["uid"]}": field is immutable'}], info.group)
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
        strategy.prepare_for_update(info, old, new)
    new["metadata"]["resourceVersion"] = old_meta.get("resourceVersion")
    new = default_and_validate(info, new, strict=strict, old=old, subresource=subresource)
    # generation follows spec changes only, compared after defaulting (an unchanged replace
    # of a manifest that omits defaulted fields does not bump it)
    if subresource not in ("status", "finalize") and strategy.tracks_generation \
            and _spec_part(info, new) != _spec_part(info, old):
        new["metadata"]["generation"] = int(old_meta.get("generation") or 0) + 1
    if manager:
        new = managed_fields(info, old, new, manager=manager, operation=operation, subresource=subresource)
    omit_empty_meta(new)
    return new


# ObjectMeta's collections are ``omitempty`` in Go: an empty map or list (what ``kubectl apply``
# and ``kubectl diff`` send as ``"annotations": {}`` in their three-way patches) is not stored
# or served. Kept otherwise, an object applied once shows ``annotations: {}`` in every later diff.
_OMITEMPTY_META = ("labels", "annotations", "finalizers", "ownerReferences")


def omit_empty_meta(obj: Obj) -> None:
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for k in _OMITEMPTY_META:
            if k in meta and meta[k] in ({}, [], None):
                del meta[k]


def default_and_validate(info: ResourceInfo, obj: Obj, *, strict: bool, old: Obj | None,
                         subresource: str = "") -> Obj:
    """The strategy's defaults and validation; an update through ``ephemeralcontainers``
    follows that subresource's rules."""
    strategy = strategy_of(info)
    if subresource == "ephemeralcontainers" and old is not None:
        return strategy.default_and_validate_ephemeral_containers(info, obj, strict=strict, old=old)
    return strategy.default_and_validate(info, obj, strict=strict, old=old)


def _strip(obj: Obj) -> Obj:
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    mf = meta.pop("managedFields", None)
    if mf:
        meta["managedFields"] = [{k: v for k, v in e.items() if k != "time"} for e in mf if isinstance(e, dict)]
    return {**obj, "metadata": meta}


def unchanged(old: Obj, new: Obj) -> bool:
    """True when a write would change nothing but bookkeeping timestamps (then nothing is written)."""
    return _strip(old) == _strip(new)


def deletion_complete(info: ResourceInfo, obj: Obj) -> bool:
    """An object being deleted whose last finalizer is gone (and, for pods, whose grace period
    the node agent has ended with a zero-grace delete) leaves storage."""
    meta = obj["metadata"]
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if strategy_of(info).deletion_blocked(obj):
        return False
    return not meta.get("deletionGracePeriodSeconds")
