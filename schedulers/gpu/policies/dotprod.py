"""openb "DotProd" policy (``docs/openb-protocol.md`` R6.2, Tetris-like): score = trunc(100 * (1 -
<node_free, pod>/2)) with both vectors (cpu/128000, gpu/8000). Prefers nodes with less free
CPU/GPU in the dimensions the pod uses. GPU choice *best*
(``schedulers.gpu.choice.choose_best``)."""

from __future__ import annotations

import numpy as np

from schedulers.gpu.choice import choose_best
from schedulers.gpu.policy import register_policy
from schedulers.gpu.state import GpuNodeState, GpuPod

MAX_CPU = 128000.0
MAX_GPU = 8000.0


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
