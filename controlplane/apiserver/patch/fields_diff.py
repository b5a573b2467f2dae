"""Comparing two objects' field sets in one joint walk.

``changes(old, new, node, granular_maps=, skip=)`` equals
``compare(members(old), members(new))`` (added/modified/removed paths) but walks both objects
together, so unchanged leaves build no paths; top-level fields in ``skip`` (reset by the
endpoint) are not walked at all. A list map with duplicate keys on either side is compared
through member sets, to keep their merge semantics. Neighbours: ``managed_fields.py``
(members, compare: the definition), ``ssa.py`` (the caller).
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.patch import managed_fields as mf
from controlplane.apiserver.patch.managed_fields import Path
from controlplane.apiserver.patch.schema import Node


_LEAF, _DICT, _LIST = 0, 1, 2


class _Fallback(Exception):
    """A list map with duplicate keys: compared through member sets instead."""


def changes(old: dict[str, Any], new: dict[str, Any], node: Node | None, *, granular_maps: bool,
            skip: frozenset[str] = frozenset()) -> mf.Comparison:
    """``compare(members(old), members(new))`` (both with ``granular_maps``), found by walking
    both objects together: unchanged leaves cost no paths. Top-level fields in ``skip`` are
    left out (the caller drops everything under them anyway)."""
    c = mf.Comparison()
    _diff_dict(old, new, mf.node_info(node), (), c, granular_maps, skip)
    return c


def _shape(k: str, v: Any, info: mf.NodeInfo | None, granular: bool) -> tuple[int, bool, mf.NodeInfo | None]:
    """How ``walk_dict`` treats field ``k`` = ``v`` of an object with schema ``info``:
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


def _members_at(shape: int, member: bool, v: Any, info: mf.NodeInfo | None, p: Path, granular: bool) -> set[Path]:
    """The member paths at and under ``p`` for a value of the given shape."""
    if shape == _LEAF:
        return {p}
    out: dict[Path, tuple[bool, Any]] = {}
    if shape == _DICT:
        mf.walk_dict(v, info, p, out, granular)
    else:
        mf.walk_list(v, info, p, out, granular)  # type: ignore[arg-type]
    if member:
        out[p] = mf.MEMBER
    return set(out)


def _diff_value(ov: Any, nv: Any, os: tuple[int, bool, mf.NodeInfo | None], ns: tuple[int, bool, mf.NodeInfo | None],
                p: Path, c: mf.Comparison, granular: bool) -> None:
    oshape, omember, oinfo = os
    nshape, nmember, ninfo = ns
    if oshape == _LEAF and nshape == _LEAF:
        if not mf.equal(ov, nv):
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


def _diff_dict(old: dict[str, Any], new: dict[str, Any], info: mf.NodeInfo | None, path: Path, c: mf.Comparison,
               granular: bool, skip: frozenset[str]) -> None:
    for k, nv in new.items():
        if k in skip:
            continue
        if k not in old:
            ns = _shape(k, nv, info, granular)
            c.added |= _members_at(*ns[:2], nv, ns[2], path + ("f:" + k,), granular)
            continue
        ov = old[k]
        if not isinstance(nv, (dict, list)) and not isinstance(ov, (dict, list)):  # two scalars (or nulls)
            if not mf.equal(ov, nv):
                c.modified.add(path + ("f:" + k,))
            continue
        _diff_value(ov, nv, _shape(k, ov, info, granular), _shape(k, nv, info, granular), path + ("f:" + k,), c,
                    granular)
    for k, ov in old.items():
        if k not in new and k not in skip:
            os = _shape(k, ov, info, granular)
            c.removed |= _members_at(*os[:2], ov, os[2], path + ("f:" + k,), granular)


_ITEM_LEAF = (_LEAF, True, None)


def _list_elements(value: list[Any], info: mf.NodeInfo) -> dict[str, Any]:
    """Element -> item of a list map, or _Fallback when two dict items share a key."""
    out: dict[str, Any] = {}
    skeys = info.skeys
    for i, item in enumerate(value):
        if isinstance(item, dict):
            pe = mf.key_element(item, skeys, i)
            if pe in out:
                raise _Fallback(pe)
            out[pe] = item
        else:
            out[f"i:{i}"] = item
    return out


def _diff_list(old: list[Any], new: list[Any], info: mf.NodeInfo, path: Path, c: mf.Comparison, granular: bool) -> None:
    if info.sem == "set":
        o = {mf.set_element(item): item for item in old}
        n = {mf.set_element(item): item for item in new}
        for pe, nv in n.items():
            if pe not in o:
                c.added.add(path + (pe,))
            elif not mf.equal(o[pe], nv):
                c.modified.add(path + (pe,))
        c.removed.update(path + (pe,) for pe in o if pe not in n)
        return
    try:
        o, n = _list_elements(old, info), _list_elements(new, info)
    except _Fallback:
        om: dict[Path, tuple[bool, Any]] = {}
        nm: dict[Path, tuple[bool, Any]] = {}
        mf.walk_list(old, info, path, om, granular)
        mf.walk_list(new, info, path, nm, granular)
        sub = mf.compare(om, nm)
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
