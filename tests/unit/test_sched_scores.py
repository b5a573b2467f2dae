"""Score formulas of the Kubernetes plugins against hand-computed values (table-driven), on a
small cache built from node and pod dicts."""

from __future__ import annotations

import numpy as np
import pytest

from schedulers.framework.cache import Cache
from schedulers.framework.framework import Framework, nodes_to_score
from schedulers.framework.interface import CycleState
from schedulers.framework.podinfo import PodInfo
from schedulers.framework.profile import ProfileConfig, build_profile
from schedulers.plugins.balanced_allocation import NodeResourcesBalancedAllocation
from schedulers.plugins.image_locality import ImageLocality, image_score
from schedulers.plugins.inter_pod_affinity import InterPodAffinity
from schedulers.plugins.node_affinity import NodeAffinity
from schedulers.plugins.node_resources_fit import NodeResourcesFit
from schedulers.plugins.pod_topology_spread import PodTopologySpread
from schedulers.plugins.taint_toleration import TaintToleration

GI = 1024 ** 3


def node(name, cpu="4", mem="8Gi", pods="110", labels=None, taints=None, images=None):
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or []},
            "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": pods},
                       "images": [{"names": [n], "sizeBytes": s} for n, s in (images or {}).items()]}}


def pod(name="p", cpu=None, mem=None, labels=None, ns="d", **spec):
    req = {}
    if cpu:
        req["cpu"] = cpu
    if mem:
        req["memory"] = mem
    return PodInfo.from_pod({"metadata": {"name": name, "namespace": ns, "uid": f"{ns}-{name}", "labels": labels or {}},
                             "spec": {"containers": [{"name": "c", "image": spec.pop("image", "img"),
                                                      "resources": {"requests": req}}], **spec}})


def cache_of(*nodes, pods=()):
    c = Cache()
    for n in nodes:
        c.add_or_update_node(n)
    c.refresh()
    for p, where in pods:
        c.add_pod(p, where)
    return c


def scores(plugin, p, c, normalize=True):
    idx = np.arange(c.n)
    cs = CycleState()
    if hasattr(plugin, "pre_score"):
        plugin.pre_score(cs, p, c, idx)
    s = plugin.score(cs, p, c, idx)
    if normalize and hasattr(plugin, "normalize"):
        s = plugin.normalize(cs, p, c, idx, s)
    return [int(x) for x in s]


# node: 4 cpu / 8Gi with 1 cpu / 2Gi used; pod: 1 cpu / 2Gi -> requested 2000m of 4000m, 4Gi of 8Gi
@pytest.mark.parametrize("strategy,expected", [
    ("LeastAllocated", 50),          # ((4000-2000)*100/4000 + (8-4)*100/8) / 2
    ("MostAllocated", 50),           # (2000*100/4000 + 4*100/8) / 2
    ("RequestedToCapacityRatio", 5),  # shape (0,0)-(100,1), scores x10: utilisation 50 % -> 5
], ids=["least", "most", "rtcr"])
def test_node_resources_fit_strategies(strategy, expected):
    c = cache_of(node("a", cpu="4", mem="8Gi"), pods=[(pod("x", cpu="1", mem="2Gi"), "a")])
    args = {"scoringStrategy": {"type": strategy}}
    if strategy == "RequestedToCapacityRatio":
        args["scoringStrategy"]["requestedToCapacityRatio"] = {"shape": [{"utilization": 0, "score": 0},
                                                                         {"utilization": 100, "score": 1}]}
    got = scores(NodeResourcesFit(args), pod(cpu="1", mem="2Gi"), c)
    assert got == [expected]


@pytest.mark.parametrize("pod_cpu,expected", [
    ("1", 86),     # cpu 75; memory default 200Mi: (8192-200)*100 // 8192 = 97 -> (75 + 97) // 2
    (None, 97),    # cpu default 100m: 3900*100 // 4000 = 97; memory 97
], ids=["mem-default", "both-defaults"])
def test_least_allocated_uses_nonzero_defaults(pod_cpu, expected):
    c = cache_of(node("a", cpu="4", mem="8Gi"))
    got = scores(NodeResourcesFit({}), pod(cpu=pod_cpu), c)
    assert got == [expected]


@pytest.mark.parametrize("cpu_req,mem_req,expected", [
    ("2", "4Gi", 100),  # f = (0.5, 0.5): std 0
    ("3", "2Gi", 75),   # f = (0.75, 0.25): std 0.25
    ("4", "1Gi", 56),   # f = (1.0, 0.125): std 0.4375 -> trunc(56.25)
    ("8", "1Gi", 56),   # f_cpu clamps at 1
], ids=["balanced", "skewed", "very-skewed", "over-capacity"])
def test_balanced_allocation(cpu_req, mem_req, expected):
    c = cache_of(node("a", cpu="4", mem="8Gi"))
    assert scores(NodeResourcesBalancedAllocation({}), pod(cpu=cpu_req, mem=mem_req), c) == [expected]


def test_taint_toleration_score_reverse_normalised():
    soft = {"key": "k", "value": "v", "effect": "PreferNoSchedule"}
    c = cache_of(node("a"), node("b", taints=[soft]), node("c", taints=[soft, {**soft, "key": "k2"}]))
    assert scores(TaintToleration({}), pod(), c) == [100, 50, 0]
    tolerant = pod(tolerations=[{"key": "k", "operator": "Exists"}])
    assert scores(TaintToleration({}), tolerant, c) == [100, 100, 0]


def test_node_affinity_preferred_normalised():
    c = cache_of(node("a", labels={"z": "1"}), node("b", labels={"z": "2", "ssd": "y"}), node("c"))
    aff = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 30, "preference": {"matchExpressions": [{"key": "z", "operator": "In", "values": ["1", "2"]}]}},
        {"weight": 10, "preference": {"matchExpressions": [{"key": "ssd", "operator": "Exists"}]}}]}}
    assert scores(NodeAffinity({}), pod(affinity=aff), c) == [75, 100, 0]  # 30/40, 40/40, 0


def test_inter_pod_affinity_preferred_min_max():
    c = cache_of(node("a"), node("b"), node("c"),
                 pods=[(pod("db", labels={"app": "db"}), "a"), (pod("db2", labels={"app": "db"}), "a"),
                       (pod("cache", labels={"app": "cache"}), "b")])
    aff = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}},
                                           "topologyKey": "kubernetes.io/hostname"}}]},
           "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 20, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "cache"}},
                                           "topologyKey": "kubernetes.io/hostname"}}]}}
    # raw: a = +20, b = -20, c = 0 -> (s - min) * 100 // (max - min)
    assert scores(InterPodAffinity({}), pod(affinity=aff), c) == [100, 0, 50]


def test_topology_spread_score():
    zone = "topology.kubernetes.io/zone"
    c = cache_of(node("a", labels={zone: "z1"}), node("b", labels={zone: "z1"}), node("c", labels={zone: "z2"}),
                 pods=[(pod("w1", labels={"app": "w"}), "a"), (pod("w2", labels={"app": "w"}), "b")])
    tsc = [{"maxSkew": 1, "topologyKey": zone, "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app": "w"}}}]
    p = pod(labels={"app": "w"}, topologySpreadConstraints=tsc)
    # raw: z1 has 2 matching pods, 2 domains: 2 * ln(4) + 0 = 2.77 -> 3; z2: 0 -> 0
    # normalised 100 * (max + min - s) / max: z1 -> 0, z2 -> 100
    assert scores(PodTopologySpread({}), p, c) == [0, 0, 100]


@pytest.mark.parametrize("sizes,containers,expected", [
    ([0], 1, 0),
    ([23 * 2 ** 20], 1, 0),
    ([1000 * 2 ** 20], 1, 100),
    ([(23 + 977 // 2) * 2 ** 20], 1, 49),  # 488 * 100 // 977
    ([500 * 2 ** 20], 2, 24),  # clamp hi = 2000 MiB: (500-23)*100 // (2000-23) = 24
], ids=["none", "min", "max", "half", "two-containers"])
def test_image_locality_scale(sizes, containers, expected):
    assert int(image_score(np.array(sizes), containers)[0]) == expected


def test_image_locality_spread_weighted():
    big = 523 * 2 ** 20
    c = cache_of(node("a", images={"img:latest": big}), node("b"))
    # spread 1/2: 261.5 MiB on a -> (261.5 - 23) * 100 // 977 = 24
    assert scores(ImageLocality({}), pod(), c) == [24, 0]


@pytest.mark.parametrize("n,pct,expected", [(50, 0, 50), (1000, 0, 420), (5000, 0, 500), (20000, 0, 1000),
                                            (5000, 100, 5000), (150, 0, 100)])
def test_nodes_to_score(n, pct, expected):
    assert nodes_to_score(n, pct) == expected


def test_failure_message_counts_reasons():
    c = cache_of(node("a", cpu="1"), node("b", cpu="1"), node("c", cpu="8",
                 taints=[{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]))
    cfg = ProfileConfig("t", [("NodeResourcesFit", 1, {}), ("TaintToleration", 1, {})])
    fw = Framework(build_profile(cfg), seed=0)
    res = fw.schedule(pod(cpu="2"), c)
    assert res.node is None
    assert res.failure_message(c.n) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {gpu: yes}, 2 Insufficient cpu.")


def test_network_latency_and_disk_io():
    from schedulers.plugins.disk_io import DiskIO
    from schedulers.plugins.network_latency import NetworkLatency

    def annotated(name, **ann):
        n = node(name)
        n["metadata"]["annotations"] = {f"scheduling.controlplane.io/{k.replace('_', '-')}": v for k, v in ann.items()}
        return n

    c = cache_of(annotated("a", network_latency_ms="2"), annotated("b", network_latency_ms="10"),
                 annotated("c", disk_iops="50000"), node("d", labels={"node.controlplane.io/disk-type": "nvme"}))
    # latency: a=2, b=10, c/d unknown -> slowest; 100*(10-l)/(10-2)
    assert scores(NetworkLatency({}), pod(), c) == [100, 0, 0, 0]
    io_pod = PodInfo.from_pod({"metadata": {"name": "io", "namespace": "d",
                                            "annotations": {"scheduling.controlplane.io/disk-io": "high"}},
                               "spec": {"containers": [{"name": "c", "image": "i"}]}})
    # iops: 0, 0, 50000, 500000 (nvme) -> 100*x/max
    assert scores(DiskIO({}), io_pod, c) == [0, 0, 10, 100]
    assert scores(DiskIO({}), pod(), c) == [0, 0, 0, 0]


def test_gpu_aware_prefers_model_and_packing():
    from schedulers.plugins.gpu_aware import GpuAware

    def gnode(name, gpus, model):
        n = node(name, cpu="32")
        n["status"]["allocatable"]["nvidia.com/gpu"] = str(gpus)
        n["metadata"]["labels"]["nvidia.com/gpu.product"] = model
        return n

    c = cache_of(gnode("t4", 2, "T4"), gnode("v100", 8, "V100"), node("cpu", cpu="32"))
    whole = PodInfo.from_pod({"metadata": {"name": "w", "namespace": "d",
                                           "annotations": {"scheduling.controlplane.io/gpu-model": "V100|T4"}},
                              "spec": {"containers": [{"name": "c", "image": "i",
                                                       "resources": {"requests": {"nvidia.com/gpu": "2"}}}]}})
    assert c.row == {"cpu": 0, "t4": 1, "v100": 2}
    s = GpuAware({}).score(CycleState(), whole, c, np.array([1, 2]))
    # t4: model 80 (second choice), packing 100 - 0 = 100 -> 90; v100: model 100, packing 100 - 6*100//8 = 25 -> 62
    assert list(s) == [90, 62]
    cpu_pod = pod(cpu="1")
    s = GpuAware({}).score(CycleState(), cpu_pod, c, np.arange(3))
    assert list(s) == [100, 0, 0]  # CPU-only node 100; untouched GPU nodes 50 * (1 - 1) = 0
