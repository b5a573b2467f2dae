"""Building and editing FieldsV1 trees directly, for the hot paths of managedFields
bookkeeping.

``fields_v1(obj, node, granular_maps=, exact=, prefixes=)`` encodes what an object sets in
one walk, equal to ``encode_fields(without(members(obj), exact, prefixes))`` but without path
tuples or sorting paths (what a create records). ``is_canonical(tree)`` tells whether a
tree is exactly what ``encode_fields`` writes, so an entry a write does not touch can be kept
as it is: ``has_member``, ``remove_members`` (in place, keeping it canonical) and ``copy_tree``
work on such trees. Neighbours: ``managed_fields.py`` (paths, members, the reference
encoding), ``ssa.py`` (the caller).
"""

from __future__ import annotations

from typing import Any, Iterable

from controlplane.apiserver.patch import managed_fields as mf
from controlplane.apiserver.patch.managed_fields import Path
from controlplane.apiserver.patch.schema import Node


class _Duplicate(Exception):
    """Two items of a list map share a key: the tree builder leaves those to the path sets."""


def fields_v1(obj: dict[str, Any], node: Node | None, *, granular_maps: bool, exact: set[Path],
              prefixes: set[Path]) -> dict[str, Any]:
    """``encode_fields(without(members(obj, node, granular_maps=...), exact, prefixes))``,
    built in one walk without path tuples (what a create records)."""
    try:
        tree = _tree_dict(obj, mf.node_info(node), True, granular_maps)
    except _Duplicate:
        return mf.encode_fields(mf.without(mf.members(obj, node, granular_maps=granular_maps), exact, prefixes))
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


def _tree_dict(value: dict[str, Any], info: mf.NodeInfo | None, root: bool, granular: bool) -> dict[str, Any]:
    """The FieldsV1 tree of the members under a (non-atomic) object, as ``walk_dict`` lists them,
    in final form (sorted keys, "." markers). The object's own path is not a member. The keys
    are visited in sorted order ("f:" + k sorts as k), so the tree is built sorted: no second
    copy to sort it (this runs for every create that records managedFields)."""
    children: dict[str, Any] = {}
    keys = sorted(value) if len(value) > 1 else value
    if info is None:
        for k in keys:
            v = value[k]
            if isinstance(v, dict):
                if v:
                    sub = _tree_dict(v, None, False, granular)
                    children["f:" + k] = {".": {}, **sub} if sub else {}
                else:
                    children["f:" + k] = {}
            else:
                # lists are atomic without a schema: all leaves, members themselves
                children["f:" + k] = {}
        return children
    props = info.props
    for k in keys:
        v = value[k]
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
    return children


def _tree_list(value: list[Any], info: mf.NodeInfo, granular: bool) -> dict[str, Any]:
    children: dict[str, Any] = {}
    if info.sem == "set":
        for item in value:
            children[mf.set_element(item)] = {}
        return _sorted(children)
    item_info = info.items()
    skeys = info.skeys
    for i, item in enumerate(value):
        if isinstance(item, dict):
            pe = mf.key_element(item, skeys, i)
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
        if k <= prev or (k[:2] in ("k:", "v:") and mf.canonical_element(k) != k):
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
