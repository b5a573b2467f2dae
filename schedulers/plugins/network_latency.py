"""NetworkLatency (``enhanced`` profile): prefer nodes with lower network latency, read from
the node annotation ``scheduling.controlplane.io/network-latency-ms`` (set by an operator or
reported by the agent); nodes without it count as the slowest. Score
``100 * (max - latency) / (max - min)`` over the candidates."""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import Plugin
from schedulers.framework.registry import register

ANN_LATENCY = "scheduling.controlplane.io/network-latency-ms"


@register
class NetworkLatency(Plugin):
    name = "NetworkLatency"

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        vals = []
        for i in idx:
            raw = snap.nodes[i].annotations.get(ANN_LATENCY)
            try:
                vals.append(float(raw) if raw is not None else np.nan)
            except ValueError:
                vals.append(np.nan)
        return np.array(vals, dtype=np.float64)

    def normalize(self, cs, pod, snap, idx, scores: np.ndarray) -> np.ndarray:
        if not len(scores) or np.all(np.isnan(scores)):
            return np.zeros(len(scores), dtype=np.int64)
        hi = np.nanmax(scores)
        lo = np.nanmin(scores)
        s = np.where(np.isnan(scores), hi, scores)
        if hi == lo:
            return np.where(np.isnan(scores), 0, 100).astype(np.int64)
        return ((hi - s) * 100 / (hi - lo)).astype(np.int64)
