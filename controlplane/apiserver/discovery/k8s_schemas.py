"""The real Kubernetes 1.32 type definitions, as OpenAPI 3 component schemas.

Source: the JSON Schema the PyPI package ``kubernetes-validate`` ships (derived from the
Kubernetes OpenAPI v2 definitions, ``x-kubernetes-*`` extensions included). We convert it once
(lazily, cached) to the shape kube-apiserver serves under ``/openapi/v3``: ``$ref`` to
``#/components/schemas/<io.k8s…>``, no ``null`` in ``type``, ``allOf`` wrapping for referenced
properties, ``int-or-string`` formats. Neighbours: ``openapi.py`` (serves the documents),
``validation/decode.py`` (walks the same schemas); ``patch/schema.py`` reads the patch metadata
from the same package's data.
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import kubernetes_validate

TARGET_MINOR = 32
REF_PREFIX = "#/components/schemas/"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"


def schema_dir() -> Path:
    """The kubernetes-validate definitions folder closest to Kubernetes 1.32 (non-strict)."""
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    best: tuple[int, Path] | None = None
    for d in base.iterdir():
        m = re.fullmatch(r"v1\.(\d+)\.(\d+)-local", d.name)
        if not m or not (d / "_definitions.json").exists():
            continue
        dist = abs(int(m.group(1)) - TARGET_MINOR)
        if best is None or dist < best[0]:
            best = (dist, d)
    if best is None:
        raise RuntimeError(f"no Kubernetes definitions under {base}")
    return best[1]


def _strip_null(t: Any) -> Any:
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        return rest[0] if len(rest) == 1 else rest
    return t


def _convert(node: Any, *, is_property: bool = False) -> Any:
    if isinstance(node, list):
        return [_convert(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, val in node.items():
        if key == "$ref":
            out["$ref"] = REF_PREFIX + val.rsplit("/", 1)[-1]
        elif key == "type":
            out["type"] = _strip_null(val)
        elif key == "properties":
            out["properties"] = {}
            for pname, pschema in val.items():
                conv = _convert(pschema, is_property=True)
                if pname in ("apiVersion", "kind") and isinstance(conv, dict):
                    conv.pop("enum", None)  # added by the JSON-Schema generator, not in OpenAPI
                out["properties"][pname] = conv
        elif key in ("items", "additionalProperties"):
            out[key] = _convert(val) if isinstance(val, dict) else val
        else:
            out[key] = _convert(val)
    if is_property and "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
        if ref.endswith((".ObjectMeta", "Spec", "Status", "Template", "Selector")):
            out.setdefault("default", {})
    return out


@lru_cache(maxsize=1)
def definitions() -> dict[str, dict[str, Any]]:
    """All Kubernetes definitions as OpenAPI 3 schemas, keyed by ``io.k8s…`` name. Read-only."""
    raw = json.loads((schema_dir() / "_definitions.json").read_text())["$defs"]
    out = {name: _convert(schema) for name, schema in raw.items()}
    out[_INT_OR_STRING] = {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in "
        "JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.",
        "format": "int-or-string", "type": "string", "x-kubernetes-int-or-string": True,
    }
    out[_QUANTITY] = {
        "description": "Quantity is a fixed-point representation of a number. It provides "
        "convenient marshaling/unmarshaling in JSON and YAML, in addition to String() and "
        "AsInt64() accessors. Examples: 100m, 1Gi, 2.5, 512Mi.",
        "type": "string", "x-kubernetes-int-or-string": True, "format": "quantity",
    }
    return out


@lru_cache(maxsize=1)
def gvk_index() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) -> definition name; API types win over apimachinery copies."""
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            key = (gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))
            if key not in index or index[key].startswith("io.k8s.apimachinery"):
                index[key] = name
    return index


def definition_name(group: str, version: str, kind: str) -> str | None:
    return gvk_index().get((group, version, kind))


def schema_for(group: str, version: str, kind: str) -> dict[str, Any] | None:
    name = definition_name(group, version, kind)
    return definitions()[name] if name else None


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a ``$ref`` (or a one-element ``allOf`` of one) to its definition."""
    for _ in range(8):
        if "$ref" in schema:
            schema = definitions().get(schema["$ref"][len(REF_PREFIX):], {})
        elif len(schema.get("allOf", ())) == 1 and "properties" not in schema:
            schema = schema["allOf"][0]
        else:
            return schema
    return schema


def closure(names: list[str], extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The named definitions plus every definition they reference, transitively."""
    defs = definitions()
    out: dict[str, Any] = {}
    todo = list(names)
    extra = extra or {}
    while todo:
        name = todo.pop()
        if name in out:
            continue
        schema = extra.get(name) or defs.get(name)
        if schema is None:
            continue
        out[name] = schema
        todo.extend(_refs(schema))
    return out


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            ref = n.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF_PREFIX):
                found.append(ref[len(REF_PREFIX):])
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
    return found


def deep_copy(schema: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(schema)
