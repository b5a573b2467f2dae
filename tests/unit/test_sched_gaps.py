"""The live scheduler's former correctness gaps (issue 17 item 6), as pure logic: terms'
``namespaceSelector``, Kubernetes' default spreading selector (Services, RCs, RSs, SSs),
existing pods' preferred (anti-)affinity in the InterPodAffinity score, and the cache's
handling of terminating and nominated pods. The same behaviours against the real apiserver:
``tests/integration/test_scheduler_live.py``."""

from __future__ import annotations

import numpy as np
import pytest

from schedulers.framework.framework import Framework
from schedulers.framework.interface import CycleState
from schedulers.framework.podinfo import PodInfo
from schedulers.framework.profile import ProfileConfig, build_profile
from schedulers.framework.workloads import WorkloadSelectors
from schedulers.plugins.helpers import affinity_term_matches
from schedulers.plugins.inter_pod_affinity import InterPodAffinity
from schedulers.plugins.pod_topology_spread import constraints
from tests.unit.test_sched_fastpaths import cache_of, node, pod, pod_obj

NS = {"a": {"team": "a"}, "b": {"team": "b"}, "c": {}}


@pytest.mark.parametrize("term,owner,pod_ns,want", [
    ({}, "a", "a", True),                                                   # neither: the owner's namespace
    ({}, "a", "b", False),
    ({"namespaces": ["b"]}, "a", "b", True),
    ({"namespaces": ["b"]}, "a", "a", False),
    ({"namespaceSelector": {}}, "a", "c", True),                            # {}: every namespace
    ({"namespaceSelector": {"matchLabels": {"team": "b"}}}, "a", "b", True),
    ({"namespaceSelector": {"matchLabels": {"team": "b"}}}, "a", "a", False),  # not even the owner's
    ({"namespaceSelector": {"matchLabels": {"team": "b"}}}, "a", "zzz", False),  # unknown namespace
    ({"namespaces": ["c"], "namespaceSelector": {"matchLabels": {"team": "a"}}}, "b", "c", True),  # union
    ({"namespaces": ["c"], "namespaceSelector": {"matchLabels": {"team": "a"}}}, "b", "a", True),
    ({"namespaces": ["c"], "namespaceSelector": {"matchLabels": {"team": "a"}}}, "b", "b", False),
], ids=lambda v: str(v))
def test_affinity_term_namespaces(term, owner, pod_ns, want):
    t = {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "k", **term}
    assert affinity_term_matches(t, owner, pod_ns, {"app": "x"}, NS.get) is want
    assert affinity_term_matches(t, owner, pod_ns, {"app": "y"}, NS.get) is False


def _ws() -> WorkloadSelectors:
    ws = WorkloadSelectors()
    ws.set("Service", {"kind": "Service", "metadata": {"name": "web", "namespace": "d"}, "spec": {"selector": {"app": "web"}}})
    ws.set("Service", {"kind": "Service", "metadata": {"name": "tier", "namespace": "d"},
                       "spec": {"selector": {"tier": "front"}}})
    ws.set("Service", {"kind": "Service", "metadata": {"name": "other", "namespace": "e"}, "spec": {"selector": {"app": "web"}}})
    ws.set("Service", {"kind": "Service", "metadata": {"name": "headless", "namespace": "d"}, "spec": {}})
    ws.set("ReplicaSet", {"kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "d"},
                          "spec": {"selector": {"matchLabels": {"app": "web", "pod-template-hash": "1"}}}})
    ws.set("StatefulSet", {"kind": "StatefulSet", "metadata": {"name": "db", "namespace": "d"},
                           "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]}}})
    return ws


def _owner(kind, name, api="apps/v1", controller=True):
    return [{"apiVersion": api, "kind": kind, "name": name, "uid": "u", "controller": controller}]


@pytest.mark.parametrize("labels,owners,match,nomatch", [
    ({"app": "web"}, [], {"app": "web", "x": "1"}, {"app": "db"}),                         # a Service
    ({"app": "web", "tier": "front"}, [], {"app": "web", "tier": "front"}, {"app": "web"}),  # two Services: AND
    ({"app": "web", "pod-template-hash": "1"}, _owner("ReplicaSet", "web-1"),
     {"app": "web", "pod-template-hash": "1"}, {"app": "web", "pod-template-hash": "2"}),   # + its ReplicaSet
    ({"app": "db"}, _owner("StatefulSet", "db"), {"app": "db"}, {"app": "web"}),
    ({"app": "web"}, _owner("ReplicaSet", "web-1", controller=False), {"app": "web"}, {"app": "x"}),  # not its controller
])
def test_default_spreading_selector(labels, owners, match, nomatch):
    sel = _ws().default_selector("d", labels, owners)
    assert sel is not None and sel.matches(match) and not sel.matches(nomatch)


@pytest.mark.parametrize("ns,labels,owners", [
    ("d", {"app": "lonely"}, []),                       # no Service selects it, no controller
    ("d", {"app": "x"}, _owner("Job", "j", "batch/v1")),  # a controller kind without defaults
    ("d", {"app": "x"}, _owner("ReplicaSet", "missing")),
])
def test_no_default_spreading_selector(ns, labels, owners):
    assert _ws().default_selector(ns, labels, owners) is None


def test_default_constraints_use_the_selector():
    c = cache_of([node("n1"), node("n2")])
    c.workloads = _ws()
    p = PodInfo.from_pod(pod_obj("w", labels={"app": "web"}))
    cons = constraints(p, "ScheduleAnyway", c)
    assert [x.key for x in cons] == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
    assert [x.max_skew for x in cons] == [3, 5]
    assert constraints(PodInfo.from_pod(pod_obj("z", labels={"app": "zzz"})), "ScheduleAnyway", c) == []


def test_existing_pods_preferred_affinity_is_scored():
    c = cache_of([node("n1"), node("n2"), node("n3")])
    pref = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 80, "podAffinityTerm": {
        "labelSelector": {"matchLabels": {"app": "f"}}, "topologyKey": "kubernetes.io/hostname"}}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 30, "podAffinityTerm": {
            "labelSelector": {"matchLabels": {"app": "f"}}, "topologyKey": "kubernetes.io/hostname"}}]}}
    req = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "f"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    c.add_pod(PodInfo.from_pod(pod_obj("likes", affinity={"podAffinity": pref["podAffinity"]})), "n1")
    c.add_pod(PodInfo.from_pod(pod_obj("dislikes", affinity={"podAntiAffinity": pref["podAntiAffinity"]})), "n2")
    c.add_pod(PodInfo.from_pod(pod_obj("needs", affinity=req)), "n3")
    pl = InterPodAffinity({})
    incoming = PodInfo.from_pod(pod_obj("f", labels={"app": "f"}))
    assert pl.uniform_score(CycleState(), incoming, c) is None
    raw = pl.score(CycleState(), incoming, c, np.arange(3))
    assert raw.tolist() == [80, -30, 1]  # +weight, -weight, +hardPodAffinityWeight
    assert pl.normalize(None, incoming, c, None, raw).tolist() == [100, 0, 28]
    other = PodInfo.from_pod(pod_obj("o", labels={"app": "other"}))
    assert pl.uniform_score(CycleState(), other, c) == 0  # nobody's terms match it


def test_terminating_pods_keep_their_resources_and_nominated_pods_reserve_room():
    c = cache_of([node("n1", cpu="2")])
    victim = PodInfo.from_pod(pod_obj("v", cpu="1500m"))
    c.add_pod(victim, "n1")
    gone = pod_obj("v", cpu="1500m")
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    c.add_pod(PodInfo.from_pod(gone), "n1")  # the informer's update: still there, terminating
    assert c.terminating_on("n1", 10) and not c.terminating_on("n1", 0)
    fw = Framework(build_profile(ProfileConfig("t", [("NodeResourcesFit", 1, {})])))
    vip = PodInfo.from_pod(pod_obj("vip", cpu="1500m", priority=10))
    assert fw.schedule(vip, c).node is None  # the victim still holds 1.5 CPU
    c.remove_pod(victim.uid)
    c.nominate(vip, "n1")
    small = PodInfo.from_pod(pod_obj("small", cpu="1"))
    added = c.add_nominated_for(small)
    assert [p.name for p in added] == ["vip"] and fw.schedule(small, c).node is None  # room kept for vip
    c.remove_nominated(added)
    assert c.add_nominated_for(vip) == [] and fw.schedule(vip, c).node == "n1"
    higher = PodInfo.from_pod(pod_obj("higher", cpu="1", priority=20))
    assert c.add_nominated_for(higher) == []  # a nominated pod of lower priority does not hold it back
