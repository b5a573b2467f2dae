"""openb "FGD" policy (fragmentation gradient descent, R6.6 and R7 of ``docs/openb-protocol.md``).

Score of a node = trunc(100 * sigmoid((F(before) - F(after)) / 1000)) where F is the node's GPU
fragmentation with respect to the typical pods: each typical pod t contributes p_t * (free
milli-GPU on GPUs too small for t) when the node can host t (GPUs, CPU and model), else p_t *
(all free milli-GPU). For a shared pod the node's score is the best over its GPUs and that GPU
(lowest index on ties) is the one used.

Vectorised: F is computed for a batch of (CPU left, free-GPU row, model) states at once; the
"before" value of every node is cached and recomputed only for rows whose ``gen`` changed; a
shared pod's candidates are the distinct free amounts of each feasible node (equal amounts give
identical after-states)."""

from __future__ import annotations

import numpy as np

from schedulers.gpu.choice import choose_best, whole_gpus
from schedulers.gpu.policy import PolicyContext, register_policy
from schedulers.gpu.state import GpuNodeState, GpuPod
from schedulers.gpu.typical import TypicalPods


class FGD:
    name = "FGD"

    def __init__(self, typical: TypicalPods) -> None:
        self.typical = typical
        gpu = typical.milli > 0
        self.p = typical.freq
        self.p_sum = float(typical.freq.sum())
        self._hash = np.random.default_rng(0x5eed).integers(1, 2**62, size=64, dtype=np.int64)
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
        self._last: tuple | None = None

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
        """F for K states: ``cpu_left`` [K], ``free`` [K,W], ``model`` [K] -> float64 [K].

        Identical states (same CPU left, model and multiset of free amounts) are computed once;
        F is rounded to 1e-6 so that equal states always give a delta of exactly 0."""
        k = len(cpu_left)
        if k > 8:
            srt = np.sort(free, axis=1)
            key = srt @ self._hash[: srt.shape[1]] + cpu_left * 1000003 + model * 998244353
            uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
            if len(uniq) < k:
                return self._frag(state, cpu_left[first], srt[first], model[first])[inv.reshape(-1)]
        return self._frag(state, cpu_left, free, model)

    def _frag(self, state: GpuNodeState, cpu_left: np.ndarray, free: np.ndarray, model: np.ndarray) -> np.ndarray:
        total = free.sum(axis=1)
        ge = free[:, :, None] >= self.levels[None, None, :]
        fit_cnt = ge.sum(axis=1)
        fit_sum = (free[:, :, None] * ge).sum(axis=1)
        host = (
            (fit_cnt[:, self.lvl] >= self.t_count[None, :])
            & (cpu_left[:, None] >= self.t_cpu[None, :])
            & self._accept(state)[model]
        )
        host &= self.t_gpu[None, :]
        saved = (host * fit_sum[:, self.lvl]) @ self.p
        return np.round(total * self.p_sum - saved, 6)

    def _sync(self, state: GpuNodeState) -> None:
        if self._state_id != id(state) or len(self._f_before) != state.n:
            self._state_id = id(state)
            self._f_before = self.frag(state, state.cpu_left(), state.gpu_free, state.model)
            self._f_gen = state.gen.copy()

    def _frag_after(self, state: GpuNodeState, feasible: np.ndarray, cpu_after: np.ndarray, free_after: np.ndarray,
                    model: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(F before of ``feasible``, F of the after-states), refreshing stale "before" rows in
        the same batch (one vectorised call per pod)."""
        self._sync(state)
        stale = feasible[state.gen[feasible] != self._f_gen[feasible]]
        if len(stale):
            k = len(cpu_after)
            f = self.frag(state, np.concatenate((cpu_after, state.cpu_left(stale))),
                          np.vstack([free_after, state.gpu_free[stale]]), np.concatenate((model, state.model[stale])))
            self._f_before[stale] = f[k:]
            self._f_gen[stale] = state.gen[stale]
            return self._f_before[feasible], f[:k]
        return self._f_before[feasible], self.frag(state, cpu_after, free_after, model)

    @staticmethod
    def _to_score(delta: np.ndarray) -> np.ndarray:
        return (100.0 / (1.0 + np.exp(-delta / 1000.0))).astype(np.int64)

    def _after_rows(self, state: GpuNodeState, feasible: np.ndarray, top: np.ndarray, pod: GpuPod) -> tuple[np.ndarray, np.ndarray]:
        """(CPU left, free GPU rows) of the nodes ``feasible[top]`` after ``pod`` with FGD's
        GPU choice (vectorised; uses the per-node best free amounts the last ``FGD.score`` of
        this pod kept). Shared by the search policies built on FGD (``fgdlookahead``,
        ``fgdsearch``)."""
        cand = feasible[top]
        cpu_a = state.cpu_left(cand) - pod.cpu_nz
        free = state.gpu_free[cand].copy()
        if pod.milli <= 0:
            return cpu_a, free
        if not pod.is_shared:
            full = free == 1000
            take = full & (np.cumsum(full, axis=1) <= pod.count)
            return cpu_a, np.where(take, free - pod.milli, free)
        _, _, _, rows, values, sc, best = self._last
        hit = sc == best[rows]
        # per node (row k of feasible), the first free amount reaching the best score
        first = np.full(len(feasible), -1, np.int64)
        rk, idx = np.unique(rows[hit], return_index=True)
        first[rk] = values[hit][idx]
        v = first[top]
        g = np.argmax(free == v[:, None], axis=1)
        free[np.arange(len(cand)), g] -= pod.milli
        return cpu_a, free

    # ---------------------------------------------------------------- policy interface
    def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray:
        cpu_after = state.cpu_left(feasible) - pod.cpu_nz
        model = state.model[feasible]
        free = state.gpu_free[feasible]
        if not pod.is_shared:
            if pod.milli > 0:
                full = free == 1000
                take = full & (np.cumsum(full, axis=1) <= pod.count)
                free = np.where(take, 0, free)
            fb, fa = self._frag_after(state, feasible, cpu_after, free, model)
            return self._to_score(fb - fa)
        srt = np.sort(free, axis=1)
        first = np.ones(srt.shape, dtype=bool)
        first[:, 1:] = srt[:, 1:] != srt[:, :-1]
        rows, cols = np.nonzero((srt >= pod.milli) & first)
        after = srt[rows]
        after[np.arange(len(rows)), cols] -= pod.milli
        fb, fa = self._frag_after(state, feasible, cpu_after[rows], after, model[rows])
        sc = self._to_score(fb[rows] - fa)
        starts = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
        best = np.maximum.reduceat(sc, starts)
        # remember, per node, the free amounts whose GPU reaches the node's best score
        self._last = (pod, None, feasible, rows, srt[rows, cols], sc, best)
        return best

    def gpu_scores(self, state: GpuNodeState, node: int, pod: GpuPod) -> tuple[np.ndarray, np.ndarray]:
        """(GPU indices that fit a shared pod, their integer FGD scores) on ``node``."""
        row = state.gpu_free[node]
        gpus = np.flatnonzero(row >= pod.milli)
        after = np.repeat(row[None, :], len(gpus), axis=0)
        after[np.arange(len(gpus)), gpus] -= pod.milli
        idx = np.array([node])
        cpu_after = np.full(len(gpus), state.cpu_left(idx)[0] - pod.cpu_nz)
        fb, fa = self._frag_after(state, idx, cpu_after, after, np.full(len(gpus), state.model[node]))
        return gpus, self._to_score(fb[0] - fa)

    def choose_gpus(self, state: GpuNodeState, node: int, pod: GpuPod) -> list[int]:
        if not pod.is_shared:
            if pod.milli >= 1000:
                return whole_gpus(state.gpu_free[node], pod.count)
            return choose_best(state, node, pod)
        last = getattr(self, "_last", None)
        self._last = None
        if last is not None and last[0] is pod:
            _, _, feasible, rows, values, sc, best = last
            k = int(np.searchsorted(feasible, node))
            if k < len(feasible) and feasible[k] == node:
                sel = rows == k
                good = values[sel][sc[sel] == best[k]]
                row = state.gpu_free[node]
                return [int(np.flatnonzero(np.isin(row, good))[0])]
        gpus, sc = self.gpu_scores(state, node, pod)
        return [int(gpus[int(np.argmax(sc))])]


def _factory(ctx: PolicyContext) -> FGD:
    if ctx.typical is None:
        raise ValueError("FGD needs the typical pods of the workload")
    return FGD(ctx.typical)


register_policy("fgd", _factory)
