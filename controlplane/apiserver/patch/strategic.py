"""Strategic merge patch (``application/strategic-merge-patch+json``), built-in kinds only.

A port of apimachinery's ``strategicpatch.StrategicMergePatch`` with the options the apiserver
uses (merge parallel lists, ignore unmatched nulls): maps merge recursively and ``null``
deletes a key; lists whose field has ``x-kubernetes-patch-strategy: merge`` merge by
``x-kubernetes-patch-merge-key`` (containers by name, ports by containerPort, ...) or, for
primitives, as a union; other lists replace. Directives: ``$patch: replace|delete|merge`` on
maps, ``{"$patch": "delete", <key>: v}`` / ``{"$patch": "replace"}`` list items,
``$retainKeys``, ``$deleteFromPrimitiveList/<f>`` and ``$setElementOrder/<f>`` (the order
kubectl's client-side apply sends). Element order follows Kubernetes' rules
($setElementOrder > patch order > live order).

API: ``strategic_merge_patch(original, patch, node) -> new dict`` (``node``: the kind's
``schema.Node`` or None). Raises ``ApiError`` 400 for malformed directives, 422 for patches that
cannot apply. Never mutates its inputs. Neighbours: ``schema.py`` (metadata), ``__init__``.
"""

from __future__ import annotations

import copy
from typing import Any

from controlplane.apiserver.meta import errors
from controlplane.apiserver.patch.json_patch import unprocessable
from controlplane.apiserver.patch.schema import Node

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder/"
DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


class _Meta:
    """Patch metadata of one field: its sub-schema (items for lists) and strategy/merge key."""

    __slots__ = ("sub", "strategy", "merge_key")

    def __init__(self, node: Node | None, *, is_list: bool) -> None:
        self.strategy = node.patch_strategy if node else ""
        self.merge_key = node.merge_key if node else ""
        self.sub = (node.items() if is_list else node) if node else None


def _lookup(node: Node | None, key: str, *, is_list: bool) -> _Meta:
    return _Meta(node.field(key) if node else None, is_list=is_list)


def strategic_merge_patch(original: dict[str, Any], patch: Any, node: Node | None) -> dict[str, Any]:
    """Apply a decoded strategic merge patch to a copy of ``original``."""
    if not isinstance(patch, dict):
        raise errors.bad_request("strategic merge patch body must be a JSON object")
    return _merge_map(copy.deepcopy(original), copy.deepcopy(patch), node)


# --- maps -----------------------------------------------------------------------------------

def _merge_map(original: dict[str, Any] | None, patch: dict[str, Any], node: Node | None) -> dict[str, Any]:
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == "replace":
            rest = {k: v for k, v in patch.items() if k != DIRECTIVE}
            return _merge_map({}, rest, node) if rest else {}
        if directive == "delete":
            return {}
        if directive == "merge":
            patch = {k: v for k, v in patch.items() if k != DIRECTIVE}
        else:
            raise errors.bad_request(f"Unknown patch type: {directive!r} in map: {patch!r}")
    if original is None:
        original = {}
    _apply_retain_keys(original, patch)
    _merge_parallel_lists(original, patch, node)
    for key, patch_v in patch.items():
        is_delete_list = key.startswith(DELETE_PRIMITIVE)
        if is_delete_list:
            key = key[len(DELETE_PRIMITIVE):]
        elif key.startswith(SET_ORDER):
            continue  # consumed by _merge_parallel_lists
        if patch_v is None:
            original.pop(key, None)
            continue
        orig_v = original.get(key)
        if key not in original or type(orig_v) is not type(patch_v) or not isinstance(patch_v, (dict, list)):
            if is_delete_list:
                continue
            original[key] = _fresh(patch_v, _lookup(node, key, is_list=isinstance(patch_v, list)))
            continue
        if isinstance(patch_v, dict):
            meta = _lookup(node, key, is_list=False)
            original[key] = patch_v if meta.strategy == "replace" else _merge_map(orig_v, patch_v, meta.sub)
        else:
            meta = _lookup(node, key, is_list=True)
            original[key] = _merge_slice_handler(orig_v, patch_v, meta, is_delete_list)
    return original


def _fresh(value: Any, meta: _Meta) -> Any:
    """A patch value for a field the original lacks: merged into an empty value so directives
    and nulls inside it do not end up stored."""
    if isinstance(value, dict):
        return value if meta.strategy == "replace" else _merge_map({}, value, meta.sub)
    if isinstance(value, list):
        return _merge_slice_handler([], value, meta, False)
    return value


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise errors.bad_request("invalid patch format: $retainKeys must be a list of strings")
    keep = set(k for k in retain if isinstance(k, str))
    for k, v in patch.items():
        if v is None or k.startswith(DELETE_PRIMITIVE) or k.startswith(SET_ORDER):
            continue
        if k not in keep:
            raise errors.bad_request("doesn't satisfy the patch format for retainKeys: "
                                     f"field {k!r} is in the patch but not in $retainKeys")
    for k in list(original):
        if k not in keep:
            del original[k]


def _merge_parallel_lists(original: dict[str, Any], patch: dict[str, Any], node: Node | None) -> None:
    """Process every ``$setElementOrder/<f>`` with its list ``<f>`` and enforce the order."""
    for key in [k for k in patch if k.startswith(SET_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise errors.bad_request(f"invalid patch format: {key} must be a list")
        field = key[len(SET_ORDER):]
        meta = _lookup(node, field, is_list=True)
        orig_list, patch_list = original.get(field), patch.get(field)
        found_orig, found_patch = isinstance(orig_list, list), isinstance(patch_list, list)
        _validate_set_order(patch_list if found_patch else [], order, meta.merge_key)
        if found_orig and not found_patch:
            merged = orig_list
        elif found_patch and not found_orig:
            merged = _merge_slice_handler([], patch_list, meta, False)
        elif found_orig and found_patch:
            merged = _merge_slice_handler(orig_list, patch_list, meta, False)
        else:
            continue
        in_order, server_only = _partition(merged, order, meta.merge_key)
        original[field] = _normalize_order(in_order, server_only, order, orig_list if found_orig else [],
                                           meta.merge_key)
        patch.pop(field, None)


def _validate_set_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """Every non-directive patch item must appear in the order list, in the same order."""
    positions = []
    for item in patch_list:
        if isinstance(item, dict) and DIRECTIVE in item:
            continue
        i = _index(order, item, merge_key)
        if i < 0:
            raise errors.bad_request(f"invalid patch format: $setElementOrder list does not contain {item!r}")
        positions.append(i)
    if positions != sorted(positions):
        raise errors.bad_request("invalid patch format: the order in the list and $setElementOrder differ")


# --- lists ----------------------------------------------------------------------------------

def _merge_slice_handler(original: list[Any], patch: list[Any], meta: _Meta, is_delete_list: bool) -> list[Any]:
    if meta.strategy != "merge":
        return patch
    return _merge_slice(original, patch, meta, is_delete_list)


def _element_kind(original: list[Any], patch: list[Any]) -> str:
    kinds = set()
    for v in list(original) + list(patch):
        if isinstance(v, list):
            raise unprocessable("lists of lists are not supported")
        kinds.add("map" if isinstance(v, dict) else "scalar")
    if len(kinds) > 1:
        raise errors.bad_request("invalid patch format: list elements are not all of one type")
    return kinds.pop() if kinds else "scalar"


def _merge_slice(original: list[Any], patch: list[Any], meta: _Meta, is_delete_list: bool) -> list[Any]:
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    key = meta.merge_key
    if kind != "map":
        if is_delete_list:
            drop = patch
            return [v for v in original if not any(_same(v, d) for d in drop)]
        merged: list[Any] = []
        for v in original + patch:
            if not any(_same(v, m) for m in merged):
                merged.append(v)
        key = ""
    else:
        if not key:
            raise errors.bad_request("cannot merge lists without merge key")
        original, patch = _special_elements(original, patch, key, meta.sub)
        merged = list(original)
        for item in patch:
            if key not in item:
                raise errors.bad_request(f"map: {item!r} does not contain declared merge key: {key}")
            at = _index(merged, item, key)
            if at >= 0:
                merged[at] = _merge_map(merged[at], item, meta.sub)
            else:
                merged.append(_merge_map({}, item, meta.sub))
    in_patch, server_only = _partition(merged, patch, key)
    return _normalize_order(in_patch, server_only, patch, original, key)


def _special_elements(original: list[Any], patch: list[Any], key: str,
                      sub: Node | None) -> tuple[list[Any], list[Any]]:
    """Handle ``$patch`` list items: delete by key, replace the whole list."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if key not in item:
                raise errors.bad_request(f"map: {item!r} does not contain declared merge key: {key}")
            original = [o for o in original if not _same(o.get(key), item[key])]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise errors.bad_request("merging lists cannot yet be specified in the patch")
        else:
            raise errors.bad_request(f"Unknown patch type: {directive!r} in list item: {item!r}")
    if replace:
        return [_merge_map({}, p, sub) for p in plain], []
    return original, plain


# --- ordering (apimachinery normalizeElementOrder / mergeSortedSlice) ------------------------

def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                             and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def _index(items: list[Any], value: Any, key: str) -> int:
    for i, item in enumerate(items):
        if key:
            if isinstance(item, dict) and isinstance(value, dict) and key in item and _same(item[key], value.get(key)):
                return i
        elif _same(item, value):
            return i
    return -1


def _partition(merged: list[Any], by: list[Any], key: str) -> tuple[list[Any], list[Any]]:
    present = [m for m in merged if _index(by, m, key) >= 0]
    rest = [m for m in merged if _index(by, m, key) < 0]
    return present, rest


def _sort_by(items: list[Any], order: list[Any], key: str) -> list[Any]:
    def rank(pair: tuple[int, Any]) -> tuple[int, int]:
        i = _index(order, pair[1], key)
        return (i if i >= 0 else len(order), pair[0])
    return [v for _, v in sorted(enumerate(items), key=rank)]


def _normalize_order(patch_items: list[Any], server_only: list[Any], patch_order: list[Any],
                     server_order: list[Any], key: str) -> list[Any]:
    """Sort patch items by the patch (or $setElementOrder) order, server-only items by the live
    order, then interleave them keeping both relative orders (live order breaks ties)."""
    right = _sort_by(patch_items, patch_order, key)
    left = _sort_by(server_only, server_order, key)
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j]); j += 1
        elif j >= len(right):
            out.append(left[i]); i += 1
        else:
            li, ri = _index(server_order, left[i], key), _index(server_order, right[j], key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i]); i += 1
            else:
                out.append(right[j]); j += 1
    return out
