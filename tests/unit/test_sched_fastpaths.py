"""The scheduling cycle's shortcuts give exactly what the plain computation gives:
kube-scheduler's numFeasibleNodesToFind, the windowed (early-stopping) feasible-node search vs.
filtering every node and keeping the first k in rotated order, ``uniform_score`` vs. score +
normalize over all nodes, the guard-free NodeResourcesFit / BalancedAllocation paths vs. the
guarded ones, the lazily built decision-log candidates vs. a stable argsort, and which pod
changes force a fresh PodInfo."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from schedulers.framework.cache import Cache
from schedulers.framework.framework import Framework, nodes_to_score
from schedulers.framework.interface import CycleState
from schedulers.framework.podinfo import PodInfo, same_scheduling_inputs
from schedulers.framework.profile import ProfileConfig, build_profile
from schedulers.profiles.loader import load_profile_configs
from schedulers.plugins import balanced_allocation, node_resources_fit
from schedulers.plugins.balanced_allocation import NodeResourcesBalancedAllocation
from schedulers.plugins.node_resources_fit import NodeResourcesFit


def node(name, cpu="4", mem="8Gi", taints=None, images=None, ann=None, gpus=0):
    alloc = {"cpu": cpu, "memory": mem, "pods": "110"}
    labels = {"kubernetes.io/hostname": name}
    if gpus:
        alloc["nvidia.com/gpu"] = str(gpus)
        labels["nvidia.com/gpu.product"] = "T4"
    return {"metadata": {"name": name, "labels": labels, "annotations": ann or {}},
            "spec": {"taints": taints or []},
            "status": {"allocatable": alloc,
                       "images": [{"names": [n], "sizeBytes": s} for n, s in (images or {}).items()]}}


def pod_obj(name="p", cpu="100m", mem="500Mi", **spec):
    req = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v}
    md = {"name": name, "namespace": "d", "uid": name, "labels": spec.pop("labels", {}),
          "annotations": spec.pop("annotations", {})}
    return {"metadata": md, "spec": {"containers": [{"name": "c", "image": spec.pop("image", "img"),
                                                     "resources": {"requests": req}}], **spec}}


def pod(name="p", **kw):
    return PodInfo.from_pod(pod_obj(name, **kw))


def cache_of(nodes):
    c = Cache()
    for n in nodes:
        c.add_or_update_node(n)
    c.refresh()
    return c


# kube-scheduler numFeasibleNodesToFind: max(5, 50 - n/125) % of n, at least 100 nodes
@pytest.mark.parametrize("n,pct,expected", [
    (5000, 0, 500),     # 10 %
    (100, 0, 100),      # small clusters: all nodes
    (99, 0, 99),
    (101, 0, 100),      # 50 % of 101 = 50, raised to the minimum of 100
    (1000, 0, 420),     # 42 %
    (6250, 0, 312),     # 50 - 50 = 0, raised to 5 %
    (20000, 0, 1000),
    (5000, 30, 1500),   # a profile's percentageOfNodesToScore
    (150, 10, 100),
    (5000, 100, 5000),
    (0, 0, 0),
])
def test_num_feasible_nodes_to_find(n, pct, expected):
    assert nodes_to_score(n, pct) == expected


def brute_force(c: Cache, p: PodInfo, start: int, k: int) -> np.ndarray:
    """Every node filtered, rotated to start at ``start``, the first k (in node order if <= k)."""
    fit = np.array([c.alloc["cpu"][i] - c.requested["cpu"][i] >= p.requests["cpu"] for i in range(c.n)])
    feas = np.flatnonzero(fit)
    if len(feas) <= k:
        return feas
    rolled = np.concatenate([feas[feas >= start], feas[feas < start]])
    return rolled[:k]


@pytest.mark.parametrize("n,infeasible_share,start", [
    (300, 0.0, 0), (300, 0.0, 250), (300, 0.5, 17), (300, 0.7, 299), (300, 0.9, 100),
    (1000, 0.0, 999), (1000, 0.3, 512), (1000, 0.6, 3), (1000, 0.97, 640), (150, 0.2, 149),
])
def test_windowed_search_equals_filtering_every_node(n, infeasible_share, start):
    rnd = random.Random(n * 7 + start)
    c = cache_of([node(f"n{i:05d}", cpu="100m" if rnd.random() < infeasible_share else "4") for i in range(n)])
    fw = Framework(build_profile(ProfileConfig("t", [("NodeResourcesFit", 1, {})], 0)), seed=1)
    p = pod(cpu="1")
    k = nodes_to_score(n, 0)
    fw.next_start = start
    cs = CycleState(_skip=set())
    found, _, _ = fw._find_feasible(cs, p, c, n, k, Counter())
    np.testing.assert_array_equal(found[:k], brute_force(c, p, start, k))
    res = fw.schedule(p, c)
    expected = brute_force(c, p, start, k)
    assert res.evaluated == len(expected)
    assert c.row[res.node] in set(expected.tolist())
    if len(expected) == k and len(np.flatnonzero(c.alloc["cpu"] >= 1000)) > k:
        assert fw.next_start == int(expected[-1]) + 1
    else:
        assert fw.next_start == start


def test_failure_counts_cover_every_node_with_the_window():
    c = cache_of([node(f"n{i:04d}", cpu="1") for i in range(1000)])
    fw = Framework(build_profile(ProfileConfig("t", [("NodeResourcesFit", 1, {})], 0)))
    fw.next_start = 777
    res = fw.schedule(pod(cpu="2"), c)
    assert res.node is None and res.failure_message(c.n) == "0/1000 nodes are available: 1000 Insufficient cpu."


PROFILES = load_profile_configs()


@pytest.mark.parametrize("nodes,p", [
    ([node("a"), node("b", cpu="8")], pod_obj()),
    ([node("a", images={"other:1": 500 * 2 ** 20}), node("b")], pod_obj(image="img:1")),
    ([node("a", ann={"x": "y"}), node("b", mem="16Gi")], pod_obj(cpu=None, mem=None)),
    ([node("a", gpus=0), node("b")], pod_obj(annotations={"unrelated": "1"})),
])
@pytest.mark.parametrize("profile", ["default-scheduler", "enhanced-scheduler", "fgd-scheduler"])
def test_uniform_scores_equal_score_then_normalize(nodes, p, profile):
    c = cache_of(nodes)
    info = PodInfo.from_pod(p)
    prof = build_profile(PROFILES[profile])
    idx = np.arange(c.n)
    used = 0
    for pl in prof.plugins:
        uniform = getattr(pl, "uniform_score", None)
        if uniform is None:
            continue
        cs = CycleState(_skip=set())
        u = uniform(cs, info, c)
        if u is None:
            continue
        used += 1
        s = np.asarray(pl.score(cs, info, c, idx))
        norm = getattr(pl, "normalize", None)
        if norm is not None:
            s = np.asarray(norm(cs, info, c, idx, s))
        assert s.tolist() == [u] * c.n, pl.name
    assert used >= 2


@pytest.mark.parametrize("nodes,p,plugin", [
    ([node("a", taints=[{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]), node("b")], pod_obj(), "TaintToleration"),
    ([node("a", images={"img:1": 500 * 2 ** 20}), node("b")], pod_obj(image="img:1"), "ImageLocality"),
    ([node("a"), node("b")], pod_obj(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 5, "preference": {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                                                           "values": ["a"]}]}}]}}), "NodeAffinity"),
    ([node("a", ann={"scheduling.controlplane.io/network-latency-ms": "5"}), node("b")], pod_obj(), "NetworkLatency"),
    ([node("a", gpus=2), node("b")], pod_obj(), "GpuAware"),
    ([node("a"), node("b")], pod_obj(annotations={"scheduling.controlplane.io/disk-io": "high"}), "DiskIO"),
])
def test_no_uniform_shortcut_when_nodes_differ(nodes, p, plugin):
    c = cache_of(nodes)
    pl = next(x for x in build_profile(PROFILES["enhanced-scheduler"]).plugins if x.name == plugin)
    assert pl.uniform_score(CycleState(_skip=set()), PodInfo.from_pod(p), c) is None


def random_cluster(seed: int, n: int = 60) -> tuple[Cache, list[PodInfo]]:
    rnd = random.Random(seed)
    c = cache_of([node(f"n{i:03d}", cpu=rnd.choice(["1", "2", "4", "16"]), mem=rnd.choice(["1Gi", "8Gi", "64Gi"]))
                  for i in range(n)])
    for j in range(3 * n):
        p = pod(f"e{j}", cpu=rnd.choice([None, "100m", "900m"]), mem=rnd.choice([None, "300Mi", "2Gi"]))
        c.add_pod(p, f"n{rnd.randrange(n):03d}")
    pods = [pod(f"q{j}", cpu=rnd.choice([None, "50m", "1", "3"]), mem=rnd.choice([None, "100Mi", "5Gi"])) for j in range(10)]
    return c, pods


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("plugin", [NodeResourcesFit, NodeResourcesBalancedAllocation])
def test_guard_free_score_paths_equal_the_guarded_ones(seed, plugin, monkeypatch):
    c, pods = random_cluster(seed)
    pl = plugin({})
    idx = np.arange(c.n)[::-1].copy()
    fast = [pl.score(CycleState(), p, c, idx).tolist() for p in pods]
    monkeypatch.setattr(node_resources_fit, "all_allocatable", lambda *a: False)
    monkeypatch.setattr(balanced_allocation, "all_allocatable", lambda *a: False)
    slow = [pl.score(CycleState(), p, c, idx).tolist() for p in pods]
    assert fast == slow


def test_candidates_are_the_stable_top_three():
    c = cache_of([node(f"n{i}", cpu=str(2 + i % 3)) for i in range(8)])  # n2 and n5 tie best (4 CPU)
    fw = Framework(build_profile(PROFILES["default-scheduler"]), seed=3)
    res = fw.schedule(pod(cpu="1"), c)
    cands = res.candidates
    assert [x["node"] for x in cands] == ["n2", "n5", "n1"] and res.node in ("n2", "n5")
    scores = [x["score"] for x in cands]
    assert scores == sorted(scores, reverse=True)
    assert [e["name"] for e in cands[0]["plugins"]] == [pl.name for pl, _ in fw.scorers]
    taint = {e["name"]: e for e in cands[0]["plugins"]}["TaintToleration"]
    assert taint == {"name": "TaintToleration", "raw": 0, "normalized": 100, "weight": 3, "weighted": 300}
    for x in cands:  # the total is the weighted sum of the plugins' normalised scores
        assert x["score"] == sum(e["weighted"] for e in x["plugins"])
    assert [x["chosen"] for x in cands].count(True) == 1


BASE = pod_obj("x", labels={"a": "1"})


@pytest.mark.parametrize("change,same", [
    (lambda o: o["metadata"].update(labels={"a": "2"}), True),
    (lambda o: o["spec"].update(nodeName="n1"), True),
    (lambda o: o.update(status={"phase": "Running"}), True),
    (lambda o: o["metadata"].update(annotations={"scheduling.controlplane.io/gpu-milli": "300"}), False),
    (lambda o: o["spec"]["containers"][0]["resources"]["requests"].update(cpu="2"), False),
    (lambda o: o["spec"].update(tolerations=[{"operator": "Exists"}]), False),
    (lambda o: o["spec"].update(priorityClassName="high"), False),
    (lambda o: o["spec"].update(priority=10), False),
])
def test_same_scheduling_inputs(change, same):
    import copy
    new = copy.deepcopy(BASE)
    change(new)
    assert same_scheduling_inputs(BASE, new) is same
