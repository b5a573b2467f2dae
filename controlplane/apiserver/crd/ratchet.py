"""CRD validation ratcheting's correlation of a custom resource's values with the stored
object's (apiextensions-apiserver's ``CorrelatedObject``), shared by the structural validation
(``schema.py``) and the CEL rules (``rules.py``): which old value an item corresponds to, and
whether a value is unchanged. Kubernetes 1.30+ skips validating unchanged values on update."""

from __future__ import annotations

import json
from typing import Any

Obj = dict[str, Any]

NO_OLD: Any = object()  # no correlated old value (a create, a new item, an atomic list's item)


def same_json(a: Any, b: Any) -> bool:
    """Whether two decoded JSON values are equal as JSON (Python's ``True == 1`` is not)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_json(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)):
        return isinstance(b, (int, float)) and a == b
    return type(a) is type(b) and a == b


def map_list_key(item: Any, keys: list[str]) -> str | None:
    """The correlation key of an ``x-kubernetes-list-type: map`` item."""
    return json.dumps([item.get(k) for k in keys]) if isinstance(item, dict) else None


def correlated_items(value: list, old: Any, schema: Obj) -> list[Any]:
    """Each item's correlated old item (``NO_OLD`` where there is none)."""
    if not isinstance(old, list):
        return [NO_OLD] * len(value)
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "map" and schema.get("x-kubernetes-list-map-keys"):
        keys = schema["x-kubernetes-list-map-keys"]
        by_key = {}
        for o in old:
            k = map_list_key(o, keys)
            if k is not None:
                by_key.setdefault(k, o)
        return [by_key.get(map_list_key(item, keys), NO_OLD) if isinstance(item, dict) else NO_OLD
                for item in value]
    if list_type == "set":
        return [item if any(same_json(item, o) for o in old) else NO_OLD for item in value]
    return [NO_OLD] * len(value)
