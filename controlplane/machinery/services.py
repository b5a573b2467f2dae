"""Service helpers shared by the Endpoints, EndpointSlice and EndpointSliceMirroring
controllers (controllers may not import each other) and the apiserver's EndpointSlice
validation: a Service port's targetPort resolved against a pod's container ports, and
Kubernetes' rules for an endpoint's IP address (``ValidateEndpointIP``)."""

from __future__ import annotations

import ipaddress

_LL4 = ipaddress.ip_network("169.254.0.0/16")
_LL_MCAST4 = ipaddress.ip_network("224.0.0.0/24")


def endpoint_ip_error(addr: str, family: int) -> str | None:
    """Why ``addr`` cannot be an endpoint address of an IPv``family`` EndpointSlice
    (Kubernetes' ValidateEndpointIP plus the address type's family, its messages), or None."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return f"must be a valid IPv{family} address"
    if ip.version != family:
        return f"must be a valid IPv{family} address"
    if ip.is_unspecified:
        return f"may not be unspecified ({ip})"
    if ip.is_loopback:
        return "may not be in the loopback range (127.0.0.0/8, ::1/128)"
    if ip.version == 4 and ip in _LL4 or ip.version == 6 and ip.is_link_local:
        return "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
    if ip.version == 4 and ip in _LL_MCAST4 or ip.version == 6 and int(ip) >> 112 == 0xFF02:
        return "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
    return None


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
