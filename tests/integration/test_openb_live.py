"""The live run of issue 17, short (CI): ``controlplane bench openb-live`` on 30 of the openb
GPU nodes with the default pod list, seed 42: real etcd, apiserver, ``agent --simulated``
nodes and the scheduler's DDQN profile reach the simulator's allocation for the same list and
seed (within 0.5 points; here every placement is the simulator's), then a retrain from the
recorded history is evaluated and promoted or refused with the figures in its Event."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from schedulers.gpu.traces import traces_dir
from tests.fixtures.scheduler import REPO

pytestmark = pytest.mark.integration


@pytest.mark.skipif(traces_dir() is None, reason="the openb traces (../shared/traces/openb) are not here")
def test_openb_live_reaches_the_simulator_and_retrains(tmp_path):
    r = subprocess.run([sys.executable, "-m", "controlplane", "bench", "openb-live", "--node-sample", "30",
                        "--seed", "42", "--retrain", "--openb", "default", "--retrain-max-steps", "300",
                        "--retrain-seeds", "42", "--work", str(tmp_path / "work")],
                       capture_output=True, text=True, timeout=900, cwd=REPO, env={**os.environ})
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["nodes"] == 30 and out["arrivals"] > 200
    assert out["live"]["bound"] + out["live"]["failed"] == out["arrivals"]
    assert out["within_0_5"] and abs(out["live_minus_sim_130"]) <= 0.5, out
    assert out["same_placements"] == out["arrivals"], out  # same code, same order, same ties
    ev = out["retrain_event"]
    assert ev and ev["reason"] in ("ModelPromoted", "ModelRefused"), out
    ev_fig = out["retrain"]["evaluation"]
    for k in ("candidate", "active", "fgd"):
        assert f"{ev_fig[k]['alloc_at_130']}%" in ev["message"], ev
    assert out["retrain"]["history"]["pods"] == out["arrivals"]
    assert out["retrain"]["promoted"] == (ev["reason"] == "ModelPromoted")
