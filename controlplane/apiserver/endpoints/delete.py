"""delete and deletecollection, with Kubernetes' graceful deletion.

What a delete turns an object into is ``strategy/deletion.py`` (with the resource's strategy):
an object with finalizers (the propagation policy adds ``foregroundDeletion`` or ``orphan`` for
the garbage collector) gets ``deletionTimestamp`` and stays until the last finalizer is removed
(the update that removes it, ``write.write_update``, then calls ``finish_delete``). A pod bound
to a node gets a deletionTimestamp plus grace period and stays until its node agent deletes it
with ``gracePeriodSeconds=0``. A namespace turns ``Terminating``; the namespace controller
empties it and clears ``spec.finalizers`` through ``namespaces/<name>/finalize``, which lets
it go. Here: the request options, the compare-and-set retry loop and preconditions.
"""

from __future__ import annotations

from typing import Any

from sanic import Request
from sanic.response import HTTPResponse

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.endpoints import common as hc
from controlplane.apiserver.endpoints.common import Api
from controlplane.apiserver.endpoints.read import matcher
from controlplane.apiserver.meta import errors
from controlplane.apiserver.persistence.codec import decode, prefix
from controlplane.apiserver.strategy import generic
from controlplane.apiserver.strategy.deletion import graceful
from controlplane.storage.interface import ConflictError


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


async def finish_delete(api: Api, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """Remove an object from storage for good (no finalizers left), then the strategy's
    ``after_delete`` (a Service's IPs are released, a CRD's resources no longer served)."""
    rv = int(obj["metadata"].get("resourceVersion") or 0)
    out = await api.store.delete(info, obj, rv)
    await info.strategy.after_delete(api, out)
    return out


async def delete_object(api: Api, info: ResourceInfo, namespace: str | None, name: str, *,
                        grace: int | None = None, propagation: str | None = None,
                        preconditions: dict[str, Any] | None = None, dry: bool = False) -> tuple[dict[str, Any], bool]:
    """Delete (or start deleting) one object. Returns (object, gone-from-storage)."""
    info.strategy.check_delete(info, name)
    for _ in range(16):
        current, kv = await api.store.get(info, namespace, name)
        meta = current["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.conflict(info.plural, name, f'Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: {meta.get("uid")}', info.group)
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != meta["resourceVersion"]:
            raise errors.conflict(info.plural, name, f'Precondition failed: ResourceVersion in precondition: {pre["resourceVersion"]}, ResourceVersion in object meta: {meta["resourceVersion"]}', info.group)
        await api.admission.mutate("DELETE", info, namespace, name, None, current, dry_run=dry)
        await api.admission.validate("DELETE", info, namespace, name, None, current, dry_run=dry)
        new = graceful(info, current, grace, propagation)
        try:
            if new is None:
                if dry:
                    return current, True
                return await finish_delete(api, info, current), True
            if generic.unchanged(current, new):
                return current, False
            if dry:
                return new, False
            out = await api.store.update(info, new, kv.mod_revision)
            await info.strategy.after_write(api, out)
            return out, False
        except ConflictError:
            continue
    raise errors.conflict(info.plural, name, "too many concurrent writers; try again", info.group)


async def delete(api: Api, request: Request, t: hc.Target) -> HTTPResponse:
    assert t.name
    opts = _options(request)
    dry = hc.dry_run(request) or bool(opts.get("dryRun"))
    obj, gone = await delete_object(api, t.info, t.namespace, t.name, grace=opts.get("gracePeriodSeconds"),
                                    propagation=opts.get("propagationPolicy"),
                                    preconditions=opts.get("preconditions"), dry=dry)
    if gone:
        return hc.json_response(hc.output(t.info, obj))
    return hc.json_response(hc.output(t.info, obj), status=202 if obj["metadata"].get("finalizers") else 200)


async def delete_collection(api: Api, request: Request, t: hc.Target) -> HTTPResponse:
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
            deleted.append(hc.output(t.info, out))
        except errors.ApiError as e:
            if e.code != 404:
                raise
    return hc.json_response({"kind": t.info.list_kind, "apiVersion": t.info.api_version,
                             "metadata": {"resourceVersion": str(res.revision)}, "items": deleted})
