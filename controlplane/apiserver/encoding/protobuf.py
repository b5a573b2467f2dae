"""Kubernetes protobuf request bodies -> the JSON object Kubernetes would produce.

``kubectl create namespace|configmap|secret|deployment|service|serviceaccount|job`` POST
``application/vnd.kubernetes.protobuf``: the 4-byte magic ``k8s\\x00`` then a
``runtime.Unknown{typeMeta{apiVersion, kind}, raw, contentEncoding, contentType}`` whose
``raw`` is the object in the k8s.io/api ``generated.proto`` encoding. Go (gogo-protobuf)
writes every non-pointer field, so empty strings/zeros/empty structs come through; like Go's
JSON encoding with ``omitempty`` we drop those, but keep pointer fields that are present
(``replicas: 0`` stays). A non-empty field we have no schema for is an error (nothing is
silently lost). Field tables: ``protobuf_schema.py``. Caller: ``body.decode``.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any

from controlplane.apiserver.meta.errors import ApiError, bad_request
from controlplane.apiserver.encoding.protobuf_schema import KINDS, MESSAGES, ONLY_VERSION, Field

MAGIC = b"k8s\x00"


class DecodeError(ValueError):
    pass


# ---------------------------------------------------------------- wire format


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise DecodeError("varint too long")


def fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) triples; length-delimited values are bytes."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise DecodeError("field number 0")
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise DecodeError("truncated length-delimited field")
            val, pos = buf[pos:pos + n], pos + n
        elif wt == 1:
            val, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wt == 5:
            val, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise DecodeError(f"unsupported wire type {wt}")
        if pos > len(buf):
            raise DecodeError("truncated field")
        out.append((num, wt, val))
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


# ---------------------------------------------------------------- envelope


def decode(body: bytes) -> dict[str, Any]:
    """A Kubernetes protobuf body -> JSON-shaped object (ApiError 400/415 when unusable)."""
    if not body.startswith(MAGIC):
        raise bad_request("the protobuf body does not start with the Kubernetes magic k8s\\x00")
    try:
        api_version = kind = ""
        raw = b""
        encoding = ctype = ""
        for num, _wt, val in fields(body[len(MAGIC):]):
            if num == 1:
                for n2, _w2, v2 in fields(val):
                    if n2 == 1:
                        api_version = v2.decode()
                    elif n2 == 2:
                        kind = v2.decode()
            elif num == 2:
                raw = val
            elif num == 3:
                encoding = val.decode()
            elif num == 4:
                ctype = val.decode()
        if encoding:
            raise bad_request(f"unsupported protobuf contentEncoding {encoding!r}")
        if ctype and ctype != "application/vnd.kubernetes.protobuf":
            raise bad_request(f"unsupported embedded content type {ctype!r}")
        group = api_version.rpartition("/")[0]
        message = KINDS.get((group, kind))
        only = ONLY_VERSION.get((group, kind))
        if only is not None and api_version.rpartition("/")[2] != only:
            message = None
        if message is None:
            raise ApiError(415, "UnsupportedMediaType",
                           f"protobuf bodies for {kind} ({api_version}) are not supported; send JSON")
        obj = decode_message(raw, message)
    except (DecodeError, UnicodeDecodeError) as e:
        raise bad_request(f"unable to decode protobuf body: {e}") from None
    return {"apiVersion": api_version, "kind": kind, **obj}


# ---------------------------------------------------------------- messages


def decode_message(buf: bytes, message: str) -> dict[str, Any]:
    schema = MESSAGES[message]
    out: dict[str, Any] = {}
    for num, wt, val in fields(buf):
        f = schema.get(num)
        if f is None:
            if (wt == 0 and val == 0) or (wt == 2 and len(val) == 0):
                continue  # an empty field we do not know: nothing to lose
            raise DecodeError(f"{message}: unsupported field number {num}")
        value = _value(f, wt, val)
        if f.embed:
            if isinstance(value, dict):
                out.update(value)
            continue
        if f.repeated:
            if f.kind.startswith("map"):
                out.setdefault(f.json, {}).update(value)
            else:
                out.setdefault(f.json, []).extend(value if isinstance(value, list) else [value])
        else:
            out[f.json] = value
    return {k: v for k, v in out.items() if not _empty(schema_by_json(schema, k), v)}


def schema_by_json(schema: dict[int, Field], name: str) -> Field | None:
    for f in schema.values():
        if f.json == name:
            return f
    return None


def _empty(f: Field | None, v: Any) -> bool:
    """Go ``omitempty``: drop zero values of non-pointer fields (and empty collections)."""
    if f is None:
        return False
    if f.repeated:
        return not v
    if f.pointer:
        return False
    if isinstance(v, (dict, list)):
        return not v
    return v is None or v == "" or v is False or (isinstance(v, int) and v == 0)


def _value(f: Field, wt: int, val: Any) -> Any:
    kind = f.kind
    if kind in ("string", "bytes", "quantity") and wt != 2:
        raise DecodeError(f"{f.json}: expected length-delimited")
    if kind == "string":
        if f.repeated and wt == 2:
            return [val.decode()]
        return val.decode()
    if kind == "bytes":
        return base64.b64encode(val).decode()
    if kind in ("int", "bool"):
        if wt == 2:  # packed repeated
            nums, pos = [], 0
            while pos < len(val):
                n, pos = _varint(val, pos)
                nums.append(_signed(n) if kind == "int" else bool(n))
            return nums
        return _signed(val) if kind == "int" else bool(val)
    if kind == "quantity":
        return _quantity(val)
    if kind == "time":
        return _time(val, micro=False)
    if kind == "microtime":
        return _time(val, micro=True)
    if kind == "intstr":
        return _intstr(val)
    if kind == "raw":
        raw = next((v for n, _w, v in fields(val) if n == 1), b"")
        return json.loads(raw) if raw else None
    if kind.startswith("map"):
        return _map(f, val)
    if wt != 2:
        raise DecodeError(f"{f.json}: expected a message")
    return decode_message(val, kind)


def _quantity(val: bytes) -> str:
    return next((v.decode() for n, _w, v in fields(val) if n == 1), "")


def _time(val: bytes, *, micro: bool) -> str | None:
    secs = nanos = 0
    for n, _w, v in fields(val):
        if n == 1:
            secs = _signed(v)
        elif n == 2:
            nanos = _signed(v)
    if secs == 0 and nanos == 0:
        return None
    t = datetime.fromtimestamp(secs, tz=timezone.utc)
    if micro:
        return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _intstr(val: bytes) -> int | str:
    typ, ival, sval = 0, 0, ""
    for n, _w, v in fields(val):
        if n == 1:
            typ = v
        elif n == 2:
            ival = _signed(v)
        elif n == 3:
            sval = v.decode()
    return sval if typ == 1 else ival


def _map(f: Field, val: bytes) -> dict[str, Any]:
    key, value = "", None
    vkind = f.kind.split(":", 1)[1] if ":" in f.kind else "string"
    for n, _w, v in fields(val):
        if n == 1:
            key = v.decode()
        elif n == 2:
            if vkind == "string":
                value = v.decode()
            elif vkind == "bytes":
                value = base64.b64encode(v).decode()
            elif vkind == "quantity":
                value = _quantity(v)
            elif vkind == "strings":  # ExtraValue: message { repeated string items = 1 }
                value = [s.decode() for n2, _w2, s in fields(v) if n2 == 1]
            else:
                value = decode_message(v, vkind)
    if value is None:
        value = "" if vkind in ("string", "bytes", "quantity") else [] if vkind == "strings" else {}
    return {key: value}
