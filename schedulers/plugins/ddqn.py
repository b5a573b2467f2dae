"""``ddqn`` GPU placement policy: the learned Double-DQN node scorer as a score plugin.

Why: the openb simulator (``--policy ddqn``) and the live scheduler's GPU-sharing wrapper use
the same policy objects (``schedulers.sim.registry``). For each decision this builds the
feature rows of all feasible nodes (``schedulers.ddqn.features``), runs ONE batched forward
pass (``schedulers.ddqn.scorer``) and returns integer scores; ties go to the node rank as for
every policy. The GPU used on the chosen node is the one the features' fragmentation-best
assignment picked for it (shared pods), or the lowest free GPUs (whole-GPU pods).

Options (``--option K=V``): ``model=PATH`` another weights file.
Live scheduler: the ``DDQN`` score plugin (profile ``schedulers/profiles/ddqn.yaml``,
``schedulerName: ddqn-scheduler``) wraps the same policy like the other openb plugins of
``schedulers.plugins.gpushare``; args ``typicalPods: <CSV>`` and ``model: <path>``, otherwise
the typical pods come from the pods the scheduler has seen (refreshed as that set doubles).
Neighbours: ``schedulers.plugins.fgd`` (same typical-pods input), ``schedulers.sim.openb``.
"""

from __future__ import annotations

import numpy as np

from typing import TYPE_CHECKING

from schedulers.ddqn.features import FeatureBuilder, TypicalPods
from schedulers.framework.registry import register
from schedulers.plugins.dot_prod import choose_best
from schedulers.plugins.gpushare import _OpenbScore
from schedulers.sim.registry import PolicyContext, register_policy
from schedulers.sim.state import GpuNodeState, GpuPod, whole_gpus
from schedulers.sim.typical import typical_pods

if TYPE_CHECKING:  # torch is imported only when a DDQN policy is built (seconds of CPU at start-up)
    from schedulers.ddqn.scorer import DdqnScorer


class DdqnPolicy:
    name = "DDQN"

    def __init__(self, scorer: "DdqnScorer", typical) -> None:  # typical: schedulers.sim.typical.TypicalPods
        self.scorer = scorer
        self.sim_typical = typical
        self._builder: FeatureBuilder | None = None
        self._state_key: tuple[int, int] | None = None
        self._last: tuple[GpuPod, np.ndarray, np.ndarray, np.ndarray] | None = None

    def builder(self, state: GpuNodeState) -> FeatureBuilder:
        key = (id(state), state.n)
        if self._builder is None or self._state_key != key:
            self._builder = FeatureBuilder(TypicalPods.from_sim(self.sim_typical, state.models), state)
            self._state_key = key
        return self._builder

    def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray:
        X, gpu = self.builder(state).build(state, feasible, pod)
        self._last = (pod, feasible, gpu, state.gen[feasible].copy())
        return self.scorer.scores(X)

    def choose_gpus(self, state: GpuNodeState, node: int, pod: GpuPod) -> list[int]:
        if pod.milli <= 0:
            return []
        if pod.milli >= 1000:
            return whole_gpus(state.gpu_free[node], pod.count)
        if not pod.is_shared:
            return choose_best(state, node, pod)
        if self._last is not None and self._last[0] is pod:
            pos = np.flatnonzero(self._last[1] == node)
            if len(pos) and self._last[3][pos[0]] == state.gen[node]:  # same decision, node unchanged
                return [int(self._last[2][pos[0]])]
        _, gpu = self.builder(state).build(state, np.array([node]), pod)
        return [int(gpu[0])]


def _factory(ctx: PolicyContext) -> DdqnPolicy:
    if ctx.typical is None:
        raise ValueError("ddqn needs the typical pods of the workload (its fragmentation features)")
    from schedulers.ddqn.scorer import get_scorer

    return DdqnPolicy(get_scorer(ctx.options.get("model")), ctx.typical)


register_policy("ddqn", _factory)


@register
class DDQN(_OpenbScore):
    """The DDQN scorer as a live-scheduler score plugin (typical pods as for FGD)."""

    name = "DDQN"
    policy_name = "ddqn"

    def policy(self, snap, pod):
        if self._seen >= 0:
            seen = len(snap.pod_node) + 1
            if self._policy is None or seen >= 2 * self._seen:
                self._typical = typical_pods([p.gpu for _, p in snap.all_pods()] + [pod.gpu])
                self._seen = seen
                self._policy = None
        if self._policy is None:
            ctx = PolicyContext(rng=self.rng, typical=self._typical, state=snap.gpu, options=dict(self.args))
            self._policy = _factory(ctx)
        return self._policy
