"""openb "Random" policy (``docs/openb-protocol.md`` R6.1, R5.5 *random*): a uniform choice among
the feasible nodes and, for shared pods, a reservoir-style random choice among the fitting
GPUs.

Expressed as a score so it plugs into the same selection code: the drawn node scores 1, every
other node 0. Draws come from the run's generator in protocol order (node, then GPU)."""

from __future__ import annotations

import numpy as np

from schedulers.gpu.choice import whole_gpus
from schedulers.gpu.gorand import RunRandom
from schedulers.gpu.policy import register_policy
from schedulers.gpu.state import GpuNodeState, GpuPod


class RandomPolicy:
    name = "Random"

    def __init__(self, rng: RunRandom) -> None:
        self.rng = rng

    def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray:
        out = np.zeros(len(feasible), dtype=np.int64)
        out[self.rng.intn(len(feasible))] = 1
        return out

    def choose_gpus(self, state: GpuNodeState, node: int, pod: GpuPod) -> list[int]:
        row = state.gpu_free[node]
        if not pod.is_shared:
            return whole_gpus(row, pod.count)
        choice, seen = -1, 0
        for g in range(int(state.gpu_count[node])):
            if row[g] >= pod.milli:
                seen += 1
                if self.rng.intn(seen) == 0:
                    choice = g
        return [choice]


register_policy("random", lambda ctx: RandomPolicy(ctx.rng))
