"""PodTopologySpread's fields as kube-scheduler 1.32 reads them: ``matchLabelKeys``,
``nodeAffinityPolicy``, ``nodeTaintsPolicy`` and ``minDomains``, on the Filter
(DoNotSchedule) and the Score (ScheduleAnyway) side, against hand-computed counts; the
counting rules (every topology key required, terminating pods and empty selectors count
nothing); a node without the key is rejected as unresolvable."""

from __future__ import annotations

import numpy as np
import pytest

from schedulers.framework.framework import Framework
from schedulers.framework.interface import CycleState, Diagnosis
from schedulers.framework.profile import ProfileConfig, build_profile
from schedulers.plugins.pod_topology_spread import REASON, REASON_LABEL, PodTopologySpread, constraints
from tests.unit.test_sched_scores import cache_of, node, pod

ZONE = "topology.kubernetes.io/zone"
W = {"app": "w"}
SEL = {"matchLabels": W}
NOSCHED = [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]


def tsc(when="DoNotSchedule", key=ZONE, skew=1, **kw):
    return [{"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": when, "labelSelector": SEL, **kw}]


def zn(name, zone, **kw):
    return node(name, labels={ZONE: zone, **kw.pop("labels", {})}, **kw)


def on(where, n=1, labels=W, ns="d", prefix="", **kw):
    return [(pod(f"{prefix}{where}{i}", labels=labels, ns=ns, **kw), where) for i in range(n)]


def feasible(p, c) -> list[str]:
    pl, cs = PodTopologySpread({}), CycleState()
    st = pl.pre_filter(cs, p, c)
    if st is not None and st.is_skip:
        return [n.name for n in c.nodes]
    res = pl.filter(cs, p, c, np.arange(c.n))
    return [c.nodes[i].name for i in np.flatnonzero(res.ok)]


def scores(p, c, idx) -> list[int]:
    pl, cs = PodTopologySpread({}), CycleState()
    idx = np.array(idx, dtype=np.int64)
    pl.pre_score(cs, p, c, idx)
    return [int(x) for x in pl.normalize(cs, p, c, idx, pl.score(cs, p, c, idx))]


OLD, NEW = {"app": "w", "hash": "old"}, {"app": "w", "hash": "new"}

# (id, nodes, pods already placed, incoming pod's labels / spec, nodes the filter lets through)
FILTER_CASES = [
    # matchLabelKeys: z1 holds 2 pods of the old revision, z2 1 of the new one
    ("labelSelector alone counts every revision", [zn("a", "z1"), zn("b", "z2")],
     on("a", 2, OLD) + on("b", 1, NEW), NEW, tsc(), ["b"]),
    ("matchLabelKeys: only the pod's revision counts", [zn("a", "z1"), zn("b", "z2")],
     on("a", 2, OLD) + on("b", 1, NEW), NEW, tsc(matchLabelKeys=["hash"]), ["a"]),
    ("matchLabelKeys: a key the pod lacks is ignored", [zn("a", "z1"), zn("b", "z2")],
     on("a", 2, OLD) + on("b", 1, NEW), NEW, tsc(matchLabelKeys=["missing"]), ["b"]),
    # nodeAffinityPolicy: c (z3) does not match the pod's nodeSelector
    ("nodeAffinityPolicy Honor (default): z3 does not count", [zn("a", "z1", labels={"disk": "ssd"}),
                                                               zn("b", "z2", labels={"disk": "ssd"}), zn("c", "z3")],
     on("a") + on("b"), W, {"nodeSelector": {"disk": "ssd"}, "topologySpreadConstraints": tsc()}, ["a", "b", "c"]),
    ("nodeAffinityPolicy Ignore: empty z3 is the minimum", [zn("a", "z1", labels={"disk": "ssd"}),
                                                            zn("b", "z2", labels={"disk": "ssd"}), zn("c", "z3")],
     on("a") + on("b"), W, {"nodeSelector": {"disk": "ssd"},
                            "topologySpreadConstraints": tsc(nodeAffinityPolicy="Ignore")}, ["c"]),
    ("nodeAffinityPolicy Honor: required node affinity too",
     [zn("a", "z1", labels={"disk": "ssd"}), zn("b", "z2", labels={"disk": "ssd"}), zn("c", "z3")],
     on("a") + on("b"), W,
     {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
         {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}},
      "topologySpreadConstraints": tsc()}, ["a", "b", "c"]),
    # nodeTaintsPolicy: c (z3) has a NoSchedule taint
    ("nodeTaintsPolicy Ignore (default): tainted z3 is the minimum",
     [zn("a", "z1"), zn("b", "z2"), zn("c", "z3", taints=NOSCHED)], on("a") + on("b"), W, tsc(), ["c"]),
    ("nodeTaintsPolicy Honor: tainted z3 does not count",
     [zn("a", "z1"), zn("b", "z2"), zn("c", "z3", taints=NOSCHED)], on("a") + on("b"), W,
     tsc(nodeTaintsPolicy="Honor"), ["a", "b", "c"]),
    ("nodeTaintsPolicy Honor: a tolerated taint counts",
     [zn("a", "z1"), zn("b", "z2"), zn("c", "z3", taints=NOSCHED)], on("a") + on("b"), W,
     {"tolerations": [{"key": "dedicated", "operator": "Exists"}],
      "topologySpreadConstraints": tsc(nodeTaintsPolicy="Honor")}, ["c"]),
    ("nodeTaintsPolicy Honor: PreferNoSchedule counts",
     [zn("a", "z1"), zn("b", "z2"), zn("c", "z3", taints=[{"key": "k", "effect": "PreferNoSchedule"}])],
     on("a") + on("b"), W, tsc(nodeTaintsPolicy="Honor"), ["c"]),
    # minDomains: 2 domains with one pod each
    ("minDomains unset: the minimum is 1", [zn("a", "z1"), zn("b", "z2")], on("a") + on("b"), W, tsc(), ["a", "b"]),
    ("minDomains 2 = domains", [zn("a", "z1"), zn("b", "z2")], on("a") + on("b"), W, tsc(minDomains=2), ["a", "b"]),
    ("minDomains 3 > domains: the minimum is 0", [zn("a", "z1"), zn("b", "z2")], on("a") + on("b"), W,
     tsc(minDomains=3), []),
    ("minDomains 3, maxSkew 2", [zn("a", "z1"), zn("b", "z2")], on("a") + on("b"), W,
     tsc(skew=2, minDomains=3), ["a", "b"]),
    # counting rules
    ("a node missing another constraint's key does not count",
     [zn("a", "z1", labels={"rack": "r1"}), zn("b", "z2", labels={"rack": "r2"}), zn("c", "z1")],
     on("c", 3), W, tsc() + tsc(key="rack", skew=5), ["a", "b"]),
    ("other namespaces do not count", [zn("a", "z1"), zn("b", "z2")], on("a", 3, ns="e"), W, tsc(), ["a", "b"]),
    ("an empty selector counts nothing", [zn("a", "z1"), zn("b", "z2")], on("a", 3), W,
     [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}}], ["a", "b"]),
    ("a pod not matching its own selector", [zn("a", "z1"), zn("b", "z2")], on("a", 1), {"app": "other"}, tsc(),
     ["a", "b"]),
    ("ScheduleAnyway does not filter", [zn("a", "z1"), zn("b", "z2")], on("a", 3), W, tsc("ScheduleAnyway"),
     ["a", "b"]),
]


@pytest.mark.parametrize("nodes,placed,labels,spec,want", [c[1:] for c in FILTER_CASES],
                         ids=[c[0] for c in FILTER_CASES])
def test_filter(nodes, placed, labels, spec, want):
    c = cache_of(*nodes, pods=placed)
    spec = spec if isinstance(spec, dict) else {"topologySpreadConstraints": spec}
    assert feasible(pod("in", labels=labels, **spec), c) == want


def test_filter_terminating_pods_do_not_count():
    c = cache_of(zn("a", "z1"), zn("b", "z2"), pods=on("a", 3))
    p = pod("in", labels=W, topologySpreadConstraints=tsc())
    assert feasible(p, c) == ["b"]
    for info in c.node_infos["a"].pods.values():
        info.terminating = True
    assert feasible(p, c) == ["a", "b"]


def test_missing_key_is_unresolvable_and_skew_is_not():
    c = cache_of(zn("a", "z1"), zn("b", "z2"), node("bare"), pods=on("a", 2))
    p = pod("in", labels=W, topologySpreadConstraints=tsc())
    fw = Framework(build_profile(ProfileConfig("t", [("PodTopologySpread", 1, {})])))
    cs = CycleState(_skip=set())
    assert fw.pre_filters[0].pre_filter(cs, p, c) is None
    diag = Diagnosis()
    assert [c.nodes[i].name for i in fw.run_filters(cs, p, c, diag=diag)] == ["b"]
    assert diag.node_reasons == {"a": [REASON], "bare": [REASON_LABEL]}
    assert diag.unresolvable == {"bare"}


def test_filter_without_pre_filter_state():
    """Preemption's what-if runs Filter on a fresh cycle state: it counts for itself."""
    c = cache_of(zn("a", "z1"), zn("b", "z2"), pods=on("a", 2))
    p = pod("in", labels=W, topologySpreadConstraints=tsc())
    res = PodTopologySpread({}).filter(CycleState(), p, c, np.arange(c.n))
    assert res.ok.tolist() == [False, True]


# (id, nodes, pods placed, incoming labels / spec, scored node rows, normalised scores)
SCORE_CASES = [
    # matchLabelKeys: a holds 2 old-revision pods, b 1 new one; weight ln(2 + 2)
    ("labelSelector alone: a 2*1.39 -> 3, b 1.39 -> 1", [zn("a", "z1"), zn("b", "z2")],
     on("a", 2, OLD) + on("b", 1, NEW), NEW, tsc("ScheduleAnyway"), [0, 1], [33, 100]),
    ("matchLabelKeys: a 0, b 1", [zn("a", "z1"), zn("b", "z2")], on("a", 2, OLD) + on("b", 1, NEW), NEW,
     tsc("ScheduleAnyway", matchLabelKeys=["hash"]), [0, 1], [100, 0]),
    # nodeTaintsPolicy: t (z2, NoSchedule, not scored) holds 2 pods
    ("nodeTaintsPolicy Ignore: t's pods count for z2", [zn("a", "z1"), zn("b", "z2"), zn("t", "z2", taints=NOSCHED)],
     on("a") + on("t", 2), W, tsc("ScheduleAnyway"), [0, 1], [100, 33]),
    ("nodeTaintsPolicy Honor: they do not", [zn("a", "z1"), zn("b", "z2"), zn("t", "z2", taints=NOSCHED)],
     on("a") + on("t", 2), W, tsc("ScheduleAnyway", nodeTaintsPolicy="Honor"), [0, 1], [0, 100]),
    # nodeAffinityPolicy: h (z1, hdd, not scored) holds 3 pods
    ("nodeAffinityPolicy Honor: h's pods do not count",
     [zn("a", "z1", labels={"disk": "ssd"}), zn("b", "z2", labels={"disk": "ssd"}), zn("h", "z1")],
     on("b") + on("h", 3), W, {"nodeSelector": {"disk": "ssd"}, "topologySpreadConstraints": tsc("ScheduleAnyway")},
     [0, 1], [100, 0]),
    ("nodeAffinityPolicy Ignore: a 3*1.39 -> 4, b 1",
     [zn("a", "z1", labels={"disk": "ssd"}), zn("b", "z2", labels={"disk": "ssd"}), zn("h", "z1")],
     on("b") + on("h", 3), W,
     {"nodeSelector": {"disk": "ssd"}, "topologySpreadConstraints": tsc("ScheduleAnyway", nodeAffinityPolicy="Ignore")},
     [0, 1], [25, 100]),
    # the weight counts the scored nodes' domains only: 3 of 4 (ln 5: a 2 -> 3, b 1 -> 2, d 0;
    # with all 4, ln 6, b would get 50)
    ("domains of the scored nodes", [zn("a", "z1"), zn("b", "z2"), zn("c", "z3"), zn("d", "z4")],
     on("a", 2) + on("b") + on("c", 5), W, tsc("ScheduleAnyway"), [0, 1, 3], [0, 33, 100]),
    # a node without the key is ignored (0); the others normalised among themselves
    ("a node missing the key scores 0", [zn("a", "z1"), node("bare"), zn("c", "z2")], on("a"), W,
     tsc("ScheduleAnyway"), [0, 1, 2], [0, 0, 100]),
    # hostname: per-node counts, weight ln(scored + 2); maxSkew 2 adds 1: a 2*1.61+1 -> 4, b 1, c 1.61+1 -> 3
    ("hostname, maxSkew 2", [zn("a", "z1"), zn("b", "z1"), zn("c", "z1")], on("a", 2) + on("c"), W,
     tsc("ScheduleAnyway", key="kubernetes.io/hostname", skew=2), [0, 1, 2], [25, 100, 50]),
]


@pytest.mark.parametrize("nodes,placed,labels,spec,idx,want", [c[1:] for c in SCORE_CASES],
                         ids=[c[0] for c in SCORE_CASES])
def test_score(nodes, placed, labels, spec, idx, want):
    c = cache_of(*nodes, pods=placed)
    spec = spec if isinstance(spec, dict) else {"topologySpreadConstraints": spec}
    assert scores(pod("in", labels=labels, **spec), c, idx) == want


def test_constraint_defaults_and_merged_selector():
    p = pod("in", labels=NEW, topologySpreadConstraints=tsc(matchLabelKeys=["hash", "nope"]) + tsc(
        "ScheduleAnyway", minDomains=None, nodeAffinityPolicy="Ignore", nodeTaintsPolicy="Honor"))
    [hard] = constraints(p, "DoNotSchedule")
    assert (hard.min_domains, hard.honor_affinity, hard.honor_taints) == (1, True, False)
    assert hard.selector.to_string() == "app=w,hash=new"
    [soft] = constraints(p, "ScheduleAnyway")
    assert (soft.honor_affinity, soft.honor_taints, soft.selector.to_string()) == (False, True, "app=w")


def test_pods_without_constraints_skip_the_filter():
    c = cache_of(zn("a", "z1"))
    cs = CycleState()
    assert PodTopologySpread({}).pre_filter(cs, pod("plain"), c).is_skip
    assert cs == {}
