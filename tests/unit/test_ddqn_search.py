"""The DDQN policy's decision-time search (option ``search``): FGD-Search's cost decides
inside the network's best score class (``search_reach`` points below it too) instead of the
node rank alone, and the network's order stays everywhere else. The network is replaced by
fixed scores here (what is tested is the composition; the shipped model is tested in
``test_ddqn_openb.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from schedulers.ddqn.policy import DdqnPolicy
from schedulers.gpu.state import GpuNodeState, GpuPod
from schedulers.gpu.typical import typical_pods

TYPICAL = typical_pods([GpuPod(cpu=1000, mem=1, count=1, milli=1000), GpuPod(cpu=1000, mem=1, count=2, milli=1000)])
ONE = GpuPod(cpu=1000, mem=1, count=1, milli=1000)


class Fixed:
    def __init__(self, scores):
        self.s = np.array(scores, dtype=np.int64)

    def scores(self, X):
        return self.s[: len(X)]

    def scores_and_values(self, X):
        return self.s[: len(X)], np.zeros(len(X))


def cluster():
    # free per GPU after the pod (pack's cost): n0 3000/4, n1 2000/4, n2 2500/4 -> n1 fullest
    frees = [[1000, 1000, 1000, 1000], [1000, 1000, 1000, 0], [1000, 1000, 1000, 500]]
    st = GpuNodeState.build([f"n{i}" for i in range(3)], [64000] * 3, [1 << 20] * 3, [4] * 3, ["V100"] * 3)
    for i, f in enumerate(frees):
        st.gpu_free[i, :4] = f
    return st


@pytest.mark.parametrize("net,search,options,expected", [
    ([7, 7, 7], None, {}, [7, 7, 7]),                          # off: the network's scores as they are
    ([7, 7, 7], "pack", {}, [7000, 7507, 7000]),               # one class: the fullest node is kept
    ([7, 7, 9], "pack", {}, [7, 7, 9]),                        # a single best node: nothing to search
    ([7, 7, 9], "pack", {"reach": 2}, [7000, 9507, 9000]),     # reach 2: n1 from the class below wins
    ([7, 8, 8], "pack", {}, [7000, 8508, 8000]),               # n0 outside the best class keeps its place
])
def test_search_inside_the_networks_best_class(net, search, options, expected):
    pol = DdqnPolicy(Fixed(net), TYPICAL, search, options)
    st = cluster()
    assert pol.score(st, ONE, np.arange(3)).tolist() == expected
    best = int(np.argmax(pol.score(st, ONE, np.arange(3))))
    assert net[best] >= max(net) - options.get("reach", 0)


def test_unknown_search_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        DdqnPolicy(Fixed([1]), TYPICAL, "rollout")


@pytest.mark.parametrize("gpu_only,expected", [(False, [7000, 7507, 7000]), (True, [7, 7, 7])])
def test_gpu_only_leaves_cpu_pods_to_the_network(gpu_only, expected):
    cpu_pod = GpuPod(cpu=1000, mem=1, count=0, milli=0)
    pol = DdqnPolicy(Fixed([7, 7, 7]), TYPICAL, "pack", {"gpu_only": gpu_only})
    assert pol.score(cluster(), cpu_pod, np.arange(3)).tolist() == expected
    # GPU pods are searched either way
    assert pol.score(cluster(), ONE, np.arange(3)).tolist() == [7000, 7507, 7000]
