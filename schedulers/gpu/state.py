"""GPU placement state: the cluster as numpy arrays (one row per node) and the GPU-sharing
filter, below both the offline openb simulator (``schedulers.sim.openb``) and the live
scheduler (whose cache keeps one ``GpuNodeState`` with its node rows, so the GPU policies of
``schedulers.gpu.policies`` score live nodes with the code the simulator runs). Layout
(N nodes, W = max GPUs per node, >= 8):

=============  ============  ==================================================
field          dtype/shape   meaning
=============  ============  ==================================================
names          list[str]     node names, row order
cpu_cap        int64 [N]     CPU capacity, milli-CPU
mem_cap        int64 [N]     memory capacity, MiB
pods_cap       int64 [N]     max pods on the node
gpu_count      int64 [N]     physical GPUs
model          int64 [N]     index into ``models`` (-1: no GPU model)
models         list[str]     GPU model names
cpu_used       int64 [N]     requested CPU of placed pods
mem_used       int64 [N]     requested memory of placed pods
pods_used      int64 [N]     number of placed pods
gpu_free       int64 [N,W]   free milli-GPU per GPU; padding columns (>= gpu_count) are 0
tags           int64 [N,T]   GpuClustering tag counts: column 0 "share", column k "k-gpu"
gen            int64 [N]     bumped whenever a row changes (policies key caches on it)
=============  ============  ==================================================

A pod is a :class:`GpuPod` (cpu/mem requests, ``count`` GPUs of ``milli`` each, accepted
models). ``feasible_mask`` is filter R5.1 of ``docs/openb-protocol.md``; ``place`` applies a
decision (R5.5, last step). Which GPUs a pod takes: ``schedulers.gpu.choice``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from schedulers.gpu.traces import GPU_MILLI, NODE_MAX_PODS, GpuDemand, NodeRecord, PodRecord

MAX_GPU_TAGS = 9  # column 0: shared pods, column k (1..8): whole-GPU pods of k GPUs


@dataclass(frozen=True)
class GpuPod(GpuDemand):
    """A pod as the GPU policies see it. ``types``: accepted GPU models (empty: any)."""

    cpu: int
    mem: int
    count: int = 0
    milli: int = 0
    types: tuple[str, ...] = ()
    name: str = ""

    @property
    def is_shared(self) -> bool:
        return self.milli > 0 and self.count == 1 and self.milli < GPU_MILLI

    @property
    def tag(self) -> int:
        """GpuClustering tag column; -1 for CPU-only pods."""
        if self.milli <= 0:
            return -1
        if self.is_shared:
            return 0
        return min(self.count, MAX_GPU_TAGS - 1)

    @classmethod
    def from_record(cls, r: PodRecord) -> "GpuPod":
        return cls(cpu=r.cpu, mem=r.mem, count=r.count, milli=r.milli, types=r.types, name=r.name)


@dataclass
class GpuNodeState:
    names: list[str]
    cpu_cap: np.ndarray
    mem_cap: np.ndarray
    pods_cap: np.ndarray
    gpu_count: np.ndarray
    model: np.ndarray
    models: list[str]
    cpu_used: np.ndarray
    mem_used: np.ndarray
    pods_used: np.ndarray
    gpu_free: np.ndarray
    tags: np.ndarray
    gen: np.ndarray
    _accept_cache: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def width(self) -> int:
        return int(self.gpu_free.shape[1])

    @classmethod
    def build(
        cls,
        names: list[str],
        cpu: list[int],
        mem: list[int],
        gpus: list[int],
        models: list[str],
        pods_cap: list[int] | int = NODE_MAX_PODS,
    ) -> "GpuNodeState":
        n = len(names)
        model_names = sorted({m for m in models if m})
        midx = {m: i for i, m in enumerate(model_names)}
        width = max([8, *gpus]) if gpus else 8
        gpu_count = np.asarray(gpus, dtype=np.int64).reshape(n)
        free = np.zeros((n, width), dtype=np.int64)
        free[np.arange(width)[None, :] < gpu_count[:, None]] = GPU_MILLI
        pc = np.full(n, pods_cap, dtype=np.int64) if isinstance(pods_cap, int) else np.asarray(pods_cap, np.int64)
        return cls(
            names=list(names),
            cpu_cap=np.asarray(cpu, dtype=np.int64).reshape(n),
            mem_cap=np.asarray(mem, dtype=np.int64).reshape(n),
            pods_cap=pc,
            gpu_count=gpu_count,
            model=np.asarray([midx.get(m, -1) if m else -1 for m in models], dtype=np.int64).reshape(n),
            models=model_names,
            cpu_used=np.zeros(n, np.int64),
            mem_used=np.zeros(n, np.int64),
            pods_used=np.zeros(n, np.int64),
            gpu_free=free,
            tags=np.zeros((n, MAX_GPU_TAGS), np.int64),
            gen=np.zeros(n, np.int64),
        )

    @classmethod
    def from_records(cls, nodes: list[NodeRecord]) -> "GpuNodeState":
        return cls.build(
            [x.name for x in nodes],
            [x.cpu_milli for x in nodes],
            [x.memory_mib for x in nodes],
            [x.gpu for x in nodes],
            [x.model for x in nodes],
        )

    # ----------------------------------------------------------------- derived quantities
    def cpu_left(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        return self.cpu_cap[idx] - self.cpu_used[idx]

    def gpu_left(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        return self.gpu_free[idx].sum(axis=1)

    def gpu_capacity_milli(self) -> int:
        return int(self.gpu_count.sum()) * GPU_MILLI

    def gpu_used_milli(self) -> int:
        return self.gpu_capacity_milli() - int(self.gpu_free.sum())

    def accepts(self, types: tuple[str, ...]) -> np.ndarray:
        """Bool [N]: node model accepted by a pod restricted to ``types`` (empty: any node)."""
        acc = self._accept_cache.get(types)
        if acc is None:
            if not types:
                acc = np.ones(self.n, dtype=bool)
            else:
                ok = np.array([m in types for m in self.models] + [False], dtype=bool)
                acc = ok[self.model]  # model -1 picks the trailing False
            self._accept_cache[types] = acc
        return acc

    # ----------------------------------------------------------------- filter and placement
    def feasible_mask(self, pod: GpuPod) -> np.ndarray:
        """Filter R5.1 for every node at once."""
        ok = (self.cpu_used + pod.cpu <= self.cpu_cap) & (self.mem_used + pod.mem <= self.mem_cap)
        ok &= self.pods_used + 1 <= self.pods_cap
        if pod.milli > 0:
            ok &= (self.gpu_count >= 1) & self.accepts(pod.types)
            if pod.count == 1:
                ok &= (self.gpu_free >= pod.milli).any(axis=1)
            elif pod.count >= 2:
                ok &= (self.gpu_free // pod.milli).sum(axis=1) >= pod.count
            else:
                ok[:] = False
        return ok

    def place(self, node: int, pod: GpuPod, gpus: list[int]) -> None:
        self.cpu_used[node] += pod.cpu
        self.mem_used[node] += pod.mem
        self.pods_used[node] += 1
        for g in gpus:
            self.gpu_free[node, g] -= pod.milli
        t = pod.tag
        if t >= 0:
            self.tags[node, t] += 1
        self.gen[node] += 1
