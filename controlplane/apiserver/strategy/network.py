"""The networking resources' strategies: ``discovery.k8s.io/v1`` EndpointSlice
(``pkg/registry/discovery/endpointslice``: ports default to protocol TCP and name "",
``addressType`` immutable — checked in ``validation/network.py``) and ``networking.k8s.io/v1``
NetworkPolicy (``pkg/registry/networking/networkpolicy``: generation tracking, ports default to
TCP, ``policyTypes`` default to Ingress plus Egress when egress rules are given).
Neighbours: the EndpointSlice controller and the service proxy write and read them.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.strategy.base import Strategy
from controlplane.apiserver.strategy.podtemplate import sub

Obj = dict[str, Any]


class EndpointSliceStrategy(Strategy):
    def set_defaults(self, obj: Obj) -> None:
        for p in obj.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if p.get("name") is None:
                    p["name"] = ""


class NetworkPolicyStrategy(Strategy):
    tracks_generation = True

    def set_defaults(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        spec.setdefault("podSelector", {})
        for direction in ("ingress", "egress"):
            for rule in spec.get(direction) or []:
                if not isinstance(rule, dict):
                    continue
                for p in rule.get("ports") or []:
                    if isinstance(p, dict):
                        p.setdefault("protocol", "TCP")
        if not spec.get("policyTypes"):
            spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


class IngressStrategy(Strategy):
    """``networking.k8s.io/v1`` Ingress: spec changes bump ``metadata.generation``; its status
    (the load balancer's addresses) is written through ``/status``."""

    tracks_generation = True
