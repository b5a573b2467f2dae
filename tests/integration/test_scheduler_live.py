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
    # the decision log: one JSON record per decision, with per-plugin scores or the reason
    records = [json.loads(line) for line in c.scheduler.log_path.read_text().splitlines()
               if line.startswith("{") and "scheduling decision" in line]
    ok = [r for r in records if r.get("pod") == "fit/tiny"]
    assert ok and ok[0]["feasible"] == 2 and len(ok[0]["candidates"]) == 2
    assert {"NodeResourcesFit", "TaintToleration"} <= set(ok[0]["candidates"][0]["plugins"])
    bad = [r for r in records if r.get("pod") == "fit/huge"]
    assert bad and bad[0]["node"] is None and "Insufficient cpu" in bad[0]["reason"]
    text = c.metrics()
    assert re.search(r'scheduler_schedule_attempts_total\{profile="default-scheduler",result="scheduled"\} [1-9]', text)
    assert re.search(r'scheduler_schedule_attempts_total\{profile="default-scheduler",result="unschedulable"\} [1-9]', text)
    assert 'scheduler_pending_pods{queue="unschedulable"}' in text
    assert "scheduler_scheduling_attempt_duration_seconds_bucket" in text


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


def test_priority_preemption(sched_cluster):
    c = sched_cluster
    n = ns(c, "prio")
    add_node(c, "pr-0", "prio", cpu="2")
    c.apply(json.dumps({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                        "metadata": {"name": "high"}, "value": 1000}))
    time.sleep(1.0)
    c.apply(pod("low", n, "prio", cpu="1500m"))
    assert c.wait_bound(n, "low") == "pr-0"
    c.apply(pod("vip", n, "prio", cpu="1500m", extra_spec={"priorityClassName": "high"}))
    assert c.wait_bound(n, "vip", timeout=60) == "pr-0"
    victim = c.get("pod", "low", n)  # gone, or terminating (no kubelet finishes it here)
    assert victim is None or victim["metadata"].get("deletionTimestamp"), "the victim was not evicted"
    assert c.wait_event(n, "low", "Preempted")


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
    """The scheduler's ``scheduling decision`` log records about pod ``key``."""
    out = []
    for line in c.scheduler.log_path.read_text(errors="replace").splitlines():
        if '"scheduling decision"' in line and key in line:
            rec = json.loads(line)
            if rec.get("pod") == key:
                out.append(rec)
    return out


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
    assert rec["profile"] == "fgd-scheduler" and "FGD" in rec["candidates"][0]["plugins"]
    assert c.wait_event(n, "short", "Scheduled")
    # a name no profile answers to: left alone, as kube-scheduler does (Pending, no Event)
    assert c.node_of(n, "nobody") is None
    assert c.events(n, "nobody") == [] and decisions(c, f"{n}/nobody") == []
