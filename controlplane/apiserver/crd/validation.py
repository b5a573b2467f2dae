"""CustomResourceDefinition validation (apiextensions ``ValidateCustomResourceDefinition``
subset): names, group, scope, versions (one storage version, served names), schemas present
and structural enough for ``schema.py`` to enforce. Caller: ``validation/rules.py``.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.crd.rules import check_rules
from controlplane.apiserver.meta.names import Errors, dns1123_label_error, dns1123_subdomain_error

Obj = dict[str, Any]
_TYPES = ("array", "boolean", "integer", "number", "object", "string")


def validate_crd(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.required("spec", "")
        return
    group = spec.get("group") or ""
    names = spec.get("names") or {}
    plural = names.get("plural") or ""
    name = (obj.get("metadata") or {}).get("name")
    if name and plural and group and name != f"{plural}.{group}":
        errs.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
    if not group:
        errs.required("spec.group", "")
    elif dns1123_subdomain_error(group) or "." not in group:
        errs.invalid("spec.group", group, "should be a domain with at least one dot")
    scope = spec.get("scope")
    if scope not in ("Cluster", "Namespaced"):
        errs.not_supported("spec.scope", scope, ("Cluster", "Namespaced"))
    if not plural:
        errs.required("spec.names.plural", "")
    for key in ("plural", "singular"):
        v = names.get(key)
        if v and dns1123_label_error(v):
            errs.invalid(f"spec.names.{key}", v, dns1123_label_error(v) or "")
    if not names.get("kind"):
        errs.required("spec.names.kind", "")
    versions = spec.get("versions")
    if not versions:
        errs.invalid("spec.versions", versions, "must have exactly one version marked as storage version")
        return
    storage = [v for v in versions if isinstance(v, dict) and v.get("storage")]
    if len(storage) != 1:
        errs.invalid("spec.versions", len(storage), "must have exactly one version marked as storage version")
    if not any(isinstance(v, dict) and v.get("served") for v in versions):
        errs.invalid("spec.versions", "", "must have at least one version marked as served")
    seen: set[str] = set()
    for i, v in enumerate(versions):
        if not isinstance(v, dict):
            continue
        path = f"spec.versions[{i}]"
        vn = v.get("name")
        if not vn:
            errs.required(f"{path}.name", "")
        elif dns1123_label_error(vn):
            errs.invalid(f"{path}.name", vn, dns1123_label_error(vn) or "")
        elif vn in seen:
            errs.duplicate(f"{path}.name", vn)
        seen.add(vn or "")
        for key in ("served", "storage"):
            if not isinstance(v.get(key), bool):
                errs.required(f"{path}.{key}", "")
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            errs.required(f"{path}.schema.openAPIV3Schema", "schemas are required")
            continue
        if schema.get("type") not in (None, "object"):
            errs.invalid(f"{path}.schema.openAPIV3Schema.type", schema.get("type"),
                         "must be object at the root")
        _structural(schema, f"{path}.schema.openAPIV3Schema", errs, root=True)
        check_rules(schema, f"{path}.schema.openAPIV3Schema", errs)
        _selectable_fields(v.get("selectableFields") or [], schema, f"{path}.selectableFields", errs)
        for j, col in enumerate(v.get("additionalPrinterColumns") or []):
            cp = f"{path}.additionalPrinterColumns[{j}]"
            for key in ("name", "type", "jsonPath"):
                if not col.get(key):
                    errs.required(f"{cp}.{key}", "")
            if col.get("type") and col["type"] not in ("boolean", "date", "integer", "number", "string"):
                errs.not_supported(f"{cp}.type", col["type"],
                                   ("boolean", "date", "integer", "number", "string"))
    if update and old:
        ospec = old.get("spec") or {}
        if ospec.get("scope") and ospec.get("scope") != scope:
            errs.invalid("spec.scope", scope, "field is immutable")


MAX_SELECTABLE_FIELDS = 8


def _selectable_fields(fields: list[Any], schema: Obj, path: str, errs: Errors) -> None:
    """apiextensions' ``validateSelectableFields``: each ``jsonPath`` a simple path (no array
    notation) to a string, boolean or integer field of the schema, outside ``metadata``, once;
    at most eight."""
    seen: set[str] = set()
    for i, f in enumerate(fields):
        fp = f"{path}[{i}].jsonPath"
        jp = f.get("jsonPath") if isinstance(f, dict) else None
        if not jp:
            errs.required(fp, "")
            continue
        found, err = _field_schema(str(jp), schema)
        if err:
            errs.invalid(fp, jp, f"is an invalid path: {err}")
            continue
        if str(jp).lstrip(".").split(".")[0] == "metadata":
            errs.invalid(fp, jp, "must not point to fields in metadata")
        if not isinstance(found, dict) or found.get("type") not in ("string", "boolean", "integer"):
            errs.invalid(fp, jp, "must point to a field of type string, boolean or integer. Enum string fields "
                                 "and strings with formats are allowed.")
        if jp in seen:
            errs.duplicate(fp, jp)
        seen.add(str(jp))
    if len(seen) > MAX_SELECTABLE_FIELDS:
        errs.add("FieldValueTooMany", path, f"Too many: {len(seen)}: must have at most {MAX_SELECTABLE_FIELDS} items")


def _field_schema(json_path: str, schema: Obj) -> tuple[Any, str]:
    """The schema ``json_path`` (``.spec.color``) names, or why it names none."""
    if not json_path.startswith("."):
        return None, "must start with '.'"  # hand-written: Kubernetes' JSONPath parser words it otherwise
    if "[" in json_path:
        return None, "array notation is not allowed"
    node: Any = schema
    for part in json_path[1:].split("."):
        props = node.get("properties") if isinstance(node, dict) else None
        if not part or not isinstance(props, dict) or part not in props:
            return None, "does not refer to a valid field"
        node = props[part]
    return node, ""


def _structural(schema: Any, path: str, errs: Errors, root: bool = False) -> None:
    if not isinstance(schema, dict):
        errs.invalid(path, schema, "must be an object")
        return
    t = schema.get("type")
    special = (schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields"))
    if t is None and not special and not root and not _only_logic(schema):
        errs.required(f"{path}.type", "must not be empty for specified object fields")
    elif t is not None and t not in _TYPES:
        errs.not_supported(f"{path}.type", t, _TYPES)
    for key, sub in (schema.get("properties") or {}).items():
        _structural(sub, f"{path}.properties[{key}]", errs)
    if isinstance(schema.get("items"), dict):
        _structural(schema["items"], f"{path}.items", errs)
    elif t == "array" and "items" not in schema:
        errs.required(f"{path}.items", "must be specified")
    if isinstance(schema.get("additionalProperties"), dict):
        _structural(schema["additionalProperties"], f"{path}.additionalProperties", errs)
        if schema.get("properties"):
            errs.forbidden(f"{path}.additionalProperties",
                           "additionalProperties and properties are mutual exclusive")


def _only_logic(schema: Obj) -> bool:
    return not schema or all(k in ("description", "allOf", "anyOf", "oneOf", "not", "default",
                                   "nullable", "example", "title", "x-kubernetes-validations")
                             for k in schema)
