"""Custom resources against their CRD's structural ``openAPIV3Schema``: pruning, defaulting
and validation, in kube-apiserver's order (prune unknown fields and non-nullable nulls ->
apply ``default``s -> validate).

Supported: ``type``, ``properties``, ``required``, ``items``, ``additionalProperties``,
``enum``, ``pattern``, ``minimum``/``maximum`` (+ exclusive), ``multipleOf``,
``minLength``/``maxLength``, ``minItems``/``maxItems``, ``uniqueItems``,
``minProperties``/``maxProperties``, ``nullable``, ``allOf``/``anyOf``/``oneOf``/``not``,
``x-kubernetes-preserve-unknown-fields``, ``x-kubernetes-int-or-string``,
``x-kubernetes-embedded-resource``, ``x-kubernetes-list-type`` (set/map uniqueness).
Errors are 422 Invalid with Kubernetes' field paths and messages. Then, when nothing blocking
was found, the CEL rules (``x-kubernetes-validations``, ``rules.py``). Caller:
``strategy/customresource.py``.

Validation ratcheting (``CRDValidationRatcheting``, on by default since Kubernetes 1.30): on an
update, a node whose value is unchanged from the stored object's correlated value is not
validated, so tightening a schema does not block updates of objects that already break it
elsewhere. Correlation as apiextensions-apiserver's ``CorrelatedObject``: object properties and
``additionalProperties`` by key, ``x-kubernetes-list-type: map`` items by their keys, ``set``
items by value; items of other (atomic) lists are not correlated. Unchanged means equal as
JSON (``1`` is not ``true``). The same holds for CEL rules that do not use ``oldSelf``
(``rules.py``). kube-apiserver turns ratcheted errors into warnings it does not return; here
they are dropped.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from controlplane.apiserver.crd import rules
from controlplane.apiserver.crd.ratchet import NO_OLD, correlated_items, same_json
from controlplane.apiserver.meta.errors import bad_request, invalid
from controlplane.apiserver.meta.names import Errors, render

Obj = dict[str, Any]
_ROOT_KEEP = ("apiVersion", "kind", "metadata")
_JSON_TYPES = {"string": (str,), "boolean": (bool,), "object": (dict,), "array": (list,)}


def validate_and_prune(obj: Obj, schema: Obj | None, *, kind: str = "", name: str = "",
                       group: str = "", strict: bool = False,
                       warnings: list[str] | None = None, old: Obj | None = None) -> Obj:
    """Return the pruned and defaulted copy of ``obj``; raise 422 Invalid when it violates
    ``schema`` (its CEL rules included; ``old``: the stored object on an update, for the
    transition rules). Unknown (pruned) fields are a 400 ``strict decoding error`` when
    ``strict`` (``fieldValidation=Strict``), else appended to ``warnings`` when given."""
    out = copy.deepcopy(obj)
    if not schema:
        return out
    unknown: list[str] = []
    prune(out, schema, root=True, unknown=unknown)
    if unknown:
        kind = kind or str(obj.get("kind", ""))
        version = str(obj.get("apiVersion", "")).rpartition("/")[2]
        msgs = ", ".join(f'unknown field "{p}"' for p in unknown)
        if strict:
            raise bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: '
                              f"strict decoding error: {msgs}")
        if warnings is not None:
            warnings.extend(f'unknown field "{p}"' for p in unknown)
    apply_defaults(out, schema)
    errs = Errors()
    _validate(out, schema, "", errs, root=True, old=old if isinstance(old, dict) else NO_OLD)
    if rules.has_rules(schema):
        if any(c["reason"] in ("FieldValueTypeInvalid", "FieldValueRequired") for c in errs.causes):
            # as apiextensions-apiserver: rules over an object of the wrong shape are not run
            errs.add("FieldValueInvalid", "<nil>", 'Invalid value: "null": some validation rules were not checked '
                                                   "because the object was invalid; correct the existing errors to "
                                                   "complete validation")
        else:
            rules.validate_object(out, old, schema, errs)
    if errs.causes:
        meta = out.get("metadata") or {}
        raise invalid(kind or str(out.get("kind", "")), name or meta.get("name") or "",
                      errs.causes, group=group or str(out.get("apiVersion", "")).rpartition("/")[0])
    return out


# ---------------------------------------------------------------- pruning


def prune(value: Any, schema: Obj, *, root: bool = False, unknown: list[str] | None = None,
          path: str = "") -> None:
    """Drop fields the schema does not specify (in place; their paths go to ``unknown``), and
    nulls that are not nullable."""
    if isinstance(value, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        for key in list(value):
            sub = value[key]
            if (root or embedded) and key in _ROOT_KEEP and not (props and key in props):
                continue
            if props is not None and key in props:
                sub_schema = props[key]
            elif isinstance(addl, dict):
                sub_schema = addl
            elif preserve or addl is True:
                continue
            else:
                del value[key]
                if unknown is not None:
                    unknown.append(f"{path}.{key}" if path else key)
                continue
            if sub is None and not sub_schema.get("nullable"):
                del value[key]
                continue
            prune(sub, sub_schema, unknown=unknown, path=f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i in range(len(value) - 1, -1, -1):
                if value[i] is None and not items.get("nullable"):
                    continue  # nulls in lists are a validation error, not pruned
                prune(value[i], items, unknown=unknown, path=f"{path}[{i}]")


def apply_defaults(value: Any, schema: Obj) -> None:
    """Fill ``default`` for absent properties, recursively (in place)."""
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                apply_defaults(value[key], sub)
        addl = schema.get("additionalProperties")
        if isinstance(addl, dict):
            for key in value:
                if key not in (schema.get("properties") or {}):
                    apply_defaults(value[key], addl)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])


# ---------------------------------------------------------------- validation


def _type_ok(value: Any, schema: Obj) -> bool:
    if value is None:
        return bool(schema.get("nullable"))
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    t = schema.get("type")
    if t is None:
        return True
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _JSON_TYPES.get(t, (object,)))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", dict: "object", list: "array"}.get(type(value), "unknown")


def _validate(value: Any, schema: Obj, path: str, errs: Errors, root: bool = False, old: Any = NO_OLD) -> None:
    if old is not NO_OLD and not root and same_json(value, old):
        return  # ratcheting: an unchanged value is not validated again
    where = path or "<root>"
    if not _type_ok(value, schema):
        t = "integer-or-string" if schema.get("x-kubernetes-int-or-string") else schema.get("type")
        errs.add("FieldValueTypeInvalid", where,
                 f"Invalid value: {render(_json_type(value))}: {where} in body must be of type {t}: "
                 f"{render(_json_type(value))}")
        return
    if value is None:
        return
    if "enum" in schema and value not in schema["enum"]:
        errs.not_supported(where, value, [v if isinstance(v, str) else json.dumps(v) for v in schema["enum"]])
    if isinstance(value, str):
        _strings(value, schema, where, errs)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _numbers(value, schema, where, errs)
    elif isinstance(value, list):
        _arrays(value, schema, path, where, errs, old)
    elif isinstance(value, dict):
        _objects(value, schema, path, errs, root, old)
    _logic(value, schema, path, errs, old)


def _strings(value: str, schema: Obj, where: str, errs: Errors) -> None:
    if "pattern" in schema:
        try:
            ok = re.search(schema["pattern"], value) is not None
        except re.error:
            ok = True
        if not ok:
            errs.invalid(where, value, f"{where} in body should match '{schema['pattern']}'")
    if "minLength" in schema and len(value) < schema["minLength"]:
        errs.invalid(where, value, f"{where} in body should be at least {schema['minLength']} chars long")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errs.add("FieldValueTooLong", where, f"Too long: may not be more than {schema['maxLength']} bytes")
    fmt = schema.get("format")
    if fmt == "date-time" and not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", value):
        errs.invalid(where, value, f"{where} in body must be of type date-time: {render(value)}")


def _numbers(value: float, schema: Obj, where: str, errs: Errors) -> None:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None:
        if schema.get("exclusiveMinimum") and value <= lo:
            errs.invalid(where, value, f"{where} in body should be greater than {lo}")
        elif value < lo:
            errs.invalid(where, value, f"{where} in body should be greater than or equal to {lo}")
    if hi is not None:
        if schema.get("exclusiveMaximum") and value >= hi:
            errs.invalid(where, value, f"{where} in body should be less than {hi}")
        elif value > hi:
            errs.invalid(where, value, f"{where} in body should be less than or equal to {hi}")
    mult = schema.get("multipleOf")
    if mult and (value / mult) != int(value / mult):
        errs.invalid(where, value, f"{where} in body should be a multiple of {mult}")


def _arrays(value: list, schema: Obj, path: str, where: str, errs: Errors, old: Any = NO_OLD) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        errs.invalid(where, len(value), f"{where} in body should have at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errs.add("FieldValueTooMany", where, f"Too many: {len(value)}: must have at most {schema['maxItems']} items")
    list_type = schema.get("x-kubernetes-list-type")
    if schema.get("uniqueItems") or list_type == "set":
        seen: list[str] = []
        for i, item in enumerate(value):
            key = json.dumps(item, sort_keys=True)
            if key in seen:
                errs.duplicate(f"{path}[{i}]", item)
            seen.append(key)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen_keys: list[tuple] = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                k = tuple(json.dumps(item.get(x)) for x in keys)
                if k in seen_keys:
                    errs.duplicate(f"{path}[{i}]", {x: item.get(x) for x in keys})
                seen_keys.append(k)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, (item, item_old) in enumerate(zip(value, correlated_items(value, old, schema))):
            _validate(item, items, f"{path}[{i}]", errs, old=item_old)


def _objects(value: Obj, schema: Obj, path: str, errs: Errors, root: bool, old: Any = NO_OLD) -> None:
    props = schema.get("properties") or {}
    for req in schema.get("required") or []:
        if req not in value or (value[req] is None and not (props.get(req) or {}).get("nullable")):
            errs.required(f"{path}.{req}" if path else req, "")
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        errs.invalid(path or "<root>", len(value),
                     f"{path or '<root>'} in body should have at least {schema['minProperties']} properties")
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errs.add("FieldValueTooMany", path or "<root>",
                 f"Too many: {len(value)}: must have at most {schema['maxProperties']} items")
    addl = schema.get("additionalProperties")
    old_map = old if isinstance(old, dict) else {}
    for key, sub in value.items():
        if root and key in _ROOT_KEEP and key not in props:
            continue
        child = f"{path}.{key}" if path else key
        if key in props:
            _validate(sub, props[key], child, errs, old=old_map.get(key, NO_OLD))
        elif isinstance(addl, dict):
            _validate(sub, addl, f"{path}[{key}]" if path else key, errs, old=old_map.get(key, NO_OLD))
    if schema.get("x-kubernetes-embedded-resource"):
        for req in ("apiVersion", "kind"):
            if not value.get(req):
                errs.required(f"{path}.{req}" if path else req, "")


def _logic(value: Any, schema: Obj, path: str, errs: Errors, old: Any = NO_OLD) -> None:
    where = path or "<root>"
    for sub in schema.get("allOf") or []:
        _validate(value, _as_value_schema(sub, schema), path, errs, old=old)
    if schema.get("anyOf"):
        if not any(_passes(value, _as_value_schema(s, schema), path) for s in schema["anyOf"]):
            errs.invalid(where, value, f"{where} in body must validate at least one schema (anyOf)")
    if schema.get("oneOf"):
        n = sum(_passes(value, _as_value_schema(s, schema), path) for s in schema["oneOf"])
        if n != 1:
            errs.invalid(where, value, f"{where} in body must validate one and only one schema (oneOf)")
    if isinstance(schema.get("not"), dict) and _passes(value, _as_value_schema(schema["not"], schema), path):
        errs.invalid(where, value, f"{where} in body must not validate the schema (not)")


def _as_value_schema(sub: Obj, parent: Obj) -> Obj:
    """Value validations in allOf/anyOf/… inherit the structural type of their parent."""
    out = dict(sub)
    for k in ("type", "x-kubernetes-int-or-string", "nullable"):
        if k in parent and k not in out:
            out[k] = parent[k]
    return out


def _passes(value: Any, schema: Obj, path: str) -> bool:
    e = Errors()
    _validate(value, schema, path, e)
    return not e.causes
