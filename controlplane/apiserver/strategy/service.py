"""Services (``pkg/registry/core/service``): Kubernetes' defaults (type ClusterIP, TCP ports,
targetPort = port, single-stack IPv4, traffic policies), DNS-1123 label names, and the
allocation hooks: a clusterIP (and nodePorts for NodePort/LoadBalancer) taken from the
server's ``ServiceIPAllocator`` before the create is written and released if it is not, kept
across updates that omit it (clusterIP is immutable; node ports follow type and port changes),
released when the Service leaves storage.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.strategy.base import Strategy, StrategyContext
from controlplane.apiserver.strategy.podtemplate import sub

Obj = dict[str, Any]


class ServiceStrategy(Strategy):
    name_rule = "label"

    def set_defaults(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if "port" in p and p.get("targetPort") in (None, 0, ""):
                    p["targetPort"] = p["port"]
        if spec["type"] != "ExternalName":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        sub(sub(obj, "status"), "loadBalancer")

    async def before_create(self, ctx: StrategyContext, obj: Obj, *, dry: bool) -> None:
        await ctx.service_ips.allocate(obj, dry=dry)

    async def create_failed(self, ctx: StrategyContext, obj: Obj) -> None:
        await ctx.service_ips.release(obj)

    async def before_update(self, ctx: StrategyContext, old: Obj, new: Obj, *, dry: bool) -> None:
        await ctx.service_ips.update(old, new, dry=dry)

    async def after_delete(self, ctx: StrategyContext, obj: Obj) -> None:
        await ctx.service_ips.release(obj)
