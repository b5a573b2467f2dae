"""The openb GPU-sharing experiment (``docs/openb-protocol.md``), offline.

One run = one workload, one policy, one seed: shuffle the original pods, tune the list to
1.3x the cluster's GPU capacity (clones appended / pods removed), schedule the arrivals one
at a time (filter, score, tie-break by a seeded node rank, GPU assignment, place) and record
the allocated milli-GPU after every arrival; columns 100 and 130 of the allocation curve are
the published figures.

State layout: :class:`schedulers.gpu.state.GpuNodeState` (numpy arrays, one row per node:
``cpu_cap/mem_cap/pods_cap/gpu_count/model`` fixed, ``cpu_used/mem_used/pods_used`` [N],
``gpu_free`` [N, W>=8] free milli-GPU per GPU (padding 0), ``tags`` [N, 9] GpuClustering tag
counts, ``gen`` [N] change counter). A pod is a :class:`schedulers.gpu.state.GpuPod`.

Policy interface (``schedulers.gpu.policy``): a factory ``f(ctx: PolicyContext)`` registered
with ``register_policy(name, f)`` returns an object with
``score(state, pod, feasible: int64[K]) -> int64[K]`` (higher wins; ties -> smallest rank) and
``choose_gpus(state, node, pod) -> list[int]`` (called on the pre-placement state). The six
openb policies are ``schedulers.gpu.policies``, ``ddqn`` is ``schedulers.ddqn.policy``; the
same objects back the live scheduler's GPU score plugins
(``schedulers.plugins.gpu_policy_score``).
``ctx.rng`` is the run's only generator, a bit-exact port of Go's ``math/rand`` seeded with
the run's seed (``schedulers.gpu.gorand.GoRand``; draw order: ``Shuffle`` of the original
pods, the tuning's ``Intn`` draws, ``Perm`` of the nodes for the tie-break ranks, then the
policy's own draws), ``ctx.typical`` the workload's typical pods, ``ctx.state`` the state.

Hooks for learned policies: ``run(..., on_decision=cb)`` calls
``cb(state, pod, feasible, chosen)`` before each placement (chosen = -1 when the pod failed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

import schedulers.ddqn.policy  # noqa: F401  registers the "ddqn" policy (torch stays unloaded until used)
from schedulers.gpu.gorand import GoRand, RunRandom
from schedulers.gpu.policies import get_policy_factory
from schedulers.gpu.policy import PolicyContext
from schedulers.gpu.state import GpuNodeState, GpuPod
from schedulers.gpu.traces import GPU_MILLI, NodeRecord, PodRecord, load_nodes, load_pods
from schedulers.gpu.typical import TypicalPods, typical_pods

TUNE_RATIO = 1.3
DecisionHook = Callable[[GpuNodeState, GpuPod, np.ndarray, int], None]


@dataclass
class Workload:
    """A cluster and a pod list, loaded once and reused by every run."""

    nodes: list[NodeRecord]
    pods: list[GpuPod]  # W0: name order
    typical: TypicalPods
    name: str = ""

    @classmethod
    def load(cls, nodes_csv: str | Path, pods_csv: str | Path) -> "Workload":
        recs: list[PodRecord] = load_pods(pods_csv)
        pods = [GpuPod.from_record(r) for r in recs]
        name = Path(pods_csv).stem.removeprefix("openb_pod_list_")
        return cls(load_nodes(nodes_csv), pods, typical_pods(pods), name)

    def new_state(self) -> GpuNodeState:
        return GpuNodeState.from_records(self.nodes)


@dataclass
class RunResult:
    seed: int
    alloc_at_100: float | None
    alloc_at_130: float | None
    arrivals: int
    failed: int
    arrived_milli: int
    used_milli: int
    seconds: float
    decision_ms: float
    curve: dict[int, float] = field(default_factory=dict, repr=False)

    def summary(self) -> dict:
        return {
            "seed": self.seed, "alloc_at_100": self.alloc_at_100, "alloc_at_130": self.alloc_at_130,
            "arrivals": self.arrivals, "failed": self.failed, "arrived_milli": self.arrived_milli,
            "used_milli": self.used_milli, "seconds": round(self.seconds, 3),
        }


def arrival_order(pods: Sequence[GpuPod], capacity_milli: int, rng: RunRandom) -> list[int]:
    """R3.1 + R3.2: indices into W0 of the arrivals (shuffled originals, then clones).

    Go's ``Shuffle`` of W0, then ``Intn(|W0|)`` per clone candidate (stop test with the
    candidate's per-GPU milli) or ``Intn(current length)`` per removal."""
    order = list(rng.shuffled(list(range(len(pods)))))
    target = TUNE_RATIO * capacity_milli
    total = sum(p.tot for p in pods)
    if total < target:
        n = len(pods)
        while True:
            j = rng.intn(n)
            if total + pods[j].milli > target:
                break
            order.append(j)
            total += pods[j].tot
    elif total > target:
        while total > target:
            k = rng.intn(len(order))
            total -= pods[order.pop(k)].tot
    return order


def node_ranks(n: int, rng: RunRandom) -> np.ndarray:
    """R2.2: tie-break rank of every node, ``rank[i] = Perm(n)[i]`` (smallest rank wins)."""
    return np.asarray(rng.perm(n), dtype=np.int64)


def columns(arrived: np.ndarray, used: np.ndarray, capacity_gpus: int) -> dict[int, float]:
    """R8.2/R8.3: the allocation curve by arrived-percentage column (0..130)."""
    a = np.round(arrived / capacity_gpus / 10).astype(np.int64)
    y = np.round(used / capacity_gpus / 10, 2)
    out: dict[int, float] = {}
    for k in range(0, 131):
        sel = y[a == k]
        if len(sel) == 0:
            sel = y[(a >= k - 1) & (a <= k + 1)]
        if len(sel):
            out[k] = float(np.round(sel.mean(), 2))
    return out


def choose(scores: np.ndarray, feasible: np.ndarray, rank: np.ndarray) -> int:
    """Max score; among equal maxima the smallest node rank (R5.4)."""
    best = feasible[scores == scores.max()]
    if len(best) == 1:
        return int(best[0])
    return int(best[np.argmin(rank[best])])


def run(
    workload: Workload,
    policy: str,
    seed: int,
    *,
    options: dict | None = None,
    on_decision: DecisionHook | None = None,
) -> RunResult:
    """One experiment (policy, seed) on ``workload``."""
    t0 = time.perf_counter()
    rng = GoRand(seed)
    state = workload.new_state()
    cap = state.gpu_capacity_milli()
    order = arrival_order(workload.pods, cap, rng)
    rank = node_ranks(state.n, rng)
    ctx = PolicyContext(rng=rng, typical=workload.typical, state=state, options=dict(options or {}))
    pol = get_policy_factory(policy)(ctx)
    pods = workload.pods
    arrived = np.zeros(len(order), dtype=np.int64)
    used = np.zeros(len(order), dtype=np.int64)
    acc_arrived = acc_used = failed = 0
    t_loop = time.perf_counter()
    for i, j in enumerate(order):
        pod = pods[j]
        acc_arrived += pod.tot
        feasible = np.flatnonzero(state.feasible_mask(pod))
        if len(feasible) == 0:
            failed += 1
            if on_decision is not None:
                on_decision(state, pod, feasible, -1)
        else:
            if len(feasible) == 1:
                node = int(feasible[0])
            else:
                node = choose(np.asarray(pol.score(state, pod, feasible)), feasible, rank)
            if on_decision is not None:
                on_decision(state, pod, feasible, node)
            gpus = pol.choose_gpus(state, node, pod) if pod.milli > 0 else []
            state.place(node, pod, gpus)
            acc_used += pod.tot
        arrived[i] = acc_arrived
        used[i] = acc_used
    t_end = time.perf_counter()
    gpus_total = cap // GPU_MILLI
    curve = columns(arrived, used, gpus_total)
    return RunResult(
        seed=seed,
        alloc_at_100=curve.get(100),
        alloc_at_130=curve.get(130),
        arrivals=len(order),
        failed=failed,
        arrived_milli=acc_arrived,
        used_milli=acc_used,
        seconds=t_end - t0,
        decision_ms=(t_end - t_loop) * 1000.0 / max(1, len(order)),
        curve=curve,
    )


def run_seeds(workload: Workload, policy: str, seeds: Sequence[int], options: dict | None = None) -> dict:
    """Runs every seed; the JSON-ready summary the CLI prints."""
    results = [run(workload, policy, s, options=options) for s in seeds]

    def mean(vals: list[float | None]) -> float | None:
        v = [x for x in vals if x is not None]
        return round(float(np.mean(v)), 2) if v else None

    return {
        "policy": policy,
        "workload": workload.name,
        "nodes": len(workload.nodes),
        "seeds": list(seeds),
        "alloc_at_100": mean([r.alloc_at_100 for r in results]),
        "alloc_at_130": mean([r.alloc_at_130 for r in results]),
        "per_seed": [r.summary() for r in results],
        "seconds_per_run": round(float(np.mean([r.seconds for r in results])), 3),
        "decision_ms": round(float(np.mean([r.decision_ms for r in results])), 4),
    }
