"""openb "FGD" policy (fragmentation gradient descent, R6.6 and R7 of ``openb-protocol.md``).

Score of a node = trunc(100 * sigmoid((F(before) - F(after)) / 1000)) where F is the node's
GPU fragmentation with respect to the typical pods: each typical pod t contributes
p_t * (free milli-GPU on GPUs too small for t) when the node can host t (GPUs, CPU and model),
else p_t * (all free milli-GPU). For a shared pod the node's score is the best over its GPUs
and that GPU (lowest index on ties) is the one used.

Vectorised: F is computed for a batch of (CPU left, free-GPU row, model) states at once; the
"before" value of every node is cached and recomputed only for rows whose ``gen`` changed;
a shared pod's candidates are the distinct free amounts of each feasible node (equal amounts
give identical after-states).
"""

from __future__ import annotations

import numpy as np

from schedulers.plugins.dot_prod import choose_best
from schedulers.sim.registry import PolicyContext, register_policy
from schedulers.sim.state import GpuNodeState, GpuPod, whole_gpus
from schedulers.sim.typical import TypicalPods


class FGD:
    name = "FGD"

    def __init__(self, typical: TypicalPods) -> None:
        self.typical = typical
        gpu = typical.milli > 0
        self.p = typical.freq
        self.levels, lvl = np.unique(np.where(gpu, typical.milli, 1), return_inverse=True)
        self.lvl = lvl.reshape(-1)
        self.t_count = typical.count
        self.t_cpu = typical.cpu
        self.t_gpu = gpu
        self._acc_models: list[str] | None = None
        self._acc = np.zeros((0, 0), dtype=bool)
        self._state_id = -1
        self._f_before = np.zeros(0)
        self._f_gen = np.zeros(0, dtype=np.int64)

    # ---------------------------------------------------------------- fragmentation F
    def _accept(self, state: GpuNodeState) -> np.ndarray:
        """Bool [M+1, T]: model m (row M = no model) accepted by typical pod t."""
        if self._acc_models is not state.models:
            rows = [[(not ts) or (m in ts) for ts in self.typical.types] for m in state.models]
            rows.append([not ts for ts in self.typical.types])
            self._acc = np.array(rows, dtype=bool).reshape(len(state.models) + 1, len(self.typical))
            self._acc_models = state.models
        return self._acc

    def frag(self, state: GpuNodeState, cpu_left: np.ndarray, free: np.ndarray, model: np.ndarray) -> np.ndarray:
        """F for K states: ``cpu_left`` [K], ``free`` [K,W], ``model`` [K] -> float64 [K]."""
        total = free.sum(axis=1)
        ge = free[:, :, None] >= self.levels[None, None, :]
        fit_cnt = ge.sum(axis=1)
        fit_sum = (free[:, :, None] * ge).sum(axis=1)
        host = (
            self.t_gpu[None, :]
            & (fit_cnt[:, self.lvl] >= self.t_count[None, :])
            & (cpu_left[:, None] >= self.t_cpu[None, :])
            & self._accept(state)[model]
        )
        contrib = np.where(host, total[:, None] - fit_sum[:, self.lvl], total[:, None])
        return (contrib * self.p[None, :]).sum(axis=1)

    def before(self, state: GpuNodeState, idx: np.ndarray) -> np.ndarray:
        """Cached F of the current state of nodes ``idx``."""
        if self._state_id != id(state) or len(self._f_before) != state.n:
            self._state_id = id(state)
            self._f_before = self.frag(state, state.cpu_left(), state.gpu_free, state.model)
            self._f_gen = state.gen.copy()
        stale = idx[state.gen[idx] != self._f_gen[idx]]
        if len(stale):
            self._f_before[stale] = self.frag(state, state.cpu_left(stale), state.gpu_free[stale], state.model[stale])
            self._f_gen[stale] = state.gen[stale]
        return self._f_before[idx]

    @staticmethod
    def _to_score(delta: np.ndarray) -> np.ndarray:
        return (100.0 / (1.0 + np.exp(-delta / 1000.0))).astype(np.int64)

    # ---------------------------------------------------------------- policy interface
    def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray:
        fb = self.before(state, feasible)
        cpu_after = state.cpu_left(feasible) - pod.cpu_nz
        model = state.model[feasible]
        free = state.gpu_free[feasible]
        if not pod.is_shared:
            if pod.milli > 0:
                full = free == 1000
                take = full & (np.cumsum(full, axis=1) <= pod.count)
                free = np.where(take, 0, free)
            return self._to_score(fb - self.frag(state, cpu_after, free, model))
        srt = np.sort(free, axis=1)
        first = np.ones(srt.shape, dtype=bool)
        first[:, 1:] = srt[:, 1:] != srt[:, :-1]
        rows, cols = np.nonzero((srt >= pod.milli) & first)
        after = srt[rows]
        after[np.arange(len(rows)), cols] -= pod.milli
        sc = self._to_score(fb[rows] - self.frag(state, cpu_after[rows], after, model[rows]))
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        return np.maximum.reduceat(sc, starts)

    def gpu_scores(self, state: GpuNodeState, node: int, pod: GpuPod) -> tuple[np.ndarray, np.ndarray]:
        """(GPU indices that fit a shared pod, their integer FGD scores) on ``node``."""
        row = state.gpu_free[node]
        gpus = np.flatnonzero(row >= pod.milli)
        after = np.repeat(row[None, :], len(gpus), axis=0)
        after[np.arange(len(gpus)), gpus] -= pod.milli
        idx = np.array([node])
        fb = self.before(state, idx)[0]
        cpu_after = np.full(len(gpus), state.cpu_left(idx)[0] - pod.cpu_nz)
        fa = self.frag(state, cpu_after, after, np.full(len(gpus), state.model[node]))
        return gpus, self._to_score(fb - fa)

    def choose_gpus(self, state: GpuNodeState, node: int, pod: GpuPod) -> list[int]:
        if not pod.is_shared:
            if pod.milli >= 1000:
                return whole_gpus(state.gpu_free[node], pod.count)
            return choose_best(state, node, pod)
        gpus, sc = self.gpu_scores(state, node, pod)
        return [int(gpus[int(np.argmax(sc))])]


def _factory(ctx: PolicyContext) -> FGD:
    if ctx.typical is None:
        raise ValueError("FGD needs the typical pods of the workload")
    return FGD(ctx.typical)


register_policy("fgd", _factory)
