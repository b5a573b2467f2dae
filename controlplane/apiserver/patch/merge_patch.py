"""RFC 7386 JSON merge patch (``application/merge-patch+json``).

API: ``merge_patch(target, patch) -> new value`` and ``create_merge_patch(src, dst) -> patch``
(the inverse: a patch that turns ``src`` into ``dst``; used by tests and by callers that want
to express a diff). ``null`` deletes a key, objects merge recursively, everything else
(lists included) replaces. Never mutates its inputs. Neighbour: ``__init__.apply_patch``.
"""

from __future__ import annotations

import copy
from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """Return ``target`` with ``patch`` merged in (RFC 7386 MergePatch)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = merge_patch(result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    # keys copied by reference from target are never mutated afterwards: copy them once here
    return {k: (v if k in patch else copy.deepcopy(v)) for k, v in result.items()}


def create_merge_patch(src: Any, dst: Any) -> Any:
    """A merge patch that turns ``src`` into ``dst`` (``dst`` must not hold nulls in objects)."""
    if not (isinstance(src, dict) and isinstance(dst, dict)):
        return copy.deepcopy(dst)
    out: dict[str, Any] = {}
    for k in src:
        if k not in dst:
            out[k] = None
    for k, v in dst.items():
        if k not in src:
            out[k] = copy.deepcopy(v)
        elif isinstance(v, dict) and isinstance(src[k], dict):
            sub = create_merge_patch(src[k], v)
            if sub:
                out[k] = sub
        elif src[k] != v or type(src[k]) is not type(v):
            out[k] = copy.deepcopy(v)
    return out
