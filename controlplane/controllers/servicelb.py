"""ServiceLB controller (k3s's built-in load balancer): a ``type: LoadBalancer`` Service without
a ``loadBalancerClass`` gets the addresses of the Ready nodes that run pods (ExternalIP, else
InternalIP) in ``status.loadBalancer.ingress`` (``ipMode: VIP``), and every node's service
proxy opens the Service's ports there (``controlplane.proxy``: the node's addresses and
127.0.0.1 on the host), where k3s runs ``svclb`` pods with hostPorts. A Service that stops
being a LoadBalancer loses its ingress. Simulated nodes are not load balancers. A Service whose
port an older LoadBalancer Service already holds stays pending (no ingress, a Warning
``PortInUse``) until the port is free, as k3s's svclb pod stays unschedulable.
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

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:servicelb-controller (bootstrap_policy)
SERVICE_ACCOUNT = "servicelb-controller"

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


def lb_ports(svc: dict) -> set[tuple[str, int]]:
    return {(p.get("protocol") or "TCP", p["port"]) for p in (svc.get("spec") or {}).get("ports") or []
            if isinstance(p, dict) and isinstance(p.get("port"), int)}


def _age_key(svc: dict) -> tuple[str, str, str]:
    md = svc.get("metadata") or {}
    return (md.get("creationTimestamp") or "", md.get("namespace") or "", md.get("name") or "")


def port_conflicts(svc: dict, services: list[dict]) -> list[tuple[str, int, str]]:
    """(protocol, port, holder) for each port of ``svc`` an older ServiceLB Service holds
    (pure). The node opens each port once; in k3s the younger Service's svclb pod cannot be
    scheduled ("didn't have free ports") and the Service stays pending. A Service holds its
    ports when none of them is held by an older holder (oldest first): an older Service that is
    itself pending holds nothing, as its svclb pod, unschedulable for one port, takes none."""
    mine, me = lb_ports(svc), _age_key(svc)
    held: dict[tuple[str, int], str] = {}
    for age, other in sorted(((_age_key(o), o) for o in services if wants_lb(o) and _age_key(o) < me),
                             key=lambda t: t[0]):
        ports = lb_ports(other)
        if any(k in held for k in ports):
            continue  # pending itself
        for k in ports:
            held[k] = f"{age[1]}/{age[2]}"
    return sorted((proto, port, held[(proto, port)]) for proto, port in mine if (proto, port) in held)


def go_strings(items: list[str]) -> str:
    """Go's ``%v`` of a ``[]string``: ``[a b]``."""
    return "[" + " ".join(items) + "]"


class ServiceLBController:
    def __init__(self, manager: Manager, *, workers: int = 2) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.svc_inf = manager.informer(R.SERVICES)
        self.node_inf = manager.informer(R.NODES)
        self.recorder = manager.recorder("service-lb-controller", SERVICE_ACCOUNT)
        self.controller = Controller("servicelb", self.reconcile, workers=workers)
        self.svc_inf.add_handler(self._on_service)
        self.node_inf.add_handler(self._on_node)
        manager.add(self.controller)
        self._last_ingress: list[dict] | None = None
        self._reported: dict[str, list[tuple[str, int, str]]] = {}  # conflicts already told in an Event

    def _on_service(self, etype: str, svc: dict, old: dict | None) -> None:
        self.controller.enqueue(object_key(svc))
        if etype == "DELETED" or (old is not None and lb_ports(old) != lb_ports(svc)) or not wants_lb(svc):
            for other in self.svc_inf.list():  # a port may have become free for a pending Service
                if wants_lb(other) and other is not svc:
                    self.controller.enqueue(object_key(other))

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
            self._reported.pop(key, None)
            return None
        current = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        conflicts: list[tuple[str, int, str]] = []
        if wants_lb(svc):
            conflicts = port_conflicts(svc, self.svc_inf.list())
            want = [] if conflicts else node_ingress(self.node_inf.list())
        elif (svc.get("spec") or {}).get("loadBalancerClass") and (svc.get("spec") or {}).get("type") == "LoadBalancer":
            return None  # another load balancer implementation owns it
        else:
            want = []
        if conflicts and self._reported.get(key) != conflicts:
            self._reported[key] = conflicts
            self.recorder.event(svc, "Warning", "PortInUse", "; ".join(
                f"port {port}/{proto} is already used by LoadBalancer Service {holder}; "
                "the load balancer stays pending until it is free" for proto, port, holder in conflicts))
        elif not conflicts:
            self._reported.pop(key, None)
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
            self.recorder.event(svc, "Normal", "UpdatedLoadBalancer", "Updated LoadBalancer with new IPs: "
                                f"{go_strings([i.get('ip', '') for i in current])} -> {go_strings([i['ip'] for i in want])}")
        return None


def setup(manager: Manager, workers: int = 2, **_: object) -> ServiceLBController:
    return ServiceLBController(manager, workers=workers)
