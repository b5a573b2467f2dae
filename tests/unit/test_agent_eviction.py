"""The node agent's eviction rules (the kubelet's eviction manager), table-driven with a fake
clock: threshold syntax, signals against thresholds, pressure conditions and their transition
period, the order pods are evicted in, the status message, allocatable."""

from __future__ import annotations

import pytest

from controlplane.agent.eviction import (
    Observation, PodUsage, PressureConditions, Threshold, is_critical, message, parse_thresholds, rank, reserved,
    thresholds_met,
)
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
