"""openb "GpuClustering" policy (``docs/openb-protocol.md`` R6.3): keep pods of one kind together.
Tags: "share" or "k-gpu"; base = floor(25 * (8000 - gL) / 8000); +75 if the node hosts only the
pod's tag, +50 if it hosts the tag among others, +25 if it hosts no GPU pod. CPU-only pods
score 0. GPU choice *best*."""

from __future__ import annotations

import numpy as np

from schedulers.gpu.choice import choose_best
from schedulers.gpu.policy import register_policy
from schedulers.gpu.state import GpuNodeState, GpuPod


class GpuClustering:
    name = "GpuClustering"

    def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray:
        tag = pod.tag
        if tag < 0:
            return np.zeros(len(feasible), dtype=np.int64)
        base = (25 * (8000 - state.gpu_left(feasible))) // 8000
        tags = state.tags[feasible]
        present = tags > 0
        kinds = present.sum(axis=1)
        same = present[:, tag]
        bonus = np.where(same, np.where(kinds == 1, 75, 50), np.where(kinds == 0, 25, 0))
        return (base + bonus).astype(np.int64)

    def choose_gpus(self, state: GpuNodeState, node: int, pod: GpuPod) -> list[int]:
        return choose_best(state, node, pod)


register_policy("gpuclustering", lambda ctx: GpuClustering())
