"""One scheduling cycle of one profile, synchronous and free of I/O: pre-filter, filter
(vectorised over all nodes), node sampling (percentageOfNodesToScore), pre-score, score,
normalize, weighted sum, selection (ties at random), and on failure the diagnosis and the
post-filter (preemption). ``scheduler.Scheduler`` calls :meth:`Framework.schedule` and does
reserve/assume/bind; unit tests drive it directly on a ``Cache``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from schedulers.framework.cache import Cache
from schedulers.framework.interface import CycleState, Diagnosis, FilterResult, Status
from schedulers.framework.podinfo import PodInfo
from schedulers.framework.profile import Profile

MIN_FEASIBLE = 100
TOP_CANDIDATES = 3


def nodes_to_score(n: int, percentage: int) -> int:
    """kube-scheduler's numFeasibleNodesToFind."""
    if n < MIN_FEASIBLE or percentage >= 100:
        return n
    pct = percentage if percentage > 0 else max(5, 50 - n // 125)
    return max(MIN_FEASIBLE, n * pct // 100)


@dataclass
class ScheduleResult:
    node: str | None
    cycle_state: CycleState
    feasible: int = 0
    evaluated: int = 0
    candidates: list[dict] = field(default_factory=list)
    diagnosis: Diagnosis | None = None
    reason_counts: Counter = field(default_factory=Counter)

    def failure_message(self, total: int) -> str:
        """"0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint {a: b}."."""
        parts = sorted(f"{c} {r}" for r, c in self.reason_counts.items())
        return f"0/{total} nodes are available: {', '.join(parts)}."


class Framework:
    def __init__(self, profile: Profile, seed: int | None = None) -> None:
        self.profile = profile
        self.name = profile.scheduler_name
        self.pre_filters = profile.at("pre_filter")
        self.filters = profile.at("filter")
        self.post_filters = profile.at("post_filter")
        self.pre_scores = profile.at("pre_score")
        self.scorers = profile.scorers()
        self.reservers = profile.at("reserve")
        self.rng = np.random.default_rng(seed)
        self.next_start = 0

    # ----------------------------------------------------------------- filtering
    def run_filters(self, cs: CycleState, pod: PodInfo, cache: Cache, idx: np.ndarray | None = None,
                    diag: Diagnosis | None = None, counts: Counter | None = None) -> np.ndarray:
        """Indices of nodes passing every filter (each rejected node is charged to the first
        plugin that rejected it)."""
        skip: set[str] = cs.setdefault("_skip", set())
        idx = np.arange(cache.n) if idx is None else idx
        for pl in self.filters:
            if pl.name in skip or not len(idx):
                continue
            res: FilterResult = pl.filter(cs, pod, cache, idx)
            if res.ok.all():
                continue
            bad = ~res.ok
            if diag is not None or counts is not None:
                self._record(pl.name, res, idx, bad, cache, diag, counts)
            idx = idx[res.ok]
        return idx

    @staticmethod
    def _record(plugin: str, res: FilterResult, idx: np.ndarray, bad: np.ndarray, cache: Cache,
                diag: Diagnosis | None, counts: Counter | None) -> None:
        by_reason = res.reasons if res.reasons else {res.reason or f"node(s) rejected by {plugin}": bad}
        for reason, mask in by_reason.items():
            mask = mask & bad
            if counts is not None:
                counts[reason] += int(mask.sum())
            if diag is not None:
                for r in idx[mask]:
                    diag.node_reasons.setdefault(cache.nodes[r].name, []).append(reason)
        if diag is not None:
            diag.plugins.add(plugin)
            if res.unresolvable:
                diag.unresolvable.update(cache.nodes[r].name for r in idx[bad])

    def fits(self, cs: CycleState, pod: PodInfo, cache: Cache, row: int) -> bool:
        return len(self.run_filters(cs, pod, cache, np.array([row], dtype=np.int64))) == 1

    # ----------------------------------------------------------------- the cycle
    def schedule(self, pod: PodInfo, cache: Cache) -> ScheduleResult:
        cache.refresh()
        cs = CycleState()
        skip: set[str] = set()
        cs["_skip"] = skip
        n = cache.n
        result = ScheduleResult(None, cs)
        if n == 0:
            result.diagnosis = Diagnosis()
            return result
        for pl in self.pre_filters:
            st: Status | None = pl.pre_filter(cs, pod, cache)
            if st is None or st.is_success:
                continue
            if st.is_skip:
                skip.add(pl.name)
                continue
            diag = Diagnosis(pre_filter=st, plugins={pl.name})
            diag.node_reasons = {nd.name: list(st.reasons) for nd in cache.nodes}
            if st.code.value == "UnschedulableAndUnresolvable":
                diag.unresolvable = set(diag.node_reasons)
            result.diagnosis = diag
            result.reason_counts = Counter({r: n for r in st.reasons})
            return result
        counts: Counter = Counter()
        feasible = self.run_filters(cs, pod, cache, counts=counts)
        result.feasible = len(feasible)
        if len(feasible) == 0:
            diag = Diagnosis()
            self.run_filters(cs, pod, cache, diag=diag)
            result.diagnosis = diag
            result.reason_counts = counts
            return result
        k = nodes_to_score(n, self.profile.percentage)
        if len(feasible) > k:
            start = self.next_start % n
            rolled = np.concatenate([feasible[feasible >= start], feasible[feasible < start]])
            feasible = rolled[:k]
            self.next_start = int(feasible[-1]) + 1
        result.evaluated = len(feasible)
        if len(feasible) == 1:
            result.node = cache.nodes[int(feasible[0])].name
            result.candidates = [{"node": result.node, "score": None}]
            return result
        for pl in self.pre_scores:
            if pl.name not in skip:
                pl.pre_score(cs, pod, cache, feasible)
        total = np.zeros(len(feasible), dtype=np.float64)
        per_plugin: dict[str, np.ndarray] = {}
        for pl, w in self.scorers:
            s = np.asarray(pl.score(cs, pod, cache, feasible))
            norm = getattr(pl, "normalize", None)
            if norm is not None:
                s = np.asarray(norm(cs, pod, cache, feasible, s))
            per_plugin[pl.name] = s
            total += w * s
        best = np.flatnonzero(total == total.max())
        pick = int(best[0]) if len(best) == 1 else int(best[int(self.rng.integers(len(best)))])
        result.node = cache.nodes[int(feasible[pick])].name
        top = np.argsort(-total, kind="stable")[:TOP_CANDIDATES]
        if pick not in top:
            top = np.r_[pick, top[:-1]]
        result.candidates = [
            {"node": cache.nodes[int(feasible[i])].name, "score": float(total[i]),
             "plugins": {name: float(v[i]) for name, v in per_plugin.items()}}
            for i in top
        ]
        return result

    def reserve(self, cs: CycleState, pod: PodInfo, node: str, cache: Cache) -> None:
        for pl in self.reservers:
            pl.reserve(cs, pod, node, cache)

    def unreserve(self, cs: CycleState, pod: PodInfo, node: str, cache: Cache) -> None:
        for pl in reversed(self.profile.at("unreserve")):
            pl.unreserve(cs, pod, node, cache)

    def preempt(self, cs: CycleState, pod: PodInfo, cache: Cache, diag: Diagnosis):
        """(nominated node or None, victims, message)."""
        for pl in self.post_filters:
            res, victims, msg = pl.post_filter(cs, pod, cache, diag, lambda row: self.fits(CycleState(_skip=cs.get("_skip", set())), pod, cache, row))
            if res is not None and res.nominated_node:
                return res.nominated_node, victims, msg
            return None, [], msg
        return None, [], ""
