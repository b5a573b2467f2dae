"""The scheduler's view of the cluster: nodes, the pods on them, and numpy arrays of
allocatable and requested resources (one row per node) that the plugins filter and score
on. A pod is *assumed* onto its node the moment it is reserved, so the next cycle already
sees the resources taken while the binding is still in flight; the informer's update later
confirms it, a failed binding forgets it.

The GPU view is a :class:`schedulers.gpu.state.GpuNodeState` with the same row order, so the
GPU policies score live nodes with exactly the code the offline simulator runs; a GPU pod no
policy placed (or whose recorded GPUs no longer fit) takes the *best* GPUs
(``schedulers.gpu.choice``). Node GPU
model: label ``nvidia.com/gpu.product``; GPU count: allocatable ``nvidia.com/gpu``.

Neighbours: ``scheduler`` feeds it from the node and pod informers; plugins read ``nodes``,
``alloc``/``requested`` arrays, ``gpu``; ``podinfo`` parses the pods.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from schedulers.framework.podinfo import GPU_RESOURCE, PodInfo, parse_resources
from schedulers.framework.workloads import WorkloadSelectors
from schedulers.gpu.choice import choose_best
from schedulers.gpu.state import GpuNodeState

GPU_MODEL_LABEL = "nvidia.com/gpu.product"
BASE_RESOURCES = ("cpu", "memory", "pods", "ephemeral-storage", GPU_RESOURCE)


@dataclass
class NodeInfo:
    name: str
    obj: dict
    labels: dict[str, str]
    annotations: dict[str, str]
    taints: list[dict]
    unschedulable: bool
    allocatable: dict[str, int]
    images: dict[str, int]  # image name -> size bytes
    pods: dict[str, PodInfo] = field(default_factory=dict)
    requested: dict[str, int] = field(default_factory=dict)
    ports: set[tuple[str, str, int]] = field(default_factory=set)

    @classmethod
    def from_node(cls, node: dict) -> "NodeInfo":
        md, spec, st = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
        images: dict[str, int] = {}
        for im in st.get("images") or []:
            for n in im.get("names") or []:
                images[n] = int(im.get("sizeBytes") or 0)
        alloc = parse_resources(st.get("allocatable") or st.get("capacity"))
        alloc.setdefault("pods", 110)
        return cls(
            name=md.get("name", ""), obj=node, labels=dict(md.get("labels") or {}),
            annotations=dict(md.get("annotations") or {}), taints=list(spec.get("taints") or []),
            unschedulable=bool(spec.get("unschedulable")), allocatable=alloc, images=images,
        )

    def same_scheduling_view(self, other: "NodeInfo") -> bool:
        return (self.labels, self.annotations, self.taints, self.unschedulable, self.allocatable, self.images) == (
            other.labels, other.annotations, other.taints, other.unschedulable, other.allocatable, other.images)


class Cache:
    """Nodes in row order with resource arrays; ``refresh()`` rebuilds rows after node
    additions/removals (lazily, at the start of a cycle)."""

    def __init__(self) -> None:
        self.node_infos: dict[str, NodeInfo] = {}
        self.nodes: list[NodeInfo] = []
        self.row: dict[str, int] = {}
        self.alloc: dict[str, np.ndarray] = {}
        self.requested: dict[str, np.ndarray] = {}
        self.nonzero_cpu = np.zeros(0, np.int64)
        self.nonzero_mem = np.zeros(0, np.int64)
        self.pod_count = np.zeros(0, np.int64)
        self.gpu = GpuNodeState.build([], [], [], [], [])
        self.pod_node: dict[str, str] = {}  # uid -> node name
        self.assumed: set[str] = set()
        self._anti: dict[str, str] = {}  # uid -> node of pods with required anti-affinity
        self._aff: dict[str, str] = {}  # uid -> node of pods with any pod (anti-)affinity term
        self.namespace_labels: dict[str, dict[str, str]] = {}  # from the Namespace informer
        self.workloads = WorkloadSelectors()  # Services/RCs/RSs/SSs (default topology spreading)
        # namespace -> name -> PodDisruptionBudget (what DefaultPreemption weighs its victims by)
        self.pdbs: dict[str, dict[str, dict]] = {}
        # uid -> (node, pod): pods that preempted and wait for their victims (status.nominatedNodeName)
        self.nominated: dict[str, tuple[str, PodInfo]] = {}
        self._derived: dict[str, object] = {}
        self.dirty = True
        self.generation = 0

    # ----------------------------------------------------------------- nodes
    def add_or_update_node(self, node: dict) -> bool:
        """Returns True when something the scheduler looks at changed."""
        new = NodeInfo.from_node(node)
        old = self.node_infos.get(new.name)
        if old is None:
            self.node_infos[new.name] = new
            self.dirty = True
            return True
        old.obj = node
        if old.same_scheduling_view(new):
            return False
        old.labels, old.annotations, old.taints = new.labels, new.annotations, new.taints
        old.unschedulable, old.allocatable, old.images = new.unschedulable, new.allocatable, new.images
        self.dirty = True
        return True

    def remove_node(self, name: str) -> None:
        info = self.node_infos.pop(name, None)
        if info is not None:
            for uid in info.pods:
                self.pod_node.pop(uid, None)
                self.assumed.discard(uid)
                self._anti.pop(uid, None)
                self._aff.pop(uid, None)
            self.dirty = True

    def refresh(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        self.generation += 1
        self.nodes = sorted(self.node_infos.values(), key=lambda n: n.name)
        self.row = {n.name: i for i, n in enumerate(self.nodes)}
        names = set(BASE_RESOURCES)
        for n in self.nodes:
            names.update(n.allocatable)
            names.update(n.requested)
        self.alloc = {r: np.array([n.allocatable.get(r, 0) for n in self.nodes], np.int64) for r in names}
        self.requested = {r: np.array([n.requested.get(r, 0) for n in self.nodes], np.int64) for r in names}
        self.nonzero_cpu = np.array([n.requested.get("_nz_cpu", 0) for n in self.nodes], np.int64)
        self.nonzero_mem = np.array([n.requested.get("_nz_mem", 0) for n in self.nodes], np.int64)
        self.pod_count = np.array([len(n.pods) for n in self.nodes], np.int64)
        mib = 1024 * 1024
        self.gpu = GpuNodeState.build(
            [n.name for n in self.nodes], list(self.alloc["cpu"]), [int(m) // mib for m in self.alloc["memory"]],
            [int(n.allocatable.get(GPU_RESOURCE, 0)) for n in self.nodes],
            [n.labels.get(GPU_MODEL_LABEL, "") for n in self.nodes], [int(p) for p in self.alloc["pods"]],
        )
        for i, n in enumerate(self.nodes):
            for p in n.pods.values():
                self.gpu.cpu_used[i] += p.gpu.cpu
                self.gpu.mem_used[i] += p.gpu.mem
                self.gpu.pods_used[i] += 1
                self._gpu_place(i, p)

    @property
    def n(self) -> int:
        return len(self.nodes)

    def _memo(self, key: str, fn):
        val = self._derived.get(key)
        if val is None or val[0] != self.generation:  # type: ignore[index]
            val = (self.generation, fn())
            self._derived[key] = val
        return val[1]  # type: ignore[index]

    def memo(self, key: str, fn):
        """``fn()`` computed once per node-set generation (for per-node values derived from
        node labels/annotations/allocatable, which only change through ``refresh``)."""
        return self._memo(key, fn)

    def has_gpus(self) -> bool:
        return bool(self._memo("has_gpus", lambda: bool(self.gpu.gpu_count.any())))

    def unschedulable_rows(self) -> np.ndarray:
        return self._memo("unsched", lambda: np.array([i for i, n in enumerate(self.nodes) if n.unschedulable], np.int64))

    def tainted_rows(self) -> np.ndarray:
        return self._memo("tainted", lambda: np.array([i for i, n in enumerate(self.nodes) if n.taints], np.int64))

    def image_holders(self, image: str) -> dict[int, int]:
        """row -> image size for the nodes reporting ``image``."""
        def build() -> dict[str, dict[int, int]]:
            out: dict[str, dict[int, int]] = {}
            for i, n in enumerate(self.nodes):
                for name, size in n.images.items():
                    out.setdefault(name, {})[i] = size
            return out
        return self._memo("images", build).get(image, {})

    @property
    def anti_affinity_pods(self) -> dict[str, tuple[int, PodInfo]]:
        out = {}
        for uid, node in self._anti.items():
            row = self.row.get(node)
            p = self.node_infos[node].pods.get(uid) if node in self.node_infos else None
            if row is not None and p is not None:
                out[uid] = (row, p)
        return out

    @property
    def affinity_pods(self) -> dict[str, tuple[int, PodInfo]]:
        """Pods on nodes that declare pod affinity or anti-affinity terms (InterPodAffinity
        scores the incoming pod against their preferred terms)."""
        out = {}
        for uid, node in self._aff.items():
            row = self.row.get(node)
            p = self.node_infos[node].pods.get(uid) if node in self.node_infos else None
            if row is not None and p is not None:
                out[uid] = (row, p)
        return out

    def ns_labels(self, name: str) -> dict[str, str] | None:
        return self.namespace_labels.get(name)

    def terminating_on(self, node: str, below_priority: int) -> bool:
        """Is a pod of lower priority than ``below_priority`` terminating on ``node`` (a
        preemption victim still going away)?"""
        info = self.node_infos.get(node)
        return info is not None and any(p.terminating and p.priority < below_priority for p in info.pods.values())

    def nominate(self, p: PodInfo, node: str | None) -> None:
        if node:
            self.nominated[p.uid] = (node, p)
        else:
            self.nominated.pop(p.uid, None)

    def add_nominated_for(self, p: PodInfo) -> list[PodInfo]:
        """Kubernetes' addNominatedPods: while ``p`` is scheduled, the pods nominated to nodes
        (waiting for their victims) with at least ``p``'s priority count as placed there, so
        ``p`` cannot take the room preemption made for them. Returns what was added; give it
        to :meth:`remove_nominated`."""
        added = []
        for uid, (node, q) in self.nominated.items():
            if uid != p.uid and q.priority >= p.priority and uid not in self.pod_node and node in self.node_infos:
                self.add_pod(q, node)
                added.append(q)
        return added

    def remove_nominated(self, added: list[PodInfo]) -> None:
        for q in added:
            self.remove_pod(q.uid)

    def resource(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(allocatable, requested) arrays of a resource (zeros if no node has it)."""
        if name not in self.alloc:
            z = np.zeros(self.n, np.int64)
            self.alloc[name], self.requested[name] = z, z.copy()
        return self.alloc[name], self.requested[name]

    # ----------------------------------------------------------------- pods
    def _gpu_place(self, row: int, p: PodInfo, sign: int = 1) -> None:
        """Take (sign +1) or give back (-1) the pod's GPUs on row ``row``."""
        g = self.gpu
        if p.gpu.milli <= 0 or g.gpu_count[row] == 0:
            return
        if sign > 0:
            gpus = p.gpu_index
            cnt = int(g.gpu_count[row])
            if len(gpus) != p.gpu.count or any(not 0 <= x < cnt or g.gpu_free[row, x] < p.gpu.milli for x in gpus):
                gpus = [x for x in choose_best(g, row, p.gpu) if g.gpu_free[row, x] >= p.gpu.milli]
                p.gpu_index = gpus
        for x in p.gpu_index:
            g.gpu_free[row, x] -= sign * p.gpu.milli
        if p.gpu.tag >= 0:
            g.tags[row, p.gpu.tag] += sign
        g.gen[row] += 1

    def _account(self, info: NodeInfo, p: PodInfo, sign: int) -> None:
        for r, v in p.requests.items():
            info.requested[r] = info.requested.get(r, 0) + sign * v
        info.requested["_nz_cpu"] = info.requested.get("_nz_cpu", 0) + sign * p.nonzero_cpu
        info.requested["_nz_mem"] = info.requested.get("_nz_mem", 0) + sign * p.nonzero_mem
        if sign > 0:
            info.ports.update(p.ports)
        else:
            info.ports = {pt for q in info.pods.values() for pt in q.ports}
        row = self.row.get(info.name)
        if self.dirty or row is None:
            return
        for r, v in p.requests.items():
            if r not in self.requested:
                self.dirty = True
                return
            self.requested[r][row] += sign * v
        self.nonzero_cpu[row] += sign * p.nonzero_cpu
        self.nonzero_mem[row] += sign * p.nonzero_mem
        self.pod_count[row] += sign
        g = self.gpu
        g.cpu_used[row] += sign * p.gpu.cpu
        g.mem_used[row] += sign * p.gpu.mem
        g.pods_used[row] += sign
        g.gen[row] += 1
        self._gpu_place(row, p, sign)

    def add_pod(self, p: PodInfo, node: str) -> None:
        """Account a pod on ``node`` (bound or assumed); idempotent per uid."""
        if self.pod_node.get(p.uid) == node:
            old = self.node_infos[node].pods.get(p.uid)
            if old is not None:
                p.gpu_index = old.gpu_index or p.gpu_index
                self.node_infos[node].pods[p.uid] = p  # refresh labels etc.
            self.assumed.discard(p.uid)
            return
        if p.uid in self.pod_node:
            self.remove_pod(p.uid)
        info = self.node_infos.get(node)
        if info is None:
            return
        self.pod_node[p.uid] = node
        info.pods[p.uid] = p
        if (p.affinity.get("podAntiAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution"):
            self._anti[p.uid] = node
        if p.affinity.get("podAffinity") or p.affinity.get("podAntiAffinity"):
            self._aff[p.uid] = node
        self._account(info, p, +1)

    def remove_pod(self, uid: str) -> PodInfo | None:
        node = self.pod_node.pop(uid, None)
        self.assumed.discard(uid)
        self._anti.pop(uid, None)
        self._aff.pop(uid, None)
        info = self.node_infos.get(node or "")
        if info is None:
            return None
        p = info.pods.pop(uid, None)
        if p is not None:
            self._account(info, p, -1)
        return p

    def assume(self, p: PodInfo, node: str) -> None:
        self.add_pod(p, node)
        self.assumed.add(p.uid)

    def forget(self, p: PodInfo) -> None:
        if p.uid in self.assumed:
            self.remove_pod(p.uid)

    def all_pods(self) -> list[tuple[int, PodInfo]]:
        return [(i, p) for i, n in enumerate(self.nodes) for p in n.pods.values()]
