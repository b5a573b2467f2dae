"""OpenAPI v3 documents (``/openapi/v3`` and ``/openapi/v3/<api|apis/g>/<v>``).

kubectl needs them for ``apply``/``create -f``/``replace`` (it checks that each kind's PATCH
operation takes ``fieldValidation``, then sends ``fieldValidation=Strict`` and leaves validation
to us) and for ``explain`` (real schemas). Built-in kinds use the real Kubernetes definitions
(``k8s_schemas.py``); custom resources use their CRD's ``openAPIV3Schema`` (from
``ResourceInfo.schema``). Documents and hashes are cached per registry generation. Neighbours:
``registry.py`` (what is served), ``server/routes.py`` (routes), ``documents.py``.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from typing import Any

from controlplane.apiserver.discovery import k8s_schemas
from controlplane.apiserver.discovery.k8s_schemas import REF_PREFIX
from controlplane.apiserver.discovery.registry import Registry, ResourceInfo

_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
_STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
_DELETE_OPTIONS = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
_PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"


class _Cache:
    def __init__(self, registry: Registry) -> None:
        self.ref = weakref.ref(registry)
        self.generation = registry.generation
        self.docs: dict[str, dict[str, Any]] = {}
        self.hashes: dict[str, str] = {}


_caches: dict[int, _Cache] = {}


def _cache(registry: Registry) -> _Cache:
    c = _caches.get(id(registry))
    if c is None or c.ref() is not registry or c.generation != registry.generation:
        c = _Cache(registry)
        _caches[id(registry)] = c
        for info in registry.all():
            key = _gv_path(info.group, info.version)
            if key not in c.docs:
                doc = _build(registry, info.group, info.version)
                c.docs[key] = doc
                c.hashes[key] = hashlib.sha512(
                    json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
                ).hexdigest().upper()
    return c


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def v3_root(registry: Registry) -> dict[str, Any]:
    c = _cache(registry)
    return {"paths": {key: {"serverRelativeURL": f"/openapi/v3/{key}?hash={c.hashes[key]}"}
                      for key in c.docs}}


def v3_group_version(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    return _cache(registry).docs.get(_gv_path(group, version))


def v3_documents(registry: Registry) -> dict[str, dict[str, Any]]:
    """Every group-version's document by ``api/v1`` / ``apis/G/V`` (what ``openapi_v2`` merges)."""
    return dict(_cache(registry).docs)


# ---------------------------------------------------------------- building


def custom_schema_name(info: ResourceInfo) -> str:
    """Kubernetes names CR schemas by reversed group: ``com.example.stable.v1.CronTab``."""
    rev = ".".join(reversed(info.group.split("."))) if info.group else ""
    return f"{rev}.{info.version}.{info.kind}" if rev else f"{info.version}.{info.kind}"


def custom_schema(info: ResourceInfo, list_kind: bool = False) -> dict[str, Any]:
    """A custom resource's definition (or its List's) from ``info.schema``, the CRD's schema."""
    gvk = [{"group": info.group, "version": info.version,
            "kind": info.list_kind if list_kind else info.kind}]
    base = {
        "apiVersion": {"type": "string", "description": "APIVersion defines the versioned "
                       "schema of this representation of an object."},
        "kind": {"type": "string", "description": "Kind is a string value representing the "
                 "REST resource this object represents."},
    }
    if list_kind:
        return {
            "description": f"{info.kind}List is a list of {info.kind}",
            "type": "object", "required": ["items"],
            "properties": {**base,
                           "items": {"type": "array", "items": {"$ref": REF_PREFIX + custom_schema_name(info)}},
                           "metadata": {"allOf": [{"$ref": REF_PREFIX + _LIST_META}], "default": {}}},
            "x-kubernetes-group-version-kind": gvk,
        }
    schema = k8s_schemas.deep_copy(info.schema or {"type": "object",
                                                   "x-kubernetes-preserve-unknown-fields": True})
    schema.setdefault("type", "object")
    props = schema.setdefault("properties", {})
    props.setdefault("apiVersion", base["apiVersion"])
    props.setdefault("kind", base["kind"])
    props["metadata"] = {"allOf": [{"$ref": REF_PREFIX + _OBJECT_META}],
                         "description": "Standard object's metadata."}
    schema["x-kubernetes-group-version-kind"] = gvk
    return schema


def _params(*names: str) -> list[dict[str, Any]]:
    out = []
    for n in names:
        where = "path" if n in ("name", "namespace") else "query"
        p: dict[str, Any] = {"name": n, "in": where, "schema": {"type": "string", "uniqueItems": True}}
        if where == "path":
            p["required"] = True
            p["description"] = f"{n} of the object"
        elif n == "fieldValidation":
            p["description"] = ("fieldValidation instructs the server on how to handle objects in "
                                "the request containing unknown or duplicate fields. Valid values "
                                "are: Ignore, Warn, Strict.")
        elif n == "force":
            p["schema"] = {"type": "boolean", "uniqueItems": True}
        out.append(p)
    return out


def _resp(ref: str) -> dict[str, Any]:
    schema = {"$ref": REF_PREFIX + ref}
    content = {ct: {"schema": schema} for ct in ("application/json", "application/yaml",
                                                  "application/vnd.kubernetes.protobuf")}
    return {"200": {"description": "OK", "content": content},
            "401": {"description": "Unauthorized"}}


def _op_id(verb: str, info: ResourceInfo, namespaced: bool, suffix: str = "") -> str:
    g = "".join(p.capitalize() for p in (info.group.split(".")[0] if info.group else "core").split("-"))
    ns = "Namespaced" if namespaced else ""
    return f"{verb}{g}{info.version.capitalize()}{ns}{info.kind}{suffix}"


def _paths_for(info: ResourceInfo, obj_ref: str, list_ref: str) -> dict[str, Any]:
    prefix = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    coll = f"{prefix}/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"{prefix}/{info.plural}"
    item = coll + "/{name}"
    ns_params = ("namespace",) if info.namespaced else ()
    gvk = {"group": info.group, "version": info.version, "kind": info.kind}
    tag = [f"{(info.group or 'core')}_{info.version}"]
    write_q = ("dryRun", "fieldManager", "fieldValidation")

    def op(verb: str, action: str, params: tuple[str, ...], ref: str, body: str | None = None,
           patch: bool = False) -> dict[str, Any]:
        o: dict[str, Any] = {
            "tags": tag, "description": f"{action} {info.kind}",
            "operationId": _op_id(verb, info, info.namespaced),
            "parameters": _params(*params), "responses": _resp(ref),
            "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk,
        }
        if body:
            # custom resources take no strategic merge patch (415): their PATCH does not list it,
            # as apiextensions-apiserver's OpenAPI, so kubectl apply sends them a JSON merge patch
            kinds = ["application/json-patch+json", "application/merge-patch+json",
                     *(() if info.is_custom else ("application/strategic-merge-patch+json",)),
                     "application/apply-patch+yaml"]
            o["requestBody"] = {"required": True, "content": {
                "*/*" if not patch else ct: {"schema": {"$ref": REF_PREFIX + body}}
                for ct in (["*/*"] if not patch else kinds)}}
        return o

    paths: dict[str, Any] = {
        coll: {
            "get": op("list", "list", ns_params + ("labelSelector", "fieldSelector", "limit",
                                                   "continue", "resourceVersion", "watch"), list_ref),
            "post": op("create", "post", ns_params + write_q, obj_ref, body=obj_ref),
        },
        item: {
            "get": op("read", "get", ("name",) + ns_params, obj_ref),
            "put": op("replace", "put", ("name",) + ns_params + write_q, obj_ref, body=obj_ref),
            "patch": op("patch", "patch", ("name",) + ns_params + write_q + ("force",), obj_ref,
                        body=_PATCH, patch=True),
            "delete": op("delete", "delete", ("name",) + ns_params + ("dryRun",), _STATUS,
                         body=_DELETE_OPTIONS),
        },
    }
    # subresources read and patched as the whole object (a pod's ephemeralcontainers too);
    # operationIds must be unique: suffix theirs
    for sub in ("status", "ephemeralcontainers"):
        if sub in info.subresources:
            paths[f"{item}/{sub}"] = {
                "get": op("read", "get", ("name",) + ns_params, obj_ref),
                "patch": op("patch", "patch", ("name",) + ns_params + write_q + ("force",), obj_ref,
                            body=_PATCH, patch=True),
            }
            for verb in ("get", "patch"):
                paths[f"{item}/{sub}"][verb]["operationId"] += sub.capitalize()
    return paths


def _build(registry: Registry, group: str, version: str) -> dict[str, Any]:
    infos = registry.resources(group, version)
    names: list[str] = [_STATUS, _DELETE_OPTIONS, _PATCH]
    extra: dict[str, dict[str, Any]] = {}
    paths: dict[str, Any] = {}
    for info in infos:
        if info.is_custom:
            obj_ref = custom_schema_name(info)
            list_ref = obj_ref + "List"
            extra[obj_ref] = custom_schema(info)
            extra[list_ref] = custom_schema(info, list_kind=True)
        else:
            obj_ref = k8s_schemas.definition_name(info.group, info.version, info.kind) or ""
            list_ref = k8s_schemas.definition_name(info.group, info.version, info.list_kind) or ""
            if not obj_ref:
                continue
        names.extend(n for n in (obj_ref, list_ref) if n)
        paths.update(_paths_for(info, obj_ref, list_ref or obj_ref))
    schemas = k8s_schemas.closure(names, extra)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items()))},
    }
