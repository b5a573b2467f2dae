"""get and list (label/field selectors, limit/continue, resourceVersion semantics), optionally
as a server-side ``Table``.

Lists at ``resourceVersion=0`` and unpaginated consistent lists come from the watch cache (the
latter after ``wait_fresh`` on etcd's current revision); paginated lists and exact-revision
lists read etcd at a pinned revision so every page is one snapshot. Items are raw JSON bytes
(the cache's, or stored bytes spliced by ``persistence.codec.with_rv``): no per-item
re-encoding. Tables come from ``printing/tables.py``. Watches live in ``watch.py``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any, Callable

from sanic import Request
from sanic.response import HTTPResponse

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.endpoints import common as hc
from controlplane.apiserver.endpoints.common import Api, parse_rv
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.jsonutil import dumps, loads
from controlplane.apiserver.persistence.codec import decode, prefix, with_rv
from controlplane.apiserver.printing import tables
from controlplane.machinery.fields import convert_label, custom_fields, fields_for, resource_key, unsupported
from controlplane.machinery.selectors import FieldSelector, parse_field_selector, parse_label_selector
from controlplane.storage.interface import CompactedError

Match = Callable[[dict[str, Any]], bool] | None  # None: everything matches


def object_fields(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, str]:
    """The selectable fields of a stored object (the stored resource's: a view's selector was
    converted to its labels by ``selectors``)."""
    if info.is_custom:
        return custom_fields(info.selectable_fields, obj)
    return fields_for(resource_key(info.storage_group or "", info.plural), obj)


def selectors(info: ResourceInfo, request: Request) -> tuple[Any, Any]:
    try:
        lsel = parse_label_selector(request.args.get("labelSelector") or "")
    except ValueError as e:
        raise errors.bad_request(f"unable to parse requirement: {e}") from None
    try:
        fsel = parse_field_selector(request.args.get("fieldSelector") or "")
    except ValueError as e:
        raise errors.bad_request(f"invalid field selector: {e}") from None
    if info.is_custom:  # apiextensions-apiserver's ConvertFieldLabel: the version's selectableFields
        for r in fsel.requirements:
            if r.field not in ("metadata.name", "metadata.namespace") and r.field not in info.selectable_fields:
                raise errors.bad_request(f"field label not supported: {r.field}")
    elif not fsel.empty:  # the kind's field-label conversion (an unknown label is a 400, not an empty list)
        resource = resource_key(info.group, info.plural)
        msg = unsupported(resource, [r.field for r in fsel.requirements])
        if msg is not None:
            raise errors.bad_request(msg)
        if info.group != info.storage_group:  # a view (events.k8s.io): matched by the stored labels
            fsel = FieldSelector(tuple(dataclasses.replace(r, field=convert_label(resource, r.field))
                                       for r in fsel.requirements))
    return lsel, fsel


def matcher(info: ResourceInfo, request: Request) -> Match:
    lsel, fsel = selectors(info, request)
    return make_match(info, lsel, fsel)


def make_match(info: ResourceInfo, lsel: Any, fsel: Any) -> Match:
    if lsel.empty and fsel.empty:
        return None

    def match(obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if not lsel.empty and not lsel.matches(meta.get("labels") or {}):
            return False
        return fsel.empty or fsel.matches(object_fields(info, obj))

    return match


async def get(api: Api, request: Request, t: hc.Target) -> HTTPResponse:
    assert t.name
    obj, _ = await api.store.get(t.info, t.namespace, t.name)
    if hc.wants_table(request):
        return hc.json_response(to_table(t.info, [obj], request))
    return hc.json_response(hc.output(t.info, obj))


# --- continue tokens (as Kubernetes: base64 JSON with the list revision and next key) ------

def encode_continue(rv: int, start_key: str) -> str:
    return base64.b64encode(dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start_key})).decode()


def decode_continue(token: str) -> tuple[int, str]:
    try:
        d = loads(base64.b64decode(token))
        return int(d["rv"]), str(d["start"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)") from None


async def list_(api: Api, request: Request, t: hc.Target) -> HTTPResponse:
    info = t.info
    limit = parse_rv(request.args.get("limit"), what="limit")
    token = request.args.get("continue") or ""
    rv_param = request.args.get("resourceVersion")
    rv_match = request.args.get("resourceVersionMatch") or ""
    if token and rv_param not in (None, ""):
        raise errors.bad_request("specifying resource version is not allowed when using continue")
    items, revision, next_token = await collect(api, info, t.namespace, request, limit=limit, token=token,
                                                rv_param=rv_param, rv_match=rv_match)
    if hc.wants_table(request):
        table = to_table(info, [loads(b) for b in items], request)
        table["metadata"] = {"resourceVersion": str(revision), **({"continue": next_token} if next_token else {})}
        return hc.json_response(table)
    meta = b'{"resourceVersion":"%d"%s}' % (revision, (b',"continue":"%s"' % next_token.encode()) if next_token else b"")
    api_version = info.api_version.encode()
    body = b'{"kind":"%s","apiVersion":"%s","metadata":%s,"items":[%s]}' % (
        info.list_kind.encode(), api_version, meta, b",".join(hc.output_bytes(info, items)))
    return hc.json_response(body)


async def collect(api: Api, info: ResourceInfo, namespace: str | None, request: Request, *, limit: int,
                  token: str, rv_param: str | None, rv_match: str) -> tuple[list[bytes], int, str]:
    """Matching items as JSON bytes, the list revision and the next continue token."""
    lsel, fsel = selectors(info, request)
    if not token and not limit and rv_match != "Exact":
        cache = api.caches.if_ready(info)
        if cache is not None:
            min_rv = parse_rv(rv_param) if rv_param not in (None, "") else None
            if min_rv is None:
                min_rv = await api.backend.current_revision()
            if min_rv:
                await cache.wait_fresh(min_rv)
            entries, revision = cache.list(namespace, lsel, fsel)
            return [e.raw for e in entries], revision, ""
    match = make_match(info, lsel, fsel)
    if token:
        revision, start = decode_continue(token)
    else:
        revision = parse_rv(rv_param) if rv_match == "Exact" else 0
        start = ""
    pfx = prefix(info, namespace)
    out: list[bytes] = []
    # with a selector, read bigger pages (the continue token still points after the last match)
    page = (max(limit, 1000) if match is not None else limit) if limit else 0
    while True:
        try:
            res = await api.backend.list(pfx, revision=revision, limit=page, start_key=start or None)
        except CompactedError:
            if token:
                raise errors.ApiError(410, "Expired", "The provided continue parameter is too old to display a "
                                      "consistent list result. You can start a new list without the continue parameter.") from None
            raise errors.gone(f"too old resource version: {revision}") from None
        revision = res.revision
        for i, kv in enumerate(res.items):
            if match is None or match(decode(kv)):
                out.append(with_rv(kv.value, kv.mod_revision))
                if limit and len(out) >= limit:
                    next_token = ""
                    if i < len(res.items) - 1 or res.more:
                        next_token = encode_continue(revision, kv.key + "\x00")
                    return out, revision, next_token
        if not res.more or not res.items:
            return out, revision, ""
        start = res.items[-1].key + "\x00"


def to_table(info: ResourceInfo, objs: list[dict[str, Any]], request: Request, *,
             include_columns: bool = True) -> dict[str, Any]:
    """A Table of stored objects: rows printed from the stored form (as Kubernetes prints its
    internal version), embedded objects (``includeObject=Object``) as served."""
    include = request.args.get("includeObject") or "Metadata"
    if include not in ("None", "Metadata", "Object"):
        raise errors.bad_request(f"includeObject: Unsupported value: {include!r}")
    table = tables.to_table(info, objs, include_object=include, include_columns=include_columns)
    if include == "Object" and (info.converted or info.is_custom):
        for row in table["rows"]:
            row["object"] = hc.output(info, row["object"])
    return table
