"""NetworkLatency (``enhanced`` profile): prefer nodes with lower network latency, read from
the node annotation ``scheduling.controlplane.io/network-latency-ms`` (set by an operator or
reported by the agent); nodes without it count as the slowest. Score
``100 * (max - latency) / (max - min)`` over the candidates."""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import Plugin
from schedulers.framework.registry import register

ANN_LATENCY = "scheduling.controlplane.io/network-latency-ms"


def _latency(node) -> float:
    raw = node.annotations.get(ANN_LATENCY)
    try:
        return float(raw) if raw is not None else np.nan
    except ValueError:
        return np.nan


def latencies(snap) -> np.ndarray:
    """Latency (ms) of every node row, NaN where unknown (once per node-set generation)."""
    return snap.memo("latency", lambda: np.array([_latency(n) for n in snap.nodes], dtype=np.float64))


@register
class NetworkLatency(Plugin):
    name = "NetworkLatency"
    uniform_raw = None  # no latency known: NaN

    def uniform_score(self, cs, pod, snap) -> int | None:
        return 0 if snap.memo("latency_none", lambda: bool(np.isnan(latencies(snap)).all())) else None

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        return latencies(snap)[idx]

    def normalize(self, cs, pod, snap, idx, scores: np.ndarray) -> np.ndarray:
        if not len(scores) or np.all(np.isnan(scores)):
            return np.zeros(len(scores), dtype=np.int64)
        hi = np.nanmax(scores)
        lo = np.nanmin(scores)
        s = np.where(np.isnan(scores), hi, scores)
        if hi == lo:
            return np.where(np.isnan(scores), 0, 100).astype(np.int64)
        return ((hi - s) * 100 / (hi - lo)).astype(np.int64)
