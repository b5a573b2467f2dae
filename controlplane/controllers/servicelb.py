"""ServiceLB controller (k3s's built-in load balancer): a ``type: LoadBalancer`` Service without
a ``loadBalancerClass`` gets the addresses of the Ready nodes that run pods (ExternalIP, else
InternalIP) in ``status.loadBalancer.ingress`` (``ipMode: VIP``), and every node's service
proxy opens the Service's ports there (``controlplane.proxy``: the node's addresses and
127.0.0.1 on the host), where k3s runs ``svclb`` pods with hostPorts. A Service that stops
being a LoadBalancer loses its ingress. Simulated nodes are not load balancers.
Neighbours: the proxy (opens the ports), the apiserver (allocates NodePorts).
"""

from __future__ import annotations

import copy

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.log import get_logger

log = get_logger(__name__)
SIMULATED = "node.controlplane.io/simulated"


def node_ingress(nodes: list[dict]) -> list[dict]:
    """Ingress entries for the Ready, real nodes (pure; deduplicated, sorted)."""
    ips: set[str] = set()
    for n in nodes:
        md, st = n.get("metadata") or {}, n.get("status") or {}
        if (md.get("annotations") or {}).get(SIMULATED) == "true" or (n.get("spec") or {}).get("unschedulable"):
            continue
        if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []):
            continue
        addrs = st.get("addresses") or []
        ext = [a["address"] for a in addrs if a.get("type") == "ExternalIP"]
        internal = [a["address"] for a in addrs if a.get("type") == "InternalIP"]
        ips.update(ext or internal[:1])
    return [{"ip": ip, "ipMode": "VIP"} for ip in sorted(ips)]


def wants_lb(svc: dict) -> bool:
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


class ServiceLBController:
    def __init__(self, manager: Manager, *, workers: int = 2) -> None:
        self.client = manager.client
        self.svc_inf = manager.informer(R.SERVICES)
        self.node_inf = manager.informer(R.NODES)
        self.recorder = manager.recorder("service-lb-controller")
        self.controller = Controller("servicelb", self.reconcile, workers=workers)
        self.svc_inf.add_handler(lambda t, o, old: self.controller.enqueue(object_key(o)))
        self.node_inf.add_handler(self._on_node)
        manager.add(self.controller)
        self._last_ingress: list[dict] | None = None

    def _on_node(self, etype: str, node: dict, old: dict | None) -> None:
        ing = node_ingress(self.node_inf.list())
        if ing == self._last_ingress:
            return
        self._last_ingress = ing
        for svc in self.svc_inf.list():
            if wants_lb(svc) or ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
                self.controller.enqueue(object_key(svc))

    async def reconcile(self, key: str) -> Result | None:
        svc = self.svc_inf.get(key)
        if svc is None:
            return None
        current = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if wants_lb(svc):
            want = node_ingress(self.node_inf.list())
        elif (svc.get("spec") or {}).get("loadBalancerClass") and (svc.get("spec") or {}).get("type") == "LoadBalancer":
            return None  # another load balancer implementation owns it
        else:
            want = []
        if current == want:
            return None
        new = copy.deepcopy(svc)
        new.setdefault("status", {})["loadBalancer"] = {"ingress": want} if want else {}
        try:
            await self.client.update(R.SERVICES, new, subresource="status")
        except ApiStatusError as e:
            if e.not_found:
                return None
            if e.conflict or e.code == 409:
                return Result(requeue=True)
            raise
        if want:
            self.recorder.event(svc, "Normal", "UpdatedLoadBalancer",
                                f"Updated LoadBalancer with new IPs: [] -> {[i['ip'] for i in want]}")
        return None


def setup(manager: Manager, workers: int = 2, **_: object) -> ServiceLBController:
    return ServiceLBController(manager, workers=workers)
