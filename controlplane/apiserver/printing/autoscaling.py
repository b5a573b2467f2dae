"""Table rows of the autoscaling and aggregation kinds, from Kubernetes 1.32's printers:
``printHorizontalPodAutoscaler`` (Reference, Targets as ``formatHPAMetrics`` writes them,
MinPods, MaxPods, Replicas) and kube-aggregator's APIService columns (Service: ``Local`` or
``namespace/name``; Available: ``True`` or ``False (Reason)``). Rows are printed from the
stored form (autoscaling/v2). Registered in ``printers.PRINTERS``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controlplane.apiserver.printing.format import meta as _m
from controlplane.apiserver.printing.format import since

Obj = dict[str, Any]
UNKNOWN = "<unknown>"


def _status_of(statuses: list, i: int, key: str) -> Obj | None:
    st = statuses[i] if i < len(statuses) and isinstance(statuses[i], dict) else {}
    v = st.get(key)
    return v if isinstance(v, dict) else None


def hpa_targets(specs: list, statuses: list) -> str:
    """``formatHPAMetrics``: each metric as ``current/target`` (at most two, then ``+ N more...``)."""
    if not specs:
        return "<none>"
    out = []
    for i, spec in enumerate(specs):
        t = spec.get("type")
        key = {"External": "external", "Pods": "pods", "Object": "object", "Resource": "resource",
               "ContainerResource": "containerResource"}.get(t or "")
        if key is None:
            out.append("<unknown type>")
            continue
        src = spec.get(key) or {}
        tgt = src.get("target") or {}
        st = _status_of(statuses, i, key)
        cur = (st or {}).get("current") or {}
        if t in ("External", "Object"):
            if tgt.get("averageValue") is not None:
                current = cur.get("averageValue") if st is not None and cur.get("averageValue") is not None else UNKNOWN
                out.append(f"{current}/{tgt['averageValue']} (avg)")
            else:
                current = cur.get("value", UNKNOWN) if st is not None else UNKNOWN
                out.append(f"{current}/{tgt.get('value')}")
        elif t == "Pods":
            current = cur.get("averageValue", UNKNOWN) if st is not None else UNKNOWN
            out.append(f"{current}/{tgt.get('averageValue')}")
        else:
            prefix = f"{src.get('name')}: " if t == "Resource" else ""
            if tgt.get("averageValue") is not None:
                current = cur.get("averageValue", UNKNOWN) if st is not None else UNKNOWN
                out.append(f"{prefix}{current}/{tgt['averageValue']}")
            else:
                current = f"{cur['averageUtilization']}%" if st is not None and cur.get("averageUtilization") is not None \
                    else UNKNOWN
                target = f"{tgt['averageUtilization']}%" if tgt.get("averageUtilization") is not None else "<auto>"
                out.append(f"{prefix}{current}/{target}")
    if len(out) > 2:
        return ", ".join(out[:2]) + f" + {len(out) - 2} more..."
    return ", ".join(out)


def hpa_row(o: Obj, now: datetime) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    lo = spec.get("minReplicas")
    return [_m(o).get("name", ""), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            hpa_targets(spec.get("metrics") or [], st.get("currentMetrics") or []),
            "<unset>" if lo is None else str(lo), int(spec.get("maxReplicas") or 0),
            int(st.get("currentReplicas") or 0), since(_m(o).get("creationTimestamp"), now)]


def apiservice_row(o: Obj, now: datetime) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    svc = spec.get("service")
    service = f"{svc.get('namespace')}/{svc.get('name')}" if svc else "Local"
    cond = next((c for c in st.get("conditions") or [] if c.get("type") == "Available"), None)
    if cond is None:
        available = "Unknown"
    elif cond.get("status") == "True":
        available = "True"
    else:
        available = f"{cond.get('status')} ({cond.get('reason')})"
    return [_m(o).get("name", ""), service, available, since(_m(o).get("creationTimestamp"), now)]
