"""The scheduler process against a real apiserver, driven with kubectl: each test creates its
own nodes (labelled ``suite=<test>``) and pods that select them, and checks where the pods
land, or the FailedScheduling event when they cannot."""

from __future__ import annotations

import json
import re
import time

import pytest

from controlplane.agent.simulated import node_object

pytestmark = pytest.mark.integration


def add_node(c, name: str, suite: str, cpu: str = "4", memory: str = "32Gi", pods: str = "110", gpus: int = 0,
             model: str = "", labels: dict | None = None, taints: list | None = None,
             annotations: dict | None = None) -> None:
    obj = node_object(name, cpu, memory, pods, gpus, model, {"suite": suite, **(labels or {})})
    obj["metadata"]["annotations"].update(annotations or {})
    if taints:
        obj["spec"]["taints"] = taints
    c.kubectl("apply", "-f", "-", input=json.dumps(obj))
    got = c.get("node", name) or {}
    if not (got.get("status") or {}).get("allocatable"):
        c.kubectl("patch", "node", name, "--subresource=status", "--type=merge", "-p",
                  json.dumps({"status": obj["status"]}))


def pod(name: str, ns: str, suite: str, cpu: str = "100m", memory: str = "64Mi", extra_spec: dict | None = None,
        labels: dict | None = None, annotations: dict | None = None, scheduler: str | None = None,
        limits: dict | None = None) -> str:
    spec = {"nodeSelector": {"suite": suite},
            "containers": [{"name": "c", "image": "busybox",
                            "resources": {"requests": {"cpu": cpu, "memory": memory}, **({"limits": limits} if limits else {})}}]}
    if scheduler:
        spec["schedulerName"] = scheduler
    for k, v in (extra_spec or {}).items():
        if k == "nodeSelector":
            spec["nodeSelector"].update(v)
        else:
            spec[k] = v
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": name},
                                    "annotations": annotations or {}}, "spec": spec})


def ns(c, name: str) -> str:
    c.kubectl("create", "namespace", name, check=False)
    return name


def test_resources_fit_and_failed_scheduling_event(sched_cluster):
    c = sched_cluster
    n = ns(c, "fit")
    add_node(c, "fit-small", "fit", cpu="1")
    add_node(c, "fit-big", "fit", cpu="4")
    c.apply(pod("p2", n, "fit", cpu="2"))
    assert c.wait_bound(n, "p2") == "fit-big"
    c.apply(pod("tiny", n, "fit", cpu="100m"))
    assert c.wait_bound(n, "tiny")
    c.apply(pod("huge", n, "fit", cpu="10"))
    ev = c.wait_event(n, "huge", "FailedScheduling")
    assert ev, "no FailedScheduling event"
    msg = ev[0]["message"]
    assert "nodes are available" in msg and "2 Insufficient cpu" in msg, msg
    assert c.node_of(n, "huge") is None

    def unschedulable():  # kube-scheduler's PodScheduled=False condition, as kubectl describe shows it
        conds = ((c.get("pod", "huge", n) or {}).get("status") or {}).get("conditions") or []
        return next((x for x in conds if x["type"] == "PodScheduled" and x["status"] == "False"), None)
    deadline = time.monotonic() + 10
    while not unschedulable() and time.monotonic() < deadline:
        time.sleep(0.2)
    cond = unschedulable()
    assert cond and cond["reason"] == "Unschedulable" and "2 Insufficient cpu" in cond["message"], cond
    # room on a node: bound, and the condition turns True
    add_node(c, "fit-huge", "fit", cpu="16")
    assert c.wait_bound(n, "huge") == "fit-huge"
    conds = (c.get("pod", "huge", n) or {})["status"]["conditions"]
    assert [x["status"] for x in conds if x["type"] == "PodScheduled"] == ["True"], conds
    # scheduling.log: one JSON record per decision, with per-plugin scores or the reasons
    ok = c.wait_decisions(n, "tiny")
    assert ok and ok[0]["nodes"]["feasible"] == 2 and len(ok[0]["candidates"]) == 2
    assert {"NodeResourcesFit", "TaintToleration"} <= {e["name"] for e in ok[0]["candidates"][0]["plugins"]}
    bad = c.wait_decisions(n, "huge")
    assert bad and bad[0]["node"] == "" and bad[0]["result"] == "Unschedulable" and "Insufficient cpu" in bad[0]["message"]
    fit = {f["plugin"]: f for f in bad[0]["filters"]}["NodeResourcesFit"]
    assert fit["rejected"] == 2 and fit["reasons"] == [{"reason": "Insufficient cpu", "count": 2}]
    text = c.metrics()
    assert re.search(r'scheduler_schedule_attempts_total\{profile="default-scheduler",result="scheduled"\} [1-9]', text)
    assert re.search(r'scheduler_schedule_attempts_total\{profile="default-scheduler",result="unschedulable"\} [1-9]', text)
    assert 'scheduler_pending_pods{queue="unschedulable"}' in text
    assert "scheduler_scheduling_attempt_duration_seconds_bucket" in text


def test_decision_records_in_the_api(sched_cluster):
    """kubectl shows a SchedulingDecision per decision (the binding carried it) with every
    score plugin's raw, normalised and weighted score; failed decisions too; records expire."""
    from tests.fixtures.scheduler import DECISION_TTL_S

    c = sched_cluster
    n = ns(c, "records")
    add_node(c, "rec-a", "records", cpu="4")
    add_node(c, "rec-b", "records", cpu="8")
    c.apply(pod("placed", n, "records", cpu="1"))
    assert c.wait_bound(n, "placed") == "rec-b"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not c.api_decisions(n, "placed"):
        time.sleep(0.2)
    [rec] = c.api_decisions(n, "placed")
    t0 = time.monotonic()
    assert rec["profile"] == "default-scheduler" and rec["result"] == "Scheduled" and rec["node"] == "rec-b"
    assert rec["metadata"]["uid"] and rec["metadata"]["creationTimestamp"]
    chosen = next(x for x in rec["candidates"] if x["chosen"])
    fit = {e["name"]: e for e in chosen["plugins"]}["NodeResourcesFit"]
    assert fit["raw"] == fit["normalized"] and fit["weighted"] == fit["weight"] * fit["normalized"]
    annotations = c.get("pod", "placed", n)["metadata"].get("annotations") or {}
    assert "scheduling.controlplane.io/decision" not in annotations
    # the Scheduled Event rode in the same Binding: created as the scheduler's POST would be
    assert "scheduling.controlplane.io/scheduled-event" not in annotations
    [ev] = c.wait_event(n, "placed", "Scheduled")
    assert ev["message"] == f"Successfully assigned {n}/placed to rec-b" and ev["type"] == "Normal"
    assert ev["involvedObject"]["kind"] == "Pod" and ev["involvedObject"]["uid"]
    assert ev["source"]["component"] == ev["reportingComponent"] == "default-scheduler"
    full = json.loads(c.kubectl("get", "event", ev["metadata"]["name"], "-n", n, "-o", "json",
                                "--show-managed-fields").stdout)
    assert full["metadata"]["uid"] and full["metadata"]["managedFields"][0]["operation"] == "Update", full
    table = c.kubectl("get", "sd", "-n", n).stdout
    assert "default-scheduler" in table and "rec-b" in table and "Scheduled" in table, table
    described = c.kubectl("describe", "sd", rec["metadata"]["name"], "-n", n).stdout
    assert "NodeResourcesFit" in described and "Weighted" in described, described
    # an unschedulable decision is a record too, with the filters' reasons
    c.apply(pod("toobig", n, "records", cpu="64"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not c.api_decisions(n, "toobig"):
        time.sleep(0.2)
    bad = c.api_decisions(n, "toobig")[0]
    assert bad["result"] == "Unschedulable" and bad["node"] == "" and "Insufficient cpu" in bad["message"]
    assert {"plugin": "NodeResourcesFit", "rejected": 2, "reasons": [{"reason": "Insufficient cpu", "count": 2}]} \
        in bad["filters"]
    # a Binding carrying a record the apiserver cannot accept is a 400 and binds nothing
    c.apply(pod("manual", n, "records", scheduler="nobody-schedules-this"))
    other_event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "x.1"}, "reason": "Scheduled",
                   "involvedObject": {"kind": "Pod", "name": "placed", "namespace": n}}
    for key, bad_record, why in (
            ("decision", "{not json", "not JSON"),
            ("decision", json.dumps({"apiVersion": "scheduling.controlplane.io/v1", "kind": "SchedulingDecision",
                                     "pod": {"name": "other"}}), "not 'manual'"),
            ("scheduled-event", "[]", "must hold an Event object"),
            ("scheduled-event", json.dumps(other_event), "must be about pod 'manual'")):
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "manual", "annotations": {
            f"scheduling.controlplane.io/{key}": bad_record}}, "target": {"kind": "Node", "name": "rec-a"}}
        r = c.kubectl("create", "--raw", f"/api/v1/namespaces/{n}/pods/manual/binding", "-f", "-",
                      input=json.dumps(binding), check=False)
        assert r.returncode != 0 and why in r.stderr, r.stderr
    assert c.node_of(n, "manual") is None and c.api_decisions(n, "manual") == []
    assert c.events(n, "manual", "Scheduled") == []
    # expiry: the etcd lease (TTL + at most 5 % of it) deletes the record
    deadline = t0 + DECISION_TTL_S * 1.05 + 15
    while time.monotonic() < deadline and c.api_decisions(n, "placed"):
        time.sleep(0.5)
    assert not c.api_decisions(n, "placed"), "the record did not expire"
    assert c.node_of(n, "placed") == "rec-b"  # the pod stays, of course


def test_node_selector_and_node_affinity(sched_cluster):
    c = sched_cluster
    n = ns(c, "aff")
    add_node(c, "aff-a", "aff", labels={"disk": "ssd", "zone": "z1"})
    add_node(c, "aff-b", "aff", labels={"disk": "hdd", "zone": "z2"})
    c.apply(pod("sel", n, "aff", extra_spec={"nodeSelector": {"disk": "hdd"}}))
    assert c.wait_bound(n, "sel") == "aff-b"
    req = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}}}
    c.apply(pod("req", n, "aff", extra_spec=req))
    assert c.wait_bound(n, "req") == "aff-a"
    pref = {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}}]}}}
    for i in range(3):
        c.apply(pod(f"pref{i}", n, "aff", extra_spec=pref))
    assert {c.wait_bound(n, f"pref{i}") for i in range(3)} == {"aff-b"}
    none = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["tape"]}]}]}}}}
    c.apply(pod("nomatch", n, "aff", extra_spec=none))
    ev = c.wait_event(n, "nomatch", "FailedScheduling")
    assert ev and "didn't match Pod's node affinity/selector" in ev[0]["message"]


def test_pod_affinity_and_anti_affinity(sched_cluster):
    c = sched_cluster
    n = ns(c, "podaff")
    for i in range(3):
        add_node(c, f"pa-{i}", "podaff")
    c.apply(pod("db", n, "podaff", labels={"app": "db"}))
    db_node = c.wait_bound(n, "db")
    assert db_node
    aff = {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}}
    c.apply(pod("web", n, "podaff", labels={"app": "web"}, extra_spec=aff))
    assert c.wait_bound(n, "web") == db_node
    anti = {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "spread"}}, "topologyKey": "kubernetes.io/hostname"}]}}}
    for i in range(3):
        c.apply(pod(f"s{i}", n, "podaff", labels={"app": "spread"}, extra_spec=anti))
    nodes = [c.wait_bound(n, f"s{i}") for i in range(3)]
    assert None not in nodes and len(set(nodes)) == 3
    c.apply(pod("s3", n, "podaff", labels={"app": "spread"}, extra_spec=anti))
    ev = c.wait_event(n, "s3", "FailedScheduling")
    assert ev and "anti-affinity" in ev[0]["message"]


def test_taints_and_tolerations(sched_cluster):
    c = sched_cluster
    n = ns(c, "taint")
    add_node(c, "t-tainted", "taint", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    add_node(c, "t-small", "taint", cpu="1")
    c.apply(pod("plain", n, "taint", cpu="2"))
    ev = c.wait_event(n, "plain", "FailedScheduling")
    assert ev and "1 node(s) had untolerated taint {dedicated: gpu}" in ev[0]["message"], ev
    tol = {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}
    c.apply(pod("tolerant", n, "taint", cpu="2", extra_spec=tol))
    assert c.wait_bound(n, "tolerant") == "t-tainted"


def test_topology_spread(sched_cluster):
    c = sched_cluster
    n = ns(c, "spread")
    for i, z in enumerate(["a", "a", "b"]):
        add_node(c, f"sp-{i}", "spread", labels={"topology.kubernetes.io/zone": z})
    tsc = {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                          "whenUnsatisfiable": "DoNotSchedule",
                                          "labelSelector": {"matchLabels": {"app": "sp"}}}]}
    for i in range(4):
        c.apply(pod(f"sp{i}", n, "spread", labels={"app": "sp"}, extra_spec=tsc))
        assert c.wait_bound(n, f"sp{i}")
    zones = [("b" if c.node_of(n, f"sp{i}") == "sp-2" else "a") for i in range(4)]
    assert zones.count("a") == 2 and zones.count("b") == 2


def test_host_ports(sched_cluster):
    c = sched_cluster
    n = ns(c, "ports")
    add_node(c, "hp-0", "ports")
    add_node(c, "hp-1", "ports")
    spec = {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}
    for i in range(3):
        c.apply(pod(f"hp{i}", n, "ports", extra_spec=spec))
    bound = [c.wait_bound(n, f"hp{i}", timeout=10) for i in range(3)]
    assert sorted(b for b in bound if b) == ["hp-0", "hp-1"]
    waiting = [f"hp{i}" for i in range(3) if bound[i] is None][0]
    ev = c.wait_event(n, waiting, "FailedScheduling")
    assert ev and "free ports" in ev[0]["message"]


def test_gpu_requests_whole_and_shared(sched_cluster):
    c = sched_cluster
    n = ns(c, "gpu")
    add_node(c, "g-cpu", "gpu", cpu="32")
    add_node(c, "g-t4", "gpu", cpu="32", gpus=2, model="T4")
    add_node(c, "g-v100", "gpu", cpu="32", gpus=8, model="V100")
    whole = pod("w", n, "gpu", limits={"nvidia.com/gpu": "8"})
    w = json.loads(whole)
    w["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = "8"
    c.apply(json.dumps(w))
    assert c.wait_bound(n, "w") == "g-v100"
    c.apply(pod("share", n, "gpu", scheduler="fgd-scheduler",
                annotations={"scheduling.controlplane.io/gpu-milli": "500",
                             "scheduling.controlplane.io/gpu-model": "T4"}))
    assert c.wait_bound(n, "share") == "g-t4"
    p = c.get("pod", "share", n)
    assert p["metadata"]["annotations"].get("scheduling.controlplane.io/gpu-index") in ("0", "1")
    w["metadata"]["name"] = "w2"
    c.apply(json.dumps(w))
    ev = c.wait_event(n, "w2", "FailedScheduling")
    assert ev and "Insufficient nvidia.com/gpu" in ev[0]["message"]


def test_priority_preemption_binds_only_after_the_victims_are_gone(sched_cluster):
    c = sched_cluster
    n = ns(c, "prio")
    add_node(c, "pr-0", "prio", cpu="2")
    c.apply(json.dumps({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                        "metadata": {"name": "high"}, "value": 1000}))
    time.sleep(1.0)
    c.apply(pod("low", n, "prio", cpu="1500m"))
    assert c.wait_bound(n, "low") == "pr-0"
    c.apply(pod("vip", n, "prio", cpu="1500m", extra_spec={"priorityClassName": "high"}))
    assert c.wait_event(n, "low", "Preempted")
    # as kube-scheduler: the fit error alone, a successful preemption adds nothing to it
    first = c.wait_event(n, "vip", "FailedScheduling")
    assert first and all("preemption: victims" not in e["message"] for e in first), first
    assert any("Insufficient cpu" in e["message"] for e in first), first
    # the victim is Terminating (no kubelet finishes it here): the preemptor is nominated and waits
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not ((c.get("pod", "vip", n) or {}).get("status") or {}).get("nominatedNodeName"):
        time.sleep(0.2)
    vip = c.get("pod", "vip", n)
    assert vip["status"].get("nominatedNodeName") == "pr-0", vip["status"]
    assert c.get("pod", "low", n)["metadata"].get("deletionTimestamp")
    # a lower-priority newcomer does not take the room made for the preemptor
    c.apply(pod("sneak", n, "prio", cpu="400m"))
    assert c.wait_event(n, "sneak", "FailedScheduling")
    c.kubectl("label", "node", "pr-0", "poke=1")  # a Node/Update: vip is retried meanwhile
    time.sleep(2.0)
    assert c.node_of(n, "vip") is None and c.node_of(n, "sneak") is None
    assert len(c.events(n, "low", "Preempted")) == 1  # not preempted twice
    # its retries meanwhile (the victim's update moved it) waited rather than preempting again
    waits = [r for r in c.decisions(n, "vip") if "not eligible due to a terminating pod" in r.get("message", "")]
    assert waits and all(r["result"] == "Unschedulable" and r["node"] == "" for r in waits)
    c.kubectl("delete", "pod", "low", "-n", n, "--grace-period=0", "--force")
    assert c.wait_bound(n, "vip", timeout=30) == "pr-0"
    assert (c.get("pod", "vip", n)["status"] or {}).get("nominatedNodeName") in (None, "pr-0")


def test_preemption_spares_pods_a_disruption_budget_protects(sched_cluster):
    c = sched_cluster
    n = ns(c, "pdbprio")
    add_node(c, "pb-a", "pdbprio", cpu="2")
    add_node(c, "pb-b", "pdbprio", cpu="2")
    for name, value in (("high", 1000), ("mid", 500)):
        c.apply(json.dumps({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                            "metadata": {"name": name}, "value": value}))
    # the cheaper victim by priority is "guarded" (0 < 500), but a budget protects it (no
    # disruption controller runs here: its status allows none), so "loose" is preempted
    c.kubectl("create", "pdb", "guard", "--selector=app=guarded", "--min-available=1", "-n", n)
    time.sleep(1.0)
    c.apply(pod("guarded", n, "pdbprio", cpu="1500m", extra_spec={"nodeSelector": {"kubernetes.io/hostname": "pb-a"}}))
    c.apply(pod("loose", n, "pdbprio", cpu="1500m", extra_spec={"priorityClassName": "mid",
                                                                 "nodeSelector": {"kubernetes.io/hostname": "pb-b"}}))
    assert c.wait_bound(n, "guarded") == "pb-a" and c.wait_bound(n, "loose") == "pb-b"
    c.apply(pod("vip", n, "pdbprio", cpu="1500m", extra_spec={"priorityClassName": "high"}))
    assert c.wait_event(n, "loose", "Preempted")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not ((c.get("pod", "vip", n) or {}).get("status") or {}).get("nominatedNodeName"):
        time.sleep(0.2)
    assert c.get("pod", "vip", n)["status"].get("nominatedNodeName") == "pb-b"
    assert not c.events(n, "guarded", "Preempted")
    assert not c.get("pod", "guarded", n)["metadata"].get("deletionTimestamp")


def test_existing_pods_preferred_affinity_is_scored(sched_cluster):
    c = sched_cluster
    n = ns(c, "exaff")
    add_node(c, "ea-0", "exaff")
    add_node(c, "ea-1", "exaff")
    pref = {"affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {
        "labelSelector": {"matchLabels": {"app": "follower"}}, "topologyKey": "kubernetes.io/hostname"}}]}},
        "nodeSelector": {"kubernetes.io/hostname": "ea-0"}}
    c.apply(pod("anchor", n, "exaff", cpu="1", labels={"app": "anchor"}, extra_spec=pref))
    assert c.wait_bound(n, "anchor") == "ea-0"
    # ea-1 is emptier (LeastAllocated prefers it); the anchor's preference for followers wins
    for i in range(2):
        c.apply(pod(f"follower{i}", n, "exaff", labels={"app": "follower"}))
        assert c.wait_bound(n, f"follower{i}") == "ea-0"
    rec = c.wait_decisions(n, "follower0")[0]
    chosen = next(x for x in rec["candidates"] if x["chosen"])
    ipa = {e["name"]: e for e in chosen["plugins"]}["InterPodAffinity"]
    assert chosen["node"] == "ea-0" and ipa["raw"] == 100 and ipa["normalized"] == 100 and ipa["weighted"] == 200


def test_default_spreading_selects_by_service(sched_cluster):
    c = sched_cluster
    n = ns(c, "dspread")
    add_node(c, "ds-big", "dspread", cpu="32", memory="128Gi")
    add_node(c, "ds-small", "dspread", cpu="4", memory="32Gi")
    c.apply(json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": n},
                        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}))
    for i in range(4):  # already on the big node
        c.apply(pod(f"old{i}", n, "dspread", labels={"app": "web"},
                    extra_spec={"nodeSelector": {"kubernetes.io/hostname": "ds-big"}}))
        assert c.wait_bound(n, f"old{i}") == "ds-big"
    # resources alone favour ds-big by a point (balanced allocation); the Service's spreading wins
    c.apply(pod("new", n, "dspread", labels={"app": "web"}))
    assert c.wait_bound(n, "new") == "ds-small"
    chosen = next(x for x in c.wait_decisions(n, "new")[0]["candidates"] if x["chosen"])
    assert {e["name"]: e for e in chosen["plugins"]}["PodTopologySpread"]["normalized"] == 100
    # a pod no Service (nor controller) selects has no default spreading: it goes by resources
    c.apply(pod("loner", n, "dspread", labels={"app": "loner"}))
    assert c.wait_bound(n, "loner") == "ds-big"


def test_affinity_namespace_selector(sched_cluster):
    c = sched_cluster
    for name, team in (("nsel-a", "a"), ("nsel-b", "b"), ("nsel-x", "x")):
        ns(c, name)
        c.kubectl("label", "namespace", name, f"team={team}", "--overwrite")
    add_node(c, "nsel-0", "nsel")
    add_node(c, "nsel-1", "nsel")
    for target_ns, node in (("nsel-a", "nsel-0"), ("nsel-b", "nsel-1")):
        c.apply(pod("target", target_ns, "nsel", labels={"app": "t"},
                    extra_spec={"nodeSelector": {"kubernetes.io/hostname": node}}))
        assert c.wait_bound(target_ns, "target") == node
    aff = {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "t"}}, "namespaceSelector": {"matchLabels": {"team": "a"}},
         "topologyKey": "kubernetes.io/hostname"}]}}}
    for i in range(3):
        c.apply(pod(f"near-a{i}", "nsel-x", "nsel", labels={"app": f"n{i}"}, extra_spec=aff))
        assert c.wait_bound("nsel-x", f"near-a{i}") == "nsel-0"
    none = {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "t"}}, "namespaceSelector": {"matchLabels": {"team": "nobody"}},
         "topologyKey": "kubernetes.io/hostname"}]}}}
    c.apply(pod("orphan", "nsel-x", "nsel", labels={"app": "o"}, extra_spec=none))
    ev = c.wait_event("nsel-x", "orphan", "FailedScheduling")
    assert ev and "didn't match pod affinity rules" in ev[0]["message"]


def test_pod_schedulable_after_node_added(sched_cluster):
    c = sched_cluster
    n = ns(c, "later")
    c.apply(pod("waiter", n, "later"))
    assert c.wait_event(n, "waiter", "FailedScheduling")
    add_node(c, "later-0", "later")
    assert c.wait_bound(n, "waiter", timeout=30) == "later-0"


def test_two_profiles_side_by_side(sched_cluster):
    c = sched_cluster
    n = ns(c, "profiles")
    add_node(c, "pf-empty", "profiles", cpu="8")
    add_node(c, "pf-busy", "profiles", cpu="8")
    c.apply(pod("filler", n, "profiles", cpu="4", extra_spec={"nodeName": "pf-busy"}))
    time.sleep(0.5)
    # default profile (LeastAllocated) spreads: the empty node; bestfit packs: the busy node
    c.apply(pod("spread", n, "profiles", cpu="1"))
    c.apply(pod("pack", n, "profiles", cpu="1", scheduler="bestfit-scheduler"))
    assert c.wait_bound(n, "spread") == "pf-empty"
    assert c.wait_bound(n, "pack") == "pf-busy"


def test_simulated_nodes_run_pods(sched_cluster, tmp_path):
    from tests.fixtures.scheduler import ProcessRunner

    c = sched_cluster
    n = ns(c, "sim")
    agent = ProcessRunner(tmp_path, ["agent", "--simulated", "--kubeconfig", str(c.api.kubeconfig), "--nodes", "3",
                                     "--prefix", "simn", "--cpu", "4", "--memory", "32Gi", "--pods", "110",
                                     "--labels", "suite=sim"], "simagent").start()
    c.extra.append(agent)
    try:
        assert agent.wait_log("simulated nodes registered", 60), agent.log_tail()
        nodes = json.loads(c.kubectl("get", "nodes", "-l", "suite=sim", "-o", "json").stdout)["items"]
        assert sorted(x["metadata"]["name"] for x in nodes) == ["simn-0", "simn-1", "simn-2"]
        lease = json.loads(c.kubectl("get", "lease", "simn-0", "-n", "kube-node-lease", "-o", "json").stdout)
        assert lease["spec"]["holderIdentity"] == "simn-0"
        for i in range(5):
            c.apply(pod(f"r{i}", n, "sim"))
        deadline = time.monotonic() + 30
        phases: list = []
        while time.monotonic() < deadline:
            phases = [((c.get("pod", f"r{i}", n) or {}).get("status") or {}).get("phase") for i in range(5)]
            if phases == ["Running"] * 5:
                break
            time.sleep(0.3)
        assert phases == ["Running"] * 5, phases
    finally:
        agent.stop()


def test_enhanced_profile_weighs_latency_and_disk(sched_cluster):
    c = sched_cluster
    n = ns(c, "enh")
    add_node(c, "enh-far", "enh", annotations={"scheduling.controlplane.io/network-latency-ms": "40"},
             labels={"node.controlplane.io/disk-type": "hdd"})
    add_node(c, "enh-near", "enh", annotations={"scheduling.controlplane.io/network-latency-ms": "1"},
             labels={"node.controlplane.io/disk-type": "hdd"})
    add_node(c, "enh-nvme", "enh", annotations={"scheduling.controlplane.io/network-latency-ms": "40"},
             labels={"node.controlplane.io/disk-type": "nvme"})
    c.apply(pod("near", n, "enh", scheduler="enhanced-scheduler"))
    assert c.wait_bound(n, "near") == "enh-near"
    c.apply(pod("io", n, "enh", scheduler="enhanced-scheduler",
                annotations={"scheduling.controlplane.io/disk-io": "high"}))
    assert c.wait_bound(n, "io") == "enh-nvme"


def decisions(c, key: str) -> list[dict]:
    """The scheduler's decision records (``scheduling.log``) about pod ``key``."""
    ns_, name = key.split("/", 1)
    return c.wait_decisions(ns_, name, timeout=5.0)


def test_short_scheduler_names_are_profile_aliases(sched_cluster):
    c = sched_cluster
    n = ns(c, "alias")
    add_node(c, "al-a", "alias", cpu="32", gpus=2, model="T4")
    add_node(c, "al-b", "alias", cpu="32", gpus=4, model="T4")
    c.apply(pod("nobody", n, "alias", scheduler="no-such-scheduler"))
    c.apply(pod("short", n, "alias", scheduler="fgd", annotations={"scheduling.controlplane.io/gpu-milli": "250"}))
    assert c.wait_bound(n, "short") in ("al-a", "al-b")
    got = c.get("pod", "short", n)
    assert got["metadata"]["annotations"].get("scheduling.controlplane.io/gpu-index") in ("0", "1")  # GpuShare's PreBind
    [rec] = decisions(c, f"{n}/short")
    assert rec["profile"] == "fgd-scheduler" and rec["schedulerName"] == "fgd"
    assert "FGD" in {e["name"] for e in rec["candidates"][0]["plugins"]}
    assert c.wait_event(n, "short", "Scheduled")
    # a name no profile answers to: left alone, as kube-scheduler does (Pending, no Event)
    assert c.node_of(n, "nobody") is None
    assert c.events(n, "nobody") == [] and c.decisions(n, "nobody") == []
