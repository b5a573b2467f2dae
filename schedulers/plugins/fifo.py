"""FIFO: pods in arrival order (the queue), each on the first node that fits in node-name
order — 100 for the first feasible node, 0 for the others. Use with
``percentageOfNodesToScore: 100`` so "first" is over all nodes."""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import Plugin
from schedulers.framework.registry import register


@register
class FirstFit(Plugin):
    name = "FirstFit"

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        out = np.zeros(len(idx), dtype=np.int64)
        if len(idx):
            out[int(np.argmin(idx))] = 100
        return out
