"""Node lifecycle controller: notices nodes whose agent stopped heartbeating and evicts their pods.

A node's health is its Lease in ``kube-node-lease`` (and its Ready condition's heartbeat):
if neither changed for ``grace`` seconds (default 40, env ``CONTROLPLANE_NODE_MONITOR_GRACE_PERIOD``)
as observed by this controller's own clock, the node's conditions become ``Unknown``
("Kubelet stopped posting node status.") and it gets the ``node.kubernetes.io/unreachable``
NoExecute + NoSchedule taints. The taint-manager part deletes pods on NoExecute-tainted nodes
that do not tolerate the taint — at once, or after their ``tolerationSeconds`` counted from the
taint's ``timeAdded``. A node whose lease is renewed again loses the taints (its agent resets
the conditions). Neighbours: the node agent (leases, conditions), the replicaset controller
(recreates evicted pods), the scheduler (skips NoSchedule-tainted nodes).
"""

from __future__ import annotations

import os
import time
from typing import Callable

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.client.retry import update_with_retry
from controlplane.log import get_logger
from controlplane.machinery.scheduling import matching_tolerations, min_toleration_seconds
from controlplane.machinery.timestamps import parse_time_or_none, rfc3339

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:node-controller (bootstrap_policy)
SERVICE_ACCOUNT = "node-controller"

log = get_logger(__name__)

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


def heartbeat_marker(node: dict | None, lease: dict | None) -> tuple[str, str]:
    """What changes on every heartbeat: the lease renewTime and the Ready heartbeat time."""
    renew = ((lease or {}).get("spec") or {}).get("renewTime") or ""
    ready = next((c for c in ((node or {}).get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
    return renew, ready.get("lastHeartbeatTime") or ""


def eviction_time(pod: dict, taints: list[dict], now: float) -> float | None:
    """When a pod on a node with these taints must be deleted (None: never), as the taint
    manager decides: at once unless every NoExecute taint is tolerated, else after the
    shortest ``tolerationSeconds`` of the tolerations used, counted from the taint's
    ``timeAdded`` (the earliest such taint)."""
    noexec = [t for t in taints if t.get("effect") == "NoExecute"]
    if not noexec:
        return None
    ok, used = matching_tolerations(noexec, (pod.get("spec") or {}).get("tolerations") or [])
    if not ok:
        return now
    secs = min_toleration_seconds(used)
    if secs is None:
        return None
    added = min(parse_time_or_none(t.get("timeAdded")) or now for t in noexec)
    return added + secs


def unreachable_taints(now: float) -> list[dict]:
    return [{"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": rfc3339(now)},
            {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": rfc3339(now)}]


class HeartbeatMonitor:
    """Node health as observed on this controller's clock (no trust in remote timestamps)."""

    def __init__(self, grace: float, clock: Callable[[], float] = time.time) -> None:
        self.grace = grace
        self.clock = clock
        self.seen: dict[str, tuple[tuple[str, str], float]] = {}  # node -> (marker, when it changed)

    def healthy(self, name: str, node: dict | None, lease: dict | None) -> bool:
        now = self.clock()
        marker = heartbeat_marker(node, lease)
        prev = self.seen.get(name)
        if prev is None or prev[0] != marker:
            self.seen[name] = (marker, now)
            return True
        return now - prev[1] <= self.grace

    def forget(self, name: str) -> None:
        self.seen.pop(name, None)


class NodeLifecycleController:
    def __init__(self, manager: Manager, *, workers: int = 2, grace: float | None = None,
                 period: float | None = None, clock: Callable[[], float] = time.time) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.grace = grace if grace is not None else float(os.environ.get("CONTROLPLANE_NODE_MONITOR_GRACE_PERIOD", "40"))
        self.period = period if period is not None else float(os.environ.get("CONTROLPLANE_NODE_MONITOR_PERIOD", "2"))
        self.clock = clock
        self.node_inf = manager.informer(R.NODES)
        self.lease_inf = manager.informer(R.LEASES, "kube-node-lease")
        self.pod_inf = manager.informer(R.PODS)
        self.recorder = manager.recorder("node-controller", SERVICE_ACCOUNT)
        self.monitor = HeartbeatMonitor(self.grace, clock)
        self.registered: set[str] = set()  # nodes this controller has announced (RegisteredNode)
        self.controller = Controller("nodelifecycle", self.reconcile, workers=workers)
        self.node_inf.add_handler(lambda t, o, old: self.controller.enqueue(o["metadata"]["name"]))
        self.lease_inf.add_handler(lambda t, o, old: self.controller.enqueue(o["metadata"]["name"]))
        self.pod_inf.add_handler(self._on_pod)
        manager.add(self.controller)

    def _on_pod(self, etype: str, pod: dict, old: dict | None) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and etype != "DELETED":
            self.controller.enqueue(node)

    async def reconcile(self, name: str) -> Result | None:
        node = self.node_inf.get(name)
        if node is None:
            self.monitor.forget(name)
            self.registered.discard(name)
            return None
        if name not in self.registered:  # as monitorNodeHealth does for each node it starts tracking
            self.registered.add(name)
            self.recorder.event(node, "Normal", "RegisteredNode", f"Node {name} event: Registered Node {name} in Controller")
        lease = self.lease_inf.get(f"kube-node-lease/{name}")
        now = self.clock()
        healthy = self.monitor.healthy(name, node, lease)
        taints = list((node.get("spec") or {}).get("taints") or [])
        has_unreachable = any(t.get("key") == UNREACHABLE for t in taints)
        if not healthy and not has_unreachable:
            node = await self._mark_unreachable(name, now)
            taints = list((node.get("spec") or {}).get("taints") or [])
        elif healthy and has_unreachable:
            node = await self._mark_reachable(name)
            taints = list((node.get("spec") or {}).get("taints") or [])
        next_check = self.period
        if any(t.get("effect") == "NoExecute" for t in taints):
            for pod in self.pod_inf.by_node(name):
                if (pod.get("metadata") or {}).get("deletionTimestamp"):
                    continue
                due = eviction_time(pod, taints, now)
                if due is None:
                    continue
                if due <= now:
                    await self._evict(pod, name)
                else:
                    next_check = min(next_check, due - now)
        return Result(requeue_after=max(0.2, next_check))

    async def _update_node(self, name: str, mutate: Callable[[dict], None], subresource: str | None = None) -> dict:
        return await update_with_retry(self.client, R.NODES, name, None, mutate, subresource=subresource)

    async def _mark_unreachable(self, name: str, now: float) -> dict:
        def conds(node: dict) -> None:
            st = node.setdefault("status", {})
            out = []
            for c in st.get("conditions") or []:
                if c.get("type") in CONDITIONS and c.get("status") != "Unknown":
                    c = {**c, "status": "Unknown", "reason": "NodeStatusUnknown",
                         "message": "Kubelet stopped posting node status.", "lastTransitionTime": rfc3339(now)}
                out.append(c)
            st["conditions"] = out

        def taint(node: dict) -> None:
            spec = node.setdefault("spec", {})
            spec["taints"] = [t for t in spec.get("taints") or [] if t.get("key") != UNREACHABLE] + unreachable_taints(now)

        await self._update_node(name, conds, subresource="status")
        node = await self._update_node(name, taint)
        log.info("node unreachable: tainted", node=name, grace=self.grace)
        self.recorder.event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        return node

    async def _mark_reachable(self, name: str) -> dict:
        def untaint(node: dict) -> None:
            spec = node.setdefault("spec", {})
            spec["taints"] = [t for t in spec.get("taints") or [] if t.get("key") not in (UNREACHABLE, NOT_READY)]

        node = await self._update_node(name, untaint)
        log.info("node reachable again: taints removed", node=name)
        self.recorder.event(node, "Normal", "NodeReady", f"Node {name} status is now: NodeReady")
        return node

    async def _evict(self, pod: dict, node: str) -> None:
        md = pod["metadata"]
        try:
            await self.client.delete(R.PODS, md["name"], md.get("namespace"), preconditions={"uid": md.get("uid")})
            log.info("pod evicted from unreachable node", pod=f"{md.get('namespace')}/{md['name']}", node=node)
            self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {md.get('namespace')}/{md['name']}")
        except ApiStatusError as e:
            if not (e.not_found or e.code == 409):
                raise


def setup(manager: Manager, workers: int = 2) -> NodeLifecycleController:
    return NodeLifecycleController(manager, workers=workers)
