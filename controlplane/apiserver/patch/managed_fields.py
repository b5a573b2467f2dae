"""Field sets and the ``metadata.managedFields`` encoding (FieldsV1), as structured-merge-diff
does them.

A field path is a tuple of encoded path elements: ``f:<field>``, ``k:{"name":"web"}`` (an
item of a list keyed by ``x-kubernetes-list-map-keys``, keys sorted, compact JSON), ``v:<json>``
(an item of a set) or ``i:<n>`` (a list index). ``members(obj, node)`` lists the paths an object
sets (SMD's ``ToFieldSet``: leaves, atomic lists/maps, list items, map entries, null/empty
values), ``compare(old, new)`` splits them into added/modified/removed, and
``encode_fields``/``decode_fields`` convert sets to and from FieldsV1 (``.`` marks a member
that also has children). ``path_string`` renders a path as Kubernetes prints it in conflicts
(``.spec.containers[name="web"].image``). Schema facts the walks need (properties, list
semantics, children) are cached per schema node (``NodeInfo``), and encoded list-item
elements per key values. These path-set functions are the definition; ``fields_tree.py``
(one-walk FieldsV1 for creates, editing canonical trees) and ``fields_diff.py`` (joint
old/new walk for updates) are the fast equivalents ``ssa.py`` uses. Neighbours: ``schema.py``
(list types), ``ssa.py``.
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


_CACHE_MAX = 8192
# Encoded list-item elements by their key values (only str/int values: hashable, and never
# confused with bool/float, which compare equal to ints but encode differently).
_KEY_ELEMENTS: dict[tuple[Any, ...], str] = {}
_SET_ELEMENTS: dict[str, str] = {}


class NodeInfo:
    """What the field-set walk needs to know about one schema node, computed once per node
    (nodes are shared, long-lived schema objects)."""

    __slots__ = ("node", "props", "atomic_map", "sem", "keys", "skeys", "gmap", "_children", "_items")

    def __init__(self, node: Node) -> None:
        self.node = node
        props = node.raw.get("properties")
        self.props: frozenset[str] = frozenset(props) if isinstance(props, dict) else frozenset()
        self.atomic_map = node.map_type == "atomic" or node.kind == "scalar"
        self.sem, self.keys = _list_semantics(node)
        self.skeys: tuple[str, ...] = tuple(sorted(self.keys))
        # a declared map-typed field, which Update operations record as a member itself
        self.gmap = node.kind == "map" and not self.atomic_map
        self._children: dict[str, NodeInfo | None] = {}
        self._items: NodeInfo | None | bool = False

    def child(self, name: str) -> NodeInfo | None:
        try:
            return self._children[name]
        except KeyError:
            pass
        info = self._children[name] = node_info(self.node.field(name))
        return info

    def items(self) -> NodeInfo | None:
        if self._items is False:
            self._items = node_info(self.node.items())
        return self._items  # type: ignore[return-value]


def node_info(node: Node | None) -> NodeInfo | None:
    if node is None:
        return None
    info = node.mf_info
    if info is None:
        info = node.mf_info = NodeInfo(node)
    return info


def _list_semantics(node: Node) -> tuple[str, list[str]]:
    lt = node.list_type
    if lt == "map":
        keys = node.list_map_keys or ([node.merge_key] if node.merge_key else [])
        return ("map", keys) if keys else ("atomic", [])
    if lt in ("set", "atomic"):
        return lt, []
    if node.patch_strategy == "merge":
        return ("map", [node.merge_key]) if node.merge_key else ("set", [])
    return "atomic", []


def list_semantics(node: Node | None) -> tuple[str, list[str]]:
    """("map", keys) | ("set", []) | ("atomic", []) for a list field. Built-ins without a
    list type fall back to their patch strategy, as Kubernetes' OpenAPI conversion does.
    (Cached per node: do not mutate the returned keys.)"""
    info = node_info(node)
    if info is None:
        return "atomic", []
    return info.sem, info.keys


def key_element(item: dict[str, Any], skeys: tuple[str, ...], index: int) -> str:
    """``item_element`` for a dict item of a list map whose sorted keys are ``skeys``."""
    pairs = []
    cacheable = True
    for k in skeys:
        v = item.get(k)
        if v is None:
            if k not in KEY_DEFAULTS:
                continue
            v = KEY_DEFAULTS[k]
        t = type(v)
        if t is not str and t is not int:
            cacheable = False
        pairs.append((k, v))
    if not pairs:
        return f"i:{index}"
    if not cacheable:
        return "k:" + _compact(dict(pairs))
    ck = tuple(pairs)
    pe = _KEY_ELEMENTS.get(ck)
    if pe is None:
        if len(_KEY_ELEMENTS) >= _CACHE_MAX:
            _KEY_ELEMENTS.clear()
        pe = _KEY_ELEMENTS[ck] = "k:" + _compact(dict(pairs))
    return pe


def set_element(item: Any) -> str:
    if type(item) is not str:
        return "v:" + _compact(item)
    pe = _SET_ELEMENTS.get(item)
    if pe is None:
        if len(_SET_ELEMENTS) >= _CACHE_MAX:
            _SET_ELEMENTS.clear()
        pe = _SET_ELEMENTS[item] = "v:" + _compact(item)
    return pe


def item_element(item: Any, semantics: str, keys: list[str] | tuple[str, ...], index: int) -> str:
    if semantics == "set":
        return set_element(item)
    if semantics == "map" and isinstance(item, dict):
        return key_element(item, tuple(sorted(keys)), index)
    return f"i:{index}"


def is_atomic_map(node: Node | None) -> bool:
    return node is not None and (node.map_type == "atomic" or node.kind == "scalar")


def members(obj: Any, node: Node | None, *, granular_maps: bool = False) -> dict[Path, tuple[bool, Any]]:
    """Every member path of ``obj`` -> (is_leaf, value). ``granular_maps`` also makes declared
    map-typed fields (labels, data, ...) members, as Update operations record them."""
    out: dict[Path, tuple[bool, Any]] = {}
    if isinstance(obj, dict):
        walk_dict(obj, node_info(node), (), out, granular_maps)
    elif isinstance(obj, list):
        out[()] = (True, obj)  # a top-level list is atomic
    return out


MEMBER = (False, None)


def walk_dict(value: dict[str, Any], info: NodeInfo | None, path: Path, out: dict[Path, tuple[bool, Any]],
               granular: bool) -> None:
    """Members under a non-atomic object (its own path is its parent's business)."""
    if info is None:
        for k, v in value.items():
            p = path + ("f:" + k,)
            if v and isinstance(v, dict):
                walk_dict(v, None, p, out, granular)
                if p not in out:
                    out[p] = MEMBER
            else:  # null, {}, scalars and (atomic without a schema) lists are leaves
                out[p] = (True, v)
        return
    props = info.props
    for k, v in value.items():
        p = path + ("f:" + k,)
        if isinstance(v, dict):
            if not v:
                out[p] = (True, v)
                continue
            child = info.child(k)
            if child is not None and child.atomic_map:
                out[p] = (True, v)
                continue
            walk_dict(v, child, p, out, granular)
            if (k not in props or granular and child is not None and child.gmap) and p not in out:
                out[p] = MEMBER
        elif isinstance(v, list):
            child = info.child(k)
            if child is None or child.sem == "atomic":
                out[p] = (True, v)
                continue
            walk_list(v, child, p, out, granular)
            if k not in props and p not in out:
                out[p] = MEMBER
        else:
            out[p] = (True, v)


def walk_list(value: list[Any], info: NodeInfo, path: Path, out: dict[Path, tuple[bool, Any]], granular: bool) -> None:
    """Members under a set or list map: items, and (list maps) their fields."""
    if info.sem == "set":
        for item in value:
            out[path + (set_element(item),)] = (True, item)
        return
    item_info = info.items()
    atomic_items = item_info is not None and item_info.atomic_map
    skeys = info.skeys
    for i, item in enumerate(value):
        if isinstance(item, dict):
            p = path + (key_element(item, skeys, i),)
            if atomic_items:
                out[p] = (True, item)
                continue
            if item:
                walk_dict(item, item_info, p, out, granular)
            if p not in out:
                out[p] = MEMBER
        else:
            out[path + (f"i:{i}",)] = (True, item)


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


def equal(a: Any, b: Any) -> bool:
    """``json_equal``, with the common same-typed cases first."""
    t = type(a)
    if t is type(b):
        if t is str or t is int or t is bool or a is None:
            return a == b
        if t is dict:
            if a.keys() != b.keys():
                return False
            for k, v in a.items():
                if not equal(v, b[k]):
                    return False
            return True
        if t is list:
            if len(a) != len(b):
                return False
            for x, y in zip(a, b):
                if not equal(x, y):
                    return False
            return True
    return json_equal(a, b)


def compare(old: dict[Path, tuple[bool, Any]], new: dict[Path, tuple[bool, Any]]) -> Comparison:
    c = Comparison(added=new.keys() - old.keys(), removed=old.keys() - new.keys())
    modified = c.modified
    for p, (leaf, v) in new.items():
        o = old.get(p)
        if o is not None and (leaf or o[0]) and (leaf != o[0] or not equal(v, o[1])):
            modified.add(p)
    return c


def without(paths: Iterable[Path], exact: set[Path], prefixes: set[Path]) -> set[Path]:
    """``paths`` minus the ``exact`` ones and everything at or under ``prefixes``."""
    if not prefixes:
        return {p for p in paths if p not in exact}
    if all(len(q) == 1 for q in prefixes):  # the usual case: top-level fields (status, spec)
        firsts = {q[0] for q in prefixes}
        return {p for p in paths if p not in exact and not (p and p[0] in firsts)}
    return {p for p in paths if p not in exact and not any(p[:len(q)] == q for q in prefixes)}


# --- FieldsV1 ------------------------------------------------------------------------------

_CANONICAL: dict[str, str] = {}


def canonical_element(element: str) -> str:
    if element[:2] in ("k:", "v:"):
        hit = _CANONICAL.get(element)
        if hit is not None:
            return hit
        try:
            out = element[:2] + _compact(json.loads(element[2:]))
        except ValueError:
            return element
        if len(_CANONICAL) >= _CACHE_MAX:
            _CANONICAL.clear()
        _CANONICAL[element] = out
        return out
    return element


def decode_fields(fields_v1: Any) -> set[Path]:
    out: set[Path] = set()

    def walk(tree: dict[str, Any], prefix: Path) -> None:
        for k, v in tree.items():
            if k == ".":
                if prefix:
                    out.add(prefix)
                continue
            p = prefix + (canonical_element(k),)
            if not isinstance(v, dict) or not v:
                out.add(p)
            else:
                walk(v, p)

    if isinstance(fields_v1, dict):
        walk(fields_v1, ())
    return out


def encode_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """FieldsV1 for a set of paths: keys sorted at every level, ``"."`` first in a member
    that also has children. Built in sorted path order, which is the tree's pre-order, so
    every dict is filled in its final key order."""
    tree: dict[str, Any] = {}
    members_: set[int] = set()  # ids of the dicts that stand for member paths
    for p in sorted(paths):
        node = tree
        for pe in p:
            child = node.get(pe)
            if child is None:
                if not node and id(node) in members_:
                    node["."] = {}
                child = node[pe] = {}
            node = child
        members_.add(id(node))
    return tree


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
