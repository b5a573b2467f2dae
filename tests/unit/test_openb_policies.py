"""The openb policies, the filter, typical pods, the tuning loop and the metric columns on
small synthetic clusters, against values computed by hand from ``openb-protocol.md``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from schedulers.gpu.choice import choose_best
from schedulers.gpu.gorand import NumpyRandom
from schedulers.gpu.policies.bestfit import BestFit
from schedulers.gpu.policies.dotprod import DotProd
from schedulers.gpu.policies.fgd import FGD
from schedulers.gpu.policies.gpuclustering import GpuClustering
from schedulers.gpu.policies.gpupacking import GpuPacking
from schedulers.sim.openb import arrival_order, choose, columns
from schedulers.gpu.state import GpuNodeState, GpuPod
from schedulers.gpu.typical import typical_pods


def cluster(specs):
    """specs: (cpu milli, gpus, model, [free per GPU] or None)."""
    st = GpuNodeState.build([f"n{i}" for i in range(len(specs))], [s[0] for s in specs],
                            [1 << 20] * len(specs), [s[1] for s in specs], [s[2] for s in specs])
    for i, s in enumerate(specs):
        if len(s) > 3 and s[3] is not None:
            st.gpu_free[i, :len(s[3])] = s[3]
    return st


ALL = lambda st: np.arange(st.n)  # noqa: E731


@pytest.mark.parametrize("pod,expected", [
    (GpuPod(cpu=1000, mem=1, count=1, milli=500), [True, True, False, False]),
    (GpuPod(cpu=1000, mem=1, count=2, milli=1000), [True, False, False, False]),
    (GpuPod(cpu=1000, mem=1, count=1, milli=500, types=("T4",)), [False, True, False, False]),
    (GpuPod(cpu=9000, mem=1), [False, False, False, True]),
    (GpuPod(cpu=1000, mem=1, count=2, milli=300), [True, True, False, False]),
], ids=["shared", "two-whole", "model", "cpu", "two-partial"])
def test_filter(pod, expected):
    st = cluster([(8000, 2, "V100", [1000, 1000]), (8000, 2, "T4", [600, 700]), (8000, 1, "T4", [100]),
                  (16000, 0, "")])
    assert list(st.feasible_mask(pod)) == expected


def test_dotprod_and_bestfit_hand_values():
    # node: cpuL 32000, gL 1500 (two GPUs 1000 + 500); pod 8000 cpu, 500 milli
    st = cluster([(32000, 2, "V100", [1000, 500])])
    p = GpuPod(cpu=8000, mem=1, count=1, milli=500)
    dot = (32000 / 128000) * (8000 / 128000) + (1500 / 8000) * (500 / 8000)
    assert DotProd().score(st, p, ALL(st))[0] == math.trunc(100 * (1 - dot / 2))  # 98
    b = ((32000 - 8000) / 128000) * 0.5 + ((1500 - 500) / 8000) * 0.5
    assert BestFit().score(st, p, ALL(st))[0] == math.trunc(100 * (1 - b))  # 84


@pytest.mark.parametrize("tags,pod,expected", [
    ({}, GpuPod(cpu=1, mem=1, count=1, milli=500), 6 + 25),           # untouched 8-GPU node: base 6, +25
    ({0: 1}, GpuPod(cpu=1, mem=1, count=1, milli=500), 6 + 75),       # only "share" present
    ({0: 1, 1: 2}, GpuPod(cpu=1, mem=1, count=1, milli=500), 6 + 50),  # share among others
    ({1: 1}, GpuPod(cpu=1, mem=1, count=1, milli=500), 6),            # other tag only
    ({1: 1}, GpuPod(cpu=1, mem=1), 0),                                # CPU-only pod
], ids=["empty", "same-only", "same-mixed", "other", "cpu-pod"])
def test_gpu_clustering(tags, pod, expected):
    st = cluster([(96000, 8, "G2", [1000] * 6 + [700, 400])])  # gL = 7100 -> base floor(25*900/8000) = 2
    for t, n in tags.items():
        st.tags[0, t] = n
    base = (25 * (8000 - 7100)) // 8000
    assert base == 2
    want = expected - 6 + base if expected else 0
    assert GpuClustering().score(st, pod, ALL(st))[0] == want


@pytest.mark.parametrize("free,pod,expected", [
    ([1000] * 8, GpuPod(cpu=1, mem=1, count=1, milli=500), 25),         # untouched 8-GPU: max(33-8, 8)
    ([1000] * 2, GpuPod(cpu=1, mem=1, count=1, milli=500), 31),         # untouched 2-GPU
    ([1000, 600], GpuPod(cpu=1, mem=1, count=1, milli=500), 94),        # takes the 600 GPU: r=60 -> 100-6
    ([1000, 300], GpuPod(cpu=1, mem=1, count=1, milli=500), 49),        # only a free GPU fits: u=1 -> 49
    ([1000, 1000, 1000, 0], GpuPod(cpu=1, mem=1, count=2, milli=1000), 48),  # u=2 -> 48
    ([1000, 1000], GpuPod(cpu=1, mem=1), 0),                            # CPU-only
], ids=["untouched-8", "untouched-2", "partial", "whole-on-used-node", "multi", "cpu"])
def test_gpu_packing(free, pod, expected):
    st = cluster([(64000, len(free), "V100", free)])
    assert GpuPacking().score(st, pod, ALL(st))[0] == expected


def test_best_gpu_choice():
    st = cluster([(64000, 4, "V100", [1000, 600, 550, 550])])
    assert choose_best(st, 0, GpuPod(cpu=1, mem=1, count=1, milli=500)) == [2]
    assert choose_best(st, 0, GpuPod(cpu=1, mem=1, count=1, milli=1000)) == [0]


def test_typical_pods_threshold_and_order():
    pods = ([GpuPod(cpu=1000, mem=1, count=1, milli=500)] * 50 + [GpuPod(cpu=2000, mem=1)] * 30
            + [GpuPod(cpu=1000, mem=1, count=1, milli=1000)] * 16 + [GpuPod(cpu=4000, mem=1)] * 4)
    t = typical_pods(pods)
    # 50 + 30 + 16 = 96 >= 95 -> three keys, frequencies renormalised by 96
    assert list(t.milli) == [500, 0, 1000]
    assert np.allclose(t.freq, [50 / 96, 30 / 96, 16 / 96])


def test_fgd_fragmentation_and_score():
    # typical: shared 500 (p=0.5) and whole 1 GPU (p=0.5), both 1000 cpu
    pods = [GpuPod(cpu=1000, mem=1, count=1, milli=500)] * 5 + [GpuPod(cpu=1000, mem=1, count=1, milli=1000)] * 5
    fgd = FGD(typical_pods(pods))
    st = cluster([(8000, 2, "V100", [1000, 700]), (8000, 2, "V100", [1000, 1000])])
    # node0: L=1700; t500 hostable (GPUs >= 500: 2) -> partial 0; t1000 hostable -> partial 700
    f0 = 0.5 * 0 + 0.5 * 700
    assert fgd.frag(st, st.cpu_left(), st.gpu_free, st.model)[0] == pytest.approx(f0)
    # shared 300 on node0: best GPU is the 700 one -> [1000, 400]: t500 partial 400, t1000 partial 400 -> 400
    p = GpuPod(cpu=1000, mem=1, count=1, milli=300)
    s = fgd.score(st, p, ALL(st))
    expect0 = max(math.trunc(100 / (1 + math.exp(-(f0 - 400) / 1000))),      # GPU 1 -> [1000, 400]
                  math.trunc(100 / (1 + math.exp(-(f0 - 0.5 * 700 - 0.5 * 1400) / 1000))))  # GPU 0 -> [700, 700]
    assert s[0] == expect0
    assert fgd.choose_gpus(st, 0, p) == [1]


def test_choose_ties_by_rank():
    feasible = np.array([0, 2, 3])
    rank = np.array([5, 9, 1, 0])
    assert choose(np.array([7, 7, 3]), feasible, rank) == 2   # ranks 5 vs 1
    assert choose(np.array([7, 8, 8]), feasible, rank) == 3


def test_tuning_appends_clones_until_target():
    pods = [GpuPod(cpu=1, mem=1, count=1, milli=1000)] * 4 + [GpuPod(cpu=1, mem=1)]
    order = arrival_order(pods, capacity_milli=4000, rng=NumpyRandom(1))
    assert sorted(order[:5]) == [0, 1, 2, 3, 4]
    total = sum(pods[j].tot for j in order)
    assert 4000 <= total <= 1.3 * 4000  # 4 originals + at most one clone of 1000


def test_tuning_removes_pods_when_above_target():
    pods = [GpuPod(cpu=1, mem=1, count=2, milli=1000)] * 4  # 8000 > 1.3 * 4000
    order = arrival_order(pods, capacity_milli=4000, rng=NumpyRandom(1))
    assert sum(pods[j].tot for j in order) <= 5200 and len(order) == 2


def test_columns_window_and_numpy_rounding():
    # capacity 10 GPUs: arrived 10000 milli = 100 %
    arrived = np.array([9900, 9960, 10000, 10040, 13000])
    used = np.array([9000, 9050, 9060, 9070, 9100])
    cols = columns(arrived, used, 10)
    assert cols[100] == round(np.mean([90.5, 90.6, 90.7]), 2)  # 99.6, 100, 100.4 round to 100
    assert cols[130] == 91.0
    assert cols[101] == 90.6  # no event at 101: mean over the events with 100 <= a <= 102
    assert 120 not in cols  # nothing within one column of 120


def test_fgd_lookahead_keeps_fgd_classes_and_only_vetoes_inside_the_best():
    from schedulers.gpu.policies.fgdlookahead import FGDLookahead

    st = cluster([(8000, 4, "T4", [1000, 1000, 300, 1000]), (8000, 4, "T4"), (8000, 2, "T4"), (4000, 1, "P100"),
                  (8000, 4, "T4", [600, 1000, 1000, 1000])])
    pods = [GpuPod(cpu=1000, mem=1, count=1, milli=m) for m in (300, 500, 700, 1000, 1000)] + [GpuPod(cpu=500, mem=1)]
    typical = typical_pods(pods)
    for pod in pods:
        la, fgd = FGDLookahead(typical), FGD(typical)
        s = la.score(st, pod, ALL(st))
        base = fgd.score(st, pod, ALL(st))
        assert np.array_equal(s // 1000, base)            # FGD's integer classes, unchanged
        assert set(np.unique(s % 1000)) <= {0, 1}         # a veto bit inside the best class only
        assert np.all(s[base < base.max()] % 1000 == 0)
        if pod.milli > 0:   # the GPU on the chosen node is FGD's
            node = int(np.argmax(s))
            assert la.choose_gpus(st, node, pod) == fgd.choose_gpus(st, node, pod)
