"""Step-by-step openb environment for training the DDQN scorer.

Why: training needs the openb protocol one decision at a time: the pod at hand, its feasible
nodes as actions (with feature rows), and the state update after the chosen node. This module
adapts the simulator's public pieces (``schedulers.gpu.state``: ``GpuNodeState`` with the
protocol filter ``feasible_mask`` and ``place``; ``schedulers.gpu.choice.whole_gpus``;
``schedulers.gpu.traces``
for reading the CSVs) rather than copying them, and adds what the benchmark does not have:
episodes over *resized* clusters (a random subset of the nodes) and *resampled* pod lists (a
random mixture of the given lists, scaled to the subset, then shuffled and tuned to 130% of
its GPU capacity as in R3.2 of ``docs/openb-protocol.md``), so the scorer does not learn one trace by heart.

Neighbours: ``train.py`` drives it; ``features.py`` builds the rows; ``select`` is the
protocol's arg-max with ties decided by the seeded node rank (R5.4), shared with the plugin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from schedulers.ddqn.features import N_FEATURES, N_FEATURES_V2, FeatureBuilder, TypicalPods
from schedulers.ddqn.searchfeat import SearchFeatures
from schedulers.sim.openb import arrival_order
from schedulers.gpu.choice import whole_gpus
from schedulers.gpu.gorand import NumpyRandom
from schedulers.gpu.state import GpuNodeState, GpuPod
from schedulers.gpu.traces import NodeRecord, PodRecord
from schedulers.gpu.typical import typical_pods


def select(scores: np.ndarray, rank: np.ndarray) -> int:
    """Index of the best score; ties go to the smallest node rank (R2.2/R5.4)."""
    best = np.flatnonzero(scores == scores.max())
    return int(best[np.argmin(rank[best])]) if len(best) > 1 else int(best[0])


@dataclass
class EpisodeSpec:
    nodes_min: int = 160
    nodes_max: int = 400
    load_min: float = 0.85     # original (untuned) GPU request / subset capacity
    load_max: float = 1.15
    dirichlet: float = 0.7     # mixture concentration over the given pod lists
    kind_mix: float = 0.0      # probability of an episode resampled by pod kind instead


@dataclass
class Decision:
    X: np.ndarray      # (F, env.n_features) feature rows of the feasible nodes
    idx: np.ndarray    # (F,) node indices
    gpu: np.ndarray    # (F,) fragmentation-best GPU per node (shared pods)
    rank: np.ndarray   # (F,) tie-break rank of each feasible node


class OpenbEnv:
    """Episodes of the openb protocol on resized clusters and resampled pod lists."""

    def __init__(self, nodes: list[NodeRecord], pod_lists: list[list[PodRecord]], spec: EpisodeSpec | None = None,
                 search_features: bool = False) -> None:
        self.all_nodes = nodes
        # v2 rows: FGD-Search's cost of each candidate appended (``searchfeat.py``)
        self.search_features = search_features
        self.n_features = N_FEATURES_V2 if search_features else N_FEATURES
        self.sf: SearchFeatures | None = None
        self.pod_lists = [[GpuPod.from_record(p) for p in pl] for pl in pod_lists]
        # pods of all lists by kind (CPU-only, shared, one whole GPU, several GPUs), for
        # episodes whose kind proportions are drawn at random (workloads unlike any list)
        pool = [p for pl in self.pod_lists for p in pl]
        kinds = [[p for p in pool if p.milli <= 0], [p for p in pool if p.is_shared],
                 [p for p in pool if p.milli > 0 and not p.is_shared and p.count <= 1],
                 [p for p in pool if p.milli > 0 and not p.is_shared and p.count > 1]]
        self.kinds = [k for k in kinds if k]
        self.spec = spec or EpisodeSpec()
        self.n_nodes = 0
        self.failed_gpu = 0.0
        self.pending_penalty = 0.0

    def reset(self, rng: np.random.Generator, full_list: int | None = None) -> None:
        """New episode. ``full_list``: the whole cluster and that pod list as is (the
        benchmark's set-up, for validation); otherwise a resized cluster and a resampled mix."""
        sp = self.spec
        if full_list is None:
            n = int(rng.integers(sp.nodes_min, min(sp.nodes_max, len(self.all_nodes)) + 1))
            pick = np.sort(rng.choice(len(self.all_nodes), size=n, replace=False))
        else:
            n, pick = len(self.all_nodes), np.arange(len(self.all_nodes))
        self.state = GpuNodeState.from_records([self.all_nodes[i] for i in pick])
        self.n_nodes = n
        cap = self.state.gpu_capacity_milli()
        w0: list[GpuPod] = []
        if full_list is not None:
            w0 = list(self.pod_lists[full_list])
        else:
            groups = self.kinds if rng.random() < sp.kind_mix else self.pod_lists
            w = rng.dirichlet([sp.dirichlet] * len(groups)) if len(groups) > 1 else np.ones(1)
            goal = rng.uniform(sp.load_min, sp.load_max) * cap
            tot = 0
            while tot < goal:
                pl = groups[int(rng.choice(len(groups), p=w))]
                p = pl[int(rng.integers(len(pl)))]
                w0.append(p)
                tot += p.tot
        sim_typical = typical_pods(w0)
        self.typical = TypicalPods.from_sim(sim_typical, self.state.models)
        self.sf = SearchFeatures(sim_typical) if self.search_features else None
        self.arrivals = [w0[i] for i in arrival_order(w0, cap, NumpyRandom(rng))]
        self.rank = rng.permutation(n)
        self.fb = FeatureBuilder(self.typical, self.state)
        self.cap = cap
        self.pos = 0
        self.arrived = 0
        self.trace: list[tuple[float, float]] = []
        self.failed_gpu = 0.0
        self.pending_penalty = 0.0
        self._cur: tuple[GpuPod, Decision] | None = None

    def next_decision(self) -> Decision | None:
        """Advance to the next pod with a feasible node (failing the others); None at the end."""
        st = self.state
        while self.pos < len(self.arrivals):
            pod = self.arrivals[self.pos]
            self.pos += 1
            self.arrived += pod.tot
            idx = np.flatnonzero(st.feasible_mask(pod))
            if len(idx) == 0:
                self.failed_gpu += pod.tot / 1000.0
                self.pending_penalty -= pod.tot / 1000.0
                self._record()
                continue
            X, gpu = self.fb.build(st, idx, pod)
            if self.sf is not None:
                X = np.hstack([X, self.sf.columns(st, pod, idx)])
            d = Decision(X=X, idx=idx, gpu=gpu, rank=self.rank[idx])
            self._cur = (pod, d)
            return d
        return None

    def place(self, j: int) -> None:
        assert self._cur is not None
        pod, d = self._cur
        node = int(d.idx[j])
        if pod.milli <= 0:
            gpus: list[int] = []
        elif pod.is_shared:
            gpus = [int(d.gpu[j])]
        else:
            gpus = whole_gpus(self.state.gpu_free[node], pod.count)
        self.state.place(node, pod, gpus)
        self._cur = None
        self._record()

    def take_penalty(self) -> float:
        p, self.pending_penalty = self.pending_penalty, 0.0
        return p

    def _record(self) -> None:
        self.trace.append((self.arrived / self.cap * 100.0, self.state.gpu_used_milli() / self.cap * 100.0))

    def alloc_pct(self, at: float = 130.0) -> float:
        """GPU allocated (% of capacity) averaged over the events arrived within 0.5 of ``at``."""
        if not self.trace:
            return 0.0
        a = np.asarray(self.trace)
        sel = np.abs(a[:, 0] - at) <= 0.5
        return float(a[sel, 1].mean() if sel.any() else a[-1, 1])
