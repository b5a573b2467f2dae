"""Random: every feasible node gets a random score, so the choice is uniform among them (the
"Random" policy of the origin documents). Uses the scheduler's seeded generator."""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import Plugin
from schedulers.framework.registry import register


@register
class Random(Plugin):
    name = "Random"

    def __init__(self, args=None, handle=None) -> None:
        super().__init__(args, handle)
        self.rng = np.random.default_rng(self.args.get("seed"))

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        return self.rng.integers(0, 1_000_000, size=len(idx))

    def normalize(self, cs, pod, snap, idx, scores: np.ndarray) -> np.ndarray:
        return scores * 100 // 1_000_000
