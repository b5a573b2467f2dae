"""openb "DotProd" policy (R6.2, Tetris-like): score = trunc(100 * (1 - <node_free, pod>/2))
with both vectors (cpu/128000, gpu/8000). Prefers nodes with less free CPU/GPU in the
dimensions the pod uses. GPU choice *best* (``state.best_gpu``)."""

from __future__ import annotations

import numpy as np

from schedulers.sim.registry import register_policy
from schedulers.sim.state import GpuNodeState, GpuPod, best_gpu, whole_gpus

MAX_CPU = 128000.0
MAX_GPU = 8000.0


def choose_best(state: GpuNodeState, node: int, pod: GpuPod) -> list[int]:
    """R5.5 *best*: shared pods on the tightest fitting GPU, whole-GPU pods on the lowest
    indexed free GPUs (shared by DotProd, GpuClustering, GpuPacking and BestFit)."""
    row = state.gpu_free[node]
    if pod.is_shared:
        return [best_gpu(row, pod.milli)]
    if pod.milli >= 1000:
        return whole_gpus(row, pod.count)
    row = row.copy()  # several fractional GPUs (not in openb): best fit one by one
    out = []
    for _ in range(pod.count):
        g = best_gpu(row, pod.milli)
        out.append(g)
        row[g] -= pod.milli
    return out


class DotProd:
    name = "DotProd"

    def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray:
        cpu_l = state.cpu_left(feasible) / MAX_CPU
        gpu_l = state.gpu_left(feasible) / MAX_GPU
        dot = cpu_l * (pod.cpu_nz / MAX_CPU) + gpu_l * (pod.tot / MAX_GPU)
        return (100.0 * (1.0 - dot / 2.0)).astype(np.int64)

    def choose_gpus(self, state: GpuNodeState, node: int, pod: GpuPod) -> list[int]:
        return choose_best(state, node, pod)


register_policy("dotprod", lambda ctx: DotProd())
