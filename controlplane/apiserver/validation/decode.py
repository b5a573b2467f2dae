"""Decode-time checks of built-in objects against the Kubernetes schemas, as Go's JSON decoder
would make them: values of the wrong JSON type (``json: cannot unmarshal …``), bad base64 in
``[]byte`` fields, and unknown fields (reported with their field paths).

Each OpenAPI schema node (``k8s_schemas.definitions()``) is compiled once into a small ``Node``
(``$ref`` resolved, type tag, Go type name, compiled properties / items / additionalProperties),
cached per definition and per GVK, so a write walks plain objects instead of re-resolving
schema dicts. Scalar fields of the right type are checked inline by their parent; field paths
are built only when an unknown field or a type error is reported (the walk passes the parent
chain, not strings). Caller: ``objects.py``; neighbours: ``discovery/k8s_schemas.py``.

API: ``root_node(group, version, kind) -> Node | None`` and
``decode(obj, root, kind) -> (unknown_paths, type_error_or_None)``.
"""

from __future__ import annotations

import base64
import binascii
import threading
from typing import Any

from controlplane.apiserver.discovery import k8s_schemas

_JSON_TYPE = {str: "string", int: "number", float: "number", bool: "bool", list: "array",
              dict: "object"}

# node kinds
NOOP, INTSTR, QUANTITY, STRING, BYTES, INTEGER, NUMBER, BOOLEAN, ARRAY, OBJECT = range(10)
# chain tags: a property (``a.b``), a list item (``a[0]``), a map value (``a[key]``)
_PROP, _ITEM, _MAPV = 0, 1, 2

_FAST: dict[int, frozenset[type]] = {
    STRING: frozenset({str}), INTEGER: frozenset({int}), NUMBER: frozenset({int, float}),
    BOOLEAN: frozenset({bool}), INTSTR: frozenset({str, int}), QUANTITY: frozenset({str, int, float}),
}


class Body:
    """The resolved part of a schema node, shared by every reference to one definition."""

    __slots__ = ("kind", "go_type", "items", "props", "addl", "unknown_ok", "schema")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema  # keeps the id() cache key alive
        self.kind = NOOP
        self.go_type = ""
        self.items: Node | None = None
        self.props: dict[str, Node] | None = None
        self.addl: Node | None = None
        self.unknown_ok = False


class Node:
    """One schema position: the reference name it was reached through plus the shared body."""

    __slots__ = ("ref_name", "body", "fast", "empty_type", "map_fast", "obj_go_type", "raw")

    def __init__(self, raw: dict[str, Any], ref_name: str, body: Body) -> None:
        self.raw = raw
        self.ref_name = ref_name
        self.body = body
        self.fast: frozenset[type] | None = _FAST.get(body.kind)
        # an empty dict (list) where an object (array) belongs has nothing to check
        self.empty_type: type | None = {OBJECT: dict, ARRAY: list}.get(body.kind)
        # maps of scalars (labels, resource lists, ConfigMap data): values checked by the parent
        self.map_fast: frozenset[type] | None = None
        if body.kind == OBJECT and body.props is None and body.addl is not None:
            self.map_fast = body.addl.fast
        self.obj_go_type = ref_name or "map[string]string"


_nodes: dict[int, Node] = {}
_bodies: dict[int, Body] = {}
_roots: dict[tuple[str, str, str], Node | None] = {}
_compile_lock = threading.Lock()  # a root is published only once its whole closure is compiled


def root_node(group: str, version: str, kind: str) -> Node | None:
    """The compiled schema of a built-in kind (None when there is no schema for it)."""
    key = (group, version, kind)
    try:
        return _roots[key]
    except KeyError:
        pass
    with _compile_lock:
        if key not in _roots:
            schema = k8s_schemas.schema_for(group, version, kind)
            _roots[key] = compile_node(schema) if schema is not None else None
        return _roots[key]


def compile_node(raw: dict[str, Any]) -> Node:
    node = _nodes.get(id(raw))
    if node is not None and node.raw is raw:
        return node
    ref_name = ""
    if "$ref" in raw or len(raw.get("allOf", ())) == 1:
        ref = raw.get("$ref") or raw["allOf"][0].get("$ref", "")
        ref_name = ref.rsplit(".", 1)[-1]
    node = _nodes[id(raw)] = Node(raw, ref_name, _body(k8s_schemas.resolve(raw)))
    return node


def _body(schema: dict[str, Any]) -> Body:
    body = _bodies.get(id(schema))
    if body is not None and body.schema is schema:
        return body
    body = _bodies[id(schema)] = Body(schema)
    typ = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if schema.get("format") == "quantity":
            body.kind, body.go_type = QUANTITY, "resource.Quantity"
        else:
            body.kind, body.go_type = INTSTR, "intstr.IntOrString"
    elif typ == "string":
        body.kind = BYTES if schema.get("format") == "byte" else STRING
        body.go_type = "string"
    elif typ == "integer":
        body.kind, body.go_type = INTEGER, schema.get("format", "int64")
    elif typ == "number":
        body.kind, body.go_type = NUMBER, "float64"
    elif typ == "boolean":
        body.kind, body.go_type = BOOLEAN, "bool"
    elif typ == "array":
        body.kind, body.go_type = ARRAY, "[]" + _go_item(schema)
        body.items = compile_node(schema.get("items") or {})
    elif typ == "object" or "properties" in schema:
        body.kind = OBJECT
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        body.addl = compile_node(addl) if isinstance(addl, dict) else None
        body.unknown_ok = addl is True or bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        if props is not None:
            body.props = {}
            for key, sub in props.items():
                body.props[key] = compile_node(sub)
    return body


def _go_item(schema: dict[str, Any]) -> str:
    items = schema.get("items") or {}
    if "$ref" in items:
        return items["$ref"].rsplit(".", 1)[-1]
    return {"string": "string", "integer": "int32", "boolean": "bool"}.get(items.get("type", ""), "interface {}")


class _Stop(Exception):
    """The first type error ends the walk (Go's decoder stops there too)."""


class _Walk:
    __slots__ = ("kind", "unknown", "type_error")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.unknown: list[Any] = []
        self.type_error: str | None = None

    def fail(self, value: Any, chain: Any, go_type: str, struct: str) -> None:
        jt = _JSON_TYPE.get(type(value), "value")
        self.type_error = (f"json: cannot unmarshal {jt} into Go struct field "
                           f"{struct}.{_go_path(chain).lstrip('.')} of type {go_type}")
        raise _Stop

    def walk(self, value: Any, node: Node, struct: str, chain: Any) -> None:
        body = node.body
        kind = body.kind
        if kind == OBJECT:
            if not isinstance(value, dict):
                self.fail(value, chain, node.obj_go_type, struct)
            props = body.props
            addl = body.addl
            if props is not None:
                child_struct = node.ref_name or struct
                for key, sub in value.items():
                    cn = props.get(key)
                    if cn is None:
                        if addl is not None:
                            if sub is not None:
                                self.walk(sub, addl, struct, (chain, key, _PROP))
                        elif not body.unknown_ok:
                            self.unknown.append((chain, key, _PROP))
                        continue
                    if sub is None:
                        continue
                    fast = cn.fast
                    if fast is not None:
                        if type(sub) in fast:
                            continue
                    elif not sub and type(sub) is cn.empty_type:
                        continue
                    elif cn.map_fast is not None and type(sub) is dict:
                        fast = cn.map_fast
                        for x in sub.values():
                            if x is not None and type(x) not in fast:
                                break
                        else:
                            continue
                    self.walk(sub, cn, child_struct, (chain, key, _PROP))
            elif addl is not None:
                fast = addl.fast
                for key, sub in value.items():
                    if sub is None or (fast is not None and type(sub) in fast):
                        continue
                    self.walk(sub, addl, struct, (chain, key, _MAPV))
        elif kind == ARRAY:
            if not isinstance(value, list):
                self.fail(value, chain, body.go_type, struct)
            items = body.items
            fast = items.fast  # type: ignore[union-attr]
            for i, item in enumerate(value):
                if item is None or (fast is not None and type(item) in fast):
                    continue
                self.walk(item, items, struct, (chain, i, _ITEM))  # type: ignore[arg-type]
        elif kind == STRING:
            if not isinstance(value, str):
                self.fail(value, chain, "string", struct)
        elif kind == BYTES:
            if not isinstance(value, str):
                self.fail(value, chain, "string", struct)
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                self.type_error = f"illegal base64 data at input byte {_bad_b64_offset(value)}"
                raise _Stop from None
        elif kind == INTEGER:
            if isinstance(value, bool) or not (isinstance(value, int) or
                                               (isinstance(value, float) and value.is_integer())):
                self.fail(value, chain, body.go_type, struct)
        elif kind == NUMBER:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(value, chain, "float64", struct)
        elif kind == BOOLEAN:
            if not isinstance(value, bool):
                self.fail(value, chain, "bool", struct)
        elif kind == INTSTR:
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                self.fail(value, chain, body.go_type, struct)
        elif kind == QUANTITY:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                self.fail(value, chain, body.go_type, struct)


def decode(obj: Any, root: Node, kind: str) -> tuple[list[str], str | None]:
    """(unknown field paths, first type error) of ``obj`` against its kind's compiled schema."""
    w = _Walk(kind)
    if obj is not None:
        try:
            w.walk(obj, root, kind, None)
        except _Stop:
            pass
    return [_path(c) for c in w.unknown], w.type_error


def _segments(chain: Any) -> list[tuple[Any, int]]:
    segs: list[tuple[Any, int]] = []
    while chain is not None:
        chain, key, tag = chain
        segs.append((key, tag))
    segs.reverse()
    return segs


def _path(chain: Any) -> str:
    path = ""
    for key, tag in _segments(chain):
        if tag == _ITEM:
            path = f"{path}[{key}]"
        elif tag == _MAPV:
            path = f"{path}[{key}]" if path else key
        else:
            path = f"{path}.{key}" if path else key
    return path


def _go_path(chain: Any) -> str:
    return "".join(f".{key}" for key, tag in _segments(chain) if tag == _PROP)


def _bad_b64_offset(value: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    for i, ch in enumerate(value):
        if ch not in alphabet:
            return i
    return len(value) - (len(value) % 4)
