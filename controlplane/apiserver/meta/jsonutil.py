"""The apiserver's JSON codec (ujson: compact, non-ASCII kept, ``/`` unescaped, as Go's
encoder writes it) and a cheap deep copy of decoded JSON values."""

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
