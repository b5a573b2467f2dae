"""FGD-Search (``schedulers/gpu/policies/fgdsearch.py``): its pure pieces table-driven, and
the policy on a small hand-made cluster against costs computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from schedulers.gpu.policies.fgd import FGD
from schedulers.gpu.policies.fgdsearch import FGDSearch, cluster_loss, pack_cost, search_scores
from schedulers.gpu.state import GpuNodeState, GpuPod
from schedulers.gpu.typical import typical_pods


def cluster(frees, cpu=64000):
    """One 4-GPU node per row of ``frees`` (free milli-GPU per GPU)."""
    st = GpuNodeState.build([f"n{i}" for i in range(len(frees))], [cpu] * len(frees), [1 << 20] * len(frees),
                            [4] * len(frees), ["V100"] * len(frees))
    for i, f in enumerate(frees):
        st.gpu_free[i, :4] = f
    return st


@pytest.mark.parametrize("before,after,homes,weight,expected", [
    ([[1, 1], [1, 0]], [[0, 1], [1, 0]], [2, 5], [10.0, 50.0], [5.0, 0.0]),          # c0 loses a home of t0
    ([[1, 1]], [[0, 0]], [4, 1], [8.0, 3.0], [8 / 4 + 3 / 1]),                          # the last home of t1
    ([[0, 1]], [[1, 1]], [0, 3], [9.0, 9.0], [0.0]),                                     # gaining a home costs 0
    ([[1, 0], [0, 0]], [[1, 0], [0, 0]], [1, 0], [1.0, 1.0], [0.0, 0.0]),               # nothing lost, homes 0 guarded
], ids=["one-lost", "last-home", "gain", "none"])
def test_cluster_loss(before, after, homes, weight, expected):
    got = cluster_loss(np.array(before, bool), np.array(after, bool), np.array(homes), np.array(weight))
    assert np.allclose(got, expected)


@pytest.mark.parametrize("free,count,expected", [
    ([[1000, 500, 0, 0]], [4], [375.0]),
    ([[0, 0, 0, 0]], [4], [0.0]),
    ([[1000, 1000, 0, 0]], [2], [1000.0]),          # padding columns are 0
    ([[0, 0, 0, 0]], [0], [0.0]),                   # a node without GPUs counts as full
], ids=["partial", "full", "two-gpu-node", "no-gpu"])
def test_pack_cost(free, count, expected):
    assert np.allclose(pack_cost(np.array(free), np.array(count)), expected)


@pytest.mark.parametrize("base,cand,cost,slack,expected", [
    # best class {0, 1, 3}: the cheapest (1 and 3) stay tied for the rank, 0 falls behind
    ([50, 50, 49, 50], [0, 1, 3], [3.0, 1.0, 1.0], 0.0, [50000, 50550, 49000, 50550]),
    # slack 2 keeps every candidate: FGD's order exactly
    ([50, 50, 49, 50], [0, 1, 3], [3.0, 1.0, 1.0], 2.0, [50550, 50550, 49000, 50550]),
    # reach 1: a kept candidate of the next class beats a vetoed one of the best class
    ([50, 49, 48], [0, 1], [5.0, 0.0], 0.0, [50000, 50549, 48000]),
    # kept candidates of two classes: FGD's score still orders them
    ([50, 49, 48], [0, 1], [0.0, 0.0], 0.0, [50550, 50549, 48000]),
    ([50, 49], [], [], 0.0, [50000, 49000]),
], ids=["veto", "slack-keeps-all", "reach", "reach-both-kept", "no-candidates"])
def test_search_scores(base, cand, cost, slack, expected):
    got = search_scores(np.array(base), np.array(cost, float), np.array(cand, dtype=np.int64), slack)
    assert got.tolist() == expected


# typical pods: half 1-GPU, half 2-GPU whole-GPU pods (weights p * tot: 500 and 1000)
TYPICAL = typical_pods([GpuPod(cpu=1000, mem=1, count=1, milli=1000), GpuPod(cpu=1000, mem=1, count=2, milli=1000)])
ONE = GpuPod(cpu=1000, mem=1, count=1, milli=1000)


def test_pack_prefers_the_fullest_node_of_fgds_best_class():
    # FGD: every after-state still hosts both typical pods and n2's half GPU stays a
    # fragment before and after, so all three nodes score 50; pack: free per GPU after the
    # pod 3000/4, 2000/4, 2500/4: n1 ends fullest
    st = cluster([[1000, 1000, 1000, 1000], [1000, 1000, 1000, 0], [1000, 1000, 1000, 500]])
    feas = np.arange(3)
    assert FGD(TYPICAL).score(st, ONE, feas).tolist() == [50, 50, 50]
    pol = FGDSearch(TYPICAL, mode="pack")
    s = pol.score(st, ONE, feas)
    assert np.allclose(pol.last_cost, [750, 500, 625])
    assert s.tolist() == [50000, 50550, 50000]
    # slack infinite: every candidate kept, FGD's tie class (and so FGD's choice) unchanged
    s = FGDSearch(TYPICAL, mode="pack", slack=math.inf).score(st, ONE, feas)
    assert len(set(s.tolist())) == 1


def test_scarcity_counts_homes_cluster_wide():
    # n0 (2 free) is one of three homes of the 2-GPU pod and stops being one; n1, n2 stay
    st = cluster([[1000, 1000, 0, 0], [1000, 1000, 1000, 1000], [1000, 1000, 1000, 1000]])
    pol = FGDSearch(TYPICAL, mode="scarcity")
    feas = np.arange(3)
    base = FGD(TYPICAL).score(st, ONE, feas)
    assert base.tolist() == [37, 50, 50]                    # trunc(100 sigmoid(-0.5)): F 0 -> 500
    pol.score(st, ONE, feas)
    cand = np.arange(3)
    assert np.allclose(pol.costs(st, ONE, feas, cand), [1000 / 3, 0, 0])
    st.place(1, GpuPod(cpu=1000, mem=1, count=3, milli=1000), [0, 1, 2])   # n1 down to 1 free GPU
    pol.score(st, ONE, feas)                                    # the home cache follows gen
    # n0: one of the 2 homes left of the 2-GPU pod; n1: one of 3 homes of the 1-GPU pod
    assert np.allclose(pol.costs(st, ONE, feas, cand), [1000 / 2, 500 / 3, 0])


def test_goodhome_watches_only_best_homes():
    # S (FGD's score of each typical pod; the 2-GPU pod is the first key): 2-GPU pod 50
    # everywhere; 1-GPU pod 37 on n0 (it would lose its 2-GPU home), 50 on n1, n2. Placing the pod on any node turns it from a best
    # home of the 2-GPU pod (3 of them) into a worse one; n0 is no best home of the 1-GPU pod.
    st = cluster([[1000, 1000, 0, 0], [1000, 1000, 1000, 1000], [1000, 1000, 1000, 1000]])
    pol = FGDSearch(TYPICAL, mode="goodhome")
    feas = np.arange(3)
    scores = pol.typical_scores(st, st.cpu_left(), st.gpu_free, st.model)
    assert scores.tolist() == [[50, 37], [50, 50], [50, 50]]
    pol.score(st, ONE, feas)
    assert np.allclose(pol.costs(st, ONE, feas, feas), [1000 / 3] * 3)
    # cap below the number of best homes: nothing is watched, no cost
    pol = FGDSearch(TYPICAL, mode="goodhome", cap=2)
    pol.score(st, ONE, feas)
    assert np.allclose(pol.costs(st, ONE, feas, feas), [0, 0, 0])


def test_shared_pod_uses_fgds_gpu_and_unknown_mode_is_refused():
    st = cluster([[1000, 300, 1000, 1000], [1000, 1000, 1000, 1000]])
    typical = typical_pods([GpuPod(cpu=1000, mem=1, count=1, milli=m) for m in (300, 700, 1000)])
    pod = GpuPod(cpu=1000, mem=1, count=1, milli=300)
    pol, fgd = FGDSearch(typical, slack=math.inf), FGD(typical)
    s = pol.score(st, pod, np.arange(2))
    assert np.array_equal(s >= 50500, fgd.score(st, pod, np.arange(2)) == fgd.score(st, pod, np.arange(2)).max())
    assert pol.choose_gpus(st, 0, pod) == fgd.choose_gpus(st, 0, pod) == [1]
    with pytest.raises(ValueError, match="mode"):
        FGDSearch(typical, mode="rollout")
