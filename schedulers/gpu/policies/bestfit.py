"""openb "BestFit" policy (``docs/openb-protocol.md`` R6.5): b = ((cpuL - pc)/128000)*0.5 + ((gL -
pg)/8000)*0.5, score = trunc(100 * (1 - b)): the node left with the least free CPU and GPU
wins. The original's min-max rescaling is order preserving and skipped. GPU choice *best*."""

from __future__ import annotations

import numpy as np

from schedulers.gpu.choice import choose_best
from schedulers.gpu.policies.dotprod import MAX_CPU, MAX_GPU
from schedulers.gpu.policy import register_policy
from schedulers.gpu.state import GpuNodeState, GpuPod


class BestFit:
    name = "BestFit"

    def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray:
        b = ((state.cpu_left(feasible) - pod.cpu_nz) / MAX_CPU) * 0.5 + (
            (state.gpu_left(feasible) - pod.tot) / MAX_GPU
        ) * 0.5
        return (100.0 * (1.0 - b)).astype(np.int64)

    def choose_gpus(self, state: GpuNodeState, node: int, pod: GpuPod) -> list[int]:
        return choose_best(state, node, pod)


register_policy("bestfit", lambda ctx: BestFit())
