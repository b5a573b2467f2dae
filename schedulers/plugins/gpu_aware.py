"""GpuAware (``enhanced`` profile): GPU-conscious placement.
- GPU pods: nodes of a preferred model score more (annotation ``gpu-model`` lists models in
  preference order: the first gets 100, later ones less), plus packing: whole-GPU pods prefer
  nodes with fewer free GPUs left after placement, shared pods prefer partially used GPUs.
- CPU-only pods: prefer nodes without GPUs (keep GPU nodes for GPU work), 100 vs. 0 scaled by
  the share of GPUs still free.
Works on the cache's GpuNodeState (``snap.gpu``)."""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import Plugin
from schedulers.framework.registry import register


@register
class GpuAware(Plugin):
    name = "GpuAware"

    def uniform_score(self, cs, pod, snap) -> int | None:
        return 100 if pod.gpu.milli <= 0 and not snap.has_gpus() else None  # CPU pod, no GPU node anywhere

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        g = snap.gpu
        count = g.gpu_count[idx]
        free = g.gpu_free[idx]
        if pod.gpu.milli <= 0:
            frac_free = free.sum(axis=1) / np.maximum(count * 1000, 1)
            return np.where(count == 0, 100, (50 * (1 - frac_free)).astype(np.int64)).astype(np.int64)
        model_score = np.full(len(idx), 100, dtype=np.int64)
        if pod.gpu.types:
            names = [g.models[m] if m >= 0 else "" for m in g.model[idx]]
            pref = {t: 100 - 20 * k for k, t in enumerate(pod.gpu.types)}
            model_score = np.array([max(pref.get(n, 0), 0) for n in names], dtype=np.int64)
        if pod.gpu.is_shared:
            fits = free >= pod.gpu.milli
            partial = fits & (free < 1000)
            best_left = np.where(fits, free - pod.gpu.milli, 1000).min(axis=1)
            pack = np.where(partial.any(axis=1), 100 - best_left // 10, 40)
        else:
            full = (free == 1000).sum(axis=1)
            left = np.maximum(full - pod.gpu.count, 0)
            pack = 100 - left * 100 // np.maximum(count, 1)
        return ((model_score + pack) // 2).astype(np.int64)
