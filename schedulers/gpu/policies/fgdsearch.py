"""openb "FGD-Search": a non-learned search inside FGD's best score class, the project's
second search baseline (issue 17, item 2; variants and figures in ``docs/placement.md`` 3).

FGD's integer score (``fgd.py``) leaves large classes of equal scores that the seeded node
rank decides. This policy searches only inside FGD's best class (optionally the classes
within ``reach`` points of it): every candidate c gets a cost from its after-state (the pod
placed with FGD's own GPU choice, only node c changed), candidates with cost <= min +
``slack`` are *kept*, kept ones win (by FGD's score, then the node rank), the others fall
behind. ``slack`` infinite reproduces FGD exactly. Three costs (option ``mode``):

- ``pack``: the after-state's free GPU share of c, sum(free) / GPUs — the
  fullest node of the class wins (a best fit inside FGD's class). Consistent from pod to
  pod, like the rank: it keeps filling the same nodes.
- ``scarcity``: the cluster-level loss of homes. H[n, t] = node n can host typical GPU pod
  t (enough fitting GPUs, CPU, model), cached per node by ``gen``; homes_t = sum_n H[n, t];
  cost(c) = sum_t p_t tot_t [c hosts t now, not after] / homes_t (:func:`cluster_loss`).
- ``goodhome`` (default): the same over *best* homes: S[n, t] = FGD's score of t on n (cached per
  node), best_t = max_n S, nbest_t = #nodes at best_t; for the t with nbest_t <= ``cap``,
  cost(c) = sum_t p_t tot_t [S(c) = best_t, S(c after) < best_t] / nbest_t — "max over the
  cluster of the next typical pod's score, only c changed".

Cost per decision on top of FGD: one vectorised pass over the class's after-states
(``pack``), plus the stale rows of the per-node caches (``scarcity``, ``goodhome``).
"""

from __future__ import annotations

import numpy as np

from schedulers.gpu.policies.fgd import FGD
from schedulers.gpu.policy import PolicyContext, register_policy
from schedulers.gpu.state import GpuNodeState, GpuPod
from schedulers.gpu.typical import TypicalPods

MODES = ("pack", "scarcity", "goodhome")
MODE = "goodhome"
SLACK = 0.0   # cost units of the mode (milli-GPU; pack: per GPU) tolerated above the best candidate
REACH = 0     # FGD score points below the best class that the search may also pick from
CAP = 64      # goodhome: typical pods with at most this many best homes are watched


def cluster_loss(host_before: np.ndarray, host_after: np.ndarray, homes: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """cost[c] = sum_t weight_t * [host_before[c, t] and not host_after[c, t]] / homes_t.

    ``host_before``/``host_after`` bool [C, T] (candidates x typical pods), ``homes`` int [T]
    (nodes of the whole cluster that are homes now; a candidate that is one counts in it, so
    it is >= 1 wherever a loss is possible), ``weight`` float [T] (p_t * tot_t)."""
    lost = host_before & ~host_after
    return (lost * (weight / np.maximum(homes, 1))[None, :]).sum(axis=1)


def pack_cost(free_after: np.ndarray, gpu_count: np.ndarray) -> np.ndarray:
    """Free milli-GPU per GPU of each after-state (``free_after`` [C, W], ``gpu_count`` [C]);
    a node without GPUs counts as full (0)."""
    return free_after.sum(axis=1) / np.maximum(gpu_count, 1)


def search_scores(base: np.ndarray, cost: np.ndarray, cand: np.ndarray, slack: float) -> np.ndarray:
    """Integer scores for the simulator's max-then-rank choice.

    ``base`` int [K] FGD's scores of every feasible node, ``cand`` int [C] the positions (into
    ``base``) searched, ``cost`` float [C] theirs. Kept candidates (cost <= min + slack)
    score above every other node, ordered among themselves by FGD's score (then the rank);
    every other node keeps FGD's score * 1000 (FGD's order, the rank inside a class)."""
    out = base.astype(np.int64) * 1000
    if len(cand) == 0:
        return out
    keep = cand[cost <= cost.min() + slack]
    out[keep] = int(base.max()) * 1000 + 500 + base[keep]
    return out


class FGDSearch(FGD):
    name = "FGDSearch"

    def __init__(self, typical: TypicalPods, mode: str = MODE, slack: float = SLACK, reach: int = REACH,
                 cap: int = CAP) -> None:
        super().__init__(typical)
        if mode not in MODES:
            raise ValueError(f"FGDSearch mode {mode!r}: one of {', '.join(MODES)}")
        self.mode, self.slack, self.reach, self.cap = mode, float(slack), int(reach), int(cap)
        g = np.flatnonzero(typical.milli > 0)
        self.g = g
        self.g_milli = typical.milli[g]
        self.g_count = typical.count[g]
        self.g_cpu = typical.cpu[g]
        self.g_weight = typical.freq[g] * typical.milli[g] * typical.count[g]
        self.g_levels, lvl = np.unique(self.g_milli, return_inverse=True)
        self.g_lvl = lvl.reshape(-1)
        self._cache_state = -1
        self._cache = np.zeros((0, len(g)))
        self._cache_gen = np.zeros(0, dtype=np.int64)
        self.last_cost: np.ndarray | None = None

    # ------------------------------------------------------------- per-state quantities
    def hosts(self, state: GpuNodeState, cpu_left: np.ndarray, free: np.ndarray, model: np.ndarray) -> np.ndarray:
        """Bool [B, T_gpu]: each state (CPU left, free row, model) can host each typical GPU pod."""
        fit = (free[:, :, None] >= self.g_levels[None, None, :]).sum(axis=1)
        acc = self._accept(state)[:, self.g]
        return (fit[:, self.g_lvl] >= self.g_count[None, :]) & (cpu_left[:, None] >= self.g_cpu[None, :]) & acc[model]

    def typical_scores(self, state: GpuNodeState, cpu_left: np.ndarray, free: np.ndarray, model: np.ndarray) -> np.ndarray:
        """Int [B, T_gpu]: FGD's score of each typical GPU pod on each state (GPU: the tightest
        fitting one for a shared pod, the lowest free ones for whole GPUs); -1 where the
        state cannot host it."""
        b, w = free.shape
        t = len(self.g)
        host = self.hosts(state, cpu_left, free, model)
        fb = self.frag(state, cpu_left, free, model)
        x = np.repeat(free[:, None, :], t, axis=1)
        milli = self.g_milli[None, :, None]
        shared = (self.g_count == 1) & (self.g_milli < 1000)
        gbest = np.argmin(np.where(x >= milli, x, np.iinfo(np.int64).max), axis=2)
        one = np.zeros(x.shape, dtype=bool)
        np.put_along_axis(one, gbest[:, :, None], True, axis=2)
        full = x == 1000
        take = full & (np.cumsum(full, axis=2) <= self.g_count[None, :, None])
        after = np.where(np.where(shared[None, :, None], one, take), x - milli, x)
        fa = self.frag(state, np.repeat(cpu_left, t) - np.tile(self.g_cpu, b), after.reshape(b * t, w),
                       np.repeat(model, t)).reshape(b, t)
        return np.where(host, self._to_score(fb[:, None] - fa), -1)

    def _node_cache(self, state: GpuNodeState) -> np.ndarray:
        """H (scarcity) or S (goodhome) for every node, refreshed for rows whose gen moved."""
        f = self.hosts if self.mode == "scarcity" else self.typical_scores
        if self._cache_state != id(state) or len(self._cache) != state.n:
            self._cache_state = id(state)
            self._cache = f(state, state.cpu_left(), state.gpu_free, state.model)
            self._cache_gen = state.gen.copy()
        stale = np.flatnonzero(state.gen != self._cache_gen)
        if len(stale):
            self._cache[stale] = f(state, state.cpu_left(stale), state.gpu_free[stale], state.model[stale])
            self._cache_gen[stale] = state.gen[stale]
        return self._cache

    # ------------------------------------------------------------- the search
    def costs(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """Cost of each candidate ``feasible[cand]`` (after ``FGD.score`` of this pod)."""
        nodes = feasible[cand]
        if self.mode == "pack":
            _, free_a = self._after_rows(state, feasible, cand, pod)
            return pack_cost(free_a, state.gpu_count[nodes])
        cache = self._node_cache(state)
        if self.mode == "scarcity":
            cpu_a, free_a = self._after_rows(state, feasible, cand, pod)
            after = self.hosts(state, cpu_a, free_a, state.model[nodes])
            return cluster_loss(cache[nodes], after, cache.sum(axis=0), self.g_weight)
        best = cache.max(axis=0)
        isbest = cache == best[None, :]
        nbest = isbest.sum(axis=0)
        watch = (best >= 0) & (nbest <= self.cap)
        at = isbest[nodes][:, watch]
        rows = np.flatnonzero(at.any(axis=1))
        cost = np.zeros(len(cand))
        if len(rows):
            cpu_a, free_a = self._after_rows(state, feasible, cand[rows], pod)
            sa = self.typical_scores(state, cpu_a, free_a, state.model[nodes[rows]])[:, watch]
            # a best home that stops being one, however the rest of the cluster scores
            cost[rows] = cluster_loss(at[rows], sa >= best[watch][None, :], nbest[watch], self.g_weight[watch])
        return cost

    def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray:
        base = FGD.score(self, state, pod, feasible)
        self.last_cost = None
        cand = np.flatnonzero(base >= base.max() - self.reach)
        if len(cand) < 2 or len(self.g) == 0:
            return base.astype(np.int64) * 1000
        cost = self.costs(state, pod, feasible, cand)
        self.last_cost = cost
        return search_scores(base, cost, cand, self.slack)


def _factory(ctx: PolicyContext) -> FGDSearch:
    if ctx.typical is None:
        raise ValueError("FGDSearch needs the typical pods of the workload")
    o = ctx.options
    return FGDSearch(ctx.typical, mode=str(o.get("mode", MODE)), slack=float(o.get("slack", SLACK)),
                     reach=int(o.get("reach", REACH)), cap=int(o.get("cap", CAP)))


register_policy("fgdsearch", _factory)
