"""The LP upper bound on GPU allocation (``schedulers/sim/bound.py``), on tiny clusters whose
optimum is known by hand."""

from __future__ import annotations

import pytest

from schedulers.gpu.state import GpuPod
from schedulers.gpu.traces import NodeRecord
from schedulers.sim.bound import dff, packing_bound


def node(name, gpus=1, cpu=8000, mem=8192, model="T4"):
    return NodeRecord(name, cpu, mem, gpus, model)


@pytest.mark.parametrize("q,x,want", [(1, 0.6, 1.0), (1, 0.4, 0.0), (1, 0.5, 0.5), (2, 0.5, 0.5), (2, 0.7, 1.0),
                                      (2, 0.4, 0.5), (3, 0.3, 1 / 3), (1, 1.0, 1.0)])
def test_dual_feasible_functions(q, x, want):
    assert dff(q, x) == pytest.approx(want)


def test_two_600_shares_cannot_share_one_gpu():
    # 2 pods of 600 milli, one node with 1 GPU: only one fits -> 600, not 1000 (the milli LP alone says 1000)
    b = packing_bound([node("a")], [GpuPod(cpu=1, mem=1, count=1, milli=600)] * 2)
    assert b.milli == pytest.approx(600)


def test_cpu_limits_the_bound():
    # 3 whole-GPU pods of 4 CPU each on one 8-CPU, 4-GPU node: CPU allows 2
    b = packing_bound([node("a", gpus=4)], [GpuPod(cpu=4000, mem=1, count=1, milli=1000)] * 3)
    assert b.milli == pytest.approx(2000)
    assert b.percent == 50.0


def test_model_constraint_and_multi_gpu():
    nodes = [node("a", gpus=2, model="T4"), node("b", gpus=8, model="V100")]
    pods = [GpuPod(cpu=1, mem=1, count=4, milli=1000, types=("T4",)),      # fits nowhere
            GpuPod(cpu=1, mem=1, count=8, milli=1000)]                       # fills b
    assert packing_bound(nodes, pods).milli == pytest.approx(8000)


def test_bound_is_above_any_greedy_placement():
    # a feasible placement (greedy) never exceeds the bound
    import numpy as np

    from schedulers.gpu.choice import choose_best
    from schedulers.gpu.state import GpuNodeState

    rng = np.random.default_rng(3)
    nodes = [node(f"n{i}", gpus=int(rng.choice([1, 2, 4])), cpu=int(rng.choice([4000, 8000]))) for i in range(6)]
    pods = [GpuPod(cpu=int(rng.integers(1, 4)) * 1000, mem=100, count=1, milli=int(rng.choice([200, 300, 500, 700, 1000])))
            for _ in range(40)]
    st = GpuNodeState.from_records(nodes)
    for p in pods:
        ok = np.flatnonzero(st.feasible_mask(p))
        if len(ok):
            st.place(int(ok[0]), p, choose_best(st, int(ok[0]), p))
    assert st.gpu_used_milli() <= packing_bound(nodes, pods).milli + 1e-6
