"""An upper bound on the GPU allocation any scheduler can reach on an openb run: how much room
is left above FGD, DDQN and the search baseline (issue 17, item 2).

Why: the protocol's figure is the allocated milli-GPU averaged over the events of a column
(``docs/openb-protocol.md`` R8). At every event, what any policy has allocated is a set of
pods *that have arrived so far*, placed feasibly. So the allocation is at most OPT(t), the most
milli-GPU that any feasible placement of a subset of the pods arrived by event t can hold —
an offline, hindsight packing that knows the whole list and may drop any pod. OPT(t) grows
with t, so a column's mean is at most OPT at the column's last event. OPT itself is an integer
program; this module bounds it from above by a linear relaxation solved with HiGHS
(``scipy.optimize.linprog``), so the reported bound is an upper bound on every policy, online
or not. The proof is in ``docs/placement.md`` ("The upper bound").

The relaxation (node types k = identical (cpu, memory, GPUs, model) nodes, n_k of them; pod
classes c = identical (cpu, memory, count, milli, models) GPU pods, N_c arrived; x_ck >= 0
the number of class-c pods on type-k nodes):

    max  sum_ck  count_c * milli_c * x_ck
    s.t. sum_k x_ck <= N_c                                   (each pod placed at most once)
         sum_c cpu_c x_ck <= n_k cpu_k,  sum_c mem_c x_ck <= n_k mem_k     (per node, summed)
         sum_c count_c * u(milli_c / 1000) * x_ck <= n_k * G_k   for every u in U
         x_ck = 0 where type k's model is refused by c, or G_k < count_c

U holds the identity (milli capacity) and the dual feasible functions of Fekete and
Schepers, u_q(x) = x if (q+1)x is an integer else floor((q+1)x)/q, q = 1..6: for the pods
sharing one GPU, sum of milli <= 1000 implies sum of u_q(milli/1000) <= 1, and a whole GPU
counts 1, so each inequality holds GPU by GPU and hence summed over a type's GPUs. CPU-only
pods never add GPU, so dropping them (they are optional in OPT) loses nothing.

Neighbours: ``schedulers.sim.openb`` (the arrival order and columns it bounds),
``schedulers.sim.compare`` (the side-by-side table).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from schedulers.gpu.state import GpuPod
from schedulers.gpu.traces import GPU_MILLI, NodeRecord

DFF_ORDERS = (1, 2, 3, 4, 5, 6)


def dff(q: int, x: float) -> float:
    """Fekete-Schepers dual feasible function u_q on [0, 1]."""
    y = (q + 1) * x
    if abs(y - round(y)) < 1e-12:
        return x
    return math.floor(y) / q


@dataclass(frozen=True)
class BoundResult:
    milli: float          # LP optimum, milli-GPU
    percent: float        # of the cluster's GPU capacity, rounded *up* to 0.01
    classes: int
    node_types: int


def packing_bound(nodes: Sequence[NodeRecord], pods: Sequence[GpuPod]) -> BoundResult:
    """Upper bound on the milli-GPU any feasible placement of a subset of ``pods`` holds."""
    types = Counter((n.cpu_milli, n.memory_mib, n.gpu, n.model) for n in nodes)
    ktypes = sorted(types)
    classes = Counter((p.cpu, p.mem, p.count, p.milli, p.types) for p in pods if p.milli > 0 and p.count > 0)
    cls = sorted(classes)
    cap = sum(n.gpu for n in nodes) * GPU_MILLI
    if not cls or cap == 0:
        return BoundResult(0.0, 0.0, len(cls), len(ktypes))
    var: list[tuple[int, int]] = []
    for ci, (cpu, mem, count, milli, models) in enumerate(cls):
        for ki, (kcpu, kmem, kg, kmodel) in enumerate(ktypes):
            if kg < count or cpu > kcpu or mem > kmem:
                continue
            if models and kmodel not in models:
                continue
            var.append((ci, ki))
    nv = len(var)
    if nv == 0:
        return BoundResult(0.0, 0.0, len(cls), len(ktypes))
    us = [lambda x: x] + [lambda x, q=q: dff(q, x) for q in DFF_ORDERS]
    rows, cols, vals, rhs = [], [], [], []
    # each class at most N_c times
    for j, (ci, _) in enumerate(var):
        rows.append(ci)
        cols.append(j)
        vals.append(1.0)
    rhs.extend(float(classes[c]) for c in cls)
    r = len(cls)
    nk = len(ktypes)
    for j, (ci, ki) in enumerate(var):
        cpu, mem, count, milli, _ = cls[ci]
        rows += [r + ki, r + nk + ki]
        cols += [j, j]
        vals += [float(cpu), float(mem)]
        for ui, u in enumerate(us):
            rows.append(r + (2 + ui) * nk + ki)
            cols.append(j)
            vals.append(count * u(min(milli, GPU_MILLI) / GPU_MILLI))
    rhs += [float(types[k] * k[0]) for k in ktypes]
    rhs += [float(types[k] * k[1]) for k in ktypes]
    for _ in us:
        rhs += [float(types[k] * k[2]) for k in ktypes]
    a = coo_matrix((vals, (rows, cols)), shape=(len(rhs), nv)).tocsr()
    c = -np.array([cls[ci][2] * cls[ci][3] for ci, _ in var], dtype=np.float64)
    res = linprog(c, A_ub=a, b_ub=np.array(rhs), bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"bound LP failed: {res.message}")
    milli = float(-res.fun)
    pct = math.ceil(milli / cap * 100 * 100 - 1e-6) / 100
    return BoundResult(milli, min(pct, 100.0), len(cls), len(ktypes))


def column_bounds(nodes: Sequence[NodeRecord], arrivals: Sequence[GpuPod], columns: Sequence[int] = (100, 130)) -> dict[int, float]:
    """Per column k, the bound on the column's mean allocation (% of capacity): the LP over
    the pods arrived by the last event whose rounded arrived percentage is k (R8.2/R8.3)."""
    cap_gpus = sum(n.gpu for n in nodes)
    arrived = np.cumsum([p.tot for p in arrivals])
    a = np.round(arrived / cap_gpus / 10).astype(np.int64)
    out: dict[int, float] = {}
    for k in columns:
        hit = np.flatnonzero(a == k)
        if len(hit) == 0:
            hit = np.flatnonzero((a >= k - 1) & (a <= k + 1))
        if len(hit) == 0:
            continue
        last = int(hit[-1])
        out[k] = packing_bound(nodes, arrivals[: last + 1]).percent
    return out
