"""The OpenAPI v2 (Swagger 2.0) document, ``/openapi/v2``, in JSON and gnostic protobuf.

kubectl validates client-side, against ``/openapi/v2``, the kinds the server's v3 documents do not
list a ``fieldValidation`` PATCH for (``kind: List`` files: ``kubectl replace -f`` of
``kubectl get cm -o yaml``'s output), and ``kubectl explain --output plaintext-openapiv2`` reads
it. It is built from the same per-group-version v3 documents as ``/openapi/v3`` (``openapi.py``),
converted as kube-openapi's v2 form has them: ``#/definitions/`` refs, a one-``$ref`` ``allOf``
back to a ``$ref`` with siblings, no v3-only keywords, body parameters instead of
``requestBody``, ``consumes``/``produces``, parameters common to a path's operations on the path,
repeated ones under ``parameters`` (named ``<name>-<hash>``), ``securityDefinitions``
BearerToken. Custom resources' schemas go through apiextensions-apiserver's
``ToStructuralOpenAPIV2`` first (no junctors; a ``nullable`` node loses its type, properties and
items, and its name in the parent's ``required``; a ``x-kubernetes-preserve-unknown-fields`` node
loses its properties and items; an array without items loses its type; a CRD version without a
schema gets an empty definition, as apiextensions' builder leaves it). Cached per registry
generation, with the ETag of each form. Neighbours: ``openapi.py``,
``openapi_v2_pb.py`` (the protobuf form), ``server/routes.py`` (the route).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from controlplane.apiserver.discovery import aggregated, openapi
from controlplane.apiserver.discovery.k8s_schemas import REF_PREFIX
from controlplane.apiserver.discovery.registry import Registry
from controlplane.apiserver.discovery import openapi_v2_pb
from controlplane.log import get_logger

log = get_logger(__name__)

V2_REF_PREFIX = "#/definitions/"
JSON = "application/json"
PROTOBUF = openapi_v2_pb.MEDIA_TYPE
# what kube-openapi's handler serves, in its order: (media range, the form answered)
_ACCEPTED = (("application/json", JSON),
             (openapi_v2_pb.MEDIA_TYPE_REQUESTED, PROTOBUF),
             (openapi_v2_pb.MEDIA_TYPE, PROTOBUF))

# the keys of a Swagger 2.0 Schema Object (gnostic's openapi_v2.Schema); others are dropped
_V2_SCHEMA_KEYS = frozenset({
    "$ref", "format", "title", "description", "default", "multipleOf", "maximum", "exclusiveMaximum",
    "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
    "uniqueItems", "maxProperties", "minProperties", "required", "enum", "additionalProperties",
    "type", "items", "allOf", "properties", "discriminator", "readOnly", "xml", "externalDocs",
    "example",
})
_JUNCTORS = ("allOf", "oneOf", "anyOf", "not")
BEARER_TOKEN = {"BearerToken": {"description": "Bearer Token authentication", "in": "header",
                                "name": "authorization", "type": "apiKey"}}


# ---------------------------------------------------------------- schemas


def schema_to_v2(node: Any) -> Any:
    """A v3 component schema as a v2 definition: ``#/definitions/`` refs, ``allOf: [{$ref}]``
    back to ``$ref`` (kubectl's v2 reader understands no ``allOf``), v3-only keywords
    (``nullable``, ``oneOf``, ``anyOf``, ``not``, ``writeOnly``, ``deprecated``, ...) dropped.
    Values (``default``, ``enum``, ``example``, ``x-*``) are copied untouched."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    all_of = node.get("allOf")
    unwrap = (isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict)
              and set(all_of[0]) == {"$ref"} and "$ref" not in node)
    if unwrap:
        out["$ref"] = _ref_to_v2(all_of[0]["$ref"])
    for key, val in node.items():
        if key.startswith("x-"):
            out[key] = val
        elif key not in _V2_SCHEMA_KEYS or (unwrap and key == "allOf"):
            continue
        elif key == "$ref":
            out[key] = _ref_to_v2(val)
        elif key == "properties" and isinstance(val, dict):
            out[key] = {name: schema_to_v2(s) for name, s in val.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = [schema_to_v2(s) for s in val] if isinstance(val, list) else schema_to_v2(val)
        elif key == "allOf" and isinstance(val, list):
            out[key] = [schema_to_v2(s) for s in val]
        elif key == "discriminator" and not isinstance(val, str):
            continue  # v3's discriminator object; v2's is a property name
        else:
            out[key] = val
    return out


def _ref_to_v2(ref: Any) -> Any:
    if isinstance(ref, str) and ref.startswith(REF_PREFIX):
        return V2_REF_PREFIX + ref[len(REF_PREFIX):]
    return ref


def crd_schema_to_v2(node: Any) -> Any:
    """apiextensions-apiserver's ``ToStructuralOpenAPIV2`` on a CRD's ``openAPIV3Schema``: what
    kubectl's v2 validation and explain cannot cope with is left out of the published schema."""
    if not isinstance(node, dict):
        return node
    s = dict(node)
    for key in _JUNCTORS:
        s.pop(key, None)
    if s.pop("nullable", False):
        for key in ("type", "items", "properties"):
            s.pop(key, None)
    if s.get("x-kubernetes-preserve-unknown-fields") is True:
        s.pop("items", None)
        s.pop("properties", None)
    if s.get("type") == "array" and "items" not in s:
        s.pop("type")  # kubectl cannot read an array without an item schema
    props = s.get("properties")
    if isinstance(props, dict) and isinstance(s.get("required"), list):
        s["required"] = [r for r in s["required"]
                         if not (isinstance(props.get(r), dict) and props[r].get("nullable"))]
    add = s.get("additionalProperties")
    if isinstance(add, dict) and add.get("nullable") and "required" in s:
        s["required"] = []
    if not s.get("required"):
        s.pop("required", None)
    if isinstance(props, dict):
        s["properties"] = {k: crd_schema_to_v2(v) for k, v in props.items()}
    if isinstance(s.get("items"), dict):
        s["items"] = crd_schema_to_v2(s["items"])
    if isinstance(add, dict):
        s["additionalProperties"] = crd_schema_to_v2(add)
    return s


# ---------------------------------------------------------------- operations


def _content_types(content: Any) -> list[str]:
    return list(content) if isinstance(content, dict) else []


def operation_to_v2(op: dict[str, Any]) -> dict[str, Any]:
    """A v3 operation as Swagger 2.0: query/path parameters carry their schema's ``type`` inline,
    the request body is the ``body`` parameter, media types move to ``consumes``/``produces``."""
    out: dict[str, Any] = {}
    body = op.get("requestBody")
    if isinstance(body, dict):
        out["consumes"] = _content_types(body.get("content"))
    else:
        out["consumes"] = ["*/*"]
    for key in ("description", "operationId", "tags"):
        if key in op:
            out[key] = op[key]
    params: list[dict[str, Any]] = []
    if isinstance(body, dict):
        schema = next((c.get("schema") for c in (body.get("content") or {}).values()
                       if isinstance(c, dict)), None)
        params.append({"in": "body", "name": "body", "required": bool(body.get("required", True)),
                       "schema": schema_to_v2(schema or {})})
    for p in op.get("parameters") or []:
        params.append(parameter_to_v2(p))
    if params:
        out["parameters"] = params
    produces: list[str] = []
    responses: dict[str, Any] = {}
    for code, resp in (op.get("responses") or {}).items():
        r: dict[str, Any] = {"description": resp.get("description", "")}
        content = resp.get("content") or {}
        for ct in _content_types(content):
            if ct not in produces:
                produces.append(ct)
        schema = next((c.get("schema") for c in content.values() if isinstance(c, dict)), None)
        if schema is not None:
            r["schema"] = schema_to_v2(schema)
        responses[code] = r
    out["produces"] = produces
    out["responses"] = responses
    out["schemes"] = ["https"]
    out.update({k: v for k, v in op.items() if k.startswith("x-")})
    return out


def parameter_to_v2(p: dict[str, Any]) -> dict[str, Any]:
    """A v3 query/path parameter: its ``schema`` keywords (``type``, ``uniqueItems``) inline."""
    out = {k: v for k, v in p.items() if k in ("name", "in", "description", "required")}
    schema = p.get("schema") or {}
    for key in ("type", "format", "uniqueItems", "default", "enum", "items"):
        if key in schema:
            out[key] = schema[key]
    out.setdefault("type", "string")
    return out


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _fnv1_64(data: bytes) -> bytes:
    h = 0xCBF29CE484222325
    for b in data:
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        h ^= b
    return h.to_bytes(8, "big")


def parameter_name(param: dict[str, Any]) -> str:
    """kube-openapi's name of a shared parameter: ``<name>-<base64url(fnv64(json))[:8]>``."""
    digest = _fnv1_64(_canonical(param).encode())[:6]
    return f"{param.get('name') or 'param'}-{base64.urlsafe_b64encode(digest).decode()}"


def _path_item_to_v2(item: dict[str, Any]) -> dict[str, Any]:
    ops = {verb: operation_to_v2(op) for verb, op in item.items()
           if verb in ("get", "put", "post", "delete", "patch", "head", "options")}
    out: dict[str, Any] = dict(ops)
    if not ops:
        return out
    # parameters every operation of the path takes live on the path (kube-openapi's buildPaths)
    keys = [{_canonical(p) for p in op.get("parameters", ()) if p.get("in") != "body"} for op in ops.values()]
    common = set.intersection(*keys)
    if common:
        first = next(iter(ops.values()))
        out["parameters"] = [p for p in first["parameters"] if _canonical(p) in common]
        for op in ops.values():
            rest = [p for p in op["parameters"] if _canonical(p) not in common]
            if rest:
                op["parameters"] = rest
            else:
                del op["parameters"]
    return out


def _share_parameters(paths: dict[str, Any]) -> dict[str, Any]:
    """Parameters used more than once move to ``parameters`` and are referenced (the ``name``
    path parameter stays inline: its description names the kind, as kube-openapi leaves it)."""
    lists = []
    for item in paths.values():
        lists.append(item.get("parameters"))
        lists.extend(op.get("parameters") for verb, op in item.items() if verb != "parameters")
    counts: dict[str, int] = {}
    for params in lists:
        for p in params or ():
            if p.get("name") != "name":
                key = _canonical(p)
                counts[key] = counts.get(key, 0) + 1
    shared: dict[str, Any] = {}
    names: dict[str, str] = {}
    for key in sorted(k for k, n in counts.items() if n > 1):
        param = json.loads(key)
        name = parameter_name(param)
        i = 0
        while name in shared:  # a hash collision: kube-openapi numbers it
            i += 1
            name = f"{param.get('name') or 'param'}-{i}"
        shared[name] = param
        names[key] = name
    for params in lists:
        for i, p in enumerate(params or ()):
            name = names.get(_canonical(p))
            if name is not None:
                params[i] = {"$ref": f"#/parameters/{name}"}
    return dict(sorted(shared.items()))


# ---------------------------------------------------------------- the document


def build(registry: Registry) -> dict[str, Any]:
    """The whole v2 document: every group-version's v3 document, merged and converted."""
    custom = {openapi.custom_schema_name(i): i for i in registry.all() if i.is_custom}
    definitions: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    info: dict[str, Any] = {"title": "Kubernetes", "version": "unversioned"}
    docs = openapi.v3_documents(registry)
    for key in sorted(docs):
        doc = docs[key]
        info = doc.get("info", info)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            if name in definitions:
                continue
            ri = custom.get(name)
            if ri is not None and not ri.schema:
                # apiextensions' builder: no schema, no v2 definition at all (kubectl would
                # validate against one and refuse every field)
                definitions[name] = {}
                continue
            if ri is not None:  # the CRD's schema as ToStructuralOpenAPIV2 leaves it
                schema = openapi.custom_schema(dataclasses.replace(ri, schema=crd_schema_to_v2(ri.schema)))
            definitions[name] = schema_to_v2(schema)
        for path, item in doc.get("paths", {}).items():
            paths[path] = _path_item_to_v2(item)
    paths = dict(sorted(paths.items()))
    parameters = _share_parameters(paths)
    return {
        "swagger": "2.0",
        "info": dict(info),
        "paths": paths,
        "definitions": dict(sorted(definitions.items())),
        "parameters": parameters,
        "securityDefinitions": BEARER_TOKEN,
        "security": [{"BearerToken": []}],
    }


@dataclass(frozen=True)
class Served:
    body: bytes
    content_type: str
    etag: str  # quoted, as kube-openapi sends it


class _Cache:
    def __init__(self, registry: Registry) -> None:
        self.ref = weakref.ref(registry)
        self.generation = registry.generation
        self.doc: dict[str, Any] | None = None
        self.forms: dict[str, Served] = {}
        self.lock = threading.Lock()


_caches: dict[int, _Cache] = {}


def _cache(registry: Registry) -> _Cache:
    c = _caches.get(id(registry))
    if c is None or c.ref() is not registry or c.generation != registry.generation:
        c = _caches[id(registry)] = _Cache(registry)
    return c


def document(registry: Registry) -> dict[str, Any]:
    """The v2 document as a dict (cached per registry generation; read-only)."""
    c = _cache(registry)
    with c.lock:
        if c.doc is None:
            c.doc = build(registry)
        return c.doc


def served(registry: Registry, form: str) -> Served:
    """The body of ``form`` (``JSON`` or ``PROTOBUF``) with its ETag, built once per registry
    generation (blocking: call it in a thread)."""
    c = _cache(registry)
    doc = document(registry)
    with c.lock:
        hit = c.forms.get(form)
        if hit is None:
            if form == PROTOBUF:
                body, unknown = openapi_v2_pb.encode(doc)
                if unknown:
                    log.warning("openapi v2: keys with no place in the protobuf form", keys=unknown[:20],
                                count=len(unknown))
            else:
                body = json.dumps(doc, separators=(",", ":")).encode()
            hit = c.forms[form] = Served(body, form, '"%s"' % hashlib.sha512(body).hexdigest().upper())
        return hit


def negotiate(accept: str) -> str | None:
    """The form to answer for an Accept header (kube-openapi's handler: the first range, by
    preference, that JSON or the gnostic protobuf matches; none given is ``*/*``), or None (406)."""
    for mtype, _ in aggregated.media_ranges(accept or "*/*"):
        mtype_main, _, msub = mtype.partition("/")
        for offered, form in _ACCEPTED:
            omain, _, osub = offered.partition("/")
            if mtype_main in (omain, "*") and msub in (osub, "*"):
                return form
    return None
