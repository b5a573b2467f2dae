"""Sidecar containers (init containers with ``restartPolicy: Always``) in the pure pod-lifecycle
rules (``agent/lifecycle.py``: the kubelet 1.32's getPhase, Initialized/ContainersReady/Ready
conditions, when a pod's regular containers are done) and in ``kubectl get pods``' READY,
STATUS and RESTARTS columns (``apiserver/printing/pods.py``, kubectl 1.32's printPod)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from controlplane.agent.lifecycle import CState, pod_conditions, pod_phase, regular_containers_done
from controlplane.apiserver.printing.pods import pod_status_reason


def sc(state: str, started: bool = False, ready: bool = False, last: int | None = None, name: str = "s") -> CState:
    x = CState(name, "busybox", init=True, restartable=True, state=state, started=started, ready=ready)
    if state == "terminated":
        x.exit_code = 143
    if last is not None:
        x.last_terminated = {"exitCode": last}
    return x


def init(state: str, code: int | None = None, done: bool = False) -> CState:
    return CState("i", "busybox", init=True, state=state, exit_code=code, done=done)


def app(state: str, code: int | None = None, done: bool = False, ready: bool = False, name: str = "a") -> CState:
    return CState(name, "busybox", state=state, exit_code=code, done=done, ready=ready)


PHASES = [
    ("sidecar not started yet", "Always", [sc("running")], [app("waiting")], "Pending"),
    ("sidecar never ran", "Always", [sc("waiting")], [app("waiting")], "Pending"),
    ("sidecar started, app waiting", "Always", [sc("running", True)], [app("waiting")], "Pending"),
    ("sidecar and app running", "Always", [sc("running", True)], [app("running")], "Running"),
    ("sidecar restarting after initialization", "Always", [sc("waiting", last=1)], [app("running")], "Running"),
    ("sidecar restarted, startup probe pending, app running", "Always", [sc("running", last=1)], [app("running")],
     "Running"),
    ("job: app done, sidecar still running", "Never", [sc("running", True)], [app("terminated", 0, done=True)],
     "Running"),
    ("job: app succeeded, sidecar killed (143 does not count)", "Never", [sc("terminated")],
     [app("terminated", 0, done=True)], "Succeeded"),
    ("job: app failed, sidecar killed", "Never", [sc("terminated")], [app("terminated", 2, done=True)], "Failed"),
    ("onfailure: app succeeded, sidecar in backoff", "OnFailure", [sc("waiting", last=1)],
     [app("terminated", 0, done=True)], "Succeeded"),
    ("regular init after a sidecar still running", "Always", [sc("running", True), init("running")],
     [app("waiting")], "Pending"),
    ("regular init failed under Never", "Never", [sc("running", True), init("terminated", 1, done=True)],
     [app("waiting")], "Failed"),
]


@pytest.mark.parametrize("policy,inits,mains,phase", [x[1:] for x in PHASES], ids=[x[0] for x in PHASES])
def test_phase_with_sidecars(policy: str, inits: list[CState], mains: list[CState], phase: str) -> None:
    assert pod_phase(policy, inits, mains) == phase


def conds(phase: str, inits: list[CState], mains: list[CState]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in pod_conditions(phase, True, inits, mains, [], now=0.0)}


COND_CASES = [
    ("sidecar not started", [sc("running")], [app("waiting")], "False", "False",
     "containers with incomplete status: [s]", "containers with unready status: [s a]"),
    ("sidecar started, not ready", [sc("running", True)], [app("running", ready=True)], "True", "False",
     None, "containers with unready status: [s]"),
    ("all ready", [sc("running", True, True)], [app("running", ready=True)], "True", "True", None, None),
    ("sidecar restarting: still initialized", [sc("waiting", last=1)], [app("running", ready=True)], "True", "False",
     None, "containers with unready status: [s]"),
    ("regular init pending behind a started sidecar", [sc("running", True, True), init("running")], [app("waiting")],
     "False", "False", "containers with incomplete status: [i]", "containers with unready status: [a]"),
]


@pytest.mark.parametrize("inits,mains,initialized,ready,init_msg,ready_msg", [x[1:] for x in COND_CASES],
                         ids=[x[0] for x in COND_CASES])
def test_conditions_with_sidecars(inits: list[CState], mains: list[CState], initialized: str, ready: str,
                                  init_msg: str | None, ready_msg: str | None) -> None:
    by = conds(pod_phase("Always", inits, mains), inits, mains)
    assert by["Initialized"]["status"] == initialized
    assert by["Initialized"].get("message") == init_msg
    assert by["Ready"]["status"] == by["ContainersReady"]["status"] == ready
    assert by["Ready"].get("message") == ready_msg


@pytest.mark.parametrize("policy,mains,done", [
    ("Never", [app("terminated", 0, done=True)], True),
    ("OnFailure", [app("terminated", 0, done=True), app("terminated", 1, done=True, name="b")], True),
    ("OnFailure", [app("terminated", 0, done=True), app("waiting", name="b")], False),
    ("Never", [app("terminated", 0, done=True), app("running", name="b")], False),
    ("Always", [app("terminated", 0, done=True)], False),
], ids=["never-done", "all-done", "one-restarting", "one-running", "always-never-done"])
def test_regular_containers_done(policy: str, mains: list[CState], done: bool) -> None:
    assert regular_containers_done(policy, mains) is done


def test_sidecar_status_shape() -> None:
    x = sc("running", started=True, ready=True)
    x.restart_count = 2
    st = x.status()
    assert st["started"] is True and st["ready"] is True and st["restartCount"] == 2
    done = CState("i", "busybox", init=True, state="terminated", exit_code=0)
    assert done.status()["ready"] is True and done.status()["started"] is False  # a completed init container


NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=timezone.utc)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod(init_statuses: list[dict], statuses: list[dict], phase: str = "Running", initialized: bool = True,
         deleting: bool = False) -> dict[str, Any]:
    md: dict[str, Any] = {"name": "p"}
    if deleting:
        md["deletionTimestamp"] = ts(1)
    return {"metadata": md,
            "spec": {"initContainers": [{"name": "i", "image": "x"},
                                        {"name": "s", "image": "x", "restartPolicy": "Always"}],
                     "containers": [{"name": "a", "image": "x"}]},
            "status": {"phase": phase, "initContainerStatuses": init_statuses, "containerStatuses": statuses,
                       "conditions": [{"type": "Initialized", "status": "True" if initialized else "False"}]}}


DONE = {"name": "i", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}, "restartCount": 0}


def side(started: bool, ready: bool, restarts: int = 0, state: dict | None = None, last: str | None = None) -> dict:
    d: dict[str, Any] = {"name": "s", "started": started, "ready": ready, "restartCount": restarts,
                         "state": state or {"running": {}}}
    if last:
        d["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": last}}
    return d


def main(ready: bool, state: dict | None = None, restarts: int = 0) -> dict:
    return {"name": "a", "ready": ready, "restartCount": restarts, "state": state or {"running": {}}}


ROWS = [
    ("sidecar starting", _pod([DONE, side(False, False)], [main(False, {"waiting": {"reason": "PodInitializing"}})],
                              phase="Pending", initialized=False), ("Init:1/2", 0, 2, 0)),
    ("sidecar crash-looping before start",
     _pod([DONE, side(False, False, 3, {"waiting": {"reason": "CrashLoopBackOff"}}, ts(60))],
          [main(False, {"waiting": {"reason": "PodInitializing"}})], phase="Pending", initialized=False),
     ("Init:CrashLoopBackOff", 0, 2, 3)),
    ("all running and ready", _pod([DONE, side(True, True)], [main(True)]), ("Running", 2, 2, 0)),
    ("sidecar restarted, pod keeps Running", _pod([DONE, side(True, True, 4, last=ts(30))], [main(True)]),
     ("Running", 2, 2, 4)),
    ("sidecar unready", _pod([DONE, side(True, False)], [main(True)]), ("Running", 1, 2, 0)),
    ("job done, sidecar stopped", _pod([DONE, side(False, False, 0, {"terminated": {"exitCode": 143,
                                                                                 "reason": "Error"}})],
                                       [main(False, {"terminated": {"exitCode": 0, "reason": "Completed"}})],
                                       phase="Succeeded"), ("Completed", 0, 2, 0)),
    ("a finished pod being deleted keeps its STATUS",
     _pod([DONE, side(False, False, 0, {"terminated": {"exitCode": 143, "reason": "Error"}})],
          [main(False, {"terminated": {"exitCode": 0, "reason": "Completed"}})], phase="Succeeded", deleting=True),
     ("Completed", 0, 2, 0)),
    ("a running pod being deleted", _pod([DONE, side(True, True)], [main(True)], deleting=True),
     ("Terminating", 2, 2, 0)),
]


@pytest.mark.parametrize("pod,expect", [x[1:] for x in ROWS], ids=[x[0] for x in ROWS])
def test_kubectl_columns_with_sidecars(pod: dict, expect: tuple) -> None:
    reason, ready, total, restarts, _ = pod_status_reason(pod)
    assert (reason, ready, total, restarts) == expect
