"""Leaving other field managers' fields alone: from a live object's ``managedFields``, the
fields owned by managers that are neither this controller nor a "person with kubectl" (the
``overrideManagers`` patterns), removed from the object about to be applied.

Server-side apply with ``force`` takes every field of the applied object. Fields an HPA sets
through ``/scale`` (``spec.replicas``) or a mutating controller adds are owned by their manager;
taking them back would fight that controller forever (Argo CD issue #3002). So before applying
we drop from our object every field such a manager owns and we do not also own; the apiserver
then keeps their value and their ownership, and the dry-run comparison sees no drift there.
Changes by ``kubectl edit``/``patch``/``scale`` (manager ``kubectl-*``) are drift and are
applied over. Walks FieldsV1 (``f:`` fields, ``k:`` list-map keys, ``v:`` set values, ``i:``
indexes). Pure; hand-written because FieldsV1 walking lives in the apiserver package, which
other layers must not import.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any


def manager_matches(manager: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(manager, p) for p in patterns)


def foreign_and_own(live: dict, own_manager: str, override: list[str]) -> tuple[list[tuple[str, dict]], list[dict]]:
    """(``[(manager, fieldsV1)]`` of managers whose fields are left alone, our own fieldsV1s)."""
    foreign: list[tuple[str, dict]] = []
    own: list[dict] = []
    for e in (live.get("metadata") or {}).get("managedFields") or []:
        fields = e.get("fieldsV1") or {}
        manager = e.get("manager") or ""
        if manager == own_manager:
            own.append(fields)
        elif e.get("subresource") == "status":
            continue  # status is never applied by a sync
        elif not manager_matches(manager, override):
            foreign.append((manager, fields))
    return foreign, own


def _is_leaf(tree: dict) -> bool:
    return all(k == "." for k in tree)


def _find(items: list, key: str) -> int:
    kind, raw = key[:2], key[2:]
    try:
        want = json.loads(raw)
    except ValueError:
        return -1
    for i, item in enumerate(items):
        if kind == "k:" and isinstance(item, dict) and isinstance(want, dict) and all(item.get(k) == v for k, v in want.items()):
            return i
        if kind == "v:" and item == want:
            return i
    if kind == "i:" and isinstance(want, int) and 0 <= want < len(items):
        return want
    return -1


def _owned(trees: list[dict], key: str) -> list[dict]:
    return [t[key] for t in trees if isinstance(t, dict) and key in t]


def strip(obj: dict, foreign: dict, own: list[dict], path: str = "") -> list[str]:
    """Remove from ``obj`` (in place) the leaves of ``foreign`` that no tree of ``own`` holds;
    returns the removed paths (``.spec.replicas``). A container left empty by the removal is
    removed too; list-map keys are never removed from their element."""
    removed: list[str] = []
    _strip(obj, foreign, own, path, removed, frozenset())
    return removed


def _strip(node: Any, tree: dict, own: list[dict], path: str, removed: list[str], keep: frozenset) -> None:
    for key, sub in tree.items():
        if key == "." or not isinstance(sub, dict):
            continue
        own_sub = _owned(own, key)
        if key.startswith("f:"):
            name = key[2:]
            if not isinstance(node, dict) or name not in node or name in keep:
                continue
            here = f"{path}.{name}"
            if _is_leaf(sub):
                if not own_sub:
                    del node[name]
                    removed.append(here)
                continue
            child = node[name]
            before = bool(child)
            _strip(child, sub, own_sub, here, removed, frozenset())
            if before and isinstance(child, (dict, list)) and not child:
                del node[name]
        elif key[:2] in ("k:", "v:", "i:"):
            if not isinstance(node, list):
                continue
            i = _find(node, key)
            if i < 0:
                continue
            here = f"{path}[{key[2:]}]"
            if _is_leaf(sub) or key[:2] == "v:":
                if not own_sub:
                    del node[i]
                    removed.append(here)
                continue
            keys = frozenset(json.loads(key[2:]).keys()) if key[:2] == "k:" else frozenset()
            _strip(node[i], sub, own_sub, here, removed, keys)


def strip_foreign(obj: dict, live: dict | None, own_manager: str, override: list[str]) -> list[str]:
    """Strip from ``obj`` what other (non-override) managers own on ``live``; removed paths."""
    if not live:
        return []
    foreign, own = foreign_and_own(live, own_manager, override)
    removed: list[str] = []
    for manager, tree in foreign:
        removed += [f"{p} ({manager})" for p in strip(obj, tree, own)]
    return removed
