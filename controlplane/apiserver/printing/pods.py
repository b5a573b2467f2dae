"""Pod rows for ``kubectl get pods``: Kubernetes' ``printPod`` (READY, STATUS as kubectl
computes it — Init:N/M, CrashLoopBackOff, Completed, Terminating …, RESTARTS with "(5m ago)",
and the wide columns), kubectl 1.32's: sidecar (restartable init) containers count in READY once
started, and only their restarts count once the pod is initialized. Caller: ``printers.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controlplane.apiserver.printing.format import (
    AGE_DESC, NAME_DESC, NONE, col, human_duration, parse_time, since,
)
from controlplane.apiserver.printing.format import meta as _m
from controlplane.apiserver.printing.format import sub as _s

Obj = dict[str, Any]


def pod_status_reason(pod: Obj) -> tuple[str, int, int, int, datetime | None]:
    """(STATUS, ready containers, total containers, restarts, last restart) as printPod."""
    spec, status = _s(pod), _s(pod, "status")
    containers = spec.get("containers") or []
    init_specs = spec.get("initContainers") or []
    total = len(containers)
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    reason = status.get("reason") or status.get("phase") or ""
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    def finished_at(cs: Obj) -> datetime | None:
        return parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))

    def note_restart(cs: Obj) -> None:
        nonlocal last_restart
        t = finished_at(cs)
        if t and (last_restart is None or t > last_restart):
            last_restart = t

    sidecars = {c.get("name") for c in init_specs if c.get("restartPolicy") == "Always"}
    total += len(sidecars)
    sidecar_last_restart: datetime | None = None
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount", 0)
        note_restart(cs)
        is_sidecar = cs.get("name") in sidecars
        if is_sidecar:
            sidecar_restarts += cs.get("restartCount", 0)
            t = finished_at(cs)
            if t and (sidecar_last_restart is None or t > sidecar_last_restart):
                sidecar_last_restart = t
        state = cs.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode", 0) == 0:
            continue
        if is_sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term:
            if term.get("reason"):
                reason = "Init:" + term["reason"]
            elif term.get("signal"):
                reason = f"Init:Signal:{term['signal']}"
            else:
                reason = f"Init:ExitCode:{term.get('exitCode', 0)}"
        elif wait and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True"
                      for c in status.get("conditions") or [])
    if not initializing or initialized:
        restarts, last_restart = sidecar_restarts, sidecar_last_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            note_restart(cs)
            state = cs.get("state") or {}
            wait, term = state.get("waiting"), state.get("terminated")
            if wait and wait.get("reason"):
                reason = wait["reason"]
            elif term and term.get("reason"):
                reason = term["reason"]
            elif term:
                reason = (f"Signal:{term['signal']}" if term.get("signal")
                          else f"ExitCode:{term.get('exitCode', 0)}")
            elif cs.get("ready") and "running" in state:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in status.get("conditions") or [])
            reason = "Running" if pod_ready else "NotReady"
    if _m(pod).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif status.get("phase") not in ("Succeeded", "Failed"):  # a finished pod keeps its STATUS
            reason = "Terminating"
    return reason, ready, total, restarts, last_restart


def pod_row(pod: Obj, now: datetime) -> list[Any]:
    reason, ready, total, restarts, last = pod_status_reason(pod)
    restarts_s = f"{restarts} ({human_duration(now - last)} ago)" if last and restarts else str(restarts)
    spec, status = _s(pod), _s(pod, "status")
    gates = spec.get("readinessGates") or []
    if gates:
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        gates_s = f"{sum(1 for g in gates if conds.get(g.get('conditionType')) == 'True')}/{len(gates)}"
    else:
        gates_s = NONE
    return [_m(pod).get("name", ""), f"{ready}/{total}", reason, restarts_s,
            since(_m(pod).get("creationTimestamp"), now), status.get("podIP") or NONE,
            spec.get("nodeName") or NONE, status.get("nominatedNodeName") or NONE, gates_s]


POD_COLUMNS = (
    col("Name", format="name", description=NAME_DESC),
    col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    col("Status", description="The aggregate status of the containers in this pod."),
    col("Restarts", description="The number of times the containers in this pod have been "
        "restarted and when the last container in this pod has restarted."),
    col("Age", description=AGE_DESC),
    col("IP", priority=1, description="IP address allocated to the pod. Routable at least within "
        "the cluster. Empty if not yet allocated."),
    col("Node", priority=1, description="NodeName is a request to schedule this pod onto a "
        "specific node."),
    col("Nominated Node", priority=1, description="nominatedNodeName is set only when this pod "
        "preempts other pods on the node."),
    col("Readiness Gates", priority=1, description="If specified, all readiness gates will be "
        "evaluated for pod readiness."),
)
