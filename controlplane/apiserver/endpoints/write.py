"""create (POST), update (PUT) and patch (PATCH) of objects and of their ``/status``.

Every write runs the generic rules and the resource's strategy (``strategy/generic.py``, the
strategy's hooks before and after the write) and lands through ``persistence.store.ObjectStore``
(create, or a compare-and-set retried on conflicts unless the client pinned a
resourceVersion). Patches are computed by ``patch/`` (json, merge, strategic, server-side apply).
``dryRun=All`` runs everything but the write. A write that changes nothing is not written.
``create_object`` and ``write_update`` are also the write paths of the server's own writes
(system namespaces, CRD status) and of the subresources.
"""

from __future__ import annotations

import copy
from typing import Any, Awaitable, Callable

import yaml
from sanic import Request
from sanic.response import HTTPResponse

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.endpoints import common as hc
from controlplane.apiserver.endpoints.common import Api, parse_rv
from controlplane.apiserver.endpoints.delete import finish_delete
from controlplane.apiserver.meta import errors
from controlplane.apiserver.patch import apply_patch
from controlplane.apiserver.patch.ssa import server_side_apply
from controlplane.apiserver.persistence.codec import object_key
from controlplane.apiserver.strategy import generic
from controlplane.apiserver.strategy.base import Finish
from controlplane.machinery import yamlbounded
from controlplane.machinery.timestamps import now_rfc3339

Compute = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class _DryRunResult(Exception):
    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj


async def create(api: Api, request: Request, t: hc.Target) -> HTTPResponse:
    info = t.info
    if t.name:
        raise errors.method_not_allowed(f"POST on a named {info.plural} is not supported")
    if info.terminating:  # apiextensions-apiserver's crdHandler: the CRD is being deleted
        raise errors.ApiError(405, "MethodNotAllowed", "create not allowed while custom resource definition is "
                              "terminating", details={"group": info.group, "kind": info.plural})
    obj = hc.decode_body(request)
    generic.check_type(info, obj)
    generic.check_namespace(info, obj, t.namespace)
    dry = hc.dry_run(request)
    strict = hc.field_validation(request) == "Strict"
    manager = hc.field_manager(request)
    if info.converted:
        obj = info.strategy.from_version(info, obj)
    obj = await create_object(api, api.registry.storage_info(info), obj, strict=strict, manager=manager, dry=dry)
    return hc.json_response(hc.output(info, obj), status=201)


async def create_object(api: Api, info: ResourceInfo, obj: dict[str, Any], *, strict: bool, manager: str | None,
                        dry: bool, prepared: bool = False) -> dict[str, Any]:
    """The shared tail of POST and of server-side apply on an absent object: the admission
    chain's mutating phase, the strategy (defaults, schema validation), the validating phase."""
    ns = obj["metadata"].get("namespace")
    if info.namespaced and not ns:
        raise errors.bad_request("a namespace is required for namespaced resources")
    chain = api.admission
    options = {"fieldManager": manager} if manager else None
    mutated = await chain.mutate("CREATE", info, ns, obj["metadata"].get("name"), obj, None, dry_run=dry,
                                 options=options)
    if not prepared:
        obj = generic.prepare_create(info, mutated, strict=strict, manager=manager)  # type: ignore[arg-type]
    elif chain.may_change(info, "", "CREATE"):  # (server-side apply prepared it before admission)
        obj = info.strategy.default_and_validate(info, mutated, strict=strict, old=None)
    await chain.validate("CREATE", info, ns, obj["metadata"].get("name"), obj, None, dry_run=dry, options=options)
    strategy = info.strategy
    finish = await strategy.before_create(api, obj, dry=dry)  # e.g. a Service's clusterIP
    if dry:
        if finish is not None:
            await finish(False)
        return obj
    try:
        obj = await api.store.create(info, obj)
    except BaseException:
        if finish is not None:
            await finish(False)
        await strategy.create_failed(api, obj)
        raise
    if finish is not None:
        await finish(True)
    await strategy.after_write(api, obj)
    return obj


async def update(api: Api, request: Request, t: hc.Target) -> HTTPResponse:
    info = t.info
    if not t.name:
        raise errors.method_not_allowed(f"PUT on the collection {info.plural} is not supported")
    body = hc.decode_body(request)
    if t.subresource not in ("", "status", "finalize", "ephemeralcontainers") \
            and not (t.subresource == "approval" and info.has("approval")):
        raise errors.method_not_allowed(f"PUT on {info.plural}/{t.subresource} is not supported")
    body.setdefault("metadata", {})
    if body["metadata"].get("name") not in (None, t.name):
        raise errors.bad_request(
            f'the name of the object ({body["metadata"].get("name")}) does not match the name on the URL ({t.name})')
    generic.check_type(info, body)
    generic.check_namespace(info, body, t.namespace)
    want_rv = parse_rv(body["metadata"].get("resourceVersion"))
    dry = hc.dry_run(request)
    strict = hc.field_validation(request) == "Strict"
    manager = hc.field_manager(request)
    sub = t.subresource

    want_uid = body["metadata"].get("uid")

    async def compute(current: dict[str, Any]) -> dict[str, Any]:
        # the body's uid is a precondition (kube-apiserver's DefaultUpdatedObjectInfo): 409
        if want_uid and want_uid != current["metadata"].get("uid"):
            raise errors.conflict(info.plural, t.name, f'Precondition failed: UID in precondition: {want_uid}, '
                                  f'UID in object meta: {current["metadata"].get("uid")}', info.group)
        if want_rv and str(want_rv) != current["metadata"]["resourceVersion"]:
            raise errors.conflict(info.plural, t.name, "the object has been modified; please apply your "
                                  "changes to the latest version and try again", info.group)
        desired = copy.deepcopy(body)
        return info.strategy.from_version(info, desired) if info.converted else desired

    obj = await write_update(api, api.registry.storage_info(info), t.namespace, t.name, compute, subresource=sub,
                             strict=strict, manager=manager, dry=dry)
    return hc.json_response(hc.output(info, obj))


async def write_update(api: Api, info: ResourceInfo, namespace: str | None, name: str, compute: Compute, *,
                       subresource: str, strict: bool, manager: str | None, dry: bool,
                       operation: str = "Update", prepared: bool = False) -> dict[str, Any]:
    """Read-modify-write with retries: ``compute(current) -> desired`` (a fresh copy each try).
    The strategy's ``before_update`` runs on the main resource only (a subresource such as
    ``/status`` keeps the stored spec, as kube-apiserver's status stores have no hooks); the
    ``Finish`` it returns settles each try: False for one that was not stored (refused, or
    retried after a conflict), True for the one that was."""

    strategy = info.strategy
    chain = api.admission
    options = {"fieldManager": manager} if manager else None
    pending: list[Finish] = []

    async def settle(stored: bool) -> None:
        while pending:
            await pending.pop()(stored)

    async def begin(old: dict[str, Any], new: dict[str, Any]) -> None:
        if subresource:
            return
        finish = await strategy.before_update(api, old, new, dry=dry)
        if finish is not None:
            pending.append(finish)

    async def mutate(current: dict[str, Any]) -> dict[str, Any] | None:
        await settle(False)  # an earlier try was not stored
        old = copy.deepcopy(current)
        desired = await compute(current)
        mutated = await chain.mutate("UPDATE", info, namespace, name, desired, old, subresource=subresource,
                                     dry_run=dry, options=options)
        if prepared:
            new = generic.default_and_validate(info, mutated, strict=strict, old=old, subresource=subresource) \
                if chain.may_change(info, subresource, "UPDATE") else mutated
        else:
            await begin(old, mutated)  # e.g. keep the clusterIP, allocate node ports
            new = generic.prepare_update(info, old, mutated, subresource=subresource, strict=strict,
                                         manager=manager, operation=operation)
        await chain.validate("UPDATE", info, namespace, name, new, old, subresource=subresource, dry_run=dry,
                             options=options)
        if generic.unchanged(old, new) and not api.store.is_stale(info, namespace, name):
            return None  # (a value read with an old encryption key is written again even so)
        if prepared:
            await begin(old, new)
        if dry:
            raise _DryRunResult(new)
        return new

    try:
        old, new = await api.store.guaranteed_update(info, namespace, name, mutate,
                                                     suggest=lambda: cached_copy(api, info, namespace, name))
    except _DryRunResult as r:
        await settle(False)
        return r.obj
    except BaseException:
        await settle(False)
        raise
    await settle(True)
    if new is None:
        return old
    if generic.deletion_complete(info, new):
        return await finish_delete(api, info, new)
    await strategy.after_write(api, new)
    return new


def cached_copy(api: Api, info: ResourceInfo, namespace: str | None, name: str) -> tuple[bytes, int] | None:
    """The watch cache's copy of an object (raw JSON, revision), a first guess for a
    read-modify-write that saves the etcd read when it is current."""
    cache = api.caches.if_ready(info)
    entry = cache.get(object_key(info, namespace, name)) if cache is not None else None
    return (entry.raw, entry.rv) if entry is not None else None


async def patch(api: Api, request: Request, t: hc.Target) -> HTTPResponse:
    info = t.info
    if not t.name:
        raise errors.method_not_allowed(f"PATCH on the collection {info.plural} is not supported")
    if t.subresource not in ("", "status", "ephemeralcontainers"):
        raise errors.method_not_allowed(f"PATCH on {info.plural}/{t.subresource} is not supported")
    ctype = hc.media_type(request)
    if ctype not in hc.PATCH_TYPES:
        raise errors.unsupported_media_type(ctype)
    body = hc.raw_body(request)
    dry = hc.dry_run(request)
    strict = hc.field_validation(request) == "Strict"
    is_apply = ctype.startswith("application/apply-patch")
    manager = hc.field_manager(request, apply=is_apply)
    sub = t.subresource
    if is_apply:
        return await _apply(api, request, t, body, dry=dry, strict=strict, manager=manager)
    if ctype == "application/strategic-merge-patch+json" and info.is_custom:
        raise errors.unsupported_media_type(ctype)
    async def compute(current: dict[str, Any]) -> dict[str, Any]:
        rv = current["metadata"]["resourceVersion"]
        view = hc.output(info, copy.deepcopy(current)) if info.converted else current  # patched as served
        patched = apply_patch(view, body, ctype, info.gvk, is_custom=info.is_custom)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patch did not produce an object")
        check_name(patched, t)
        got_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if got_rv not in (None, "", rv):
            raise errors.conflict(info.plural, t.name, "the object has been modified; please apply your "
                                  "changes to the latest version and try again", info.group)
        return info.strategy.from_version(info, patched) if info.converted else patched

    obj = await write_update(api, api.registry.storage_info(info), t.namespace, t.name, compute, subresource=sub,
                             strict=strict, manager=manager, dry=dry)
    return hc.json_response(hc.output(info, obj))


def check_name(patched: dict[str, Any], t: hc.Target) -> None:
    """kube-apiserver's ``checkName`` on a patched object: a patch may not move it (a top-level
    ``{"$patch": "delete"}`` empties it, so its name no longer matches the URL: 400)."""
    md = patched.get("metadata") if isinstance(patched.get("metadata"), dict) else {}
    name, ns = md.get("name") or "", md.get("namespace") or ""
    if name != t.name:
        raise errors.bad_request(f"the name of the object ({name}) does not match the name on the URL ({t.name})")
    if t.namespace and ns and ns != t.namespace:
        raise errors.bad_request(
            f"the namespace of the object ({ns}) does not match the namespace on the URL ({t.namespace})")


def _parse_applied(body: bytes) -> dict[str, Any]:
    try:
        obj = yamlbounded.load(body)
    except yaml.YAMLError as e:
        raise errors.bad_request(f"error decoding YAML: {e}") from None
    if not isinstance(obj, dict):
        raise errors.bad_request("the apply patch must be an object")
    return obj


async def _apply(api: Api, request: Request, t: hc.Target, body: bytes, *, dry: bool, strict: bool,
                 manager: str) -> HTTPResponse:
    info = t.info
    applied = _parse_applied(body)
    generic.check_type(info, applied, apply=True)
    meta = applied.setdefault("metadata", {})
    if meta.get("name") not in (None, t.name):
        raise errors.bad_request(f'the name of the object ({meta.get("name")}) does not match the name on the URL ({t.name})')
    meta["name"] = t.name
    generic.check_namespace(info, applied, t.namespace)
    force = hc.bool_arg(request, "force")
    sinfo = api.registry.storage_info(info)  # applied as served, converted to the stored version
    existing = await api.store.get_or_none(info, t.namespace, t.name)
    if existing is None and not t.subresource:
        obj = server_side_apply(None, applied, manager=manager, force=force, gvk=info.gvk,
                                is_custom=info.is_custom, now=now_rfc3339(),
                                schema=info.schema if info.is_custom else None)
        if info.converted:
            obj = info.strategy.from_version(info, obj)
        obj = generic.prepare_create(sinfo, obj, strict=strict, manager=None)
        try:
            obj = await create_object(api, sinfo, obj, strict=strict, manager=None, dry=dry, prepared=True)
            return hc.json_response(hc.output(info, obj), status=201)
        except errors.ApiError as e:
            if e.reason != "AlreadyExists":
                raise
    if existing is None and t.subresource:
        raise errors.not_found(info.plural, t.name, info.group)

    async def compute(current: dict[str, Any]) -> dict[str, Any]:
        view = hc.output(info, copy.deepcopy(current)) if info.converted else current
        merged = server_side_apply(view, applied, manager=manager, force=force, gvk=info.gvk,
                                   is_custom=info.is_custom, now=now_rfc3339(), subresource=t.subresource,
                                   schema=info.schema if info.is_custom else None)
        if info.converted:
            merged = info.strategy.from_version(info, merged)
        return generic.prepare_update(sinfo, copy.deepcopy(current), merged, subresource=t.subresource,
                                      strict=strict, manager=None)

    obj = await write_update(api, sinfo, t.namespace, t.name, compute, subresource=t.subresource,
                             strict=strict, manager=None, dry=dry, prepared=True)
    return hc.json_response(hc.output(info, obj))
