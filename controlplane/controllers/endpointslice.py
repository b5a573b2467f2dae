"""EndpointSlice controller (``discovery.k8s.io/v1``), as kube-controller-manager's: for every
Service with a selector, slices of at most ``max_endpoints`` (100) endpoints of the matching
pods, grouped by their resolved port list (a named ``targetPort`` resolves per pod).

Each endpoint: the pod IP, ``conditions`` (``ready`` = Ready and not terminating, or always
with ``publishNotReadyAddresses``; ``serving`` = Ready; ``terminating`` = being deleted),
``nodeName``, ``targetRef``, and ``hostname`` when the pod's ``subdomain`` is the Service's name
(StatefulSet DNS). Slices carry ``kubernetes.io/service-name``,
``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io``,
``service.kubernetes.io/headless`` for headless Services, the Service's labels, a controller
reference to the Service and ``endpoints.kubernetes.io/last-change-trigger-time``. Existing
slices are kept and refilled (endpoints stay where they are; new ones fill free room), only
changed slices are written, a Service without endpoints keeps one empty placeholder slice.
Selector-less Services are left to their manual slices. Level-based: the desired state is
recomputed from the caches on every reconcile. Neighbours: ``endpoints`` (the older Endpoints
object, still maintained), the service proxy and the cluster DNS (readers).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.controllers import podutil as pu
from controlplane.log import get_logger
from controlplane.machinery.services import resolve_port
from controlplane.machinery.timestamps import parse_time_or_none, rfc3339

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:endpointslice-controller (bootstrap_policy)
SERVICE_ACCOUNT = "endpointslice-controller"

log = get_logger(__name__)
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
SERVICE_NAME = "kubernetes.io/service-name"
HEADLESS = "service.kubernetes.io/headless"
TRIGGER = "endpoints.kubernetes.io/last-change-trigger-time"
MAX_ENDPOINTS = 100


def _ports_key(ports: list[dict]) -> tuple:
    return tuple(sorted((p.get("name") or "", p.get("protocol") or "TCP", p.get("port") or 0,
                         p.get("appProtocol") or "") for p in ports or []))


def endpoint_for(svc: dict, pod: dict) -> dict:
    spec = pod.get("spec") or {}
    terminating = pu.is_terminating(pod)
    ready_pod = pu.is_pod_ready(pod)
    pnr = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    ep: dict = {"addresses": [pod["status"]["podIP"]],
                "conditions": {"ready": pnr or (ready_pod and not terminating), "serving": pnr or ready_pod,
                               "terminating": terminating}}
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
        ep["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        ep["nodeName"] = spec["nodeName"]
    md = pod["metadata"]
    ep["targetRef"] = {"kind": "Pod", "namespace": md.get("namespace"), "name": md["name"], "uid": md.get("uid", "")}
    return ep


def desired_groups(svc: dict, pods: list[dict]) -> dict[tuple, tuple[list[dict], list[dict]]]:
    """port key -> (slice ports, endpoints sorted by pod name) for the selected pods (pure)."""
    out: dict[tuple, tuple[list[dict], list[dict]]] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        ip = (pod.get("status") or {}).get("podIP")
        if not ip or ":" in ip or pu.phase(pod) in ("Succeeded", "Failed"):
            continue
        ports = []
        for sp in (svc.get("spec") or {}).get("ports") or []:
            port = resolve_port(pod, sp)
            if port is None:
                continue
            p = {"name": sp.get("name") or "", "port": port, "protocol": sp.get("protocol") or "TCP"}
            if sp.get("appProtocol"):
                p["appProtocol"] = sp["appProtocol"]
            ports.append(p)
        key = _ports_key(ports)
        out.setdefault(key, (ports, []))[1].append(endpoint_for(svc, pod))
    return out


@dataclass
class Plan:
    create: list[dict] = field(default_factory=list)  # slice bodies (ports, endpoints)
    update: list[tuple[dict, list[dict], list[dict]]] = field(default_factory=list)  # (slice, ports, endpoints)
    delete: list[dict] = field(default_factory=list)


def _ip(ep: dict) -> str:
    return (ep.get("addresses") or [""])[0]


def plan(desired: dict[tuple, tuple[list[dict], list[dict]]], existing: list[dict],
         max_endpoints: int = MAX_ENDPOINTS) -> Plan:
    """How to turn ``existing`` slices into ``desired`` with few writes (pure): endpoints stay in
    the slice that holds them, new ones fill free room, then new slices; empty slices go,
    except one placeholder when there is nothing at all."""
    p = Plan()
    existing = sorted(existing, key=lambda s: s["metadata"].get("name", ""))
    by_key: dict[tuple, list[dict]] = {}
    for s in existing:
        by_key.setdefault(_ports_key(s.get("ports") or []), []).append(s)
    used: set[int] = set()
    for key, (ports, eps) in desired.items():
        remaining = {_ip(e): e for e in eps}
        order = [_ip(e) for e in eps]
        filled: list[tuple[dict, list[dict]]] = []
        for s in by_key.get(key, []):
            keep = [remaining.pop(_ip(e)) for e in s.get("endpoints") or [] if _ip(e) in remaining]
            filled.append((s, keep))
            used.add(id(s))
        for s, lst in filled:
            while len(lst) < max_endpoints and remaining:
                ip = next(i for i in order if i in remaining)
                lst.append(remaining.pop(ip))
        rest = [remaining[i] for i in order if i in remaining]
        for i in range(0, len(rest), max_endpoints):
            p.create.append({"ports": ports, "endpoints": rest[i:i + max_endpoints]})
        for s, lst in filled:
            if lst:
                p.update.append((s, ports, lst))  # the caller skips those whose content is unchanged
            else:
                p.delete.append(s)
    for s in existing:
        if id(s) not in used:
            p.delete.append(s)
    if not desired:
        keep = [s for s in existing if not s.get("endpoints")][:1]
        if keep:
            p.delete = [s for s in p.delete if s is not keep[0]]
            p.update.append((keep[0], [], []))
        elif not p.create:
            p.create.append({"ports": [], "endpoints": []})
    return p


def trigger_time(svc: dict, pods: list[dict]) -> str:
    """The newest change among the Service and its pods (creation, Ready transition, deletion)."""
    ts = [parse_time_or_none(svc["metadata"].get("creationTimestamp"))]
    for pod in pods:
        md = pod.get("metadata") or {}
        ts.append(parse_time_or_none(md.get("creationTimestamp")))
        ts.append(parse_time_or_none(md.get("deletionTimestamp")))
        c = pu.get_condition(pod, "Ready")
        ts.append(parse_time_or_none((c or {}).get("lastTransitionTime")))
    return rfc3339(max([x for x in ts if x is not None] or [time.time()]))


class EndpointSliceController:
    def __init__(self, manager: Manager, *, workers: int = 3, max_endpoints: int = MAX_ENDPOINTS) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.max_endpoints = max_endpoints
        self.svc_inf = manager.informer(R.SERVICES)
        self.pod_inf = manager.informer(R.PODS)
        self.slice_inf = manager.informer(R.ENDPOINTSLICES)
        self.recorder = manager.recorder("endpoint-slice-controller", SERVICE_ACCOUNT)
        # slices we created that the cache has not shown yet (client-go's expectations): until
        # they appear, a reconcile would see too few slices and create duplicates
        self._expect: dict[str, tuple[set[str], float]] = {}
        self.controller = Controller("endpointslice", self.reconcile, workers=workers)
        self.svc_inf.add_handler(lambda t, o, old: self.controller.enqueue(object_key(o)))
        self.pod_inf.add_handler(self._on_pod)
        self.slice_inf.add_handler(self._on_slice)
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

    def _on_slice(self, etype: str, sl: dict, old: dict | None) -> None:
        labels = sl["metadata"].get("labels") or {}
        if labels.get(MANAGED_BY) == CONTROLLER_NAME and labels.get(SERVICE_NAME):
            self.controller.enqueue(f"{sl['metadata'].get('namespace')}/{labels[SERVICE_NAME]}")

    def _managed(self, ns: str, name: str) -> list[dict]:
        return [s for s in self.slice_inf.list(ns)
                if (s["metadata"].get("labels") or {}).get(SERVICE_NAME) == name
                and (s["metadata"].get("labels") or {}).get(MANAGED_BY) == CONTROLLER_NAME]

    async def reconcile(self, key: str) -> Result | None:
        ns, _, name = key.partition("/")
        pending = self._expect.get(key)
        if pending is not None:
            names, since = pending
            if any(self.slice_inf.get(f"{ns}/{n}") is None for n in names) and time.monotonic() - since < 5:
                return Result(requeue_after=0.05)
            del self._expect[key]
        svc = self.svc_inf.get(key)
        managed = self._managed(ns, name)
        sel = ((svc or {}).get("spec") or {}).get("selector")
        if svc is None or not sel or (svc.get("spec") or {}).get("type") == "ExternalName" \
                or svc["metadata"].get("deletionTimestamp"):
            for s in managed:
                await self._delete(s)
            return None
        pods = [p for p in self.pod_inf.list(ns)
                if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items())]
        desired = desired_groups(svc, pods)
        pl = plan(desired, managed, self.max_endpoints)
        labels = {**(svc["metadata"].get("labels") or {}), SERVICE_NAME: name, MANAGED_BY: CONTROLLER_NAME}
        if (svc.get("spec") or {}).get("clusterIP") == "None":
            labels[HEADLESS] = ""
        trigger = trigger_time(svc, pods)
        created = set()
        for body in pl.create:
            created.add(await self._create(svc, labels, body["ports"], body["endpoints"], trigger))
        if created:
            self._expect[key] = (created, time.monotonic())
        for s, ports, eps in pl.update:
            if (s.get("endpoints") or []) == eps and _ports_key(s.get("ports") or []) == _ports_key(ports) \
                    and (s["metadata"].get("labels") or {}) == labels:
                continue
            new = copy.deepcopy(s)
            new["endpoints"], new["ports"] = eps, ports
            new["metadata"]["labels"] = labels
            new["metadata"].setdefault("annotations", {})[TRIGGER] = trigger
            try:
                await self.client.update(R.ENDPOINTSLICES, new)
            except ApiStatusError as e:
                if e.not_found or e.conflict or e.code == 409:
                    return Result(requeue=True)
                self.recorder.event(svc, "Warning", "FailedToUpdateEndpointSlices",
                                    f"Error updating Endpoint Slices for Service {key}: {e.message}")
                raise
        for s in pl.delete:
            await self._delete(s)
        return None

    async def _create(self, svc: dict, labels: dict, ports: list[dict], eps: list[dict], trigger: str) -> str:
        md = svc["metadata"]
        body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"generateName": f"{md['name'][:57]}-", "namespace": md.get("namespace"),
                             "labels": labels, "annotations": {TRIGGER: trigger},
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": md["name"],
                                                  "uid": md.get("uid", ""), "controller": True,
                                                  "blockOwnerDeletion": True}]},
                "addressType": "IPv4", "endpoints": eps, "ports": ports}
        try:
            out = await self.client.create(R.ENDPOINTSLICES, body, md.get("namespace"))
        except ApiStatusError as e:
            self.recorder.event(svc, "Warning", "FailedToCreateEndpointSlices",
                                f"Error creating Endpoint Slices for Service {md.get('namespace')}/{md['name']}: {e.message}")
            raise
        return out["metadata"]["name"]

    async def _delete(self, s: dict) -> None:
        try:
            await self.client.delete(R.ENDPOINTSLICES, s["metadata"]["name"], s["metadata"].get("namespace"))
        except ApiStatusError as e:
            if not e.not_found:
                raise


def setup(manager: Manager, workers: int = 3, **_: object) -> EndpointSliceController:
    return EndpointSliceController(manager, workers=workers)
