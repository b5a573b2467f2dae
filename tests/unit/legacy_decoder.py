"""The walker of Kubernetes 1.32's JSON decoding checks as ``validation.py`` had it before the
compiled walker (``validation_decode.py``): it re-resolves the raw OpenAPI schema dicts at every
step. Kept only as the oracle ``test_validation_decode.py`` compares the compiled walker with.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from controlplane.apiserver.discovery import k8s_schemas

_JSON_TYPE = {str: "string", int: "number", float: "number", bool: "bool", list: "array",
              dict: "object"}


class LegacyDecoder:
    """Walks an object alongside its schema like Go's JSON decoder would."""

    def __init__(self, kind: str, version: str) -> None:
        self.kind = kind
        self.version = version
        self.unknown: list[str] = []
        self.type_error: str | None = None
        self._struct = kind

    def _fail(self, value: Any, go_path: str, go_type: str, struct: str) -> None:
        if self.type_error is None:
            jt = _JSON_TYPE.get(type(value), "value")
            self.type_error = (f"json: cannot unmarshal {jt} into Go struct field "
                               f"{struct}.{go_path.lstrip('.')} of type {go_type}")

    def walk(self, value: Any, schema: dict[str, Any], path: str, go_path: str,
             struct: str | None = None) -> None:
        if value is None or self.type_error:
            return
        struct = struct or self.kind
        ref_name = ""
        if "$ref" in schema or len(schema.get("allOf", ())) == 1:
            ref = schema.get("$ref") or schema["allOf"][0].get("$ref", "")
            ref_name = ref.rsplit(".", 1)[-1]
        schema = k8s_schemas.resolve(schema)
        if schema.get("x-kubernetes-int-or-string"):
            if schema.get("format") == "quantity":
                ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
            else:
                ok = isinstance(value, (str, int)) and not isinstance(value, bool)
            if not ok:
                self._fail(value, go_path, "intstr.IntOrString" if schema.get("format") != "quantity"
                           else "resource.Quantity", struct)
            return
        typ = schema.get("type")
        if typ == "string":
            if not isinstance(value, str):
                self._fail(value, go_path, "string", struct)
            elif schema.get("format") == "byte":
                try:
                    base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    self.type_error = f"illegal base64 data at input byte {_bad_b64_offset(value)}"
        elif typ == "integer":
            if isinstance(value, bool) or not (isinstance(value, int) or
                                               (isinstance(value, float) and value.is_integer())):
                self._fail(value, go_path, schema.get("format", "int64"), struct)
        elif typ == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self._fail(value, go_path, "float64", struct)
        elif typ == "boolean":
            if not isinstance(value, bool):
                self._fail(value, go_path, "bool", struct)
        elif typ == "array":
            if not isinstance(value, list):
                self._fail(value, go_path, "[]" + _go_item(schema), struct)
                return
            items = schema.get("items") or {}
            for i, item in enumerate(value):
                self.walk(item, items, f"{path}[{i}]", go_path, struct)
        elif typ == "object" or "properties" in schema:
            if not isinstance(value, dict):
                self._fail(value, go_path, ref_name or "map[string]string", struct)
                return
            props = schema.get("properties")
            addl = schema.get("additionalProperties")
            if props is not None:
                for key, sub in value.items():
                    sub_schema = props.get(key)
                    child = f"{path}.{key}" if path else key
                    if sub_schema is None:
                        if isinstance(addl, dict):
                            self.walk(sub, addl, child, f"{go_path}.{key}", struct)
                        elif addl is not True and not schema.get("x-kubernetes-preserve-unknown-fields"):
                            self.unknown.append(child)
                        continue
                    self.walk(sub, sub_schema, child, f"{go_path}.{key}",
                              ref_name or struct)
            elif isinstance(addl, dict):
                for key, sub in value.items():
                    self.walk(sub, addl, f"{path}[{key}]" if path else key, go_path, struct)


def _go_item(schema: dict[str, Any]) -> str:
    items = schema.get("items") or {}
    if "$ref" in items:
        return items["$ref"].rsplit(".", 1)[-1]
    return {"string": "string", "integer": "int32", "boolean": "bool"}.get(items.get("type", ""), "interface {}")


def _bad_b64_offset(value: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    for i, ch in enumerate(value):
        if ch not in alphabet:
            return i
    return len(value) - (len(value) % 4)
