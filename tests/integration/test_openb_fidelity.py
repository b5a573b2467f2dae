"""Fidelity of the offline openb simulator: 10-seed means (seeds 42-51) within 0.5 points of
the published table (``scheduling.md`` section 3) at columns 100 and 130.

All five pod lists with all six policies, 10 seeds each (300 runs, parallel over the cores;
about a minute per list here). Everything skips when the traces folder is absent.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from schedulers.sim.table import LISTS, POLICIES, PUBLISHED
from schedulers.gpu.traces import traces_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEEDS = list(range(42, 52))
TOLERANCE = 0.5
TRACES = traces_dir()
needs_traces = pytest.mark.skipif(TRACES is None, reason="openb traces folder not found (set OPENB_TRACES)")


def _one(args: tuple[str, str, int]) -> tuple[str, int, float, float]:
    from schedulers.sim.openb import Workload, run

    name, policy, seed = args
    d = traces_dir()
    wl = Workload.load(d / "openb_node_list_gpu_node.csv", d / f"openb_pod_list_{name}.csv")
    r = run(wl, policy, seed)
    return policy, seed, r.alloc_at_100, r.alloc_at_130


def measure(name: str) -> dict[str, tuple[float, float]]:
    jobs = [(name, p, s) for p in POLICIES for s in SEEDS]
    with ProcessPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as ex:
        results = list(ex.map(_one, jobs))
    out = {}
    for p in POLICIES:
        rows = [r for r in results if r[0] == p]
        assert len(rows) == len(SEEDS)
        out[p] = (round(sum(r[2] for r in rows) / len(rows), 2), round(sum(r[3] for r in rows) / len(rows), 2))
    return out


def check(name: str) -> None:
    got = measure(name)
    bad = []
    for p in POLICIES:
        pub = PUBLISHED[name][p]
        dev = max(abs(got[p][0] - pub[0]), abs(got[p][1] - pub[1]))
        if dev > TOLERANCE:
            bad.append(f"{p}: measured {got[p]} vs published {pub} (deviation {dev:.2f})")
    assert not bad, f"{name}: " + "; ".join(bad)


@needs_traces
def test_fidelity_default_list():
    check("default")


@needs_traces
@pytest.mark.parametrize("name", [n for n in LISTS if n != "default"])
def test_fidelity_other_lists(name):
    check(name)


@needs_traces
def test_protocol_sanity_fgd_seed_42():
    """Structural invariants of one FGD run on the default list: arrivals tuned to 1.3x the GPU
    capacity, one allocation curve point per event (``schedulers/sim/openb.py``)."""
    from schedulers.sim.openb import Workload, run

    wl = Workload.load(TRACES / "openb_node_list_gpu_node.csv", TRACES / "openb_pod_list_default.csv")
    r = run(wl, "FGD", 42)
    cap = 6212 * 1000
    assert len(wl.pods) == 8152 and r.arrivals > 8152          # shuffled originals plus clones
    assert 1.3 * cap - 7000 <= r.arrived_milli <= 1.3 * cap + 7000
    assert r.used_milli <= cap and r.failed > 0
    assert 94.5 <= r.alloc_at_130 <= 96.0                       # published seed-42 end: 95.29 %


@needs_traces
def test_arrivals_follow_go_stream():
    """Go's stream (``schedulers/gpu/gorand.py``) reproduces the published run's arrivals:
    default/seed 42 has 8,152 + 2,714 = 10,866 arrivals and 8,075,080 milli-GPU arrived
    (``docs/openb-protocol.md`` R3.2 and section 10's sanity values)."""
    from schedulers.gpu.gorand import GoRand
    from schedulers.sim.openb import Workload, arrival_order

    wl = Workload.load(TRACES / "openb_node_list_gpu_node.csv", TRACES / "openb_pod_list_default.csv")
    order = arrival_order(wl.pods, 6212 * 1000, GoRand(42))
    assert len(order) == 10866
    assert sum(wl.pods[j].tot for j in order) == 8075080
