"""openb "FGD-Lookahead": FGD with a two-step lookahead over the typical pods, the project's
non-learned search baseline (issue 17, item 2).

FGD's integer score (``fgd.py``) leaves large classes of equal scores, decided by the seeded
node rank. This policy keeps FGD's classes and orders the nodes *inside the best class* by a
lookahead: for each candidate node c, place the pod (FGD's own GPU choice), then score the
next arrival as FGD would on c's after-state, for the most frequent typical pods t (those
covering 80 % of the typical mass, at most 12): V(c) = sum_t p_t * score_t(c after the pod), a
node that stays a good home for the likely next pods ranks first. Equal V still goes to the
node rank. Scores: FGD's score * 1000 + the lookahead's rank position (0..999) in the best
class, FGD's score * 1000 elsewhere, so the outer selection (max, then rank) is unchanged.

Cost: one vectorised F evaluation of |best class| x |T| after-states per decision on top of
FGD's own (measured: ``docs/placement.md``).
"""

from __future__ import annotations

import numpy as np

from schedulers.gpu.policies.fgd import FGD
from schedulers.gpu.policy import PolicyContext, register_policy
from schedulers.gpu.state import GpuNodeState, GpuPod
from schedulers.gpu.typical import TypicalPods

MASS = 0.8
MAX_TYPICAL = 12
SLACK = 8.0


class FGDLookahead(FGD):
    name = "FGDLookahead"

    def __init__(self, typical: TypicalPods, mass: float = MASS, max_typical: int = MAX_TYPICAL,
                 slack: float = SLACK) -> None:
        super().__init__(typical)
        self.slack = slack
        order = np.argsort(-typical.freq, kind="stable")
        cum = np.cumsum(typical.freq[order])
        k = int(min(max_typical, np.searchsorted(cum, mass * cum[-1]) + 1))
        self.la = order[:k]
        self.la_p = typical.freq[self.la] / typical.freq[self.la].sum()

    def score(self, state: GpuNodeState, pod: GpuPod, feasible: np.ndarray) -> np.ndarray:
        base = FGD.score(self, state, pod, feasible)
        last = self._last
        top = np.flatnonzero(base == base.max())
        out = base.astype(np.int64) * 1000
        if len(top) < 2:
            return out
        cand = feasible[top]
        cpu_a, free_a = self._after_rows(state, feasible, top, pod)
        model = state.model[cand]
        f_before = self.frag(state, cpu_a, free_a, model)
        value = np.zeros(len(cand))
        for t, p in zip(self.la, self.la_p):
            milli, count, cpu = int(self.typical.milli[t]), int(self.typical.count[t]), int(self.typical.cpu[t])
            types = self.typical.types[t]
            ok = cpu_a >= cpu
            if types:
                acc = np.array([state.models[m] in types if m >= 0 else False for m in model], dtype=bool)
                ok &= acc
            if milli <= 0:
                fa = self.frag(state, cpu_a - cpu, free_a, model)
                sc = self._to_score(f_before - fa)
            elif count == 1 and milli < 1000:
                # best GPU for the typical shared pod on each after-state
                best = np.zeros(len(cand), np.int64)
                fits = free_a >= milli
                for g in range(free_a.shape[1]):
                    rows = np.flatnonzero(fits[:, g])
                    if len(rows) == 0:
                        continue
                    fr = free_a[rows].copy()
                    fr[:, g] -= milli
                    s = self._to_score(f_before[rows] - self.frag(state, cpu_a[rows] - cpu, fr, model[rows]))
                    best[rows] = np.maximum(best[rows], s)
                ok &= fits.any(axis=1)
                sc = best
            else:
                full = free_a == 1000
                ok &= full.sum(axis=1) >= count
                take = full & (np.cumsum(full, axis=1) <= count)
                fa = self.frag(state, cpu_a - cpu, np.where(take, 0, free_a), model)
                sc = self._to_score(f_before - fa)
            value += p * np.where(ok, sc, 0)
        # a veto, not a re-ordering: nodes within ``slack`` of the best lookahead value stay
        # tied (the node rank decides among them, which packs nodes in one consistent
        # order); only clearly worse after-states drop behind
        out[top] += (value >= value.max() - self.slack).astype(np.int64)
        self._last = last
        return out


def _factory(ctx: PolicyContext) -> FGDLookahead:
    if ctx.typical is None:
        raise ValueError("FGDLookahead needs the typical pods of the workload")
    return FGDLookahead(ctx.typical, slack=float(ctx.options.get("slack", SLACK)))


register_policy("fgdlookahead", _factory)
