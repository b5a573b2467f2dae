"""The object side of server-side apply: merging an applied configuration into the live object
and pruning what the applier stopped applying (structured-merge-diff's ``Merge`` and
``Updater.prune``).

API: ``merge_applied(live, config, node) -> dict`` and ``prune(obj, node, last, owned) -> dict``.
Structs and granular maps merge per key (``null`` in the config removes the key); lists merge
by their list type (``map``: items matched by list-map keys and merged, ``set``: union,
``atomic``: replaced) keeping SMD's item order (the config's order, live-only items where they
were); atomic maps and scalars are replaced. Neighbours: ``managed_fields.py`` (paths, list
semantics), ``ssa.py`` (ownership and conflicts).
"""

from __future__ import annotations

import copy
from typing import Any

from controlplane.apiserver.patch import managed_fields as mf
from controlplane.apiserver.patch.schema import Node

Path = mf.Path


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def merge_applied(live: Any, config: Any, node: Node | None) -> Any:
    """A new value: ``config`` merged into ``live`` (neither is mutated)."""
    if isinstance(live, dict) and isinstance(config, dict) and not mf.is_atomic_map(node):
        out = copy.deepcopy(live)
        for k, v in config.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = merge_applied(out[k], v, node.field(k) if node is not None else None)
            else:
                out[k] = _drop_nulls(copy.deepcopy(v))
        return out
    if isinstance(live, list) and isinstance(config, list):
        semantics, keys = mf.list_semantics(node)
        if semantics != "atomic":
            return _merge_lists(live, config, semantics, keys, node.items() if node is not None else None)
    return _drop_nulls(copy.deepcopy(config))


def _merge_lists(lhs: list[Any], rhs: list[Any], semantics: str, keys: list[str], item_node: Node | None) -> list[Any]:
    """SMD's visitListItems ordering: walk both lists; shared items appear in the config's
    order, live-only items stay near where they were."""
    lpe = [mf.item_element(v, semantics, keys, i) for i, v in enumerate(lhs)]
    rpe = [mf.item_element(v, semantics, keys, i) for i, v in enumerate(rhs)]
    l_by: dict[str, Any] = {}
    for pe, v in zip(lpe, lhs):
        l_by.setdefault(pe, v)
    r_by: dict[str, Any] = {}
    for pe, v in zip(rpe, rhs):
        r_by.setdefault(pe, v)
    shared = [pe for pe in rpe if pe in l_by]
    next_shared = shared.pop(0) if shared else None
    merged_r: set[str] = set()
    out: list[Any] = []

    def item(pe: str, lv: Any, rv: Any) -> Any:
        if rv is None:
            return copy.deepcopy(lv)
        if lv is None or semantics == "set":
            return _drop_nulls(copy.deepcopy(rv))
        return merge_applied(lv, rv, item_node)

    li = ri = 0
    while li < len(lpe) or ri < len(rpe):
        if li < len(lpe) and ri < len(rpe):
            pe = lpe[li]
            if pe == rpe[ri]:
                if pe not in merged_r:
                    merged_r.add(pe)
                    out.append(item(pe, l_by.get(pe), r_by.get(pe)))
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in r_by and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(lpe):
            pe = lpe[li]
            if pe not in r_by:
                out.append(copy.deepcopy(lhs[li]))
                li += 1
                continue
            if pe in merged_r:
                li += 1
                continue
        if ri < len(rpe):
            pe = rpe[ri]
            if pe not in merged_r:
                merged_r.add(pe)
                out.append(item(pe, l_by.get(pe), r_by.get(pe)))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


def _named_field_prefixes(paths: set[Path], node: Node | None) -> set[Path]:
    """SMD's EnsureNamedFieldsAreMembers: struct fields above a path count as its members."""
    out = set(paths)
    for p in paths:
        n = node
        for i, pe in enumerate(p[:-1]):
            if n is None:
                break
            if pe.startswith("f:"):
                name = pe[2:]
                if name in (n.raw.get("properties") or {}):
                    out.add(p[:i + 1])
                n = n.field(name)
            else:
                n = n.items()
    return out


def prune(obj: dict[str, Any], node: Node | None, last: set[Path], owned: set[Path]) -> dict[str, Any]:
    """Remove what the applier owned last time (``last``) that nobody owns now (``owned``),
    unless something owned lies under it."""
    remove = _named_field_prefixes(last, node) - owned
    if not remove:
        return obj
    keep: set[Path] = set()
    for p in owned:
        for i in range(1, len(p) + 1):
            keep.add(p[:i])
    descend = set(keep)
    for p in remove:
        for i in range(1, len(p)):
            descend.add(p[:i])
    return _prune(obj, node, (), remove, keep, descend)


def _prune(value: Any, node: Node | None, path: Path, remove: set[Path], keep: set[Path],
           descend: set[Path]) -> Any:
    if isinstance(value, dict):
        if path and mf.is_atomic_map(node):
            return value
        out = {}
        for k, v in value.items():
            p = path + ("f:" + k,)
            if p in remove and p not in keep:
                continue
            out[k] = (_prune(v, node.field(k) if node is not None else None, p, remove, keep, descend)
                      if p in descend else v)
        return out
    if isinstance(value, list):
        semantics, keys = mf.list_semantics(node)
        if semantics == "atomic":
            return value
        item_node = node.items() if node is not None else None
        out_l = []
        for i, v in enumerate(value):
            p = path + (mf.item_element(v, semantics, keys, i),)
            if p in remove and p not in keep:
                continue
            out_l.append(_prune(v, item_node, p, remove, keep, descend) if p in descend else v)
        return out_l
    return value
