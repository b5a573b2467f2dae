"""Pure pod-lifecycle rules, as the kubelet applies them (unit-tested with a fake clock).

Restart decisions per ``restartPolicy``, the CrashLoopBackOff schedule (10 s doubling to 5 min,
reset after 10 min of running), pod phase from container states, the pod conditions
(PodReadyToStartContainers, Initialized, ContainersReady, Ready, PodScheduled kept), the QoS
class, and a container's status dict exactly as the API shows it; sidecar containers (init
containers with ``restartPolicy: Always``) count as the kubelet 1.32 counts them in the phase and
the conditions. ``pod_worker.py`` calls these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controlplane.machinery.quantity import parse_quantity
from controlplane.machinery.timestamps import rfc3339, rfc3339_or_none


@dataclass
class CrashBackoff:
    """Per-container restart delay: 0 for the first restart, then initial·2^(n-1) up to cap;
    a container that ran at least ``reset_after`` seconds starts the schedule over."""

    initial: float = 10.0
    cap: float = 300.0
    reset_after: float = 600.0
    restarts: int = 0

    def next_delay(self, ran_for: float) -> float:
        if ran_for >= self.reset_after:
            self.restarts = 0
        delay = 0.0 if self.restarts == 0 else min(self.cap, self.initial * 2 ** (self.restarts - 1))
        self.restarts += 1
        return delay


def should_restart(policy: str, exit_code: int) -> bool:
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_code != 0
    return True


@dataclass
class CState:
    """What the agent knows about one container of a pod (across restarts)."""

    name: str
    image: str
    init: bool = False
    restartable: bool = False  # a sidecar: an init container with restartPolicy Always
    ephemeral: bool = False  # added by ``kubectl debug``: run once, never restarted, never ready
    cid: str | None = None
    restart_count: int = 0
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    last_terminated: dict[str, Any] | None = None
    ready: bool = False
    started: bool = False  # startup probe passed (or none)
    image_id: str = ""
    restart_at: float | None = None  # when a backoff ends
    done: bool = False  # terminated and will not restart
    termination_file: str | None = None  # the host file at terminationMessagePath (this attempt)
    changed: bool = False  # killed because its spec changed: started again at once, whatever the policy

    def terminated_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"exitCode": self.exit_code if self.exit_code is not None else 0,
                             "reason": self.reason or ("Completed" if self.exit_code == 0 else "Error"),
                             "startedAt": rfc3339_or_none(self.started_at), "finishedAt": rfc3339_or_none(self.finished_at)}
        if self.message:
            d["message"] = self.message
        if self.cid:
            d["containerID"] = f"runc://{self.cid}"
        return d

    def status(self) -> dict[str, Any]:
        if self.state == "running":
            st: dict[str, Any] = {"running": {"startedAt": rfc3339_or_none(self.started_at)}}
        elif self.state == "terminated":
            st = {"terminated": self.terminated_dict()}
        else:
            w: dict[str, Any] = {"reason": self.reason}
            if self.message:
                w["message"] = self.message
            st = {"waiting": w}
        out: dict[str, Any] = {
            "name": self.name, "state": st, "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
            "ready": self.ready, "restartCount": self.restart_count, "image": self.image,
            "imageID": self.image_id, "started": self.state == "running" and self.started,
        }
        if self.init and not self.restartable and self.state == "terminated" and self.exit_code == 0:
            out["ready"] = True  # a completed init container is ready (the kubelet's prober manager)
        if self.cid and self.state != "waiting":
            out["containerID"] = f"runc://{self.cid}"
        if self.ephemeral:  # no probes, so the kubelet's prober never sets `started` on them
            del out["started"]
        return out


def begun(c: CState) -> bool:
    """The container has a status in the runtime's eyes: it ran or runs (or failed to start)."""
    return c.state != "waiting" or c.last_terminated is not None or c.cid is not None


def any_regular_started(main: list[CState]) -> bool:
    """``HasAnyRegularContainerStarted``: a regular container is running or terminated, so the
    pod was initialized before (restarting sidecars do not make it uninitialized)."""
    return any(c.state in ("running", "terminated") for c in main)


def regular_containers_done(restart_policy: str, main: list[CState]) -> bool:
    """With Never/OnFailure, every regular container terminated and none restarts: the
    kubelet kills the pod (``keepCount == 0``), sidecars included, so they keep nothing alive."""
    return restart_policy != "Always" and bool(main) and all(c.state == "terminated" and c.done for c in main)


def pod_phase(restart_policy: str, init: list[CState], main: list[CState]) -> str:
    """Kubernetes' getPhase (1.32): regular init containers, then sidecars (a running one that
    has not started keeps the pod Pending until a regular container started; a terminated or
    restarting one does not count), then the regular containers."""
    pending_regular = pending_sidecars = failed_init = 0
    for c in init:
        if c.restartable:
            continue
        if c.state == "terminated":
            if c.exit_code != 0:
                failed_init += 1
        elif c.state == "waiting" and c.last_terminated is not None:
            if c.last_terminated.get("exitCode") != 0:
                failed_init += 1
        else:
            pending_regular += 1
    running = waiting = stopped = succeeded = 0
    for c in init:
        if not c.restartable:
            continue
        if c.state == "running":
            if not c.started:
                pending_sidecars += 1
            running += 1
        elif c.state == "waiting" and c.last_terminated is None:
            pending_sidecars += 1
            waiting += 1
    for c in main:
        if c.state == "running":
            running += 1
        elif c.state == "terminated":
            stopped += 1
            succeeded += c.exit_code == 0
        elif c.last_terminated is not None:
            stopped += 1
            succeeded += c.last_terminated.get("exitCode") == 0
        else:
            waiting += 1
    if failed_init > 0 and restart_policy == "Never":
        return "Failed"
    if pending_regular > 0 or (pending_sidecars > 0 and not any_regular_started(main)):
        return "Pending"
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _cond(ctype: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    c: dict[str, Any] = {"type": ctype, "status": "True" if ok else "False", "lastProbeTime": None}
    if not ok and reason:
        c["reason"] = reason
    if not ok and message:
        c["message"] = message
    return c


def pod_conditions(phase: str, sandbox_ready: bool, init: list[CState], main: list[CState],
                   old: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """The conditions list with lastTransitionTime kept when a status did not change."""
    completed = phase in ("Succeeded", "Failed")
    # GeneratePodInitializedCondition: regular init containers completed, sidecars started (or
    # a regular container started already: a restarting sidecar does not undo initialization)
    pending_init = [] if any_regular_started(main) else [
        c.name for c in init
        if (not (c.state == "running" and c.started) if c.restartable
            else not (c.state == "terminated" and c.exit_code == 0))]
    # GenerateContainersReadyCondition: sidecars' readiness counts, listed first
    unready = [c.name for c in init if c.restartable and not c.ready] + [c.name for c in main if not c.ready]
    conds = [
        _cond("PodReadyToStartContainers", sandbox_ready and not completed),
        _cond("Initialized", not pending_init, "ContainersNotInitialized",
              f"containers with incomplete status: [{' '.join(pending_init)}]"),
    ]
    reason = "PodCompleted" if completed else "ContainersNotReady"
    msg = "" if completed else f"containers with unready status: [{' '.join(unready)}]"
    ready = not unready and not completed and not pending_init
    conds.append(_cond("ContainersReady", ready, reason, msg))
    conds.append(_cond("Ready", ready, reason, msg))
    by_type = {c.get("type"): c for c in old or []}
    out = []
    for c in conds:
        prev = by_type.pop(c["type"], None)
        c["lastTransitionTime"] = prev.get("lastTransitionTime") if prev and prev.get("status") == c["status"] \
            else rfc3339(now)
        out.append(c)
    sched = by_type.get("PodScheduled")
    out.append(sched or {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                         "lastTransitionTime": rfc3339(now)})
    return out


def qos_class(spec: dict[str, Any]) -> str:
    """BestEffort / Guaranteed / Burstable from requests and limits (cpu, memory)."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        for r in ("cpu", "memory"):
            if r in req or r in lim:
                any_set = True
            if r not in lim:
                guaranteed = False
            elif r in req and parse_quantity(str(req[r])) != parse_quantity(str(lim[r])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


@dataclass
class ProbeState:
    """Threshold bookkeeping of one probe (success/failure runs)."""

    success_threshold: int = 1
    failure_threshold: int = 3
    successes: int = 0
    failures: int = 0
    result: bool | None = None  # None until the thresholds decide
    history: list[bool] = field(default_factory=list)

    def record(self, ok: bool) -> bool | None:
        if ok:
            self.successes += 1
            self.failures = 0
            if self.successes >= self.success_threshold:
                self.result = True
        else:
            self.failures += 1
            self.successes = 0
            if self.failures >= self.failure_threshold:
                self.result = False
        return self.result
