"""Field sets and the ``metadata.managedFields`` encoding (FieldsV1), as structured-merge-diff
does them.

A field path is a tuple of encoded path elements: ``f:<field>``, ``k:{"name":"web"}`` (an
item of a list keyed by ``x-kubernetes-list-map-keys``, keys sorted, compact JSON), ``v:<json>``
(an item of a set) or ``i:<n>`` (a list index). ``members(obj, node)`` lists the paths an object
sets (SMD's ``ToFieldSet``: leaves, atomic lists/maps, list items, map entries, null/empty
values), ``compare(old, new)`` splits them into added/modified/removed, and
``encode_fields``/``decode_fields`` convert sets to and from FieldsV1 (``.`` marks a member
that also has children). ``path_string`` renders a path as Kubernetes prints it in conflicts
(``.spec.containers[name="web"].image``). Neighbours: ``schema.py`` (list types), ``ssa.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from controlplane.apiserver.patch.json_patch import json_equal
from controlplane.apiserver.patch.schema import Node

Path = tuple[str, ...]
# Defaults Kubernetes fills for list-map keys a config may leave out (ports' protocol).
KEY_DEFAULTS = {"protocol": "TCP"}


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def list_semantics(node: Node | None) -> tuple[str, list[str]]:
    """("map", keys) | ("set", []) | ("atomic", []) for a list field. Built-ins without a
    list type fall back to their patch strategy, as Kubernetes' OpenAPI conversion does."""
    if node is None:
        return "atomic", []
    lt = node.list_type
    if lt == "map":
        keys = node.list_map_keys or ([node.merge_key] if node.merge_key else [])
        return ("map", keys) if keys else ("atomic", [])
    if lt in ("set", "atomic"):
        return lt, []
    if node.patch_strategy == "merge":
        return ("map", [node.merge_key]) if node.merge_key else ("set", [])
    return "atomic", []


def item_key(item: Any, keys: list[str]) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    out = {}
    for k in sorted(keys):
        if k in item and item[k] is not None:
            out[k] = item[k]
        elif k in KEY_DEFAULTS:
            out[k] = KEY_DEFAULTS[k]
    return out


def item_element(item: Any, semantics: str, keys: list[str], index: int) -> str:
    if semantics == "set":
        return "v:" + _compact(item)
    key = item_key(item, keys) if semantics == "map" else None
    return "k:" + _compact(key) if key else f"i:{index}"


def is_atomic_map(node: Node | None) -> bool:
    return node is not None and (node.map_type == "atomic" or node.kind == "scalar")


def members(obj: Any, node: Node | None, *, granular_maps: bool = False) -> dict[Path, tuple[bool, Any]]:
    """Every member path of ``obj`` -> (is_leaf, value). ``granular_maps`` also makes declared
    map-typed fields (labels, data, ...) members, as Update operations record them."""
    out: dict[Path, tuple[bool, Any]] = {}
    _walk(obj, node, (), out, granular_maps)
    return out


def _walk(value: Any, node: Node | None, path: Path, out: dict[Path, tuple[bool, Any]], granular: bool) -> None:
    if isinstance(value, dict):
        if path and is_atomic_map(node):
            out[path] = (True, value)
            return
        props = (node.raw.get("properties") or {}) if node is not None else {}
        for k, v in value.items():
            p = path + ("f:" + k,)
            child = node.field(k) if node is not None else None
            if v is None or (isinstance(v, dict) and not v):
                out[p] = (True, v)
                continue
            _walk(v, child, p, out, granular)
            if k not in props or (granular and child is not None and child.kind == "map" and isinstance(v, dict)
                                  and not is_atomic_map(child)):
                out.setdefault(p, (False, None))
    elif isinstance(value, list):
        semantics, keys = list_semantics(node)
        if not path or semantics == "atomic":
            out[path] = (True, value)
            return
        item_node = node.items() if node is not None else None
        for i, item in enumerate(value):
            p = path + (item_element(item, semantics, keys, i),)
            if semantics == "set" or not isinstance(item, dict):
                out[p] = (True, item)
            else:
                _walk(item, item_node, p, out, granular)
                out.setdefault(p, (False, None))
    elif path:
        out[path] = (True, value)


def _same(a: Any, b: Any) -> bool:
    return json_equal(a, b)


@dataclass
class Comparison:
    added: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)

    @property
    def changed(self) -> set[Path]:
        return self.added | self.modified


def compare(old: dict[Path, tuple[bool, Any]], new: dict[Path, tuple[bool, Any]]) -> Comparison:
    c = Comparison(added=set(new) - set(old), removed=set(old) - set(new))
    for p, (leaf, v) in new.items():
        if p in old:
            oleaf, ov = old[p]
            if (leaf or oleaf) and (leaf != oleaf or not _same(v, ov)):
                c.modified.add(p)
    return c


def without(paths: Iterable[Path], exact: set[Path], prefixes: set[Path]) -> set[Path]:
    """``paths`` minus the ``exact`` ones and everything at or under ``prefixes``."""
    return {p for p in paths if p not in exact and not any(p[:len(q)] == q for q in prefixes)}


# --- FieldsV1 ------------------------------------------------------------------------------

def _canonical(element: str) -> str:
    if element[:2] in ("k:", "v:"):
        try:
            return element[:2] + _compact(json.loads(element[2:]))
        except ValueError:
            return element
    return element


def decode_fields(fields_v1: Any) -> set[Path]:
    out: set[Path] = set()

    def walk(tree: dict[str, Any], prefix: Path) -> None:
        for k, v in tree.items():
            if k == ".":
                if prefix:
                    out.add(prefix)
                continue
            p = prefix + (_canonical(k),)
            if not isinstance(v, dict) or not v:
                out.add(p)
            else:
                walk(v, p)

    if isinstance(fields_v1, dict):
        walk(fields_v1, ())
    return out


def encode_fields(paths: Iterable[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    member: set[Path] = set()
    for p in paths:
        node = tree
        for pe in p:
            node = node.setdefault(pe, {})
        member.add(p)

    def emit(node: dict[str, Any], prefix: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if node and prefix in member:
            out["."] = {}
        for k in sorted(node):
            out[k] = emit(node[k], prefix + (k,))
        return out

    return emit(tree, ())


def path_string(path: Path) -> str:
    parts = []
    for pe in path:
        kind, rest = pe[:2], pe[2:]
        if kind == "f:":
            parts.append("." + rest)
        elif kind == "k:":
            try:
                key = json.loads(rest)
                parts.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]")
            except ValueError:
                parts.append(f"[{rest}]")
        elif kind == "v:":
            parts.append(f"[={rest}]")
        else:
            parts.append(f"[{rest}]")
    return "".join(parts)
