"""The shipped DDQN weights: they load with the current feature spec, and on the real openb
trace (skipped when ``../shared/traces/openb`` is absent) the ``ddqn`` policy packs more GPU
than FGD on a benchmark seed, through the simulator's own run loop."""

from __future__ import annotations

import numpy as np
import pytest

from schedulers.ddqn.features import FEATURE_SPEC, N_FEATURES
from schedulers.ddqn.scorer import DEFAULT_MODEL, get_scorer
from schedulers.sim.openb import Workload, run
from schedulers.gpu.traces import traces_dir


def test_shipped_model_loads_and_scores_deterministically() -> None:
    sc = get_scorer()
    assert sc.path == DEFAULT_MODEL and sc.header["feature_spec"] == FEATURE_SPEC
    X = np.random.default_rng(1).random((1213, N_FEATURES), dtype=np.float32)
    np.testing.assert_array_equal(sc.scores(X), get_scorer().scores(X.copy()))
    np.testing.assert_allclose(sc.advantages(X), sc.advantages_torch(X), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(traces_dir() is None, reason="openb traces folder absent")
@pytest.mark.parametrize("pod_list,seed", [("default", 42)])
def test_ddqn_packs_more_than_fgd_on_openb(pod_list: str, seed: int) -> None:
    d = traces_dir()
    wl = Workload.load(d / "openb_node_list_gpu_node.csv", d / f"openb_pod_list_{pod_list}.csv")
    fgd = run(wl, "fgd", seed)
    ddqn = run(wl, "ddqn", seed)
    assert ddqn.arrivals == fgd.arrivals
    assert ddqn.alloc_at_130 > fgd.alloc_at_130, (ddqn.alloc_at_130, fgd.alloc_at_130)
