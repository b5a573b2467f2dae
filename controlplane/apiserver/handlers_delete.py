"""delete and deletecollection, with Kubernetes' graceful deletion.

An object with finalizers (the propagation policy adds ``foregroundDeletion`` or ``orphan`` for
the garbage collector) gets ``deletionTimestamp`` and stays until the last finalizer is removed
(``handlers_write`` then removes it). A pod bound to a node gets a deletionTimestamp plus grace
period and stays until its node agent deletes it with ``gracePeriodSeconds=0``. A namespace
turns ``Terminating``; the namespace controller empties it and clears ``spec.finalizers``
through ``namespaces/<name>/finalize``, which lets it go.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

from sanic import Request
from sanic.response import HTTPResponse

from controlplane.apiserver import errors
from controlplane.apiserver import handlers_common as hc
from controlplane.apiserver import handlers_mutate as hm
from controlplane.apiserver.registry import ResourceInfo
from controlplane.apiserver.store import decode, parse_rv, prefix
from controlplane.log import get_logger
from controlplane.storage.interface import ConflictError

if TYPE_CHECKING:
    from controlplane.apiserver.app import ApiServer

log = get_logger(__name__)
UNDELETABLE_NAMESPACES = ("default", "kube-system", "kube-public")


def _options(request: Request) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    body = request.body or b""
    if body.strip():
        parsed = hc.decode_body(request)
        opts.update(parsed)
    for k in ("gracePeriodSeconds", "propagationPolicy", "orphanDependents"):
        if k in request.args:
            opts[k] = request.args.get(k)
    if "gracePeriodSeconds" in opts and opts["gracePeriodSeconds"] is not None:
        try:
            opts["gracePeriodSeconds"] = int(opts["gracePeriodSeconds"])
        except (TypeError, ValueError):
            raise errors.bad_request(f'invalid gracePeriodSeconds: {opts["gracePeriodSeconds"]!r}') from None
    pol = opts.get("propagationPolicy")
    if pol is None and str(opts.get("orphanDependents")).lower() == "true":
        opts["propagationPolicy"] = "Orphan"
    elif pol not in (None, "Foreground", "Background", "Orphan"):
        raise errors.bad_request(f'propagationPolicy: Unsupported value: "{pol}"')
    if opts.get("dryRun"):
        opts["dryRun"] = True
    return opts


def _rfc3339(t: _dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


async def delete_object(api: "ApiServer", info: ResourceInfo, namespace: str | None, name: str, *,
                        grace: int | None = None, propagation: str | None = None,
                        preconditions: dict[str, Any] | None = None, dry: bool = False) -> tuple[dict[str, Any], bool]:
    """Delete (or start deleting) one object. Returns (object, gone-from-storage)."""
    if info.group == "" and info.plural == "namespaces" and name in UNDELETABLE_NAMESPACES:
        raise errors.ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                              details={"name": name, "kind": "namespaces"})
    for _ in range(16):
        current, kv = await api.store.get(info, namespace, name)
        meta = current["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.conflict(info.plural, name, f'Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: {meta.get("uid")}', info.group)
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != meta["resourceVersion"]:
            raise errors.conflict(info.plural, name, f'Precondition failed: ResourceVersion in precondition: {pre["resourceVersion"]}, ResourceVersion in object meta: {meta["resourceVersion"]}', info.group)
        new = _graceful(info, current, grace, propagation)
        try:
            if new is None:
                if dry:
                    return current, True
                return await api.finish_delete(info, current), True
            if hm.unchanged(current, new):
                return current, False
            if dry:
                return new, False
            out = await api.store.update(info, new, kv.mod_revision)
            await api.after_write(info, out)
            return out, False
        except ConflictError:
            continue
    raise errors.conflict(info.plural, name, "too many concurrent writers; try again", info.group)


def _graceful(info: ResourceInfo, current: dict[str, Any], grace: int | None,
              propagation: str | None) -> dict[str, Any] | None:
    """The object marked for deletion, or None when it can leave storage now."""
    import copy

    obj = copy.deepcopy(current)
    meta = obj["metadata"]
    fins = list(meta.get("finalizers") or [])
    if propagation == "Foreground" and "foregroundDeletion" not in fins:
        fins.append("foregroundDeletion")
    elif propagation == "Orphan" and "orphan" not in fins:
        fins.append("orphan")
    elif propagation == "Background":
        fins = [f for f in fins if f not in ("foregroundDeletion", "orphan")] if not meta.get("deletionTimestamp") else fins
    is_pod = info.group == "" and info.plural == "pods"
    is_ns = info.group == "" and info.plural == "namespaces"
    if is_pod:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if grace is None:
            grace = int(spec.get("terminationGracePeriodSeconds", 30) or 0)
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            grace = 0
    else:
        grace = 0
    grace = max(int(grace), 0)
    if is_ns and (obj.get("spec") or {}).get("finalizers"):
        grace = 0
        if not meta.get("deletionTimestamp"):
            obj.setdefault("status", {})["phase"] = "Terminating"
            meta["deletionTimestamp"] = _rfc3339(_dt.datetime.now(_dt.timezone.utc))
            meta["deletionGracePeriodSeconds"] = 0
        meta["finalizers"] = fins
        if not fins and meta.get("finalizers") is not None and not current["metadata"].get("finalizers"):
            meta.pop("finalizers", None)
        return obj
    if not fins and grace == 0:
        return None
    now = _dt.datetime.now(_dt.timezone.utc)
    if meta.get("deletionTimestamp"):
        old_grace = int(meta.get("deletionGracePeriodSeconds") or 0)
        if grace < old_grace:
            meta["deletionGracePeriodSeconds"] = grace
            meta["deletionTimestamp"] = _rfc3339(now + _dt.timedelta(seconds=grace))
            if grace == 0 and not fins:
                return None
    else:
        meta["deletionTimestamp"] = _rfc3339(now + _dt.timedelta(seconds=grace))
        meta["deletionGracePeriodSeconds"] = grace
        if hm.tracks_generation(info):
            meta["generation"] = int(meta.get("generation") or 0) + 1
    if fins:
        meta["finalizers"] = fins
    return obj


async def delete(api: "ApiServer", request: Request, t: hc.Target) -> HTTPResponse:
    assert t.name
    opts = _options(request)
    dry = hc.dry_run(request) or bool(opts.get("dryRun"))
    obj, gone = await delete_object(api, t.info, t.namespace, t.name, grace=opts.get("gracePeriodSeconds"),
                                    propagation=opts.get("propagationPolicy"),
                                    preconditions=opts.get("preconditions"), dry=dry)
    if gone:
        return hc.json_response(api.output(t.info, obj))
    return hc.json_response(api.output(t.info, obj), status=202 if obj["metadata"].get("finalizers") else 200)


async def delete_collection(api: "ApiServer", request: Request, t: hc.Target) -> HTTPResponse:
    from controlplane.apiserver.handlers_read import matcher

    opts = _options(request)
    dry = hc.dry_run(request) or bool(opts.get("dryRun"))
    match = matcher(t.info, request)
    res = await api.backend.list(prefix(t.info, t.namespace))
    deleted = []
    for kv in res.items:
        obj = decode(kv)
        if match is not None and not match(obj):
            continue
        meta = obj["metadata"]
        try:
            out, _ = await delete_object(api, t.info, meta.get("namespace"), meta["name"],
                                         grace=opts.get("gracePeriodSeconds"),
                                         propagation=opts.get("propagationPolicy"), dry=dry)
            deleted.append(api.output(t.info, out))
        except errors.ApiError as e:
            if e.code != 404:
                raise
    return hc.json_response({"kind": t.info.list_kind, "apiVersion": t.info.api_version,
                             "metadata": {"resourceVersion": str(res.revision)}, "items": deleted})
