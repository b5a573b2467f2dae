"""Server-side printing: ``meta.k8s.io/v1`` ``Table`` responses for ``kubectl get``.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the
columns we send (priority 1 = ``-o wide`` only). Built-in kinds get the columns of
Kubernetes' ``pkg/printers/internalversion`` (``printers.py``); custom resources get
``Name`` plus their CRD's ``additionalPrinterColumns`` (a JSONPath subset, ``jsonpath.py``),
defaulting to ``Age``. Neighbours: ``discovery/registry.py`` (ResourceInfo), the get/list/watch endpoints.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.printing import printers
from controlplane.apiserver.printing.format import NAME_DESC, col, human_duration, parse_time
from controlplane.apiserver.printing.jsonpath import JsonPathError, find

Obj = dict[str, Any]
_DEFAULT_CR_COLUMNS = ({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},)


def table_columns(info: ResourceInfo,
                  printer_columns: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The column definitions for a resource (without rows)."""
    if info.is_custom:
        cols = printer_columns or info.printer_columns or _DEFAULT_CR_COLUMNS
        return [col("Name", format="name", description=NAME_DESC)] + [
            col(c.get("name", ""), c.get("type", "string"), priority=int(c.get("priority", 0)),
                format=c.get("format", ""), description=c.get("description", ""))
            for c in cols]
    printer = printers.PRINTERS.get((info.group, info.kind))
    if printer is None:
        return [col("Name", format="name", description=NAME_DESC),
                col("Created At", "date", description="CreationTimestamp is a timestamp "
                    "representing the server time when this object was created.")]
    return [dict(c) for c in printer.columns]


def to_table(info: ResourceInfo, objects: list[Obj], *, include_object: str = "Metadata",
             now: datetime | None = None, list_meta: Obj | None = None,
             include_columns: bool = True,
             printer_columns: list[dict[str, Any]] | None = None) -> Obj:
    """A Table of ``objects``. ``include_object``: ``None`` | ``Metadata`` | ``Object``;
    ``printer_columns`` overrides the CRD columns of a custom resource."""
    now = now or datetime.now(timezone.utc)
    rows = [{"cells": row_cells(info, o, now, printer_columns), "object": _row_object(info, o, include_object)}
            for o in objects]
    if include_object == "None":
        for r in rows:
            r.pop("object")
    table: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": dict(list_meta or {}),
                  "columnDefinitions": table_columns(info, printer_columns) if include_columns else [], "rows": rows}
    return table


def row_cells(info: ResourceInfo, obj: Obj, now: datetime,
              printer_columns: list[dict[str, Any]] | None = None) -> list[Any]:
    if info.is_custom:
        return _custom_cells(printer_columns or info.printer_columns or _DEFAULT_CR_COLUMNS, obj, now)
    printer = printers.PRINTERS.get((info.group, info.kind))
    name = (obj.get("metadata") or {}).get("name", "")
    if printer is None:
        return [name, (obj.get("metadata") or {}).get("creationTimestamp")]
    return printer.row(obj, now)


def _row_object(info: ResourceInfo, obj: Obj, include_object: str) -> Obj:
    if include_object == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": dict(obj.get("metadata") or {})}


def _custom_cells(columns: Any, obj: Obj, now: datetime) -> list[Any]:
    cells: list[Any] = [(obj.get("metadata") or {}).get("name", "")]
    for c in columns:
        try:
            values = find(obj, c.get("jsonPath", ""))
        except JsonPathError:
            cells.append(None)
            continue
        if not values:
            cells.append(None)
        elif len(values) == 1:
            cells.append(_cell_for(c.get("type", "string"), values[0], now))
        else:
            cells.append(",".join(v if isinstance(v, str) else json.dumps(v) for v in values))
    return cells


def _cell_for(typ: str, value: Any, now: datetime) -> Any:
    """Kubernetes' ``cellForJSONValue``: a typed cell, or None when the type does not fit."""
    if typ == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return int(value)
        return None
    if typ == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if typ == "boolean":
        return value if isinstance(value, bool) else None
    if typ == "string":
        if isinstance(value, str):
            return value
        return json.dumps(value) if isinstance(value, (dict, list)) else str(value).lower() \
            if isinstance(value, bool) else str(value)
    if typ == "date":
        if isinstance(value, str):
            ts = parse_time(value)
            return human_duration(now - ts) if ts else "<invalid>"
        return None
    return None
