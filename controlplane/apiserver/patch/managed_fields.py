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


_CACHE_MAX = 8192
# Encoded list-item elements by their key values (only str/int values: hashable, and never
# confused with bool/float, which compare equal to ints but encode differently).
_KEY_ELEMENTS: dict[tuple[Any, ...], str] = {}
_SET_ELEMENTS: dict[str, str] = {}


class _Info:
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
        self._children: dict[str, _Info | None] = {}
        self._items: _Info | None | bool = False

    def child(self, name: str) -> _Info | None:
        try:
            return self._children[name]
        except KeyError:
            pass
        info = self._children[name] = _info(self.node.field(name))
        return info

    def items(self) -> _Info | None:
        if self._items is False:
            self._items = _info(self.node.items())
        return self._items  # type: ignore[return-value]


def _info(node: Node | None) -> _Info | None:
    if node is None:
        return None
    info = node.mf_info
    if info is None:
        info = node.mf_info = _Info(node)
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
    info = _info(node)
    if info is None:
        return "atomic", []
    return info.sem, info.keys


def item_key(item: Any, keys: list[str] | tuple[str, ...]) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    out = {}
    for k in sorted(keys):
        if k in item and item[k] is not None:
            out[k] = item[k]
        elif k in KEY_DEFAULTS:
            out[k] = KEY_DEFAULTS[k]
    return out


def _key_element(item: dict[str, Any], skeys: tuple[str, ...], index: int) -> str:
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


def _set_element(item: Any) -> str:
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
        return _set_element(item)
    if semantics == "map" and isinstance(item, dict):
        return _key_element(item, tuple(sorted(keys)), index)
    return f"i:{index}"


def is_atomic_map(node: Node | None) -> bool:
    return node is not None and (node.map_type == "atomic" or node.kind == "scalar")


def members(obj: Any, node: Node | None, *, granular_maps: bool = False) -> dict[Path, tuple[bool, Any]]:
    """Every member path of ``obj`` -> (is_leaf, value). ``granular_maps`` also makes declared
    map-typed fields (labels, data, ...) members, as Update operations record them."""
    out: dict[Path, tuple[bool, Any]] = {}
    if isinstance(obj, dict):
        _walk_dict(obj, _info(node), (), out, granular_maps)
    elif isinstance(obj, list):
        out[()] = (True, obj)  # a top-level list is atomic
    return out


_MEMBER = (False, None)


def _walk_dict(value: dict[str, Any], info: _Info | None, path: Path, out: dict[Path, tuple[bool, Any]],
               granular: bool) -> None:
    """Members under a non-atomic object (its own path is its parent's business)."""
    if info is None:
        for k, v in value.items():
            p = path + ("f:" + k,)
            if v and isinstance(v, dict):
                _walk_dict(v, None, p, out, granular)
                if p not in out:
                    out[p] = _MEMBER
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
            _walk_dict(v, child, p, out, granular)
            if (k not in props or granular and child is not None and child.gmap) and p not in out:
                out[p] = _MEMBER
        elif isinstance(v, list):
            child = info.child(k)
            if child is None or child.sem == "atomic":
                out[p] = (True, v)
                continue
            _walk_list(v, child, p, out, granular)
            if k not in props and p not in out:
                out[p] = _MEMBER
        else:
            out[p] = (True, v)


def _walk_list(value: list[Any], info: _Info, path: Path, out: dict[Path, tuple[bool, Any]], granular: bool) -> None:
    """Members under a set or list map: items, and (list maps) their fields."""
    if info.sem == "set":
        for item in value:
            out[path + (_set_element(item),)] = (True, item)
        return
    item_info = info.items()
    atomic_items = item_info is not None and item_info.atomic_map
    skeys = info.skeys
    for i, item in enumerate(value):
        if isinstance(item, dict):
            p = path + (_key_element(item, skeys, i),)
            if atomic_items:
                out[p] = (True, item)
                continue
            if item:
                _walk_dict(item, item_info, p, out, granular)
            if p not in out:
                out[p] = _MEMBER
        else:
            out[path + (f"i:{i}",)] = (True, item)


class _Duplicate(Exception):
    """Two items of a list map share a key: the tree builder leaves those to the path sets."""


def fields_v1(obj: dict[str, Any], node: Node | None, *, granular_maps: bool, exact: set[Path],
              prefixes: set[Path]) -> dict[str, Any]:
    """``encode_fields(without(members(obj, node, granular_maps=...), exact, prefixes))``,
    built in one walk without path tuples (what a create records)."""
    try:
        tree = _tree_dict(obj, _info(node), True, granular_maps)
    except _Duplicate:
        return encode_fields(without(members(obj, node, granular_maps=granular_maps), exact, prefixes))
    for q in prefixes:
        _remove(tree, q, True)
    for parent, names in _exact_groups(exact):
        at = tree
        for pe in parent:
            at = at.get(pe)
            if at is None:
                break
        if at is None:
            continue
        for pe in names & at.keys():
            _remove(tree, parent + (pe,), False)
    return tree


_EXACT_GROUPS: dict[int, tuple[set[Path], list[tuple[Path, frozenset[str]]]]] = {}


def _exact_groups(exact: set[Path]) -> list[tuple[Path, frozenset[str]]]:
    """``exact`` grouped by parent path, deepest first (cached per set object: the callers
    pass module constants)."""
    hit = _EXACT_GROUPS.get(id(exact))
    if hit is not None and hit[0] is exact:
        return hit[1]
    by: dict[Path, set[str]] = {}
    for q in exact:
        if q:
            by.setdefault(q[:-1], set()).add(q[-1])
    groups = sorted(((p, frozenset(n)) for p, n in by.items()), key=lambda g: -len(g[0]))
    if len(_EXACT_GROUPS) > 64:
        _EXACT_GROUPS.clear()
    _EXACT_GROUPS[id(exact)] = (exact, groups)
    return groups


def _sorted(children: dict[str, Any]) -> dict[str, Any]:
    return {k: children[k] for k in sorted(children)} if len(children) > 1 else children


def _tree_dict(value: dict[str, Any], info: _Info | None, root: bool, granular: bool) -> dict[str, Any]:
    """The FieldsV1 tree of the members under a (non-atomic) object, as ``_walk`` lists them,
    in final form (sorted keys, "." markers). The object's own path is not a member."""
    children: dict[str, Any] = {}
    if info is None:
        for k, v in value.items():
            if isinstance(v, dict):
                if v:
                    sub = _tree_dict(v, None, False, granular)
                    children["f:" + k] = {".": {}, **sub} if sub else {}
                else:
                    children["f:" + k] = {}
            else:
                # lists are atomic without a schema: all leaves, members themselves
                children["f:" + k] = {}
        return _sorted(children)
    props = info.props
    for k, v in value.items():
        if isinstance(v, dict):
            if not v:
                children["f:" + k] = {}
                continue
            child = info.child(k)
            if child is not None and child.atomic_map:
                children["f:" + k] = {}
                continue
            sub = _tree_dict(v, child, False, granular)
            if k not in props or granular and child is not None and child.gmap:
                children["f:" + k] = {".": {}, **sub} if sub else {}
            elif sub:
                children["f:" + k] = sub
        elif isinstance(v, list):
            child = info.child(k)
            if child is None or child.sem == "atomic":
                children["f:" + k] = {}
                continue
            sub = _tree_list(v, child, granular)
            if k not in props:
                children["f:" + k] = {".": {}, **sub} if sub else {}
            elif sub:
                children["f:" + k] = sub
        else:
            children["f:" + k] = {}
    return _sorted(children)


def _tree_list(value: list[Any], info: _Info, granular: bool) -> dict[str, Any]:
    children: dict[str, Any] = {}
    if info.sem == "set":
        for item in value:
            children[_set_element(item)] = {}
        return _sorted(children)
    item_info = info.items()
    skeys = info.skeys
    for i, item in enumerate(value):
        if isinstance(item, dict):
            pe = _key_element(item, skeys, i)
            if pe in children:
                raise _Duplicate(pe)
            if not item:
                children[pe] = {}
            elif item_info is not None and item_info.atomic_map:
                children[pe] = {}
            else:
                sub = _tree_dict(item, item_info, False, granular)
                children[pe] = {".": {}, **sub} if sub else {}
        else:
            children[f"i:{i}"] = {}
    return _sorted(children)


def _remove(tree: dict[str, Any], path: Path, subtree: bool) -> None:
    """Take ``path`` (and with ``subtree`` everything under it) out of an encoded tree,
    keeping it the encoding of the remaining set."""
    if not path:
        return
    stack: list[tuple[dict[str, Any], str]] = []
    node = tree
    for pe in path:
        child = node.get(pe)
        if child is None:
            return
        stack.append((node, pe))
        node = child
    if not subtree and len(node) > (1 if "." in node else 0):
        node.pop(".", None)  # still has children: only no longer a member itself
        return
    parent, pe = stack.pop()
    del parent[pe]
    while stack:
        if len(parent) == 1 and "." in parent:
            parent.clear()  # a member left without children
            return
        if parent:
            return
        parent, pe = stack.pop()
        del parent[pe]


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


def _equal(a: Any, b: Any) -> bool:
    """``json_equal``, with the common same-typed cases first."""
    t = type(a)
    if t is type(b):
        if t is str or t is int or t is bool or a is None:
            return a == b
        if t is dict:
            if a.keys() != b.keys():
                return False
            for k, v in a.items():
                if not _equal(v, b[k]):
                    return False
            return True
        if t is list:
            if len(a) != len(b):
                return False
            for x, y in zip(a, b):
                if not _equal(x, y):
                    return False
            return True
    return json_equal(a, b)


def compare(old: dict[Path, tuple[bool, Any]], new: dict[Path, tuple[bool, Any]]) -> Comparison:
    c = Comparison(added=new.keys() - old.keys(), removed=old.keys() - new.keys())
    modified = c.modified
    for p, (leaf, v) in new.items():
        o = old.get(p)
        if o is not None and (leaf or o[0]) and (leaf != o[0] or not _equal(v, o[1])):
            modified.add(p)
    return c


# --- comparing two objects directly ----------------------------------------------------------

_LEAF, _DICT, _LIST = 0, 1, 2


class _Fallback(Exception):
    """A list map with duplicate keys: compared through member sets instead."""


def changes(old: dict[str, Any], new: dict[str, Any], node: Node | None, *, granular_maps: bool,
            skip: frozenset[str] = frozenset()) -> Comparison:
    """``compare(members(old), members(new))`` (both with ``granular_maps``), found by walking
    both objects together: unchanged leaves cost no paths. Top-level fields in ``skip`` are
    left out (the caller drops everything under them anyway)."""
    c = Comparison()
    _diff_dict(old, new, _info(node), (), c, granular_maps, skip)
    return c


def _shape(k: str, v: Any, info: _Info | None, granular: bool) -> tuple[int, bool, _Info | None]:
    """How ``_walk_dict`` treats field ``k`` = ``v`` of an object with schema ``info``:
    (leaf / object / list to walk, whether the field is a member itself, its schema)."""
    if info is None:
        if v and isinstance(v, dict):
            return _DICT, True, None
        return _LEAF, True, None
    if isinstance(v, dict):
        if not v:
            return _LEAF, True, None
        child = info.child(k)
        if child is not None and child.atomic_map:
            return _LEAF, True, None
        return _DICT, k not in info.props or granular and child is not None and child.gmap, child
    if isinstance(v, list):
        child = info.child(k)
        if child is None or child.sem == "atomic":
            return _LEAF, True, None
        return _LIST, k not in info.props, child
    return _LEAF, True, None


def _members_at(shape: int, member: bool, v: Any, info: _Info | None, p: Path, granular: bool) -> set[Path]:
    """The member paths at and under ``p`` for a value of the given shape."""
    if shape == _LEAF:
        return {p}
    out: dict[Path, tuple[bool, Any]] = {}
    if shape == _DICT:
        _walk_dict(v, info, p, out, granular)
    else:
        _walk_list(v, info, p, out, granular)  # type: ignore[arg-type]
    if member:
        out[p] = _MEMBER
    return set(out)


def _diff_value(ov: Any, nv: Any, os: tuple[int, bool, _Info | None], ns: tuple[int, bool, _Info | None],
                p: Path, c: Comparison, granular: bool) -> None:
    oshape, omember, oinfo = os
    nshape, nmember, ninfo = ns
    if oshape == _LEAF and nshape == _LEAF:
        if not _equal(ov, nv):
            c.modified.add(p)
        return
    if oshape == nshape:  # both objects or both lists, with the same schema and membership
        if oshape == _DICT:
            _diff_dict(ov, nv, ninfo, p, c, granular, frozenset())
        else:
            _diff_list(ov, nv, ninfo, p, c, granular)  # type: ignore[arg-type]
        return
    # the shape changed: everything under p is new, p itself depends on membership
    oset = _members_at(oshape, omember, ov, oinfo, p, granular)
    nset = _members_at(nshape, nmember, nv, ninfo, p, granular)
    oset.discard(p)
    nset.discard(p)
    c.removed |= oset
    c.added |= nset
    if omember and nmember:
        if oshape == _LEAF or nshape == _LEAF:
            c.modified.add(p)
    elif omember:
        c.removed.add(p)
    elif nmember:
        c.added.add(p)


def _diff_dict(old: dict[str, Any], new: dict[str, Any], info: _Info | None, path: Path, c: Comparison,
               granular: bool, skip: frozenset[str]) -> None:
    for k, nv in new.items():
        if k in skip:
            continue
        if k not in old:
            ns = _shape(k, nv, info, granular)
            c.added |= _members_at(*ns[:2], nv, ns[2], path + ("f:" + k,), granular)
            continue
        ov = old[k]
        _diff_value(ov, nv, _shape(k, ov, info, granular), _shape(k, nv, info, granular), path + ("f:" + k,), c,
                    granular)
    for k, ov in old.items():
        if k not in new and k not in skip:
            os = _shape(k, ov, info, granular)
            c.removed |= _members_at(*os[:2], ov, os[2], path + ("f:" + k,), granular)


_ITEM_LEAF = (_LEAF, True, None)


def _list_elements(value: list[Any], info: _Info) -> dict[str, Any]:
    """Element -> item of a list map, or _Fallback when two dict items share a key."""
    out: dict[str, Any] = {}
    skeys = info.skeys
    for i, item in enumerate(value):
        if isinstance(item, dict):
            pe = _key_element(item, skeys, i)
            if pe in out:
                raise _Fallback(pe)
            out[pe] = item
        else:
            out[f"i:{i}"] = item
    return out


def _diff_list(old: list[Any], new: list[Any], info: _Info, path: Path, c: Comparison, granular: bool) -> None:
    if info.sem == "set":
        o = {_set_element(item): item for item in old}
        n = {_set_element(item): item for item in new}
        for pe, nv in n.items():
            if pe not in o:
                c.added.add(path + (pe,))
            elif not _equal(o[pe], nv):
                c.modified.add(path + (pe,))
        c.removed.update(path + (pe,) for pe in o if pe not in n)
        return
    try:
        o, n = _list_elements(old, info), _list_elements(new, info)
    except _Fallback:
        om: dict[Path, tuple[bool, Any]] = {}
        nm: dict[Path, tuple[bool, Any]] = {}
        _walk_list(old, info, path, om, granular)
        _walk_list(new, info, path, nm, granular)
        sub = compare(om, nm)
        c.added |= sub.added
        c.modified |= sub.modified
        c.removed |= sub.removed
        return
    item_info = info.items()
    dict_shape = _ITEM_LEAF if item_info is not None and item_info.atomic_map else (_DICT, True, item_info)
    for pe, nv in n.items():
        ns = dict_shape if isinstance(nv, dict) else _ITEM_LEAF
        if pe not in o:
            c.added |= _members_at(ns[0], ns[1], nv, ns[2], path + (pe,), granular)
            continue
        ov = o[pe]
        _diff_value(ov, nv, dict_shape if isinstance(ov, dict) else _ITEM_LEAF, ns, path + (pe,), c, granular)
    for pe, ov in o.items():
        if pe not in n:
            os = dict_shape if isinstance(ov, dict) else _ITEM_LEAF
            c.removed |= _members_at(os[0], os[1], ov, os[2], path + (pe,), granular)


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


def _canonical(element: str) -> str:
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
            p = prefix + (_canonical(k),)
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


def is_canonical(tree: Any) -> bool:
    """Whether ``tree`` is exactly ``encode_fields(decode_fields(tree))`` (what this encoder
    wrote: sorted keys, canonical list keys, "." first and only beside children)."""
    if not isinstance(tree, dict) or "." in tree:
        return False
    return _canonical_node(tree)


def _canonical_node(node: dict[str, Any]) -> bool:
    prev = ""
    first = True
    for k, v in node.items():
        if type(v) is not dict:
            return False
        if k == ".":
            if not first or v or len(node) == 1:
                return False
            first = False
            continue
        first = False
        if k <= prev or (k[:2] in ("k:", "v:") and _canonical(k) != k):
            return False
        prev = k
        if v and not _canonical_node(v):
            return False
    return True


def has_member(tree: dict[str, Any], path: Path) -> bool:
    """``path in decode_fields(tree)`` for a canonical tree."""
    node = tree
    for pe in path:
        node = node.get(pe)
        if node is None:
            return False
    return bool(path) and (not node or "." in node)


def remove_members(tree: dict[str, Any], paths: Iterable[Path]) -> None:
    """Take member ``paths`` out of a canonical tree in place, keeping it canonical."""
    for p in paths:
        _remove(tree, p, False)


def copy_tree(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: copy_tree(v) if v else {} for k, v in tree.items()}


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
