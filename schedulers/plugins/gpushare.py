"""GPU sharing in the live scheduler: the ``GpuShare`` filter (a GPU pod needs a node of an
accepted model with enough free GPU: one GPU with ``milli`` free, or ``count`` GPUs) and the
openb packing policies as score plugins — ``DotProd``, ``GpuClustering``, ``GpuPacking``,
``BestFit``, ``FGD``, ``OpenbRandom`` — each a thin wrapper around the policy object the
offline simulator uses (``schedulers.sim.registry``), scoring ``snap.gpu`` (the cache's
``GpuNodeState``) rows directly. At reserve time the policy picks the GPUs; the binder records
them in the pod annotation ``scheduling.controlplane.io/gpu-index``.

FGD needs the typical pods of the workload: args ``typicalPods: <pod list CSV>``, otherwise
they are computed from the pods the scheduler has seen (refreshed as that set doubles).
"""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import FilterResult, Plugin, Status
from schedulers.framework.registry import register
from schedulers.sim.registry import PolicyContext, get_policy_factory
from schedulers.sim.traces import load_pods
from schedulers.sim.typical import TypicalPods, typical_pods
from schedulers.sim.state import GpuPod


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


class _OpenbScore(Plugin):
    policy_name = ""

    def __init__(self, args=None, handle=None) -> None:
        super().__init__(args, handle)
        self.rng = np.random.default_rng(self.args.get("seed", 0))
        self._typical: TypicalPods | None = None
        self._seen = 0
        if self.args.get("typicalPods"):
            self._typical = typical_pods([GpuPod.from_record(r) for r in load_pods(self.args["typicalPods"])])
            self._seen = -1
        self._policy = None

    def policy(self, snap, pod):
        if self._seen >= 0 and self.policy_name == "fgd":
            seen = len(snap.pod_node) + 1
            if self._policy is None or seen >= 2 * self._seen:
                pods = [p.gpu for _, p in snap.all_pods()] + [pod.gpu]
                self._typical = typical_pods(pods)
                self._seen = seen
                self._policy = None
        if self._policy is None:
            ctx = PolicyContext(rng=self.rng, typical=self._typical, state=snap.gpu, options=dict(self.args))
            self._policy = get_policy_factory(self.policy_name)(ctx)
        return self._policy

    def uniform_score(self, cs, pod, snap) -> int | None:
        """FGD for a CPU-only pod on a cluster without GPUs: every node's fragmentation is 0
        before and after, so every node scores trunc(100 * sigmoid(0)) = 50 (the policy is still consulted, so
        its typical-pod bookkeeping advances exactly as when it scores)."""
        if self.policy_name != "fgd" or pod.gpu.milli > 0 or snap.has_gpus():
            return None
        self.policy(snap, pod)
        return 50

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.policy(snap, pod).score(snap.gpu, pod.gpu, idx), dtype=np.int64)

    def reserve(self, cs, pod, node_name: str, snap) -> Status | None:
        if pod.gpu.milli > 0:
            row = snap.row[node_name]
            pod.gpu_index = list(self.policy(snap, pod).choose_gpus(snap.gpu, row, pod.gpu))
        return None


def _make(plugin_name: str, policy: str) -> type[Plugin]:
    cls = type(plugin_name, (_OpenbScore,), {"name": plugin_name, "policy_name": policy,
                                              "__doc__": f"openb {plugin_name} as a score plugin."})
    return register(cls)


DotProd = _make("DotProd", "dotprod")
GpuClustering = _make("GpuClustering", "gpuclustering")
GpuPacking = _make("GpuPacking", "gpupacking")
BestFit = _make("BestFit", "bestfit")
FGD = _make("FGD", "fgd")
OpenbRandom = _make("OpenbRandom", "random")
