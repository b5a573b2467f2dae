"""Shared pieces of server-side printing: column definitions, kubectl's duration rendering
(apimachinery ``duration.HumanDuration``), label/selector strings and the ``Printer`` record.
Used by ``printers.py``, ``pods.py`` and ``tables.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from controlplane.machinery.timestamps import parse_datetime_or_none as parse_time

Obj = dict[str, Any]
NAME_DESC = ("Name must be unique within a namespace. Is required when creating resources, "
             "although some resources may allow a client to request the generation of an "
             "appropriate name automatically. Name is primarily intended for creation idempotence "
             "and configuration definition. Cannot be updated. More info: "
             "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
AGE_DESC = ("CreationTimestamp is a timestamp representing the server time when this object was "
            "created. It is not guaranteed to be set in happens-before order across separate "
            "operations. Clients may not set this value. It is represented in RFC3339 form and is "
            "in UTC.")
NONE = "<none>"


def col(name: str, typ: str = "string", *, priority: int = 0, format: str = "",
        description: str = "") -> dict[str, Any]:
    return {"name": name, "type": typ, "format": format, "description": description or name,
            "priority": priority}


def human_duration(d: timedelta) -> str:
    """apimachinery ``duration.HumanDuration``."""
    seconds = int(d.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def since(value: Any, now: datetime) -> str:
    ts = parse_time(value)
    return human_duration(now - ts) if ts else "<unknown>"


def meta(o: Obj) -> Obj:
    return o.get("metadata") or {}


def sub(o: Obj, key: str = "spec") -> Obj:
    v = o.get(key)
    return v if isinstance(v, dict) else {}


def labels_str(labels: Any) -> str:
    if not labels:
        return NONE
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def selector_str(sel: Any) -> str:
    if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        return NONE
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op, key, vals = e.get("operator"), e.get("key"), sorted(e.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(vals)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(vals)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def containers_images(o: Obj) -> list[str]:
    cs = sub(sub(sub(o), "template"), "spec").get("containers") or []
    return [",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)]


@dataclass(frozen=True)
class Printer:
    columns: tuple[dict[str, Any], ...]
    row: Callable[[Obj, datetime], list[Any]]
