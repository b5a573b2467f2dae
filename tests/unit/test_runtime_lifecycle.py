"""Pure pod-lifecycle rules of the agent: restart decisions, CrashLoopBackOff schedule (fake
clock: delays measured as the values returned), pod phase, conditions, QoS, probe thresholds."""

from __future__ import annotations

import pytest

from controlplane.agent.lifecycle import CrashBackoff, CState, ProbeState, pod_conditions, pod_phase, qos_class, should_restart


@pytest.mark.parametrize("policy,code,restart", [
    ("Always", 0, True), ("Always", 1, True), ("OnFailure", 0, False), ("OnFailure", 2, True),
    ("Never", 0, False), ("Never", 137, False),
])
def test_should_restart(policy, code, restart):
    assert should_restart(policy, code) is restart


def test_crashloop_schedule_doubles_caps_and_resets():
    b = CrashBackoff(initial=10, cap=300, reset_after=600)
    delays = [b.next_delay(ran_for=1) for _ in range(8)]
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300]
    assert b.next_delay(ran_for=600) == 0  # ran 10 minutes: schedule starts over
    assert b.next_delay(ran_for=1) == 10


def c(name, state, code=None, last=None, init=False):
    x = CState(name, "busybox", init=init, state=state, exit_code=code)
    x.last_terminated = last
    return x


@pytest.mark.parametrize("policy,init,main,phase", [
    ("Always", [], [c("a", "waiting")], "Pending"),
    ("Always", [], [c("a", "running")], "Running"),
    ("Always", [], [c("a", "waiting", last={"exitCode": 1})], "Running"),
    ("Always", [c("i", "running", init=True)], [c("a", "waiting")], "Pending"),
    ("Never", [], [c("a", "terminated", 0), c("b", "terminated", 0)], "Succeeded"),
    ("Never", [], [c("a", "terminated", 0), c("b", "terminated", 1)], "Failed"),
    ("OnFailure", [], [c("a", "terminated", 0)], "Succeeded"),
    ("Never", [], [c("a", "running"), c("b", "terminated", 1)], "Running"),
    ("Always", [c("i", "terminated", 0, init=True)], [c("a", "running")], "Running"),
], ids=["waiting", "running", "crashloop", "init-running", "succeeded", "failed", "onfailure-ok", "one-running", "after-init"])
def test_pod_phase(policy, init, main, phase):
    assert pod_phase(policy, init, main) == phase


def test_conditions_keep_transition_times():
    a = c("a", "running")
    a.ready = True
    conds = pod_conditions("Running", True, [], [a], [], now=100.0)
    by = {x["type"]: x for x in conds}
    assert by["Ready"]["status"] == "True" and by["ContainersReady"]["status"] == "True"
    assert by["Initialized"]["status"] == "True" and by["PodScheduled"]["status"] == "True"
    again = {x["type"]: x for x in pod_conditions("Running", True, [], [a], conds, now=200.0)}
    assert again["Ready"]["lastTransitionTime"] == by["Ready"]["lastTransitionTime"]
    a.ready = False
    flipped = {x["type"]: x for x in pod_conditions("Running", True, [], [a], conds, now=300.0)}
    assert flipped["Ready"]["status"] == "False" and flipped["Ready"]["reason"] == "ContainersNotReady"
    assert flipped["Ready"]["message"] == "containers with unready status: [a]"
    assert flipped["Ready"]["lastTransitionTime"] != by["Ready"]["lastTransitionTime"]


def res(req=None, lim=None):
    return {"name": "x", "resources": {"requests": req or {}, "limits": lim or {}}}


@pytest.mark.parametrize("containers,qos", [
    ([res()], "BestEffort"),
    ([res(lim={"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([res(req={"cpu": "1", "memory": "1Gi"}, lim={"cpu": "1000m", "memory": "1Gi"})], "Guaranteed"),
    ([res(req={"cpu": "100m"})], "Burstable"),
    ([res(lim={"cpu": "1", "memory": "1Gi"}), res()], "Burstable"),
    ([res(req={"cpu": "500m", "memory": "1Gi"}, lim={"cpu": "1", "memory": "1Gi"})], "Burstable"),
])
def test_qos(containers, qos):
    assert qos_class({"containers": containers}) == qos


def test_probe_thresholds():
    p = ProbeState(success_threshold=2, failure_threshold=3)
    assert [p.record(x) for x in (True, True, False, False, False, True, True)] == \
        [None, True, True, True, False, False, True]


def test_container_status_shape():
    x = CState("app", "busybox", cid="abc", state="waiting", reason="CrashLoopBackOff", message="back-off 10s",
               restart_count=2, last_terminated={"exitCode": 1, "reason": "Error"})
    st = x.status()
    assert st["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}
    assert st["lastState"] == {"terminated": {"exitCode": 1, "reason": "Error"}}
    assert st["restartCount"] == 2 and st["ready"] is False and st["started"] is False and "containerID" not in st
