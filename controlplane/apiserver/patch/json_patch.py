"""RFC 6902 JSON patch (``application/json-patch+json``), as the real apiserver applies it.

API: ``apply_json_patch(doc, ops) -> new doc`` where ``ops`` is the decoded patch body (a list
of operation objects). Supports ``add``, ``remove``, ``replace``, ``move``, ``copy`` and
``test`` with JSON-pointer escaping (``~0``/``~1``). An operation that cannot apply (a failing
``test``, a missing path, an index out of range) raises ``ApiError`` 422 ``Invalid`` -- kopf
relies on 422 for a failed ``test`` on ``/metadata/resourceVersion``; a body that is not a list
of operations raises 400. Never mutates its input. Neighbours: ``__init__.apply_patch`` decodes
the body and dispatches here; ``merge_patch.py``/``strategic.py`` handle the other types.
"""

from __future__ import annotations

import copy
from typing import Any

from controlplane.apiserver.meta import errors

MAX_OPERATIONS = 10000  # Kubernetes' maxJSONPatchOperations


class PatchFailed(Exception):
    """An operation that does not apply (reported as 422 by ``apply_json_patch``)."""


def unprocessable(message: str) -> errors.ApiError:
    """422 the way the apiserver reports a patch that does not apply."""
    return errors.ApiError(422, "Invalid", message,
                           causes=[{"reason": "FieldValueInvalid", "message": message, "field": "patch"}])


def json_equal(a: Any, b: Any) -> bool:
    """JSON value equality (unlike Python's ``==``, ``true`` is not ``1``; ``1`` equals ``1.0``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def parse_pointer(pointer: Any) -> list[str]:
    """Split an RFC 6901 pointer into unescaped reference tokens ("" is the whole document)."""
    if not isinstance(pointer, str):
        raise PatchFailed(f"path must be a string, got {pointer!r}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchFailed(f'JSON pointer "{pointer}" must start with "/"')
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _index(token: str, length: int, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchFailed(f"invalid array index {token!r}")
    i = int(token)
    if i > length or (i == length and not allow_end):
        raise PatchFailed(f"array index {i} out of bounds (length {length})")
    return i


def _parent(doc: Any, tokens: list[str], path: str) -> tuple[Any, str]:
    """The container holding the last token of ``tokens``."""
    cur = doc
    for t in tokens[:-1]:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchFailed(f'doc is missing path: "{path}"')
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_index(t, len(cur), allow_end=False)]
        else:
            raise PatchFailed(f'doc is missing path: "{path}"')
    if not isinstance(cur, (dict, list)):
        raise PatchFailed(f'doc is missing path: "{path}"')
    return cur, tokens[-1]


def _get(doc: Any, path: str) -> Any:
    tokens = parse_pointer(path)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchFailed(f'doc is missing key: "{path}"')
        return parent[last]
    return parent[_index(last, len(parent), allow_end=False)]


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = parse_pointer(path)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        parent[last] = value
    else:
        parent.insert(_index(last, len(parent), allow_end=True), value)
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = parse_pointer(path)
    if not tokens:
        raise PatchFailed("cannot remove the whole document")
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchFailed(f'unable to remove nonexistent key: {last}: missing value')
        return doc, parent.pop(last)
    return doc, parent.pop(_index(last, len(parent), allow_end=False))


def _value(op: dict[str, Any]) -> Any:
    if "value" not in op:
        raise PatchFailed(f'{op.get("op")} operation missing value')
    return copy.deepcopy(op["value"])


def _from(op: dict[str, Any]) -> str:
    src = op.get("from")
    if not isinstance(src, str):
        raise PatchFailed(f'{op.get("op")} operation missing from')
    return src


def _apply_one(doc: Any, op: dict[str, Any]) -> Any:
    kind, path = op.get("op"), op.get("path")
    if path is None:
        raise PatchFailed(f"operation {kind!r} missing path")
    if kind == "add":
        return _add(doc, path, _value(op))
    if kind == "remove":
        return _remove(doc, path)[0]
    if kind == "replace":
        tokens = parse_pointer(path)
        if not tokens:
            return _value(op)
        _get(doc, path)  # must exist
        parent, last = _parent(doc, tokens, path)
        if isinstance(parent, dict):
            parent[last] = _value(op)
        else:
            parent[_index(last, len(parent), allow_end=False)] = _value(op)
        return doc
    if kind == "move":
        src = _from(op)
        if path != src and path.startswith(src + "/"):
            raise PatchFailed(f'cannot move "{src}" into its own child "{path}"')
        doc, val = _remove(doc, src)
        return _add(doc, path, val)
    if kind == "copy":
        return _add(doc, path, copy.deepcopy(_get(doc, _from(op))))
    if kind == "test":
        expected = op.get("value")
        tokens = parse_pointer(path)
        if tokens:
            try:
                parent, last = _parent(doc, tokens, path)
            except PatchFailed:
                raise PatchFailed(f"test operation does not apply: is missing path: {path}") from None
            if isinstance(parent, dict) and last not in parent and expected is None:
                return doc  # evanphx/json-patch: a missing key (under an existing parent) tests equal to null
        try:
            actual = _get(doc, path)
        except PatchFailed:
            raise PatchFailed(f"testing value {path} failed: test failed") from None
        if not json_equal(actual, expected):
            raise PatchFailed(f"testing value {path} failed: test failed")
        return doc
    raise PatchFailed(f"Unexpected kind: {kind}")


def apply_json_patch(doc: Any, ops: Any) -> Any:
    """Apply the decoded RFC 6902 operations to a copy of ``doc`` (raises ApiError)."""
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if len(ops) > MAX_OPERATIONS:
        raise errors.too_large(f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {len(ops)}")
    result = copy.deepcopy(doc)
    for op in ops:
        try:
            result = _apply_one(result, op)
        except PatchFailed as e:
            raise unprocessable(str(e)) from None
    return result
