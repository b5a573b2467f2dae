"""The DaemonSet controller's pure decisions (``controlplane/controllers/daemonsetutil.py``),
table by table against kube-controller-manager's ``daemon`` package: ``NodeShouldRunDaemonPod``,
``podsShouldBeOnNode``, ``rollingUpdate`` with and without surge, the status counts and the
failed-pod back-off."""

from __future__ import annotations

import pytest

from controlplane.controllers import daemonsetutil as dsu
from controlplane.machinery.timestamps import parse_time


def node(name, labels=None, taints=None):
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def taint(key, effect):
    return {"key": key, "effect": effect}


@pytest.mark.parametrize("spec,n,expected", [
    ({}, node("n"), (True, True)),
    ({"nodeSelector": {"disk": "ssd"}}, node("n", {"disk": "ssd"}), (True, True)),
    ({"nodeSelector": {"disk": "ssd"}}, node("n", {"disk": "hdd"}), (False, False)),
    ({"nodeName": "other"}, node("n"), (False, False)),
    ({"nodeName": "n"}, node("n"), (True, True)),
    ({}, node("n", taints=[taint("gpu", "NoSchedule")]), (False, True)),
    ({}, node("n", taints=[taint("gpu", "NoExecute")]), (False, False)),
    ({}, node("n", taints=[taint("a", "NoSchedule"), taint("b", "NoExecute")]), (False, False)),
    ({"tolerations": [{"key": "gpu", "operator": "Exists"}]}, node("n", taints=[taint("gpu", "NoSchedule")]), (True, True)),
    ({}, node("n", taints=[taint("gpu", "PreferNoSchedule")]), (True, True)),
    ({}, node("n", taints=[taint("node.kubernetes.io/unschedulable", "NoSchedule")]), (True, True)),
    ({}, node("n", taints=[taint("node.kubernetes.io/network-unavailable", "NoSchedule")]), (False, True)),
    ({"hostNetwork": True}, node("n", taints=[taint("node.kubernetes.io/network-unavailable", "NoSchedule")]), (True, True)),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}}}, node("n", {"zone": "c"}),
     (False, False)),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}]}}}}, node("n"), (True, True)),
], ids=["any", "selector-match", "selector-miss", "node-name-miss", "node-name-match", "noschedule-taint-keeps",
        "noexecute-taint-evicts", "both-taints", "tolerated", "prefer-ignored", "default-toleration",
        "network-unavailable", "network-unavailable-host-network", "affinity-miss", "match-fields"])
def test_node_should_run(spec, n, expected):
    assert dsu.node_should_run(spec, n) == expected


def dpod(name, h, created, ready=True, since="2026-12-07T00:00:00Z", phase="Running", deleting=False, node=None,
         gen=None):
    labels = {dsu.HASH_LABEL: h}
    if gen is not None:
        labels[dsu.GENERATION_LABEL] = gen
    md = {"name": name, "uid": name, "creationTimestamp": created, "labels": labels}
    if deleting:
        md["deletionTimestamp"] = "2026-12-07T00:00:09Z"
    spec = {"nodeName": node} if node else {}
    return {"metadata": md, "spec": spec,
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                       "lastTransitionTime": since}]}}


T0, T1, T2 = "2026-12-07T00:00:00Z", "2026-12-07T00:00:01Z", "2026-12-07T00:00:02Z"
NOW = 10**10


def names(pods):
    return sorted(p["metadata"]["name"] for p in pods)


@pytest.mark.parametrize("run,keep,pods,surge,create,deleted,failed", [
    (True, True, [], False, True, [], []),
    (False, True, [], False, False, [], []),
    (True, True, [dpod("a", "old", T0)], False, False, [], []),
    (True, True, [dpod("a", "old", T0), dpod("b", "old", T1)], False, False, ["b"], []),
    (True, True, [dpod("b", "new", T1), dpod("a", "old", T0)], False, False, ["b"], []),
    (True, True, [dpod("a", "old", T0, deleting=True)], False, False, [], []),
    (True, True, [dpod("a", "old", T0, deleting=True)], True, True, [], []),
    (False, True, [dpod("a", "old", T0, deleting=True)], True, False, [], []),
    (True, True, [dpod("a", "old", T0, phase="Failed")], False, False, [], ["a"]),
    (True, True, [dpod("a", "old", T0, phase="Succeeded")], False, False, ["a"], []),
    (False, True, [dpod("a", "old", T0)], False, False, [], []),
    (False, False, [dpod("a", "old", T0), dpod("b", "new", T1, deleting=True)], True, False, ["a"], []),
    (False, False, [dpod("a", "old", T0)], False, False, ["a"], []),
    (True, True, [dpod("a", "old", T0), dpod("b", "new", T1, ready=False)], True, False, [], []),
    (True, True, [dpod("a", "old", T0), dpod("b", "new", T1)], True, False, ["a"], []),
    (True, True, [dpod("a", "old", T0, ready=False), dpod("b", "new", T1, ready=False)], True, False, ["a"], []),
    (True, True, [dpod("a", "old", T0), dpod("b", "new", T1, ready=False), dpod("c", "new", T2)], True, False, ["c"], []),
    (True, True, [dpod("a", "old", T0), dpod("b", "old", T1), dpod("c", "new", T2, ready=False)], True, False, ["b"], []),
    (True, True, [dpod("b", "old", T0, node="n"), dpod("a", "old", T1)], False, False, ["a"], []),
], ids=["create", "tainted-no-create", "one", "no-surge-keeps-oldest", "no-surge-sorted",
        "no-surge-waits-for-terminating", "surge-replaces-terminating", "surge-tainted-no-create", "failed",
        "succeeded", "tainted-keeps", "unfit-deletes-all-live", "unfit", "surge-new-not-ready", "surge-new-available",
        "surge-old-unready", "surge-extra-new", "surge-extra-old", "scheduled-first"])
def test_pods_should_be_on_node(run, keep, pods, surge, create, deleted, failed):
    acts = dsu.pods_should_be_on_node(run, keep, pods, "new", None, surge, 0, NOW)
    assert (acts.create, names(acts.delete), names(acts.failed)) == (create, deleted, failed)


def test_pods_should_be_on_node_generation_counts_as_updated():
    """``IsPodUpdated``: a pod of the DaemonSet's template generation is new whatever its hash."""
    pods = [dpod("a", "old", T0), dpod("b", "other", T1, gen="3")]
    acts = dsu.pods_should_be_on_node(True, True, pods, "new", "3", True, 0, NOW)
    assert names(acts.delete) == ["a"]


def everywhere(by_node):
    return {n: True for n in by_node}


@pytest.mark.parametrize("by_node,should_run,unavailable,deleted,created", [
    ({"n1": [dpod("a", "old", T0)], "n2": [dpod("b", "old", T0)], "n3": [dpod("c", "old", T0)]}, None, 1, ["a"], []),
    ({"n1": [dpod("a", "old", T0)], "n2": [dpod("b", "old", T0)], "n3": [dpod("c", "old", T0)]}, None, 2, ["a", "b"], []),
    ({"n1": [dpod("a", "old", T0)], "n2": [dpod("b", "new", T0, ready=False)], "n3": [dpod("c", "old", T0)]}, None, 1,
     [], []),
    ({"n1": [dpod("a", "old", T0, ready=False)], "n2": [dpod("b", "new", T0, ready=False)],
      "n3": [dpod("c", "old", T0)]}, None, 1, ["a"], []),
    ({"n1": [dpod("a", "old", T0)], "n2": []}, {"n1": True, "n2": True}, 1, [], []),
    ({"n1": [dpod("a", "old", T0)], "n2": [dpod("b", "old", T0)]}, {"n1": False, "n2": True}, 1, ["a"], []),
    ({"n1": [dpod("a", "new", T0)], "n2": [dpod("b", "new", T0)]}, None, 1, [], []),
    ({"n1": [dpod("a", "old", T0)]}, None, 0, ["a"], []),
], ids=["one-at-a-time", "two-at-a-time", "unavailable-new-uses-budget", "unavailable-old-goes-anyway",
        "node-without-pod-counts-unavailable", "tainted-node-old-pod-is-a-candidate", "done", "zero-means-one"])
def test_rolling_update_without_surge(by_node, should_run, unavailable, deleted, created):
    d, c = dsu.rolling_update(by_node, should_run or everywhere(by_node), "new", None, 0, unavailable, 0, NOW)
    assert (names(d), c) == (deleted, created)


@pytest.mark.parametrize("by_node,should_run,surge,deleted,created", [
    ({"n1": [dpod("a", "old", T0)], "n2": [dpod("b", "old", T0)], "n3": [dpod("c", "old", T0)]}, None, 1, [], ["n1"]),
    ({"n1": [dpod("a", "old", T0)], "n2": [dpod("b", "old", T0)], "n3": [dpod("c", "old", T0)]}, None, 2, [],
     ["n1", "n2"]),
    ({"n1": [dpod("a", "old", T0), dpod("x", "new", T1, ready=False)], "n2": [dpod("b", "old", T0)]}, None, 1, [], []),
    ({"n1": [dpod("a", "old", T0), dpod("x", "new", T1)], "n2": [dpod("b", "old", T0)]}, None, 1, ["a"], ["n2"]),
    ({"n1": [dpod("a", "old", T0, ready=False)], "n2": [dpod("b", "old", T0)],
      "n3": [dpod("c", "old", T0), dpod("y", "new", T1, ready=False)]}, None, 1, [], ["n1"]),
    ({"n1": [dpod("x", "new", T0)], "n2": [dpod("y", "new", T0)]}, None, 1, [], []),
    ({"n1": [dpod("a", "old", T0), dpod("b", "old", T1)], "n2": [dpod("c", "old", T0)]}, None, 1, [], []),
    # an old pod on a node newly tainted NoSchedule: kept while it is needed for availability
    ({"n1": [dpod("a", "old", T0)], "n2": [dpod("b", "old", T0)], "n3": []},
     {"n1": False, "n2": True, "n3": True}, 1, [], ["n2"]),
    ({"n1": [dpod("a", "old", T0)], "n2": [dpod("b", "new", T0)], "n3": [dpod("c", "new", T0, ready=False)]},
     {"n1": False, "n2": True, "n3": True}, 1, [], []),
    ({"n1": [dpod("a", "old", T0)], "n2": [dpod("b", "new", T0)], "n3": [dpod("c", "new", T0)]},
     {"n1": False, "n2": True, "n3": True}, 1, ["a"], []),
    ({"n1": [dpod("a", "old", T0, ready=False)], "n2": [dpod("b", "new", T0, ready=False)]},
     {"n1": False, "n2": True}, 1, ["a"], []),
    ({"gone": [dpod("a", "old", T0)], "n2": [dpod("b", "new", T0, ready=False)]}, {"n2": True}, 1, [], []),
], ids=["one-at-a-time", "two-at-a-time", "wait-for-new", "new-available-old-goes-next-starts",
        "unavailable-old-replaced-beyond-surge", "done", "excess-counts-as-surge", "tainted-kept-no-surge-there",
        "tainted-kept-until-enough-available", "tainted-goes-once-enough-available", "tainted-unavailable-goes",
        "missing-node-kept-while-needed"])
def test_rolling_update_with_surge(by_node, should_run, surge, deleted, created):
    d, c = dsu.rolling_update(by_node, should_run or everywhere(by_node), "new", None, surge, 0, 0, NOW)
    assert (names(d), c) == (deleted, created)


def test_status_counts():
    by_node = {"n1": [dpod("a", "new", T0)], "n2": [dpod("b", "old", T0, ready=False)],
               "n3": [dpod("c", "old", T0)], "gone": [dpod("d", "old", T0)]}
    got = dsu.status_counts({"n1": True, "n2": True, "n3": False, "n4": True}, by_node, "new", None, 0, NOW)
    assert got == {"desiredNumberScheduled": 3, "currentNumberScheduled": 2, "numberMisscheduled": 1,
                   "numberReady": 1, "numberAvailable": 1, "updatedNumberScheduled": 1, "numberUnavailable": 2}


def test_status_counts_min_ready_seconds():
    by_node = {"n1": [dpod("a", "new", T0, since="2026-12-07T00:00:00Z")]}
    ready_at = parse_time("2026-12-07T00:00:00Z")
    assert dsu.status_counts({"n1": True}, by_node, "new", None, 30, ready_at + 10)["numberAvailable"] == 0
    assert dsu.status_counts({"n1": True}, by_node, "new", None, 30, ready_at + 31)["numberAvailable"] == 1


def test_nodes_to_pods_and_unscheduled_without_node():
    pinned = dsu.pin_to_node({"containers": []}, "gone")
    a = {**dpod("a", "h", T0), "spec": pinned}
    b = {**dpod("b", "h", T0, node="gone2")}
    c = {**dpod("c", "h", T0, phase="Failed", deleting=True), "spec": dsu.pin_to_node({}, "n1")}
    by_node = dsu.nodes_to_pods([a, b, c])
    assert sorted(by_node) == ["gone", "gone2"], "finished pods being deleted are left out"
    assert names(dsu.unscheduled_without_node({"n1"}, by_node)) == ["a"], "bound ones are podgc's"


def test_failed_pod_backoff():
    b = dsu.FailedPodBackoff(initial=1.0, cap=4.0)
    assert not b.in_backoff("k", 0.0)
    b.next("k", 0.0)
    assert b.in_backoff("k", 0.5) and not b.in_backoff("k", 1.0)
    b.next("k", 1.0)
    assert b.delay("k") == 2.0 and b.in_backoff("k", 2.5)
    b.next("k", 3.0)
    b.next("k", 7.0)
    assert b.delay("k") == 4.0, "capped"
    b.next("k", 7.0 + 8.5)
    assert b.delay("k") == 1.0, "unused for twice the cap: starts over"
    b.gc(100.0)
    assert b.delay("k") == 0.0


@pytest.mark.parametrize("strategy,desired,expected", [
    ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}, 4, 0),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}, 4, 1),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "30%"}}, 4, 2),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "30%"}}, 0, 0),
    ({"type": "OnDelete"}, 4, 0),
    (None, 4, 0),
], ids=["unset", "int", "percent-rounds-up", "percent-of-none", "ondelete", "default"])
def test_max_surge(strategy, desired, expected):
    spec = {} if strategy is None else {"updateStrategy": strategy}
    assert dsu.max_surge({"spec": spec}, desired) == expected


def test_allows_surge_with_a_percentage_and_no_nodes():
    ds = {"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "10%"}}}}
    assert dsu.allows_surge(ds)


def test_pin_to_node():
    spec = dsu.pin_to_node({"containers": []}, "node-7")
    assert dsu.pod_node({"spec": spec}) == "node-7"
    assert any(t["key"] == "node.kubernetes.io/not-ready" for t in spec["tolerations"])
    assert not any(t["key"] == "node.kubernetes.io/network-unavailable" for t in spec["tolerations"])
    host = dsu.pin_to_node({"containers": [], "hostNetwork": True}, "node-7")
    assert any(t["key"] == "node.kubernetes.io/network-unavailable" for t in host["tolerations"])
