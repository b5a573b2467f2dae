"""GpuShare: GPU sharing in the live scheduler. Filter: a GPU pod needs a node of an
accepted model with enough free GPU (one GPU with ``milli`` free, or ``count`` GPUs).
PreBind: the GPUs chosen for the pod (by a GPU policy score plugin at Reserve, or by the
cache when it assumed the pod) are written to the pod annotation
``scheduling.controlplane.io/gpu-index`` before the binding, so the node agent sees them.

Neighbours: ``schedulers.framework.podinfo`` (the GPU request conventions), the cache's
``GpuNodeState`` (``snap.gpu``), ``gpu_policy_score`` (the GPU policies as score plugins).
"""

from __future__ import annotations

import asyncio

import numpy as np

from controlplane.client import resources
from controlplane.client.rest import ApiStatusError
from schedulers.framework.interface import FilterResult, Plugin, Status
from schedulers.framework.podinfo import ANN_GPU_INDEX
from schedulers.framework.registry import register


@register
class GpuShare(Plugin):
    name = "GpuShare"
    events = ("Node/Add", "Node/Update", "Pod/Delete")

    def pre_filter(self, cs, pod, snap) -> Status | None:
        pod.gpu_index = []
        return None if pod.gpu.milli > 0 else Status.skip()

    def filter(self, cs, pod, snap, idx: np.ndarray) -> FilterResult:
        g = snap.gpu
        p = pod.gpu
        model_ok = (g.gpu_count[idx] >= 1) & g.accepts(p.types)[idx]
        free = g.gpu_free[idx]
        if p.count == 1:
            fit = (free >= p.milli).any(axis=1)
        else:
            fit = (free // p.milli).sum(axis=1) >= p.count
        reasons = {}
        if (~model_ok).any():
            reasons["node(s) had no GPU of a requested model"] = ~model_ok
        if (model_ok & ~fit).any():
            reasons["Insufficient GPU share"] = model_ok & ~fit
        return FilterResult(model_ok & fit, reasons=reasons)

    async def pre_bind(self, cs, pod, node_name: str) -> Status | None:
        if pod.gpu.milli <= 0 or not pod.gpu_index:
            return None
        patch = {"metadata": {"annotations": {ANN_GPU_INDEX: ",".join(str(g) for g in pod.gpu_index)}}}
        try:
            await self.handle.client.patch(resources.PODS, pod.name, patch, pod.namespace)
        except (ApiStatusError, asyncio.TimeoutError) as e:
            return Status.error(f"recording the GPU index: {e}")
        return None
