"""The apiserver's JSON codec (ujson: compact, non-ASCII kept, ``/`` unescaped, as Go's
encoder writes it), a cheap deep copy of decoded JSON values, and dotted paths into them
(``.spec.replicas``, as CRDs' scale subresources name their fields)."""

from __future__ import annotations

import copy
from typing import Any

import ujson


def dumps(obj: Any) -> bytes:
    return ujson.dumps(obj, ensure_ascii=False, escape_forward_slashes=False).encode()


def loads(data: bytes | str) -> Any:
    return ujson.loads(data)


_ATOMIC = frozenset({str, int, float, bool, type(None)})


def json_copy(value: Any) -> Any:
    """Deep copy of a JSON value (dicts, lists, scalars), much cheaper than ``copy.deepcopy``;
    anything else inside is handed to ``copy.deepcopy``."""
    t = type(value)
    if t is dict:
        return {k: v if type(v) in _ATOMIC else json_copy(v) for k, v in value.items()}
    if t is list:
        return [v if type(v) in _ATOMIC else json_copy(v) for v in value]
    if t in _ATOMIC:
        return value
    return copy.deepcopy(value)


def path_get(obj: Any, path: str) -> Any:
    """The value at a dotted path (``.spec.replicas``), None where it does not exist."""
    cur: Any = obj
    for part in [p for p in path.strip(".").split(".") if p]:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def path_set(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a dotted path, making the maps on the way."""
    parts = [p for p in path.strip(".").split(".") if p]
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value
