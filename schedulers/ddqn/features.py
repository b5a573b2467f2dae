"""Per-node feature vectors for the DDQN scorer, computed for all feasible nodes at once.

Why: the Q-network is shared across nodes, so each (pod, node) decision is described by one
row of ``N_FEATURES`` floats: the node's free CPU / memory / GPU before and after the pod,
GPU-model scarcity, the heuristics' signals (FGD fragmentation before/after/delta, BestFit,
DotProd, GpuPacking), the pod's request and cluster-level summaries. The fragmentation measure
(``docs/openb-protocol.md`` section 7; the R numbers below are its rules) is kept
incrementally: per node and typical pod we cache how many GPUs can host it and how much free
GPU those hold, and refresh only the rows that changed.

Neighbours: ``env.py`` (steps the simulator and calls :meth:`FeatureBuilder.build`),
``policy.py`` (the ``ddqn`` GPU policy, same call), ``model.py`` (consumes rows).
The state is read from plain numpy arrays (:class:`NodeArrays`), the layout the simulator keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FEATURE_NAMES: tuple[str, ...] = (
    "frag_gain", "fgd_score", "frag_before", "frag_after",
    "cpu_free_before", "cpu_free_after", "mem_free_after",
    "gpu_free_before", "gpu_free_after", "full_gpus_before", "gpu_count", "node_empty",
    "bestfit", "dotprod", "gpupacking", "model_weight", "cpu_abs_after", "gpu_abs_after",
    "pod_cpu", "pod_mem", "pod_milli", "pod_count", "pod_shared", "pod_cpu_only", "pod_constrained",
    "cluster_cpu", "cluster_alloc", "feasible_frac",
)
N_FEATURES = len(FEATURE_NAMES)
FEATURE_SPEC = "v1:" + ",".join(FEATURE_NAMES)

# v2 (issue 17, "learning when to search"): the v1 row followed by FGD-Search's goodhome cost
# of the candidate (``searchfeat.py`` computes them; v1 models never see these columns)
SEARCH_FEATURE_NAMES: tuple[str, ...] = (
    "search_cost", "search_excess", "search_keep", "search_class", "search_kept_frac",
)
FEATURE_NAMES_V2 = FEATURE_NAMES + SEARCH_FEATURE_NAMES
N_FEATURES_V2 = len(FEATURE_NAMES_V2)
FEATURE_SPEC_V2 = "v2:" + ",".join(FEATURE_NAMES_V2)
FEATURE_SPECS: dict[str, int] = {FEATURE_SPEC: N_FEATURES, FEATURE_SPEC_V2: N_FEATURES_V2}
"""Feature spec -> row width, for every spec a model file may carry."""

MAX_CPU = 128000.0   # protocol constant (R6)
MAX_GPU = 8000.0


@dataclass
class TypicalPods:
    """FGD's target workload (R4.1) restricted to what F needs; CPU-only keys only add weight."""

    cpu: np.ndarray      # (T,) float32, GPU keys only
    milli: np.ndarray    # (T,) float32
    count: np.ndarray    # (T,) float32
    p: np.ndarray        # (T,) float64 frequencies of the GPU keys
    acc: np.ndarray      # (n_models + 1, T) bool: model index -> key accepts it; last row = no model
    p_total: float       # sum of all frequencies (CPU keys included), normally 1

    @property
    def p64(self) -> np.ndarray:
        return self.p

    @classmethod
    def from_sim(cls, tp: Any, models: list[str]) -> "TypicalPods":
        """From ``schedulers.gpu.typical.TypicalPods`` and the cluster's model list."""
        gpu = np.flatnonzero(np.asarray(tp.milli) > 0)
        acc = np.zeros((len(models) + 1, len(gpu)), bool)
        for j, t in enumerate(gpu):
            types = tp.types[t]
            acc[: len(models), j] = [not types or m in types for m in models]
            acc[len(models), j] = not types
        f32 = lambda a: np.asarray(a, np.float32)[gpu]  # noqa: E731
        return cls(cpu=f32(tp.cpu), milli=f32(tp.milli), count=f32(tp.count), p=np.asarray(tp.freq, np.float64)[gpu], acc=acc,
                   p_total=float(np.sum(tp.freq)))


NodeArrays = Any
"""The simulator's ``schedulers.gpu.state.GpuNodeState`` (duck-typed here: ``cpu_cap``,
``mem_cap``, ``gpu_count``, ``model``, ``cpu_used``, ``mem_used``, ``pods_used``,
``gpu_free`` [N, W], ``gen`` [N] bumped on every change)."""

PodReq = Any
"""``schedulers.gpu.state.GpuPod`` (``cpu``, ``mem``, ``count``, ``milli``, ``types``, ``tot``)."""


class FeatureBuilder:
    """Keeps the fragmentation cache of one cluster and builds feature rows per decision."""

    def __init__(self, typical: TypicalPods, nodes: NodeArrays) -> None:
        self.t = typical
        n = len(nodes.cpu_cap)
        self.n = n
        self.total_gpu = float(np.maximum(nodes.gpu_count, 0).sum() * 1000) or 1.0
        self.total_cpu = float(nodes.cpu_cap.sum()) or 1.0
        model_row = np.where(nodes.model >= 0, nodes.model, typical.acc.shape[0] - 1)
        self.node_acc = typical.acc[model_row]                      # (N, T)
        self.model_weight = (self.node_acc * typical.p).sum(1).astype(np.float32)
        self.g = np.maximum(nodes.gpu_count, 1).astype(np.float32)
        self._free = np.full_like(nodes.gpu_free, -1)
        self._cpu = np.full_like(nodes.cpu_used, -1)
        self.cnt = np.zeros((n, len(typical.p)), np.float32)
        self.S = np.zeros((n, len(typical.p)), np.float32)
        self.F = np.zeros(n, np.float64)

    # -- fragmentation cache ------------------------------------------------------------------
    def refresh(self, nodes: NodeArrays) -> None:
        """Recompute cached rows of the nodes whose GPUs or CPU changed since the last call."""
        changed = np.flatnonzero((self._free != nodes.gpu_free).any(1) | (self._cpu != nodes.cpu_used))
        if changed.size == 0:
            return
        free = nodes.gpu_free[changed].astype(np.float32)             # (C, W)
        ge = free[:, :, None] >= self.t.milli[None, None, :]         # (C, 8, T)
        self.cnt[changed] = ge.sum(1)
        self.S[changed] = (ge * free[:, :, None]).sum(1)
        cpul = (nodes.cpu_cap[changed] - nodes.cpu_used[changed]).astype(np.float32)
        L = free.sum(1)
        self.F[changed] = self._frag(changed, L, cpul, self.cnt[changed], self.S[changed])
        self._free[changed] = nodes.gpu_free[changed]
        self._cpu[changed] = nodes.cpu_used[changed]

    def _frag(self, rows: np.ndarray, L: np.ndarray, cpul: np.ndarray, cnt: np.ndarray, S: np.ndarray) -> np.ndarray:
        t = self.t
        host = self.node_acc[rows] & (cpul[:, None] >= t.cpu) & (cnt >= t.count)
        # elementwise, not ``@``: a BLAS gemv here would start threads for a tiny product
        return L.astype(np.float64) * t.p_total - (np.where(host, S, 0.0) * t.p64).sum(1)

    # -- per decision --------------------------------------------------------------------------
    def frag_after(self, nodes: NodeArrays, idx: np.ndarray, pod: PodReq) -> tuple[np.ndarray, np.ndarray]:
        """Best (lowest) fragmentation after placing ``pod`` on each node of ``idx`` and, for
        shared pods, the GPU index achieving it (lowest index among equal free amounts)."""
        t = self.t
        free = nodes.gpu_free[idx].astype(np.float32)
        cpul_a = (nodes.cpu_cap[idx] - nodes.cpu_used[idx]).astype(np.float32) - pod.cpu_nz
        L = free.sum(1)
        cnt, S = self.cnt[idx], self.S[idx]
        if pod.milli <= 0:
            return self._frag(idx, L, cpul_a, cnt, S), np.zeros(len(idx), np.int64)
        if pod.milli >= 1000 or pod.count > 1:
            k = float(pod.count)
            return self._frag(idx, L - 1000 * k * (pod.milli >= 1000), cpul_a, cnt - k, S - 1000 * k), np.zeros(len(idx), np.int64)
        m = float(pod.milli)
        # candidate GPUs: fitting ones, first occurrence of each free amount per node
        fit = free >= m
        w = free.shape[1]
        same = free[:, :, None] == free[:, None, :]                  # (F, W, W)
        earlier = np.tril(np.ones((w, w), bool), -1)                  # [j, j'] j' < j
        dup = (same & earlier[None]).any(2)
        cand = fit & ~dup
        r, g = np.nonzero(cand)
        v = free[r, g]
        va = v - m
        ge_b = v[:, None] >= t.milli[None, :]
        ge_a = va[:, None] >= t.milli[None, :]
        cnt_a = cnt[r] - ge_b + ge_a
        S_a = S[r] - ge_b * v[:, None] + ge_a * va[:, None]
        Fa = self._frag(idx[r], L[r] - m, cpul_a[r], cnt_a, S_a)
        best = np.full(len(idx), np.inf, np.float64)
        np.minimum.at(best, r, Fa)
        # lowest GPU index attaining the minimum (candidates are in (row, gpu) order)
        hit = np.flatnonzero(Fa <= best[r] + 1e-3)
        rows, first = np.unique(r[hit], return_index=True)
        gpu = np.zeros(len(idx), np.int64)
        gpu[rows] = g[hit[first]]
        return best, gpu

    def build(self, nodes: NodeArrays, idx: np.ndarray, pod: PodReq) -> tuple[np.ndarray, np.ndarray]:
        """Feature rows (len(idx), N_FEATURES) float32 for the feasible nodes ``idx`` and the
        GPU index the fragmentation-best assignment uses on each (shared pods)."""
        self.refresh(nodes)
        Fb = self.F[idx]
        Fa, gpu = self.frag_after(nodes, idx, pod)
        gain = (Fb - Fa) / 1000.0
        gain[np.abs(gain) < 1e-9] = 0.0   # ulp noise of mathematically equal states (R7.2)
        fgd = np.trunc(100.0 / (1.0 + np.exp(-gain))) / 100.0 + 1e-4   # +eps: exact after float32
        cap_c = nodes.cpu_cap[idx].astype(np.float32)
        cpul = cap_c - nodes.cpu_used[idx]
        cpul_a = cpul - pod.cpu
        meml_a = (nodes.mem_cap[idx] - nodes.mem_used[idx] - pod.mem).astype(np.float32)
        free = nodes.gpu_free[idx]
        gL = free.sum(1).astype(np.float32)
        g = self.g[idx]
        tot = float(pod.tot)
        gL_a = gL - tot
        full = (free >= 1000).sum(1).astype(np.float32)
        pc = pod.cpu if pod.cpu > 0 else 100.0
        bestfit = 1.0 - (((cpul - pc) / MAX_CPU) * 0.5 + ((gL - tot) / MAX_GPU) * 0.5)
        dotprod = 1.0 - ((cpul / MAX_CPU) * (pc / MAX_CPU) + (gL / MAX_GPU) * (tot / MAX_GPU)) / 2.0
        packing = self._gpupacking(free, full, g, pod) if pod.milli > 0 else np.zeros(len(idx), np.float32)
        X = np.empty((len(idx), N_FEATURES), np.float32)
        X[:, 0] = np.clip(gain, -8, 8)
        X[:, 1] = fgd
        X[:, 2] = Fb / 8000.0
        X[:, 3] = Fa / 8000.0
        X[:, 4] = cpul / cap_c
        X[:, 5] = cpul_a / cap_c
        X[:, 6] = meml_a / nodes.mem_cap[idx]
        X[:, 7] = gL / (1000.0 * g)
        X[:, 8] = gL_a / (1000.0 * g)
        X[:, 9] = full / g
        X[:, 10] = nodes.gpu_count[idx] / 8.0
        X[:, 11] = nodes.pods_used[idx] == 0
        X[:, 12] = bestfit
        X[:, 13] = dotprod
        X[:, 14] = packing
        X[:, 15] = self.model_weight[idx]
        X[:, 16] = cpul_a / MAX_CPU
        X[:, 17] = gL_a / MAX_GPU
        X[:, 18] = pod.cpu / 64000.0
        X[:, 19] = pod.mem / 262144.0
        X[:, 20] = pod.milli / 1000.0
        X[:, 21] = pod.count / 8.0
        X[:, 22] = 0 < pod.milli < 1000
        X[:, 23] = pod.milli <= 0
        X[:, 24] = len(pod.types) > 0
        X[:, 25] = nodes.cpu_used.sum() / self.total_cpu
        X[:, 26] = 1.0 - nodes.gpu_free.sum() / self.total_gpu
        X[:, 27] = len(idx) / self.n
        return X, gpu

    @staticmethod
    def _gpupacking(free: np.ndarray, full: np.ndarray, g: np.ndarray, pod: PodReq) -> np.ndarray:
        """GpuPacking's score (R6.4) / 100, vectorised."""
        srt = np.sort(free, 1)
        fit = srt >= pod.milli
        taken = fit & (np.cumsum(fit, 1) <= pod.count)
        u = (taken & (srt >= 1000)).sum(1)
        r = (taken * (srt * 100 // 1000)).sum(1)
        s = np.where(u > 0, np.maximum(50 - u, 33), np.maximum(100 - r // 10, 50)).astype(np.float32)
        untouched = full >= g
        s = np.where(untouched, np.maximum(33 - full, full), s)
        return s / 100.0
