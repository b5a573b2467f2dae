"""Endpoints controller: for each Service with a selector, an Endpoints object listing the
matching pods' addresses — ready ones in ``addresses``, the rest in ``notReadyAddresses`` —
with the Service's ports resolved per pod (a named ``targetPort`` looks up the container port
of that name; pods without it are left out of that port's subset). Pods are grouped into
subsets by their resolved port set, as Kubernetes does. As kube-controller-manager's, it labels
the Endpoints ``endpointslice.kubernetes.io/skip-mirror: "true"`` (the EndpointSliceMirroring
controller leaves them to the EndpointSlice controller) and keeps at most 1000 addresses,
annotated ``endpoints.kubernetes.io/over-capacity: truncated`` (``truncate_subsets``).
Neighbours: ``podutil`` (readiness), the node agent's pod IPs, the apiserver's Service handling.
"""

from __future__ import annotations

import copy
import math

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.controllers import podutil as pu
from controlplane.log import get_logger
from controlplane.machinery.services import resolve_port

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:endpoint-controller (bootstrap_policy)
SERVICE_ACCOUNT = "endpoint-controller"

log = get_logger(__name__)
MANAGED = "endpoints.controlplane/managed"
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
MAX_CAPACITY = 1000


def build_subsets(svc: dict, pods: list[dict]) -> list[dict]:
    """Endpoints subsets for a Service and its selected pods (pure)."""
    groups: dict[tuple, dict] = {}
    publish_not_ready = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    for pod in sorted(pods, key=lambda p: ((p.get("status") or {}).get("podIP") or "", p["metadata"]["name"])):
        ip = (pod.get("status") or {}).get("podIP")
        if not ip or pu.is_terminating(pod) or pu.phase(pod) in ("Succeeded", "Failed"):
            continue
        ports = []
        for sp in (svc.get("spec") or {}).get("ports") or []:
            port = resolve_port(pod, sp)
            if port is None:
                continue
            ep = {"port": port, "protocol": sp.get("protocol") or "TCP"}
            if sp.get("name"):
                ep["name"] = sp["name"]
            if sp.get("appProtocol"):
                ep["appProtocol"] = sp["appProtocol"]
            ports.append(ep)
        sig = tuple(sorted((p.get("name", ""), p["port"], p["protocol"]) for p in ports))
        g = groups.setdefault(sig, {"ports": ports, "addresses": [], "notReadyAddresses": []})
        addr = {"ip": ip, "targetRef": {"kind": "Pod", "name": pod["metadata"]["name"],
                                        "namespace": pod["metadata"]["namespace"], "uid": pod["metadata"].get("uid", "")}}
        if (pod.get("spec") or {}).get("nodeName"):
            addr["nodeName"] = pod["spec"]["nodeName"]
        if (pod.get("spec") or {}).get("hostname"):
            addr["hostname"] = pod["spec"]["hostname"]
        (g["addresses"] if pu.is_pod_ready(pod) or publish_not_ready else g["notReadyAddresses"]).append(addr)
    out = []
    for sig in sorted(groups):
        g = groups[sig]
        s: dict = {}
        if g["addresses"]:
            s["addresses"] = g["addresses"]
        if g["notReadyAddresses"]:
            s["notReadyAddresses"] = g["notReadyAddresses"]
        if g["ports"]:
            s["ports"] = g["ports"]
        out.append(s)
    return out


def truncate_subsets(subsets: list[dict], max_capacity: int = MAX_CAPACITY) -> bool:
    """Kubernetes' ``truncateEndpoints`` (in place): past ``max_capacity`` addresses, not-ready
    ones are cut first, each subset keeping its share (rounded up) of the room; with more ready
    addresses than that, the ready ones are shared out so and every not-ready one goes. True
    when something was cut."""
    ready = sum(len(s.get("addresses") or []) for s in subsets)
    not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if ready + not_ready <= max_capacity:
        return False
    cut_ready = ready > max_capacity
    room, total = (max_capacity, ready) if cut_ready else (max_capacity - ready, not_ready)
    left = room
    for s in subsets:
        field_ = "addresses" if cut_ready else "notReadyAddresses"
        n = min(math.ceil(len(s.get(field_) or []) / total * room), left)
        s[field_] = (s.get(field_) or [])[:n]
        if cut_ready:
            s.pop("notReadyAddresses", None)
        if not s[field_]:
            del s[field_]
        left -= n
    return True


class EndpointsController:
    def __init__(self, manager: Manager, *, workers: int = 3) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.svc_inf = manager.informer(R.SERVICES)
        self.pod_inf = manager.informer(R.PODS)
        self.ep_inf = manager.informer(R.ENDPOINTS)
        self.recorder = manager.recorder("endpoint-controller", SERVICE_ACCOUNT)
        self.controller = Controller("endpoints", self.reconcile, workers=workers)
        self.svc_inf.add_handler(lambda t, o, old: self.controller.enqueue(object_key(o)))
        self.pod_inf.add_handler(self._on_pod)
        self.ep_inf.add_handler(lambda t, o, old: self.controller.enqueue(object_key(o)))
        manager.add(self.controller)

    def _on_pod(self, etype: str, pod: dict, old: dict | None) -> None:
        ns = pod["metadata"].get("namespace")
        label_sets = [pod["metadata"].get("labels") or {}]
        if old is not None and old is not pod:
            label_sets.append(old["metadata"].get("labels") or {})
        for svc in self.svc_inf.list(ns):
            sel = (svc.get("spec") or {}).get("selector")
            if sel and any(all(ls.get(k) == v for k, v in sel.items()) for ls in label_sets):
                self.controller.enqueue(object_key(svc))

    async def reconcile(self, key: str) -> Result | None:
        svc = self.svc_inf.get(key)
        ns, _, name = key.partition("/")
        current = self.ep_inf.get(key)
        if svc is None:
            if current is not None and current["metadata"].get("labels", {}).get(MANAGED) == "true":
                try:
                    await self.client.delete(R.ENDPOINTS, name, ns)
                except ApiStatusError as e:
                    if not e.not_found:
                        raise
            return None
        sel = (svc.get("spec") or {}).get("selector")
        if not sel:
            return None
        pods = [p for p in self.pod_inf.list(ns) if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items())]
        subsets = build_subsets(svc, pods)
        truncated = truncate_subsets(subsets)
        labels = {**(svc["metadata"].get("labels") or {}), MANAGED: "true", SKIP_MIRROR: "true"}
        annotations = dict((current or {}).get("metadata", {}).get("annotations") or {})
        if truncated:
            annotations[OVER_CAPACITY] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY, None)
        if current is None:
            ep = {"apiVersion": "v1", "kind": "Endpoints",
                  "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": annotations},
                  "subsets": subsets}
            try:
                await self.client.create(R.ENDPOINTS, ep, ns)
            except ApiStatusError as e:
                if not e.already_exists:
                    self.recorder.event(svc, "Warning", "FailedToCreateEndpoint",
                                        f"Failed to create endpoint for service {key}: {e.message}")
                    raise
                return Result(requeue=True)
            return None
        if (current.get("subsets") or []) == subsets and (current["metadata"].get("labels") or {}) == labels \
                and (current["metadata"].get("annotations") or {}) == annotations:
            return None
        ep = copy.deepcopy(current)
        ep["subsets"] = subsets
        ep["metadata"]["labels"] = labels
        ep["metadata"]["annotations"] = annotations
        try:
            await self.client.update(R.ENDPOINTS, ep)
        except ApiStatusError as e:
            if not e.conflict:
                self.recorder.event(svc, "Warning", "FailedToUpdateEndpoint",
                                    f"Failed to update endpoint {key}: {e.message}")
            raise
        return None


def setup(manager: Manager, workers: int = 3) -> EndpointsController:
    return EndpointsController(manager, workers=workers)
