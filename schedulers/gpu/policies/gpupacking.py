"""openb "GpuPacking" policy (``docs/openb-protocol.md`` R6.4): fill partially used GPUs first,
then partially used nodes, then untouched nodes (small ones first). CPU-only pods score 0. GPU
choice *best*."""

from __future__ import annotations

import numpy as np

from schedulers.gpu.choice import choose_best
from schedulers.gpu.policy import register_policy
from schedulers.gpu.state import GpuNodeState, GpuPod


class GpuPacking:
    name = "GpuPacking"

    def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray:
        if pod.milli <= 0:
            return np.zeros(len(feasible), dtype=np.int64)
        free = state.gpu_free[feasible]
        full = (free == 1000).sum(axis=1)
        untouched = full == state.gpu_count[feasible]
        order = np.argsort(free, axis=1, kind="stable")  # ascending free, ties by index
        srt = np.take_along_axis(free, order, axis=1)
        fits = srt >= pod.milli
        taken = fits & (np.cumsum(fits, axis=1) <= pod.count)
        u = (taken & (srt == 1000)).sum(axis=1)
        r = ((srt * 100 // 1000) * taken).sum(axis=1)
        partial = np.where(u > 0, np.maximum(50 - u, 33), np.maximum(100 - r // 10, 50))
        return np.where(untouched, np.maximum(33 - full, full), partial).astype(np.int64)

    def choose_gpus(self, state: GpuNodeState, node: int, pod: GpuPod) -> list[int]:
        return choose_best(state, node, pod)


register_policy("gpupacking", lambda ctx: GpuPacking())
