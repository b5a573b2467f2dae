"""DDQN v2 features ("learning when to search", ``schedulers/ddqn/searchfeat.py``): the search
columns table-driven, their agreement with FGD-Search on a small cluster, the v2 model file
format next to v1 (v1 files keep loading and computing no search columns), and the policy
appending the columns only for a v2 model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from schedulers.ddqn import model as qmodel
from schedulers.ddqn.features import (FEATURE_SPEC, FEATURE_SPEC_V2, N_FEATURES, N_FEATURES_V2,
                                      SEARCH_FEATURE_NAMES)
from schedulers.ddqn.policy import DdqnPolicy
from schedulers.ddqn.scorer import DEFAULT_MODEL, DdqnScorer
from schedulers.ddqn.searchfeat import COST_LOG_SCALE, N_SEARCH, SearchFeatures, search_columns
from schedulers.gpu.policies.fgd import FGD
from schedulers.gpu.policies.fgdsearch import FGDSearch
from schedulers.gpu.state import GpuNodeState, GpuPod
from schedulers.gpu.typical import typical_pods

L = lambda c: math.log1p(c) / COST_LOG_SCALE  # noqa: E731


@pytest.mark.parametrize("k,cand,cost,expected", [
    # class {0, 2}, node 2 cheaper: kept; node 1 outside the class: zeros
    (3, [0, 2], [5.0, 1.0], [[L(5), L(4), 0, 1, 0.5], [0, 0, 0, 0, 0], [L(1), 0, 1, 1, 0.5]]),
    # all costs 0 (the common case): every class node kept, kept share 1
    (2, [0, 1], [0.0, 0.0], [[0, 0, 1, 1, 1], [0, 0, 1, 1, 1]]),
    # a single best node (nothing searched, cost 0): kept
    (2, [1], [0.0], [[0, 0, 0, 0, 0], [0, 0, 1, 1, 1]]),
    # two of three tied at the minimum
    (3, [0, 1, 2], [2.0, 2.0, 7.0], [[L(2), 0, 1, 1, 2 / 3], [L(2), 0, 1, 1, 2 / 3], [L(7), L(5), 0, 1, 2 / 3]]),
    # no class at all: all zeros
    (2, [], [], [[0] * 5, [0] * 5]),
], ids=["veto", "all-zero", "single", "tie", "empty"])
def test_search_columns(k, cand, cost, expected):
    got = search_columns(np.zeros(k, np.int64), np.array(cost, float), np.array(cand, dtype=np.int64))
    assert got.shape == (k, N_SEARCH) and got.dtype == np.float32
    np.testing.assert_allclose(got, np.array(expected, np.float64), rtol=1e-6, atol=1e-7)


def test_spec_names():
    assert N_SEARCH == len(SEARCH_FEATURE_NAMES) == N_FEATURES_V2 - N_FEATURES
    assert FEATURE_SPEC.startswith("v1:") and FEATURE_SPEC_V2.startswith("v2:" + FEATURE_SPEC[3:] + ",search_cost")


TYPICAL = typical_pods([GpuPod(cpu=1000, mem=1, count=1, milli=1000), GpuPod(cpu=1000, mem=1, count=2, milli=1000)])
ONE = GpuPod(cpu=1000, mem=1, count=1, milli=1000)


def cluster(frees):
    st = GpuNodeState.build([f"n{i}" for i in range(len(frees))], [64000] * len(frees), [1 << 20] * len(frees),
                            [4] * len(frees), ["V100"] * len(frees))
    for i, f in enumerate(frees):
        st.gpu_free[i, :4] = f
    return st


F4, F3, F2 = [1000] * 4, [1000, 1000, 1000, 0], [1000, 1000, 0, 0]


@pytest.mark.parametrize("frees,kept", [
    ([F2, F4, F4], 2),          # n0 outside FGD's class; n1, n2 cost the same: both kept
    ([F4, F4, F3], 1),          # the 3-GPU node is the cheapest of the class: FGD-Search keeps it
    ([F4, F3, F3], 2),
    ([F4, F3, F2], 1),          # n2 outside the class
], ids=["level", "one-kept", "two-kept", "outside"])
def test_columns_agree_with_fgdsearch(frees, kept):
    st, feas = cluster(frees), np.arange(len(frees))
    cols = SearchFeatures(TYPICAL).columns(st, ONE, feas)
    base = FGD(TYPICAL).score(st, ONE, feas)
    s = FGDSearch(TYPICAL, mode="goodhome").score(st, ONE, feas)
    assert np.array_equal(cols[:, 3] > 0, base == base.max())       # search_class: FGD's best class
    assert np.array_equal(cols[:, 2] > 0, s % 1000 >= 500)          # search_keep: what FGD-Search keeps
    assert cols[:, 2].sum() == kept


def _v2_file(tmp_path: Path, zero: bool = True) -> Path:
    torch.manual_seed(0)
    net = qmodel.QNet(N_FEATURES_V2, (32,))
    if not zero:
        with torch.no_grad():
            net.residual[-1].weight.fill_(0.1)
    path = tmp_path / "v2.bin"
    qmodel.save(net, path)
    return path


def test_v2_file_round_trip_and_v1_still_loads(tmp_path):
    path = _v2_file(tmp_path)
    net, header = qmodel.load(path)
    assert header["feature_spec"] == FEATURE_SPEC_V2 and net.n_in == N_FEATURES_V2
    _, h1 = qmodel.load(DEFAULT_MODEL)                  # the shipped v1 file: unchanged
    assert h1["feature_spec"] == FEATURE_SPEC and h1["n_in"] == N_FEATURES
    # a v1 spec over 33 inputs is refused
    raw = path.read_bytes().replace(FEATURE_SPEC_V2.encode(), FEATURE_SPEC.encode(), 1)
    (tmp_path / "bad.bin").write_bytes(raw)
    with pytest.raises(qmodel.ModelFileError, match="n_in"):
        qmodel.load(tmp_path / "bad.bin")


class Recording:
    """A scorer that records the width of the rows it gets (header as the real one)."""

    def __init__(self, spec):
        self.header = {"feature_spec": spec}
        self.widths = []

    def scores_and_values(self, X):
        self.widths.append(X.shape[1])
        return np.zeros(len(X), np.int64), np.zeros(len(X))


@pytest.mark.parametrize("spec,width,searches", [(FEATURE_SPEC, N_FEATURES, False), (FEATURE_SPEC_V2, N_FEATURES_V2, True)])
def test_policy_adds_search_columns_for_v2_only(spec, width, searches):
    rec = Recording(spec)
    pol = DdqnPolicy(rec, TYPICAL)
    pol.score(cluster([[1000, 1000, 0, 0], [1000, 1000, 1000, 1000]]), ONE, np.arange(2))
    assert rec.widths == [width] and (pol.search_features is not None) == searches


def test_untrained_v2_model_scores_like_untrained_v1(tmp_path):
    """Residual starts at zero: whatever the search columns say, an untrained v2 net scores as
    FGD's quantisation (as an untrained v1 net does)."""
    sc = DdqnScorer(_v2_file(tmp_path))
    pol = DdqnPolicy(sc, TYPICAL)
    st = cluster([[1000, 1000, 0, 0], [1000, 1000, 1000, 1000], [1000, 1000, 1000, 0]])
    X, _ = pol.builder(st).build(st, np.arange(3), ONE)
    assert pol.score(st, ONE, np.arange(3)).tolist() == qmodel.scores(X[:, 0], X[:, 0]).tolist()


def test_widen_v1_into_v2_scores_identically():
    """``--init-from`` a v1 model: the v2 net reads the search columns with zero weights, so it
    ranks exactly as the v1 model on any rows."""
    from schedulers.ddqn.train import widen_into

    src, _ = qmodel.load(DEFAULT_MODEL)
    dst = qmodel.QNet(N_FEATURES_V2, src.hidden)
    widen_into(src, dst)
    x = torch.rand(3, 17, N_FEATURES_V2)
    m = torch.ones(3, 17, dtype=torch.bool)
    torch.testing.assert_close(dst.advantage(x), src.advantage(x[..., :N_FEATURES]))
    torch.testing.assert_close(dst.q_all(x, m), src.q_all(x[..., :N_FEATURES], m), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="widen"):
        widen_into(dst, src)


def test_search_prior_adds_one_unit_on_kept_nodes():
    """``--search-prior 0.045`` on top of the widened v1 model: a node FGD-Search keeps gets
    one more score unit than the v1 model gives it, every other node the v1 score."""
    from schedulers.ddqn.train import add_search_prior, widen_into

    src, _ = qmodel.load(DEFAULT_MODEL)
    dst = qmodel.QNet(N_FEATURES_V2, (src.hidden[0] + 1,))
    widen_into(src, dst)
    add_search_prior(dst, 0.045)
    rng = np.random.default_rng(0)
    X = rng.random((64, N_FEATURES_V2), dtype=np.float32)
    X[:, N_FEATURES + 2] = np.arange(64) % 2                     # search_keep on odd rows
    with torch.no_grad():
        a1 = src.advantage(torch.from_numpy(X[:, :N_FEATURES])).numpy()
        a2 = dst.advantage(torch.from_numpy(X)).numpy()
    s1, s2 = qmodel.scores(a1, X[:, 0]), qmodel.scores(a2, X[:, 0])
    r1 = a1 - X[:, 0]
    sure = np.abs(25 * r1 - np.round(25 * r1)) > 0.2              # away from a unit boundary
    odd = np.arange(64) % 2 == 1
    assert (s2[~odd] == s1[~odd]).all()
    assert (s2[odd & sure & (r1 >= 0)] == s1[odd & sure & (r1 >= 0)] + 1).all()
    with pytest.raises(ValueError, match="in use"):
        add_search_prior(dst, 0.045)
