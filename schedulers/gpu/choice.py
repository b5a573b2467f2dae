"""Which GPUs of a node a GPU pod takes (``docs/openb-protocol.md`` R5.5): the *best* choice
shared by DotProd, GpuClustering, GpuPacking and BestFit, and used by the live scheduler's
cache for pods no policy placed (e.g. under the default profile); FGD, Random and DDQN make
their own choice for shared pods and fall back on these helpers otherwise.

Neighbours: ``state`` (the free milli-GPU per GPU these read), ``policies``,
``schedulers.framework.cache``.
"""

from __future__ import annotations

import numpy as np

from schedulers.gpu.state import GpuNodeState, GpuPod
from schedulers.gpu.traces import GPU_MILLI


def whole_gpus(free_row: np.ndarray, count: int) -> list[int]:
    """The ``count`` lowest-indexed completely free GPUs (R5.5, whole-GPU pods)."""
    idx = np.flatnonzero(free_row == GPU_MILLI)[:count]
    return [int(i) for i in idx]


def best_gpu(free_row: np.ndarray, milli: int) -> int:
    """Shared pods, "best" choice: least free amount among GPUs with free >= milli, lowest
    index on ties."""
    fits = free_row >= milli
    cand = np.where(fits, free_row, np.iinfo(np.int64).max)
    return int(np.argmin(cand))


def choose_best(state: GpuNodeState, node: int, pod: GpuPod) -> list[int]:
    """R5.5 *best*: shared pods on the tightest fitting GPU, whole-GPU pods on the lowest
    indexed free GPUs."""
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
