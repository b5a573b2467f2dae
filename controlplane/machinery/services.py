"""Service helpers shared by the Endpoints and EndpointSlice controllers (controllers may not
import each other): a Service port's targetPort resolved against a pod's container ports."""

from __future__ import annotations


def resolve_port(pod: dict, svc_port: dict) -> int | None:
    """The pod's port for ``svc_port``: a number, or a named container port of the same
    protocol; None when the pod has no such port (it is then no endpoint for it)."""
    tp = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(tp, int):
        return tp
    if isinstance(tp, str) and tp.isdigit():
        return int(tp)
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == tp and (p.get("protocol") or "TCP") == (svc_port.get("protocol") or "TCP"):
                return int(p["containerPort"])
    return None
