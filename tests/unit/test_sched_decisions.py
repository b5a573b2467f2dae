"""Scheduling-decision records (``schedulers.framework.decisions``): every profile's record
names the filters that rejected nodes and why, and the top candidates with each score
plugin's raw, normalised and weighted score; a single feasible node is scored too; the DDQN
plugin adds its value estimates; the scheduling.log writer writes one JSON line each."""

from __future__ import annotations

import asyncio
import json

import pytest

from schedulers.framework.decisionlog import DecisionLog
from schedulers.framework.decisions import build_record, filter_summary
from schedulers.framework.framework import Framework
from schedulers.framework.profile import build_profile
from schedulers.profiles.loader import load_profile_configs
from tests.unit.test_sched_fastpaths import cache_of, node, pod

PROFILES = load_profile_configs()


def record(profile: str, nodes, p, seed: int = 0) -> dict:
    c = cache_of(nodes)
    fw = Framework(build_profile(PROFILES[profile]), seed=seed)
    res = fw.schedule(p, c)
    return build_record(p, fw.name, res, c.n, nanos=1_700_000_000_123_456_789, attempt=1, duration_s=0.0005)


def by_name(cand: dict) -> dict:
    return {e["name"]: e for e in cand["plugins"]}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_records_its_score_plugins(profile):
    nodes = [node(f"n{i}", cpu=str(2 + i % 3), gpus=2) for i in range(6)] + [node("small", cpu="500m")]
    rec = record(profile, nodes, pod(cpu="1"))
    fw = Framework(build_profile(PROFILES[profile]))
    assert rec["kind"] == "SchedulingDecision" and rec["apiVersion"] == "scheduling.controlplane.io/v1"
    assert rec["result"] == "Scheduled" and rec["node"] and rec["profile"] == PROFILES[profile].scheduler_name
    assert rec["pod"] == {"name": "p", "namespace": "d", "uid": "p", "creationTimestamp": "",
                          "resources": {"cpuMilli": 1000, "memoryMiB": 500, "gpuCount": 0, "gpuMilli": 0, "gpuModels": []}}
    assert rec["metadata"]["name"] == f"p.{1_700_000_000_123_456_789:x}" and rec["metadata"]["namespace"] == "d"
    assert rec["decisionTime"] == "2023-11-14T22:13:20.123456Z"
    assert rec["nodes"] == {"total": 7, "filtered": 7, "feasible": 6, "scored": 6}
    assert rec["filters"] == [{"plugin": "NodeResourcesFit", "rejected": 1,
                               "reasons": [{"reason": "Insufficient cpu", "count": 1}]}]
    cands = rec["candidates"]
    assert 1 <= len(cands) <= 3 and [c["chosen"] for c in cands].count(True) == 1
    assert next(c for c in cands if c["chosen"])["node"] == rec["node"]
    for c in cands:
        assert [e["name"] for e in c["plugins"]] == [pl.name for pl, _ in fw.scorers]
        for e in c["plugins"]:
            assert e["weighted"] == e["weight"] * e["normalized"]
            assert e["raw"] is not None or e["name"] == "NetworkLatency"  # no latency known: null
        assert c["score"] == sum(e["weighted"] for e in c["plugins"])
    json.dumps(rec)  # plain JSON


def test_one_feasible_node_is_still_scored():
    rec = record("default-scheduler", [node("big", cpu="8"), node("small", cpu="500m")], pod(cpu="2"))
    assert rec["node"] == "big" and rec["nodes"]["feasible"] == 1
    (cand,) = rec["candidates"]
    fit = by_name(cand)["NodeResourcesFit"]
    # LeastAllocated over cpu (2 of 8 -> 75) and memory (500Mi of 8Gi -> 93): (75 + 93) // 2
    assert fit == {"name": "NodeResourcesFit", "raw": 84, "normalized": 84, "weight": 1, "weighted": 84}
    assert cand["score"] == sum(e["weighted"] for e in cand["plugins"]) and cand["score"] > 0


def test_unschedulable_record_names_filters_and_reasons():
    taint = [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]
    c = cache_of([node("a", cpu="1"), node("b", cpu="1", mem="100Mi"), node("t", cpu="8", taints=taint)])
    fw = Framework(build_profile(PROFILES["default-scheduler"]))
    p = pod(cpu="2")
    res = fw.schedule(p, c)
    rec = build_record(p, fw.name, res, c.n, nanos=1, attempt=3, duration_s=0, message=res.failure_message(c.n))
    assert rec["result"] == "Unschedulable" and rec["node"] == "" and rec["candidates"] == [] and rec["attempt"] == 3
    f = {x["plugin"]: x for x in rec["filters"]}
    assert f["TaintToleration"]["rejected"] == 1
    # node b lacks cpu and memory: one node rejected, two reasons
    assert f["NodeResourcesFit"]["rejected"] == 2
    assert {r["reason"]: r["count"] for r in f["NodeResourcesFit"]["reasons"]} == {"Insufficient cpu": 2,
                                                                                 "Insufficient memory": 1}
    assert "2 Insufficient cpu" in rec["message"]


def test_filter_summary_keeps_plugin_totals():
    got = filter_summary({("A", "x"): 2, ("A", "y"): 1, ("A", None): 2, ("B", "z"): 4, ("B", None): 4, ("C", "q"): 0})
    assert got == [{"plugin": "A", "rejected": 2, "reasons": [{"reason": "x", "count": 2}, {"reason": "y", "count": 1}]},
                   {"plugin": "B", "rejected": 4, "reasons": [{"reason": "z", "count": 4}]}]


def test_ddqn_record_carries_value_estimates():
    nodes = [node(f"g{i}", cpu="32", gpus=8) for i in range(4)]
    p = pod(cpu="2", annotations={"scheduling.controlplane.io/gpu-milli": "500"})
    rec = record("ddqn-scheduler", nodes, p)
    assert rec["pod"]["resources"] == {"cpuMilli": 2000, "memoryMiB": 500, "gpuCount": 1, "gpuMilli": 500, "gpuModels": []}
    for c in rec["candidates"]:
        d = by_name(c)["DDQN"]
        assert isinstance(d["value"], float) and d["weight"] == 1000 and d["raw"] == d["normalized"]


def test_decision_log_writes_json_lines(tmp_path):
    dl = DecisionLog(tmp_path / "logs" / "scheduling.log", max_bytes=50)

    async def go():
        stop = asyncio.Event()
        task = asyncio.create_task(dl.start(stop))
        for i in range(3):
            dl.write({"pod": {"name": f"p{i}"}, "node": "n/1"})
        await dl.flush()
        dl.write({"pod": {"name": "last"}})
        stop.set()
        await task

    asyncio.run(go())
    lines = [json.loads(x) for x in (tmp_path / "logs" / "scheduling.log").read_text().splitlines()]
    rotated = (tmp_path / "logs" / "scheduling.log.1")
    older = [json.loads(x) for x in rotated.read_text().splitlines()] if rotated.exists() else []
    assert [x["pod"]["name"] for x in older + lines] == ["p0", "p1", "p2", "last"]
    assert older and older[0]["node"] == "n/1"


def test_node_rank_tie_break_picks_the_lowest_rank():
    from schedulers.framework.profile import ProfileConfig

    nodes = [node(f"n{i}", cpu="4", ann={"scheduling.controlplane.io/node-rank": str(r)})
             for i, r in enumerate([5, 2, 9, 1])]
    nodes.append(node("unranked", cpu="4"))
    c = cache_of(nodes)
    for tie, want in (("nodeRank", {"n3"}), ("random", {"n0", "n1", "n2", "n3", "unranked"})):
        fw = Framework(build_profile(ProfileConfig("t", [("NodeResourcesFit", 1, {})], 100, tie_break=tie)), seed=1)
        got = {fw.schedule(pod(cpu="1"), c).node for _ in range(40)}
        assert got <= want and (tie == "random" or got == want), (tie, got)
    from schedulers.profiles.loader import load_profile_configs as load
    import pytest as _pt
    bad = {"schedulerName": "x", "tieBreak": "coin", "plugins": [{"name": "NodeResourcesFit"}]}
    import yaml
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:
        yaml.safe_dump(bad, fh)
        fh.flush()
        with _pt.raises(ValueError, match="tieBreak"):
            load([fh.name])


@pytest.mark.parametrize("plugin", ["TaintToleration", "InterPodAffinity", "PodTopologySpread", "NodeAffinity",
                                    "DiskIO", "NetworkLatency"])
def test_declared_uniform_raw_is_what_score_gives(plugin):
    """Records take a uniform plugin's raw score from ``uniform_raw``: it must be what its
    Score returns on every node whenever ``uniform_score`` applies."""
    import math

    import numpy as np

    from schedulers.framework import registry
    from schedulers.framework.interface import CycleState

    c = cache_of([node(f"n{i}") for i in range(5)])
    pl = registry.get(plugin)({})
    p = pod(cpu="1")
    cs = CycleState()
    if hasattr(pl, "pre_score"):
        pl.pre_score(cs, p, c, np.arange(c.n))
    assert pl.uniform_score(cs, p, c) is not None
    raw = np.asarray(pl.score(cs, p, c, np.arange(c.n)), dtype=np.float64)
    if pl.uniform_raw is None:
        assert all(math.isnan(x) for x in raw)
    else:
        assert (raw == pl.uniform_raw).all()


@pytest.mark.parametrize("seed", range(6))
def test_top_candidates_are_the_stable_top_three(seed):
    """The partition shortcut gives what a stable sort of every node's total would."""
    import numpy as np

    from schedulers.framework.framework import Scores, top_candidates

    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 60))
    total = rng.integers(0, 6, n).astype(np.float64)  # many ties
    best = np.flatnonzero(total == total.max())
    pick = int(best[int(rng.integers(len(best)))])

    class N:
        def __init__(self, i):
            self.name = f"n{i}"

    sc = Scores(np.arange(n), total, 0.0, best, pick)
    got = [c["node"] for c in top_candidates([N(i) for i in range(n)], sc, [], None, None, None)]
    want = [int(i) for i in np.argsort(-total, kind="stable")[:3]]
    if pick not in want:
        want = [pick, *want[:-1]]
    assert got == [f"n{i}" for i in want]
