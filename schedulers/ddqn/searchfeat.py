"""FGD-Search's cost as input features of the DDQN scorer ("learning when to search").

Why: the decision-time search (``search=goodhome`` of the ``ddqn`` policy, FGD-Search of
``schedulers.gpu.policies.fgdsearch``) gains on some pod lists and loses on others. Rather
than always following it, a v2 model (``features.FEATURE_SPEC_V2``) sees, per candidate node,
what the search would say and learns where to follow it: the columns appended to the v1 row
are (``features.SEARCH_FEATURE_NAMES``)

- ``search_cost``: the node's goodhome cost c (how rare a best home of a typical GPU pod its
  after-state would stop being, milli-GPU) as ``log1p(c) / COST_LOG_SCALE`` (c is 0 for ~94 %
  of class nodes, a few units at the 99th percentile, up to ~400: a log keeps both readable);
- ``search_excess``: the same of the cost minus the lowest cost in FGD's best class;
- ``search_keep``: 1 for the nodes FGD-Search keeps (in the class, cost = the class minimum);
- ``search_class``: 1 for the nodes of FGD's best score class (``reach`` points below it too);
- ``search_kept_frac``: kept nodes / class nodes (how selective the search is at this pod).

Nodes outside the class get zeros. :func:`search_columns` is the pure part (tested by
table); :class:`SearchFeatures` runs FGD and the search's cost on the simulator state.

Neighbours: ``features.py`` (the v1 row and the spec), ``policy.py`` and ``env.py`` (append
these columns when the model / training asks for v2), ``fgdsearch`` (the cost).
"""

from __future__ import annotations

import numpy as np

from schedulers.ddqn.features import SEARCH_FEATURE_NAMES
from schedulers.gpu.policies.fgd import FGD
from schedulers.gpu.policies.fgdsearch import CAP, FGDSearch
from schedulers.gpu.state import GpuNodeState, GpuPod
from schedulers.gpu.typical import TypicalPods as SimTypicalPods

N_SEARCH = len(SEARCH_FEATURE_NAMES)
COST_LOG_SCALE = 4.0   # log1p(milli-GPU): a cost of ~400 (the largest seen) reads 1.5


def search_columns(base: np.ndarray, cost: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """The ``N_SEARCH`` search columns, float32 [K, N_SEARCH].

    ``base`` int [K] FGD's scores of the feasible nodes (only the length is used), ``cand``
    int [C] the positions of FGD's best class, ``cost`` float [C] their goodhome costs."""
    out = np.zeros((len(base), N_SEARCH), np.float32)
    if len(cand) == 0:
        return out
    cost = np.asarray(cost, np.float64)
    lo = cost.min()
    keep = cost <= lo
    out[cand, 0] = np.log1p(np.maximum(cost, 0.0)) / COST_LOG_SCALE
    out[cand, 1] = np.log1p(cost - lo) / COST_LOG_SCALE
    out[cand, 2] = keep
    out[cand, 3] = 1.0
    out[cand, 4] = keep.sum() / len(cand)
    return out


class SearchFeatures:
    """FGD's best class and FGD-Search's goodhome cost of its nodes, per decision."""

    def __init__(self, typical: SimTypicalPods, reach: int = 0, cap: int = CAP) -> None:
        self.search = FGDSearch(typical, mode="goodhome", reach=reach, cap=cap)

    def columns(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray:
        s = self.search
        base = FGD.score(s, state, pod, feasible)  # also fixes the after-states' GPU choice
        cand = np.flatnonzero(base >= base.max() - s.reach)
        if len(cand) >= 2 and len(s.g):
            cost = s.costs(state, pod, feasible, cand)
        else:   # nothing to search: the class is all kept (what FGD-Search does)
            cost = np.zeros(len(cand))
        return search_columns(base, cost, cand)
