"""NodeResourcesFit: filter on requests vs. allocatable (cpu, memory, pod count, extended
resources such as ``nvidia.com/gpu``) and score with a strategy: ``LeastAllocated``
(default), ``MostAllocated`` or ``RequestedToCapacityRatio`` (piecewise-linear shape of
(utilisation, score 0..10) points). Vectorised over nodes; integer arithmetic as Kubernetes.

Scoring uses the non-zero requests for cpu/memory (100m / 200Mi per container without
requests). Args: ``{scoringStrategy: {type, resources: [{name, weight}], requestedToCapacityRatio:
{shape: [{utilization, score}]}}}``.
"""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import FilterResult, Plugin
from schedulers.framework.registry import register

MAX_SCORE = 100


def requested_with(snap, pod, res: str, idx: np.ndarray, cs: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(allocatable, requested incl. the pod) for scoring, non-zero defaults for cpu/memory.
    With the cycle state ``cs`` the arrays are shared by the plugins of one cycle (fit and
    balanced allocation both read cpu and memory of the same nodes); callers must not modify
    them."""
    if cs is not None:
        hit = cs.get(("_requested_with", res))
        if hit is not None and hit[0] is idx:
            return hit[1], hit[2]
        out = requested_with(snap, pod, res, idx)
        cs[("_requested_with", res)] = (idx, *out)
        return out
    alloc, req = snap.resource(res)
    if res == "cpu":
        return alloc[idx], snap.nonzero_cpu[idx] + pod.nonzero_cpu
    if res == "memory":
        return alloc[idx], snap.nonzero_mem[idx] + pod.nonzero_mem
    return alloc[idx], req[idx] + pod.requests.get(res, 0)


def all_allocatable(snap, resources) -> bool:
    """Every node has a positive allocatable amount of every one of ``resources`` (then the
    scores need no per-node guards; memoised per node-set generation)."""
    key = "allocatable>0:" + ",".join(resources)
    return snap.memo(key, lambda: all(bool((snap.resource(r)[0] > 0).all()) for r in resources))


def least_allocated(req: np.ndarray, alloc: np.ndarray) -> np.ndarray:
    safe = np.where(alloc == 0, 1, alloc)
    return np.where(req > alloc, 0, (alloc - req) * MAX_SCORE // safe)


def most_allocated(req: np.ndarray, alloc: np.ndarray) -> np.ndarray:
    safe = np.where(alloc == 0, 1, alloc)
    return np.minimum(req, alloc) * MAX_SCORE // safe


def shape_score(util: np.ndarray, shape: list[tuple[int, int]]) -> np.ndarray:
    """Piecewise-linear (utilisation % -> score 0..100) with flat ends."""
    xs = np.array([p[0] for p in shape], dtype=np.float64)
    ys = np.array([p[1] * 10 for p in shape], dtype=np.float64)
    return np.interp(util, xs, ys)


@register
class NodeResourcesFit(Plugin):
    name = "NodeResourcesFit"
    events = ("Node/Add", "Node/Update", "Pod/Delete")

    def __init__(self, args=None, handle=None) -> None:
        super().__init__(args, handle)
        strat = self.args.get("scoringStrategy") or {}
        self.strategy = strat.get("type", "LeastAllocated")
        self.resources = [(r["name"], int(r.get("weight", 1))) for r in strat.get("resources") or
                          [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]]
        shape = (strat.get("requestedToCapacityRatio") or {}).get("shape") or [
            {"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]
        self.shape = [(int(p["utilization"]), int(p["score"])) for p in shape]
        self._names = tuple(r for r, _ in self.resources)
        self._wsum = sum(w for _, w in self.resources)

    def filter(self, cs, pod, snap, idx: np.ndarray) -> FilterResult:
        ok = np.ones(len(idx), dtype=bool)
        reasons: dict[str, np.ndarray] = {}
        too_many = snap.pod_count[idx] + 1 > snap.alloc["pods"][idx]
        if too_many.any():
            reasons["Too many pods"] = too_many
            ok &= ~too_many
        for res, want in pod.requests.items():
            if want <= 0 or res == "pods":
                continue
            alloc, req = snap.resource(res)
            short = alloc[idx] - req[idx] < want
            if short.any():
                reasons[f"Insufficient {res}"] = short
                ok &= ~short
        return FilterResult(ok, reasons=reasons)

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        if self.strategy == "LeastAllocated" and all_allocatable(snap, self._names):
            # the common case without the per-node guards; the same integer arithmetic
            total = None
            for res, w in self.resources:
                alloc, req = requested_with(snap, pod, res, idx, cs)
                s = (alloc - req) * MAX_SCORE // alloc
                s[req > alloc] = 0
                total = s * w if total is None else total + s * w
            if total is None or self._wsum == 0:
                return np.zeros(len(idx), dtype=np.int64)
            return total // self._wsum
        total = np.zeros(len(idx), dtype=np.int64)
        wsum = np.zeros(len(idx), dtype=np.int64)
        ftotal = np.zeros(len(idx), dtype=np.float64)
        for res, w in self.resources:
            alloc, req = requested_with(snap, pod, res, idx, cs)
            has = alloc > 0
            if self.strategy == "MostAllocated":
                s = most_allocated(req, alloc)
            elif self.strategy == "RequestedToCapacityRatio":
                util = np.where(has, req * 100 // np.where(has, alloc, 1), 0)
                ftotal += np.where(has, shape_score(util, self.shape) * w, 0)
                wsum += np.where(has, w, 0)
                continue
            else:
                s = least_allocated(req, alloc)
            total += np.where(has, s * w, 0)
            wsum += np.where(has, w, 0)
        safe = np.where(wsum == 0, 1, wsum)
        if self.strategy == "RequestedToCapacityRatio":
            return np.round(ftotal / safe).astype(np.int64)
        return total // safe
