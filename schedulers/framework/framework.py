"""One profile's extension points. The scheduling cycle, synchronous and free of I/O:
pre-filter, filter (vectorised over node batches), node sampling (percentageOfNodesToScore),
pre-score, score, normalize, weighted sum, selection (ties at random), and on failure the
diagnosis and the post-filter (preemption); then reserve/unreserve. The binding cycle,
asynchronous: :meth:`Framework.run_pre_bind_plugins` and :meth:`Framework.run_bind_plugins`
with kube-scheduler's rules (PreBind in order, the first failure fails the binding; Bind in
order until one does not skip). ``scheduler.Scheduler`` drives both cycles; unit tests drive
the framework directly on a ``Cache``.

Sampling is kube-scheduler's: numFeasibleNodesToFind (``nodes_to_score``: adaptive
``max(5, 50 - n/125)`` % with at least 100 nodes, or the profile's
``percentageOfNodesToScore``), searched from a rotating start index that resumes after the
last node taken, stopping once enough feasible nodes were found (a window a little larger
than needed is filtered first, the rest only if it held too few). Plugins whose score is the
same for every node (``uniform_score``) are added as a constant, and the decision log's top
candidates are only worked out when the log reads them: neither changes any placement. The
openb simulator (``schedulers.sim``) scores every node and does not go through this sampling.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from schedulers.framework.cache import Cache
from schedulers.framework.interface import Code, CycleState, Diagnosis, FilterResult, Plugin, Status
from schedulers.framework.podinfo import PodInfo
from schedulers.framework.profile import NODE_RANK_ANNOTATION, Profile

MIN_FEASIBLE = 100
TOP_CANDIDATES = 3


def nodes_to_score(n: int, percentage: int) -> int:
    """kube-scheduler's numFeasibleNodesToFind."""
    if n < MIN_FEASIBLE or percentage >= 100:
        return n
    pct = percentage if percentage > 0 else max(5, 50 - n // 125)
    return max(MIN_FEASIBLE, n * pct // 100)


@dataclass
class Scores:
    """What the score phase computed for the scored (``feasible``) nodes: per plugin the raw
    scores (``raw``: an array, or ``None`` for a plugin that scored every node alike through
    its ``uniform_score`` shortcut), the normalised ones (an array, or the uniform int), the
    weights, optional value estimates (``values``: e.g. DDQN's Q-value advantages), the
    weighted totals (without the uniform constant ``const``), the best positions and the pick."""

    feasible: np.ndarray
    total: np.ndarray
    const: float
    best: np.ndarray
    pick: int
    raw: dict[str, np.ndarray | None] = field(default_factory=dict)
    normalized: dict[str, np.ndarray | int] = field(default_factory=dict)
    weights: dict[str, int] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class ScheduleResult:
    """``feasible``: feasible nodes found (the search stops once ``evaluated`` =
    numFeasibleNodesToFind were found, as kube-scheduler's); ``filtered``: nodes the filters
    looked at; ``reason_counts``: (plugin, reason) -> rejected nodes, (plugin, None) -> the
    plugin's total; ``scores``: the score
    phase (see :class:`Scores`), from which :meth:`candidates` builds the top nodes with each
    score plugin's raw, normalised and weighted score."""

    node: str | None
    cycle_state: CycleState
    feasible: int = 0
    evaluated: int = 0
    filtered: int = 0
    diagnosis: Diagnosis | None = None
    reason_counts: Counter = field(default_factory=Counter)
    scores: Scores | None = None
    _candidates: list[dict] | None = field(default=None, repr=False)
    _lazy: Callable[[], list[dict]] | None = field(default=None, repr=False)

    @property
    def candidates(self) -> list[dict]:
        """The top nodes (see :func:`top_candidates`); worked out on first read, which must
        come before the pod is reserved (uniform plugins' raw scores are computed then)."""
        if self._candidates is None:
            self._candidates = self._lazy() if self._lazy is not None else []
            self._lazy = None
        return self._candidates

    @candidates.setter
    def candidates(self, value: list[dict]) -> None:
        self._candidates, self._lazy = value, None

    def by_reason(self) -> Counter:
        out: Counter = Counter()
        for (_, reason), c in self.reason_counts.items():
            if reason is not None:
                out[reason] += c
        return out

    def failure_message(self, total: int) -> str:
        """"0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint {a: b}.";
        a PreFilter rejection is the plugin's message without node counts, as Kubernetes'
        ``FitError`` (``0/5 nodes are available: persistentvolumeclaim "x" not found.``)."""
        pre = self.diagnosis.pre_filter if self.diagnosis is not None else None
        if pre is not None and pre.reasons:
            return f"0/{total} nodes are available: {', '.join(pre.reasons)}."
        parts = sorted(f"{c} {r}" for r, c in self.by_reason().items())
        return f"0/{total} nodes are available: {', '.join(parts)}."


def _num(v: Any) -> Any:
    """A plain JSON number: Python ints stay, integral floats become ints, NaN is null."""
    if isinstance(v, float):
        if v != v:
            return None
        return int(v) if v.is_integer() and abs(v) < 2 ** 53 else v
    return v


def _vals(arr: np.ndarray, pos: np.ndarray) -> list:
    """``arr[pos]`` as plain JSON numbers (``tolist`` converts numpy scalars cheaply)."""
    out = arr[pos].tolist()
    return [_num(x) for x in out] if arr.dtype.kind == "f" else out


def top_candidates(nodes: list, sc: Scores, plan: list, cs: CycleState, pod: PodInfo, cache: Cache) -> list[dict]:
    """The TOP_CANDIDATES best nodes (stable order: ties by position), the picked one first if
    it is not among them, each with its weighted total and, per score plugin in profile
    order, ``{name, raw, normalized, weight, weighted}`` (and ``value`` where the plugin gives
    value estimates). For a plugin that took the uniform shortcut the raw score is its final one
    (no NormalizeScore), the ``uniform_raw`` it declares, or else its Score on these few nodes."""
    total, best, pick = sc.total, sc.best, sc.pick
    if len(best) >= TOP_CANDIDATES:
        top = [int(i) for i in best[:TOP_CANDIDATES]]  # what a stable argsort of -total starts with
    elif len(total) <= TOP_CANDIDATES:
        top = [int(i) for i in np.argsort(-total, kind="stable")]
    else:  # the stable top 3 without sorting every node: those at or above the 3rd best, in order
        thr = np.partition(total, len(total) - TOP_CANDIDATES)[len(total) - TOP_CANDIDATES]
        cand = np.flatnonzero(total >= thr)
        top = [int(i) for i in cand[np.argsort(-total[cand], kind="stable")][:TOP_CANDIDATES]]
    if pick not in top:
        top = [pick, *top[:-1]]
    pos = np.array(top, dtype=np.int64)
    rows = sc.feasible[pos]
    k = len(top)
    cols = []
    for pl, w, _, _ in plan:
        name = pl.name
        norm = sc.normalized.get(name)
        if norm is None:
            continue
        raw = sc.raw.get(name)
        norm_top = _vals(norm, pos) if isinstance(norm, np.ndarray) else [_num(norm)] * k
        if raw is not None:
            raw_top = _vals(raw, pos)
        elif getattr(pl, "normalize", None) is None:  # uniform, no NormalizeScore: raw = final
            raw_top = norm_top
        elif hasattr(pl, "uniform_raw"):  # uniform: the raw value the plugin declares for it
            raw_top = [_num(pl.uniform_raw)] * k
        else:  # uniform, undeclared: the raw scores of the top rows only
            raw_top = _vals(np.asarray(pl.score(cs, pod, cache, rows)), np.arange(k))
        val = sc.values.get(name)
        cols.append((name, w, raw_top, norm_top, None if val is None else [round(x, 6) for x in val[pos].tolist()]))
    totals = _vals(total + sc.const, pos)
    out = []
    for j, i in enumerate(top):
        plugins = []
        for name, w, raw_top, norm_top, val in cols:
            nv = norm_top[j]
            e = {"name": name, "raw": raw_top[j], "normalized": nv, "weight": w, "weighted": _num(w * nv) if nv is not None else None}
            if val is not None:
                e["value"] = val[j]
            plugins.append(e)
        out.append({"node": nodes[int(rows[j])].name, "score": totals[j], "chosen": i == pick, "plugins": plugins})
    return out


def node_ranks(cache: Cache) -> np.ndarray:
    """Each node row's ``scheduling.controlplane.io/node-rank`` annotation (the openb
    protocol's seeded node rank); nodes without a valid one rank after all others, by row."""
    def build() -> np.ndarray:
        big = 1 << 40
        out = np.empty(cache.n, dtype=np.int64)
        for i, n in enumerate(cache.nodes):
            raw = n.annotations.get(NODE_RANK_ANNOTATION)
            out[i] = int(raw) if raw is not None and str(raw).lstrip("-").isdigit() else big + i
        return out
    return cache.memo("node-rank", build)


class Framework:
    def __init__(self, profile: Profile, seed: int | None = None) -> None:
        self.profile = profile
        self.name = profile.scheduler_name
        self.pre_filters = profile.at("pre_filter")
        self.filters = profile.at("filter")
        self.post_filters = profile.at("post_filter")
        self.pre_scores = profile.at("pre_score")
        self.scorers = profile.scorers()
        # (plugin, weight, uniform_score or None, normalize or None): looked up once, not per pod
        self._score_plan = [(pl, w, getattr(pl, "uniform_score", None), getattr(pl, "normalize", None))
                            for pl, w in self.scorers]
        self.reservers = profile.at("reserve")
        self.pre_binders = profile.at("pre_bind")
        self.binders = profile.at("bind")
        sorts = profile.at("queue_sort_key")
        self.queue_sort: Plugin | None = sorts[0] if sorts else None
        self.rng = np.random.default_rng(seed)
        self.next_start = 0
        self._ring = np.zeros(0, dtype=np.int64)  # 0..n-1 twice: rotated windows are slices

    def ring(self, n: int) -> np.ndarray:
        if len(self._ring) != 2 * n:
            self._ring = np.concatenate([np.arange(n, dtype=np.int64)] * 2)
        return self._ring

    # ----------------------------------------------------------------- filtering
    def run_filters(self, cs: CycleState, pod: PodInfo, cache: Cache, idx: np.ndarray | None = None,
                    diag: Diagnosis | None = None, counts: Counter | None = None) -> np.ndarray:
        """Indices of nodes passing every filter (each rejected node is charged to the first
        plugin that rejected it: ``counts[(plugin, reason)]``)."""
        skip: set[str] = cs.setdefault("_skip", set())
        idx = self.ring(cache.n)[:cache.n] if idx is None else idx
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
        if counts is not None:
            counts[(plugin, None)] += int(bad.sum())  # the plugin's total (a node may have several reasons)
        for reason, mask in by_reason.items():
            mask = mask & bad
            if counts is not None:
                counts[(plugin, reason)] += int(mask.sum())
            if diag is not None:
                for r in idx[mask]:
                    diag.node_reasons.setdefault(cache.nodes[r].name, []).append(reason)
        if diag is not None:
            diag.plugins.add(plugin)
            if res.unresolvable:
                diag.unresolvable.update(cache.nodes[r].name for r in idx[bad])
            elif res.unresolvable_reasons:
                for reason in res.unresolvable_reasons & by_reason.keys():
                    diag.unresolvable.update(cache.nodes[r].name for r in idx[by_reason[reason] & bad])

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
            result.reason_counts = Counter({(pl.name, r): n for r in st.reasons})
            result.reason_counts[(pl.name, None)] = n
            result.filtered = n
            return result
        counts: Counter = Counter()
        k = nodes_to_score(n, self.profile.percentage)
        feasible, complete, filtered = self._find_feasible(cs, pod, cache, n, k, counts)
        result.feasible = len(feasible)
        result.filtered = filtered
        result.reason_counts = counts
        if len(feasible) == 0:
            diag = Diagnosis()
            self.run_filters(cs, pod, cache, diag=diag)
            result.diagnosis = diag
            return result
        if len(feasible) > k:
            feasible = feasible[:k]
            self.next_start = int(feasible[-1]) + 1
            if not complete:
                result.feasible = k
        result.evaluated = len(feasible)
        # Unlike kube-scheduler, a single feasible node is scored too: the decision record
        # shows every plugin's score (the choice is the same).
        for pl in self.pre_scores:
            if pl.name not in skip:
                pl.pre_score(cs, pod, cache, feasible)
        total: np.ndarray | None = None
        const = 0  # the plugins scoring every node alike (kept apart: same totals, less work)
        raw: dict[str, np.ndarray | None] = {}
        normalized: dict[str, np.ndarray | int] = {}
        values: dict[str, np.ndarray] = {}
        weights: dict[str, int] = {}
        for pl, w, uniform, norm in self._score_plan:
            weights[pl.name] = w
            if uniform is not None:
                u = uniform(cs, pod, cache)
                if u is not None:
                    raw[pl.name] = None
                    normalized[pl.name] = u
                    const += w * u
                    continue
            r = np.asarray(pl.score(cs, pod, cache, feasible))
            s = np.asarray(norm(cs, pod, cache, feasible, r)) if norm is not None else r
            raw[pl.name], normalized[pl.name] = r, s
            vfn = getattr(pl, "score_values", None)
            if vfn is not None:
                v = vfn(cs, pod, cache, feasible)
                if v is not None:
                    values[pl.name] = v
            if total is None:
                total = np.zeros(len(feasible), dtype=np.float64)
            total += w * s
        if total is None:
            total = np.zeros(len(feasible), dtype=np.float64)
            best = np.arange(len(feasible))
        else:
            best = np.flatnonzero(total == total.max())
        if len(best) == 1:
            pick = int(best[0])
        elif self.profile.tie_break == "nodeRank":
            pick = int(best[np.argmin(node_ranks(cache)[feasible[best]])])
        else:
            pick = int(best[int(self.rng.integers(len(best)))])
        nodes = cache.nodes
        result.node = nodes[int(feasible[pick])].name
        sc = result.scores = Scores(feasible, total, float(const), best, pick, raw, normalized, weights, values)
        plan = self._score_plan
        result._lazy = lambda: top_candidates(nodes, sc, plan, cs, pod, cache)
        return result

    def _find_feasible(self, cs: CycleState, pod: PodInfo, cache: Cache, n: int, k: int,
                       counts: Counter) -> tuple[np.ndarray, bool, int]:
        """Feasible nodes in rotated order from ``next_start`` (kube-scheduler's
        nextStartNodeIndex), whether every node was checked, and how many were. Like
        kube-scheduler it stops early: nodes are filtered in a window a little larger than
        ``k`` first, and the rest only if that window held fewer than ``k`` feasible nodes
        (filters judge each node on its own, so the result equals filtering all nodes and
        keeping the first ``k``)."""
        if k >= n:
            return self.run_filters(cs, pod, cache, counts=counts), True, n
        start = self.next_start % n
        ring = self.ring(n)
        w = min(n, k + k // 4 + 32)
        found = self.run_filters(cs, pod, cache, ring[start:start + w], counts=counts)
        if len(found) > k:
            return found, w == n, w
        if w < n:
            found = np.concatenate([found, self.run_filters(cs, pod, cache, ring[start + w:start + n], counts=counts)])
        # no more than k feasible nodes in all: scored in node order, as without sampling
        return (found if len(found) > k else np.sort(found)), True, n

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

    # ----------------------------------------------------------------- the binding cycle
    async def run_pre_bind_plugins(self, cs: CycleState, pod: PodInfo, node: str) -> Status:
        """Every PreBind plugin in order; the first status other than success ends it (the
        caller then unreserves the pod)."""
        for pl in self.pre_binders:
            st = await _run(pl, pl.pre_bind, "PreBind", cs, pod, node)
            if not st.is_success:
                return st
        return Status.ok()

    async def run_bind_plugins(self, cs: CycleState, pod: PodInfo, node: str) -> Status:
        """Bind plugins in order until one does not return Skip; its status is the result.
        No Bind plugin, or every one skipping, is a Skip status: the pod was not bound."""
        for pl in self.binders:
            st = await _run(pl, pl.bind, "Bind", cs, pod, node)
            if not st.is_skip:
                return st
        return Status(Code.SKIP, ["no Bind plugin bound the pod"])


async def _run(pl: Plugin, hook: Callable[..., Any], point: str, cs: CycleState, pod: PodInfo, node: str) -> Status:
    """One binding-cycle hook: ``None`` is success; a rejection keeps its reasons; an error
    (returned, or raised by the plugin) names the point and the plugin, as kube-scheduler's
    ``running PreBind plugin "X": ...``."""
    try:
        st = await hook(cs, pod, node)
    except Exception as e:  # a plugin's bug must not leave the pod assumed forever
        st = Status.error(f"{type(e).__name__}: {e}")
    if st is None or st.is_success:
        return Status.ok()
    if st.is_skip:
        return st
    if st.is_rejection:
        return Status(st.code, list(st.reasons), pl.name)
    return Status(Code.ERROR, [f"running {point} plugin {pl.name!r}: {'; '.join(st.reasons)}"], pl.name)

