"""GPU placement policies as score plugins: :class:`GpuPolicyScore` wraps one policy of
``schedulers.gpu`` (the object the offline simulator runs) and scores the cache's
``GpuNodeState`` rows with it; at Reserve the policy picks the GPUs on the chosen node
(``pod.gpu_index``), which ``GpuShare``'s PreBind records on the pod. The openb policies are
plugins ``DotProd``, ``GpuClustering``, ``GpuPacking``, ``BestFit``, ``FGD`` and
``OpenbRandom`` (the openb "Random"); ``schedulers.plugins.ddqn`` is one more subclass.

Policies that need the typical pods of the workload (FGD, DDQN: ``needs_typical``) take them
from args ``typicalPods: <pod list CSV>``, otherwise from the pods the scheduler has seen
(recomputed, and the policy rebuilt, each time that set doubles). Args ``seed`` (the
policy's generator) and anything else are passed to the policy factory as options.
"""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import Plugin, Status
from schedulers.framework.registry import register
from schedulers.gpu.gorand import GoRand
from schedulers.gpu.policies import get_policy_factory
from schedulers.gpu.policy import GpuPolicy, PolicyContext
from schedulers.gpu.state import GpuPod
from schedulers.gpu.traces import load_pods
from schedulers.gpu.typical import TypicalPods, typical_pods


class GpuPolicyScore(Plugin):
    """Base class: ``policy_name`` picks the policy (``schedulers.gpu.policies``)."""

    policy_name = ""
    needs_typical = False

    def __init__(self, args=None, handle=None) -> None:
        super().__init__(args, handle)
        self.rng = GoRand(int(self.args.get("seed", 0)))
        self._typical: TypicalPods | None = None
        self._seen = 0
        if self.args.get("typicalPods"):
            self._typical = typical_pods([GpuPod.from_record(r) for r in load_pods(self.args["typicalPods"])])
            self._seen = -1
        self._policy: GpuPolicy | None = None

    def policy(self, snap, pod) -> GpuPolicy:
        if self._seen >= 0 and self.needs_typical:
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

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.policy(snap, pod).score(snap.gpu, pod.gpu, idx), dtype=np.int64)

    def score_values(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray | None:
        """Value estimates behind the last ``score`` (a learned policy's ``last_values``, for
        the decision record); ``None`` for the heuristic policies."""
        v = getattr(self._policy, "last_values", None)
        return None if v is None or len(v) != len(idx) else np.asarray(v, dtype=np.float64)

    def reserve(self, cs, pod, node_name: str, snap) -> Status | None:
        if pod.gpu.milli > 0:
            row = snap.row[node_name]
            pod.gpu_index = list(self.policy(snap, pod).choose_gpus(snap.gpu, row, pod.gpu))
        return None


def _plugin(plugin_name: str, policy: str, **attrs) -> type[Plugin]:
    cls = type(plugin_name, (GpuPolicyScore,), {"name": plugin_name, "policy_name": policy,
                                                 "__doc__": f"openb {plugin_name} as a score plugin.", **attrs})
    return register(cls)


def _fgd_uniform_score(self, cs, pod, snap) -> int | None:
    """FGD for a CPU-only pod on a cluster without GPUs: every node's fragmentation is 0
    before and after, so every node scores trunc(100 * sigmoid(0)) = 50 (the policy is still
    consulted, so its typical-pod bookkeeping advances exactly as when it scores)."""
    if pod.gpu.milli > 0 or snap.has_gpus():
        return None
    self.policy(snap, pod)
    return 50


DotProd = _plugin("DotProd", "dotprod")
GpuClustering = _plugin("GpuClustering", "gpuclustering")
GpuPacking = _plugin("GpuPacking", "gpupacking")
BestFit = _plugin("BestFit", "bestfit")
FGD = _plugin("FGD", "fgd", needs_typical=True, uniform_score=_fgd_uniform_score)
OpenbRandom = _plugin("OpenbRandom", "random")
