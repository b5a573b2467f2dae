"""The Node object of this agent: registration (capacity/allocatable from the machine or
flags, well-known labels, addresses, nodeInfo, the agent endpoint), the heartbeat Lease in
``kube-node-lease`` and the NodeStatus: allocatable = capacity - kube/system-reserved - hard
eviction thresholds (as the kubelet computes it), conditions Ready and MemoryPressure /
DiskPressure / PIDPressure (set by ``pressure.PressureMonitor``), and the node's CSINode
(``csinode.py``). Caller: ``agent.Agent`` (runs ``heartbeat_loop``).
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import socket
import time
import uuid
from fractions import Fraction
from typing import Any

from controlplane.agent.context import NodeContext
from controlplane.agent.csinode import ensure_csinode
from controlplane.agent.eviction import Threshold, parse_thresholds, reserved as parse_reserved
from controlplane.agent.runtimeclass import DEFAULT_HANDLERS
from controlplane.agent.stats import cpu_count
from controlplane.client.resources import LEASES, NODES
from controlplane.client.rest import ApiStatusError
from controlplane.client.retry import update_with_retry
from controlplane.log import get_logger
from controlplane.machinery.quantity import bytes_, cpu_millis, format_quantity
from controlplane.machinery.timestamps import micro_time, rfc3339
from controlplane.machinery.volumes import ANN_LOCAL_PATH_DIR
from controlplane.runtime.cgroups import meminfo

log = get_logger(__name__)
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def machine_capacity(root: str) -> dict[str, str]:
    """Capacity measured on this machine: the CPUs this process may run on, MemTotal, the agent
    root's file system, and the kubelet's default of 110 pods."""
    du = shutil.disk_usage(root)
    return {"cpu": str(cpu_count()), "memory": f"{meminfo().get('MemTotal', 0) // 1024}Ki",
            "pods": "110", "ephemeral-storage": f"{du.total // 1024}Ki"}


def node_allocatable(cap: dict[str, str], reserved: dict[str, int], thresholds: list[Threshold]) -> dict[str, str]:
    """The kubelet's allocatable: capacity minus kube- and system-reserved minus the hard
    eviction thresholds (memory.available, nodefs.available), never below zero."""
    out = dict(cap)
    try:
        cpu = cpu_millis(cap["cpu"]) - reserved.get("cpu", 0)
        out["cpu"] = format_quantity(Fraction(max(0, cpu), 1000))
        mem_cap = bytes_(cap["memory"])
        mem = mem_cap - reserved.get("memory", 0) - sum(t.value(mem_cap) for t in thresholds
                                                        if t.signal == "memory.available")
        out["memory"] = f"{max(0, mem) // 1024}Ki"
        if "ephemeral-storage" in cap:
            eph_cap = bytes_(cap["ephemeral-storage"])
            eph = eph_cap - reserved.get("ephemeral-storage", 0) - sum(
                t.value(eph_cap) for t in thresholds if t.signal == "nodefs.available")
            out["ephemeral-storage"] = str(max(0, eph))
    except (KeyError, ValueError):
        pass
    return out


COND_TEXT = {
    "MemoryPressure": (("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                       ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available")),
    "DiskPressure": (("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                     ("KubeletHasDiskPressure", "kubelet has disk pressure")),
    "PIDPressure": (("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    ("KubeletHasInsufficientPID", "kubelet has insufficient PID available")),
}


# the kubelet's recordNodeStatusEvent reasons per condition (status False, True)
NODE_EVENTS = {
    "MemoryPressure": ("NodeHasSufficientMemory", "NodeHasInsufficientMemory"),
    "DiskPressure": ("NodeHasNoDiskPressure", "NodeHasDiskPressure"),
    "PIDPressure": ("NodeHasSufficientPID", "NodeHasInsufficientPID"),
    "Ready": ("NodeNotReady", "NodeReady"),
}


class NodeStatus:
    def __init__(self, agent: NodeContext) -> None:
        self.agent = agent
        self.cfg = agent.cfg
        self._transitions: dict[str, tuple[str, str]] = {}
        self._started = False
        self._csinode_synced = False
        self.boot_id = open("/proc/sys/kernel/random/boot_id").read().strip() if os.path.exists(
            "/proc/sys/kernel/random/boot_id") else str(uuid.uuid4())
        self.pressure: dict[str, bool] = {"MemoryPressure": False, "DiskPressure": False, "PIDPressure": False}
        self.thresholds = parse_thresholds(self.cfg.eviction_hard)
        self.reserved: dict[str, int] = {}
        for spec in (self.cfg.kube_reserved, self.cfg.system_reserved):
            for k, v in parse_reserved(spec).items():
                self.reserved[k] = self.reserved.get(k, 0) + v

    def capacity(self) -> dict[str, str]:
        cap = machine_capacity(str(self.cfg.root))
        cap.update({k: v for k, v in self.cfg.capacity.items() if v})
        return cap

    def conditions(self, now: float) -> list[dict[str, Any]]:
        """Pressure conditions as the eviction monitor last set ``self.pressure``, then Ready."""
        out = []
        for ctype in ("MemoryPressure", "DiskPressure", "PIDPressure"):
            bad = self.pressure[ctype]
            reason, msg = COND_TEXT[ctype][1 if bad else 0]
            out.append(self._cond(ctype, "True" if bad else "False", reason, msg, now))
        if self.agent.network_ready:
            out.append(self._cond("Ready", "True", "KubeletReady", "kubelet is posting ready status", now))
        else:
            out.append(self._cond("Ready", "False", "KubeletNotReady", "container runtime network not ready: "
                                  "NetworkReady=false reason:NetworkPluginNotReady message:no pod CIDR yet", now))
        return out

    def _cond(self, ctype: str, status: str, reason: str, msg: str, now: float) -> dict[str, Any]:
        prev = self._transitions.get(ctype)
        if prev is None or prev[0] != status:
            self._transitions[ctype] = (status, rfc3339(now))
            self.event(NODE_EVENTS[ctype][status == "True"])
        return {"type": ctype, "status": status, "reason": reason, "message": msg,
                "lastHeartbeatTime": rfc3339(now), "lastTransitionTime": self._transitions[ctype][1]}

    def event(self, reason: str, message: str | None = None) -> None:
        """An Event about this Node as the kubelet records one: involvedObject kind Node with
        the node's name as its uid, ``Node NAME status is now: REASON`` unless a message is given."""
        node = self.cfg.node
        ref = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": node, "uid": node}}
        self.agent.event(ref, "Normal", reason, message or f"Node {node} status is now: {reason}")

    def allocatable(self, cap: dict[str, str] | None = None) -> dict[str, str]:
        alloc = node_allocatable(cap or self.capacity(), self.reserved, self.thresholds)
        alloc.update({k: v for k, v in self.cfg.allocatable.items() if v})
        return alloc

    def status(self) -> dict[str, Any]:
        now = time.time()
        cap = self.capacity()
        alloc = self.allocatable(cap)
        return {
            "capacity": cap, "allocatable": alloc, "conditions": self.conditions(now),
            "addresses": [{"type": "InternalIP", "address": self.cfg.address},
                          {"type": "Hostname", "address": self.cfg.node}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.agent.server_port}},
            "nodeInfo": {
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, self.cfg.node).hex, "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, self.cfg.node)),
                "bootID": self.boot_id, "kernelVersion": platform.release(), "osImage": _os_image(),
                "containerRuntimeVersion": "runc://1.1", "kubeletVersion": "v1.32.0-controlplane",
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": ARCH,
            },
            "images": [{"names": [r.ref, f"{r.ref.split(':')[0]}@{r.manifest}"], "sizeBytes": r.size}
                       for r in self.agent.images.store.list()][:50],
            # the handlers a RuntimeClass may name (the runtime's default is ""), as the kubelet
            # reports them from the CRI; neither recursive read-only mounts nor user namespaces
            "runtimeHandlers": [{"name": h, "features": {"recursiveReadOnlyMounts": False, "userNamespaces": False}}
                                for h in ("", *getattr(self.agent.runtime, "handlers", DEFAULT_HANDLERS))],
        }

    def labels(self) -> dict[str, str]:
        return {"kubernetes.io/hostname": self.cfg.node, "kubernetes.io/os": "linux", "kubernetes.io/arch": ARCH,
                "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": ARCH, **self.cfg.labels}

    def annotations(self) -> dict[str, str]:
        """Where this node keeps local-path volumes (read by the local-path provisioner)."""
        return {ANN_LOCAL_PATH_DIR: str(self.cfg.root / "storage")}

    async def register(self) -> dict:
        if not self._started:
            self._started = True
            self.event("Starting", "Starting kubelet.")
        spec: dict[str, Any] = {"taints": list(self.cfg.taints)} if self.cfg.taints else {}
        pod_cidr = self.cfg.pod_cidr
        if pod_cidr:  # standalone (kubelet --pod-cidr); otherwise the node IPAM controller assigns one
            spec.update(podCIDR=pod_cidr, podCIDRs=[pod_cidr])
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.cfg.node, "labels": self.labels(),
                             "annotations": {"node.alpha.kubernetes.io/ttl": "0", **self.annotations()}},
                "spec": spec}
        try:
            node = await self.agent.client.create(NODES, body)
            log.info("node registered", node=self.cfg.node)
        except ApiStatusError as e:
            if not e.already_exists:
                raise
            def mutate(n: dict) -> None:
                n["metadata"].setdefault("labels", {}).update(self.labels())
                n["metadata"].setdefault("annotations", {}).update(self.annotations())
                if pod_cidr and not (n.get("spec") or {}).get("podCIDR"):
                    n.setdefault("spec", {}).update(podCIDR=pod_cidr, podCIDRs=[pod_cidr])
            node = await update_with_retry(self.agent.client, NODES, self.cfg.node, None, mutate)
            log.info("node re-registered", node=self.cfg.node)
        await self.renew_lease()  # the Lease exists before the node reports Ready
        await self.sync_csinode(node)
        return await self.update_status() or node

    async def sync_csinode(self, node: dict | None = None) -> None:
        """This node's CSINode (``csinode.py``); a failure is logged and retried with the next
        heartbeat, as the kubelet retries its CSINode initialization."""
        try:
            if node is None:
                node = await self.agent.client.get(NODES, self.cfg.node)
            await ensure_csinode(self.agent.client, node)
            self._csinode_synced = True
        except ApiStatusError as e:
            self._csinode_synced = False
            log.warning("csinode sync failed", node=self.cfg.node, error=str(e))

    async def update_status(self) -> dict | None:
        try:
            st = self.status()
            return await update_with_retry(self.agent.client, NODES, self.cfg.node, None,
                                           lambda n: n.__setitem__("status", st), subresource="status")
        except ApiStatusError as e:
            log.warning("node status update failed", error=str(e))
            if e.not_found:
                await self.register()
            return None

    async def renew_lease(self) -> None:
        now = micro_time()
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.cfg.node, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": self.cfg.node, "leaseDurationSeconds": int(self.cfg.lease_duration),
                         "renewTime": now}}
        try:
            await update_with_retry(self.agent.client, LEASES, self.cfg.node, "kube-node-lease",
                                    lambda lease: lease.__setitem__("spec", {**(lease.get("spec") or {}), **body["spec"]}))
        except ApiStatusError as e:
            if not e.not_found:
                raise
            await self.agent.client.create(LEASES, body, "kube-node-lease")

    async def heartbeat_loop(self, stop: asyncio.Event) -> None:
        last_status = time.monotonic()
        while not stop.is_set():
            try:
                await self.renew_lease()
                if not self._csinode_synced:
                    await self.sync_csinode()
                if time.monotonic() - last_status >= self.cfg.status_interval:
                    await self.update_status()
                    last_status = time.monotonic()
            except ApiStatusError as e:
                log.warning("heartbeat failed", error=str(e))
            try:
                await asyncio.wait_for(stop.wait(), self.cfg.lease_interval)
            except asyncio.TimeoutError:
                pass


def _os_image() -> str:
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return socket.gethostname()
