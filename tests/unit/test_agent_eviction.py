"""The node agent's eviction rules (the kubelet's eviction manager), table-driven with a fake
clock: threshold syntax, signals against thresholds, pressure conditions and their transition
period, the order pods are evicted in (pods' effective requests, sidecars included), the status
message, allocatable."""

from __future__ import annotations

import pytest

from controlplane.agent.eviction import (
    Observation, PodUsage, PressureConditions, Threshold, is_critical, local_storage_violation, message, parse_thresholds, pod_request, rank,
    reserved, thresholds_met,
)
from controlplane.agent.pressure import pod_usages
from controlplane.agent.stats import ContainerSample, FsSample, NodeSample, PodSample, Usage
from controlplane.agent.node import node_allocatable

MI = 1 << 20


@pytest.mark.parametrize("text,want", [
    ("memory.available<100Mi", [Threshold("memory.available", quantity=100 * MI)]),
    ("nodefs.available<10%,pid.available<5%", [Threshold("nodefs.available", percentage=0.10),
                                                Threshold("pid.available", percentage=0.05)]),
    ("", []),
])
def test_parse_thresholds(text, want):
    assert parse_thresholds(text) == want


@pytest.mark.parametrize("bad", ["memory.available>1Gi", "cpu.available<1", "nodefs.available<110%", "memory.available<x"])
def test_parse_thresholds_rejects(bad):
    with pytest.raises(ValueError):
        parse_thresholds(bad)


@pytest.mark.parametrize("obs,met", [
    ({"memory.available": Observation(50 * MI, 1000 * MI)}, ["memory.available"]),
    ({"memory.available": Observation(200 * MI, 1000 * MI)}, []),
    ({"nodefs.available": Observation(5, 100)}, ["nodefs.available"]),
    ({"nodefs.available": Observation(10, 100)}, []),  # exactly at the threshold: not below it
    ({}, []),
])
def test_thresholds_met(obs, met):
    th = parse_thresholds("memory.available<100Mi,nodefs.available<10%")
    assert [t.signal for t in thresholds_met(th, obs)] == met


def test_pressure_condition_holds_for_the_transition_period():
    pc = PressureConditions(transition_period=300)
    mem = parse_thresholds("memory.available<1")
    assert pc.observe(mem, 1000)["MemoryPressure"] is True
    assert pc.observe([], 1200)["MemoryPressure"] is True  # 200 s later: still held
    assert pc.observe([], 1301)["MemoryPressure"] is False
    assert pc.observe([], 1301)["DiskPressure"] is False


def pu(key, prio=0, req=0, use=0, procs=0, critical=False, sreq=0, suse=0):
    return PodUsage(key, priority=prio, critical=critical, memory_request=req, memory_usage=use, processes=procs,
                    storage_request=sreq, storage_usage=suse)


@pytest.mark.parametrize("signal,pods,order", [
    # memory: over-request first, then lower priority, then most above request
    ("memory.available", [pu("a", req=100, use=50), pu("b", req=10, use=20), pu("c", req=0, use=500)], ["c", "b", "a"]),
    ("memory.available", [pu("hi", prio=1000, use=900), pu("lo", prio=0, use=10)], ["lo", "hi"]),
    ("memory.available", [pu("crit", critical=True, use=10**9), pu("x", use=1)], ["x"]),
    ("nodefs.available", [pu("a", suse=5), pu("b", sreq=100, suse=50), pu("c", suse=50)], ["c", "a", "b"]),
    ("pid.available", [pu("a", procs=3), pu("b", procs=30), pu("c", prio=-1, procs=1)], ["c", "b", "a"]),
])
def test_rank(signal, pods, order):
    assert [p.key for p in rank(signal, pods)] == order


def test_message_names_the_container_over_its_request():
    t = parse_thresholds("memory.available<100Mi")[0]
    p = PodUsage("k", containers=[("hog", 300 * MI, 0, 0, 0), ("ok", MI, 2 * MI, 0, 0)])
    assert message(t, Observation(50 * MI, 4096 * MI), p) == (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. "
        "Container hog was using 300Mi, request is 0, has larger consumption of memory. ")


@pytest.mark.parametrize("pod,crit", [
    ({"spec": {"priority": 2000001000}}, True),
    ({"spec": {"priority": 1000}}, False),
    ({"metadata": {"annotations": {"kubernetes.io/config.source": "file"}}}, True),
    ({}, False),
])
def test_critical_pods(pod, crit):
    assert is_critical(pod) is crit


def test_allocatable_is_capacity_minus_reserved_minus_hard_thresholds():
    cap = {"cpu": "2", "memory": "4096Mi", "ephemeral-storage": "1000000", "pods": "110"}
    res = reserved("cpu=100m,memory=256Mi")
    alloc = node_allocatable(cap, res, parse_thresholds("memory.available<100Mi,nodefs.available<10%"))
    assert alloc == {"cpu": "1900m", "memory": f"{(4096 - 256 - 100) * 1024}Ki", "ephemeral-storage": "900000",
                     "pods": "110"}


@pytest.mark.parametrize("bad", ["cpu", "gpu=1", "memory=lots"])
def test_reserved_rejects(bad):
    with pytest.raises(ValueError):
        reserved(bad)


def _c(name, mem=None, disk=None, always=False):
    c = {"name": name, "resources": {"requests": {k: v for k, v in (("memory", mem), ("ephemeral-storage", disk))
                                                  if v is not None}}}
    if always:
        c["restartPolicy"] = "Always"
    return c


@pytest.mark.parametrize("spec,resource,want", [
    # regular containers only: their sum
    ({"containers": [_c("a", "100Mi"), _c("b", "50Mi")]}, "memory", 150 * MI),
    # a sidecar adds to the regular containers (it runs next to them)
    ({"initContainers": [_c("log", "64Mi", always=True)], "containers": [_c("app", "100Mi")]}, "memory", 164 * MI),
    # a plain init container counts only where it is the larger (it runs alone)
    ({"initContainers": [_c("setup", "300Mi")], "containers": [_c("app", "100Mi")]}, "memory", 300 * MI),
    ({"initContainers": [_c("setup", "10Mi")], "containers": [_c("app", "100Mi")]}, "memory", 100 * MI),
    # an init container after a sidecar runs next to it: 64 + 200 > 64 + 100
    ({"initContainers": [_c("log", "64Mi", always=True), _c("setup", "200Mi")], "containers": [_c("app", "100Mi")]},
     "memory", 264 * MI),
    # an init container before the sidecar runs alone: max(200, 64 + 100)
    ({"initContainers": [_c("setup", "200Mi"), _c("log", "64Mi", always=True)], "containers": [_c("app", "100Mi")]},
     "memory", 200 * MI),
    # disk the same way; a resource nobody requests is 0
    ({"initContainers": [_c("log", disk="1Gi", always=True)], "containers": [_c("app", disk="1Gi")]},
     "ephemeral-storage", 2048 * MI),
    ({"initContainers": [_c("log", "64Mi", always=True)], "containers": [_c("app")]}, "ephemeral-storage", 0),
    ({}, "memory", 0),
    # unreadable quantities count as 0, not an error
    ({"containers": [_c("a", "lots"), _c("b", "1Mi")]}, "memory", MI),
])
def test_pod_request_counts_sidecars(spec, resource, want):
    assert pod_request(spec, resource) == want


def _sample(uid, working_set, per):
    def u(ws):
        return Usage(0.0, working_set_bytes=ws)
    fs = FsSample(100, 50, 50, 10, 5)
    pod = PodSample("ns", uid, uid, 0.0, u(working_set),
                    containers=[ContainerSample(n, n, "busybox", 0.0, u(ws)) for n, ws in per])
    return pod, fs


@pytest.mark.parametrize("pods,order,first_message", [
    # "side" uses 150Mi: over its regular container's 100Mi but under 100 + 64 with the sidecar, so
    # "plain" (over its own request) goes first, though "side" uses more above its containers' sum
    ({"side": ({"initContainers": [_c("log", "64Mi", always=True)], "containers": [_c("app", "100Mi")]},
               [("log", 60 * MI), ("app", 90 * MI)]),
      "plain": ({"containers": [_c("app", "100Mi")]}, [("app", 110 * MI)])},
     ["plain", "side"], "Container app was using 110Mi, request is 100Mi, has larger consumption of memory. "),
    # a sidecar over its own request is named with its request
    ({"side": ({"initContainers": [_c("log", "10Mi", always=True)], "containers": [_c("app", "100Mi")]},
               [("log", 80 * MI), ("app", 50 * MI)])},
     ["side"], "Container log was using 80Mi, request is 10Mi, has larger consumption of memory. "),
])
def test_pod_usages_rank_with_sidecar_requests(pods, order, first_message):
    samples, specs = [], {}
    for uid, (spec, per) in pods.items():
        pod, fs = _sample(uid, sum(ws for _, ws in per), per)
        samples.append(pod)
        specs[uid] = {"metadata": {"name": uid}, "spec": spec}
    n = NodeSample("n1", 0.0, Usage(0.0), 4096 * MI, 50 * MI, fs, fs, {}, None, 1000, 10, 2, pods=samples)
    ranked = rank("memory.available", pod_usages(n, specs))
    assert [p.key for p in ranked] == order
    t = parse_thresholds("memory.available<100Mi")[0]
    assert message(t, Observation(50 * MI, 4096 * MI), ranked[0]).endswith("available: 50Mi. " + first_message)


def _spec(volumes=(), limits=None):
    c = {"name": "c", "resources": {"limits": limits}} if limits else {"name": "c"}
    return {"containers": [c], "volumes": list(volumes)}


@pytest.mark.parametrize("spec,vols,pod_used,ctr_used,want", [
    (_spec([{"name": "d", "emptyDir": {"sizeLimit": "2Mi"}}]), {"d": 8 << 20}, 8 << 20, {},
     'Usage of EmptyDir volume "d" exceeds the limit "2Mi". '),
    (_spec([{"name": "d", "emptyDir": {"sizeLimit": "2Mi"}}]), {"d": 2 << 20}, 2 << 20, {}, None),  # at the limit
    (_spec([{"name": "d", "emptyDir": {}}]), {"d": 8 << 20}, 8 << 20, {}, None),
    (_spec([{"name": "d", "emptyDir": {"sizeLimit": "0.5Gi"}}]), {"d": 1 << 30}, 1 << 30, {},
     'Usage of EmptyDir volume "d" exceeds the limit "512Mi". '),
    (_spec(limits={"ephemeral-storage": "4Mi"}), {}, 5 << 20, {"c": 1 << 20},
     "Pod ephemeral local storage usage exceeds the total limit of containers 4Mi. "),
    (_spec(limits={"ephemeral-storage": "4Mi"}), {}, 4 << 20, {"c": 4 << 20}, None),
    ({"containers": [{"name": "a", "resources": {"limits": {"ephemeral-storage": "1Mi"}}},
                     {"name": "b", "resources": {"limits": {"ephemeral-storage": "100Mi"}}}]},
     {}, 2 << 20, {"a": 2 << 20, "b": 0},
     'Container a exceeded its local ephemeral storage limit "1Mi". '),
], ids=["emptydir-over", "emptydir-at", "emptydir-unbounded", "emptydir-canonical", "pod-over", "pod-at", "container"])
def test_local_storage_eviction(spec, vols, pod_used, ctr_used, want):
    assert local_storage_violation(spec, vols, pod_used, ctr_used) == want
