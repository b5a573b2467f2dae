"""The re-made openb variants (``schedulers/sim/workloads.py``): the generators hit the
proportions their names state, on a synthetic default list (no trace data needed)."""

from __future__ import annotations

import numpy as np
import pytest

from schedulers.gpu.traces import PodRecord
from schedulers.sim.workloads import (cpu_variant, gpushare_variant, gpuspec_variant, hash_name,
                                      multigpu_variant)


def base_list(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = rng.random()
        if k < 0.13:
            out.append(PodRecord(f"p{i:05d}", 4000, 1024, 0, 0))
        elif k < 0.5:
            out.append(PodRecord(f"p{i:05d}", 6000, 2048, 1, int(rng.choice([250, 460, 500]))))
        elif k < 0.98:
            out.append(PodRecord(f"p{i:05d}", 8000, 4096, 1, 1000))
        else:
            out.append(PodRecord(f"p{i:05d}", 32000, 8192, int(rng.choice([2, 4, 8])), 1000))
    return out


def gpu_share(pods, pred):
    tot = sum(p.tot for p in pods)
    return sum(p.tot for p in pods if pred(p)) / tot


def test_cpu_variant_fraction_of_cpu_only_tasks():
    for frac in (0.05, 0.25):
        out = cpu_variant(base_list(), frac, np.random.default_rng(1))
        assert sum(p.milli <= 0 for p in out) / len(out) == pytest.approx(frac, abs=0.002)
        assert sum(p.milli > 0 for p in out) == sum(p.milli > 0 for p in base_list())


def test_gpushare_variant_share_of_gpu_request():
    out = gpushare_variant(base_list(), 0.6, np.random.default_rng(2))
    assert gpu_share(out, lambda p: p.kind == "share") == pytest.approx(0.6, abs=0.03)
    assert len(out) == 2000 and out[0].name == "openb-pod-0000"


def test_multigpu_variant_share_of_gpu_request():
    out = multigpu_variant(base_list(), 0.4, np.random.default_rng(3))
    assert gpu_share(out, lambda p: p.count > 1) == pytest.approx(0.4, abs=0.01)


def test_gpuspec_variant_fraction_constrained():
    src = [PodRecord("x", 1, 1, 1, 1000, ("T4",)), PodRecord("y", 1, 1, 1, 1000, ("A", "B")),
           PodRecord("z", 1, 1, 1, 500, ("P100",)), PodRecord("w", 1, 1, 8, 1000, ("G2",))]
    out = gpuspec_variant(base_list(), 0.25, np.random.default_rng(4), src)
    gpu = [p for p in out if p.milli > 0]
    assert sum(bool(p.types) for p in gpu) / len(gpu) == pytest.approx(0.25, abs=0.002)
    # constraints follow the task's kind and GPU count (falling back to the kind)
    assert {p.types for p in gpu if p.types and p.kind == "share"} == {("P100",)}
    assert {p.types for p in gpu if p.types and p.kind == "whole" and p.count == 1} <= {("T4",), ("A", "B")}
    assert {p.types for p in gpu if p.types and p.count == 8} == {("G2",)}


def test_name_hash_is_stable_and_distinct():
    assert hash_name("gpushare20") != hash_name("gpushare60")
    assert hash_name("cpu100") == hash_name("cpu100")
