"""Services (``pkg/registry/core/service``): Kubernetes' defaults (type ClusterIP, TCP ports,
targetPort = port, single-stack IPv4, traffic policies), DNS-1123 label names, and the
allocation hooks: a clusterIP (nodePorts for NodePort/LoadBalancer, a healthCheckNodePort for
a LoadBalancer with ``externalTrafficPolicy: Local``) taken from the server's
``ServiceIPAllocator`` before the write, as one transaction (``serviceips.Allocation``) given
back at once when the create or update is not stored; allocated values an update omits are
kept (clusterIP is immutable; node ports follow type and port changes), the rest released
once the update is stored or the Service leaves storage.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.strategy.base import Finish, Strategy, StrategyContext
from controlplane.apiserver.strategy.podtemplate import sub
from controlplane.apiserver.strategy.serviceips import needs_health_check
from controlplane.apiserver.validation.core import externally_accessible

Obj = dict[str, Any]
DEFAULT_AFFINITY_SECONDS = 10800  # v1.DefaultClientIPServiceAffinitySeconds (3 hours)


def _node_ports(spec: Obj) -> set[Any]:
    return {p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict) and p.get("nodePort")}


def drop_type_dependent_fields(old: Obj, new: Obj) -> None:
    """``dropTypeDependentFields`` of Kubernetes' service REST: when an update changes the type,
    the fields only the old type used are wiped unless the user changed them too (then
    validation answers). In place, on ``new``."""
    os_, ns_ = old.get("spec") or {}, sub(new, "spec")
    otype, ntype = os_.get("type") or "ClusterIP", ns_.get("type") or "ClusterIP"
    if otype != "ExternalName" and ntype == "ExternalName":
        if ns_.get("clusterIP") == os_.get("clusterIP") and ns_.get("clusterIPs") == os_.get("clusterIPs"):
            ns_.pop("clusterIP", None)
            ns_.pop("clusterIPs", None)
        if ns_.get("ipFamilies") == os_.get("ipFamilies"):
            ns_.pop("ipFamilies", None)
        if ns_.get("ipFamilyPolicy") == os_.get("ipFamilyPolicy"):
            ns_.pop("ipFamilyPolicy", None)
    node_port_types = ("NodePort", "LoadBalancer")
    if otype in node_port_types and ntype not in node_port_types:
        if _node_ports(os_) >= _node_ports(ns_):
            for p in ns_.get("ports") or []:
                if isinstance(p, dict):
                    p.pop("nodePort", None)
    if needs_health_check(os_) and not needs_health_check(ns_) \
            and ns_.get("healthCheckNodePort") == os_.get("healthCheckNodePort"):
        ns_.pop("healthCheckNodePort", None)
    if otype == "LoadBalancer" and ntype != "LoadBalancer":
        if ns_.get("allocateLoadBalancerNodePorts") is not None \
                and ns_.get("allocateLoadBalancerNodePorts") == os_.get("allocateLoadBalancerNodePorts"):
            ns_.pop("allocateLoadBalancerNodePorts", None)
        if ns_.get("loadBalancerClass") == os_.get("loadBalancerClass"):
            ns_.pop("loadBalancerClass", None)
    if externally_accessible(os_) and not externally_accessible(ns_) \
            and ns_.get("externalTrafficPolicy") == os_.get("externalTrafficPolicy"):
        ns_.pop("externalTrafficPolicy", None)


class ServiceStrategy(Strategy):
    name_rule = "label"

    def set_defaults(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["sessionAffinity"] == "None":
            spec.pop("sessionAffinityConfig", None)
        elif spec["sessionAffinity"] == "ClientIP":
            sac = spec.get("sessionAffinityConfig")
            if not isinstance(sac, dict) or not isinstance(sac.get("clientIP"), dict) \
                    or sac["clientIP"].get("timeoutSeconds") is None:
                spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_AFFINITY_SECONDS}}
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if "port" in p and p.get("targetPort") in (None, 0, ""):
                    p["targetPort"] = p["port"]
        if spec["type"] != "ExternalName":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
            spec["externalTrafficPolicy"] = "Cluster"
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        sub(sub(obj, "status"), "loadBalancer")

    async def before_create(self, ctx: StrategyContext, obj: Obj, *, dry: bool) -> Finish | None:
        return (await ctx.service_ips.allocate(obj, dry=dry)).finish

    def prepare_for_update(self, info: ResourceInfo, old: Obj, new: Obj) -> None:
        drop_type_dependent_fields(old, new)

    async def before_update(self, ctx: StrategyContext, old: Obj, new: Obj, *, dry: bool) -> Finish | None:
        return (await ctx.service_ips.update(old, new, dry=dry)).finish

    async def after_delete(self, ctx: StrategyContext, obj: Obj) -> None:
        await ctx.service_ips.release(obj)
