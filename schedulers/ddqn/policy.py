"""The ``ddqn`` GPU placement policy: the learned Double-DQN node scorer behind the policy
interface of ``schedulers.gpu.policy``, so the offline simulator (``--policy ddqn``) and the
live scheduler's ``DDQN`` score plugin (``schedulers.plugins.ddqn``) run the same object.

For each decision this builds the feature rows of all feasible nodes (``features``), runs ONE
batched forward pass (``scorer``) and returns integer scores; ties go to the node rank as for
every policy. The GPU used on the chosen node is the one the features' fragmentation-best
assignment picked for it (shared pods), or the lowest free GPUs (whole-GPU pods).
Options (``--option K=V`` in the simulator, plugin args live): ``model=PATH`` another
weights file; ``search=goodhome|pack|scarcity`` a decision-time search inside the network's
best score class by FGD-Search's cost (``schedulers.gpu.policies.fgdsearch``; off by default,
results in ``docs/ddqn.md``), with ``search_reach``/``search_cap``/``search_slack`` as
FGD-Search's options and ``search_gpu_only=1`` to leave CPU-only pods to the network.
A v2 model (``features.FEATURE_SPEC_V2``, issue 17 "learning when to search") gets FGD-Search's
cost of each node as extra input columns (``searchfeat``) and decides itself where to follow
it; a v1 model (the shipped one) gets the v1 row only, exactly as before.
torch is imported only when a policy is built (``scorer``: seconds of CPU at start-up), so
importing this module is cheap.

Neighbours: ``schedulers.gpu`` (state, GPU choice, typical pods: FGD's input too); the
inference side of this package (``features``, ``scorer``, ``model``); never the training
side (``env``, ``train``, ``replay``), which sits above the simulator.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from schedulers.ddqn.features import FEATURE_SPEC_V2, FeatureBuilder, TypicalPods
from schedulers.ddqn.searchfeat import SearchFeatures
from schedulers.gpu.choice import choose_best, whole_gpus
from schedulers.gpu.policies.fgd import FGD
from schedulers.gpu.policies.fgdsearch import FGDSearch, search_scores
from schedulers.gpu.policy import PolicyContext, register_policy
from schedulers.gpu.state import GpuNodeState, GpuPod
from schedulers.gpu.typical import TypicalPods as SimTypicalPods

class Scorer(Protocol):
    """What the policy needs of ``schedulers.ddqn.scorer.DdqnScorer`` (imported only in
    ``_factory``, as it brings torch)."""

    def scores(self, X: np.ndarray) -> np.ndarray: ...

    def scores_and_values(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class DdqnPolicy:
    name = "DDQN"

    def __init__(self, scorer: Scorer, typical: SimTypicalPods, search: str | None = None,
                 search_options: dict | None = None) -> None:
        self.scorer = scorer
        # decision-time search inside the network's best score class (FGD-Search's cost,
        # ``schedulers.gpu.policies.fgdsearch``) instead of the node rank alone; None: off
        opts = dict(search_options or {})
        self.search_gpu_only = bool(opts.pop("gpu_only", False))  # CPU-only pods: the network's order
        self.search = FGDSearch(typical, mode=search, **opts) if search else None
        self.sim_typical = typical
        # v2 models read FGD-Search's cost as features; v1 models (28 columns) never compute it
        header = getattr(scorer, "header", None) or {}
        self.search_features = SearchFeatures(typical) if header.get("feature_spec") == FEATURE_SPEC_V2 else None
        self._builder: FeatureBuilder | None = None
        self._state_key: tuple[int, int] | None = None
        self._last: tuple[GpuPod, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.last_values: np.ndarray | None = None  # value estimates of the last score() call

    def builder(self, state: GpuNodeState) -> FeatureBuilder:
        key = (id(state), state.n)
        if self._builder is None or self._state_key != key:
            self._builder = FeatureBuilder(TypicalPods.from_sim(self.sim_typical, state.models), state)
            self._state_key = key
        return self._builder

    def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray:
        X, gpu = self.builder(state).build(state, feasible, pod)
        if self.search_features is not None:
            X = np.hstack([X, self.search_features.columns(state, pod, feasible)])
        self._last = (pod, feasible, gpu, state.gen[feasible].copy())
        scores, self.last_values = self.scorer.scores_and_values(X)
        if self.search is None or (self.search_gpu_only and pod.milli <= 0):
            return scores
        cand = np.flatnonzero(scores >= scores.max() - self.search.reach)
        if len(cand) < 2:
            return scores
        FGD.score(self.search, state, pod, feasible)  # the after-states' GPU choice (FGD's)
        return search_scores(scores, self.search.costs(state, pod, feasible, cand), cand, self.search.slack)

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
    from schedulers.ddqn.scorer import get_scorer  # the documented lazy torch import

    o = ctx.options
    extra = {k: float(o[f"search_{k}"]) if k == "slack" else int(o[f"search_{k}"])
             for k in ("slack", "reach", "cap", "gpu_only") if f"search_{k}" in o}
    return DdqnPolicy(get_scorer(o.get("model")), ctx.typical, o.get("search") or None, extra)


register_policy("ddqn", _factory)
