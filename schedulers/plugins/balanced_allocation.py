"""NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory utilisation (with the
pod) are balanced: f_r = min(requested_r / allocatable_r, 1), score = trunc((1 - std(f)) * 100)
with the population standard deviation (|f1 - f2| / 2 for two resources)."""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import Plugin
from schedulers.framework.registry import register
from schedulers.plugins.node_resources_fit import all_allocatable, requested_with


@register
class NodeResourcesBalancedAllocation(Plugin):
    name = "NodeResourcesBalancedAllocation"

    def __init__(self, args=None, handle=None) -> None:
        super().__init__(args, handle)
        self.resources = [r["name"] for r in self.args.get("resources") or [{"name": "cpu"}, {"name": "memory"}]]

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        if len(self.resources) == 2 and all_allocatable(snap, self.resources):
            # two resources, every node has both: no NaN guards needed, the same float arithmetic
            a0, r0 = requested_with(snap, pod, self.resources[0], idx, cs)
            a1, r1 = requested_with(snap, pod, self.resources[1], idx, cs)
            std = np.abs(np.minimum(r0 / a0, 1.0) - np.minimum(r1 / a1, 1.0)) / 2
            return ((1.0 - std) * 100).astype(np.int64)
        fr = []
        for res in self.resources:
            alloc, req = requested_with(snap, pod, res, idx, cs)
            fr.append(np.where(alloc > 0, np.minimum(req / np.where(alloc > 0, alloc, 1), 1.0), np.nan))
        f = np.vstack(fr)
        std = np.nanstd(f, axis=0) if len(fr) > 2 else np.abs(f[0] - f[1]) / 2 if len(fr) == 2 else np.zeros(len(idx))
        std = np.nan_to_num(std, nan=0.0)
        return ((1.0 - std) * 100).astype(np.int64)
