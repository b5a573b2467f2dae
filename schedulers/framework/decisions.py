"""Scheduling-decision records: what one scheduling cycle decided and why, as a
``scheduling.controlplane.io/v1`` ``SchedulingDecision`` object (issue 16 item 5).

Why: a placement is otherwise a black box (a node name on the pod). A record holds the pod,
the profile, the result and chosen node, how many nodes each filter plugin rejected and for
which reasons, and the top candidates with every score plugin's raw, normalised and weighted
score (and value estimates where a plugin has them: DDQN). The scheduler builds one per
decision (right after the scheduling cycle, before Reserve) and

- writes it as one JSON line to ``DATA_DIR/logs/scheduling.log`` (``DecisionLog``);
- sends it to the API: a successful decision travels inside the ``Binding`` (the apiserver
  stores it in the same etcd transaction as the binding, no extra request), a failed one is
  created on its own (rate-limited per pod like FailedScheduling Events).

The shape is documented in ``docs/scheduling.md`` ("Scheduling decisions"); the apiserver
serves and expires the objects (time to live, default 1 h). Pure functions here; the I/O
lives in ``scheduler`` and ``decisionlog``. Neighbours: ``framework`` (``ScheduleResult``,
``top_candidates``), ``scheduler`` (calls :func:`build_record`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from controlplane.machinery.timestamps import micro_time

GROUP = "scheduling.controlplane.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "SchedulingDecision"
PLURAL = "schedulingdecisions"
# the Binding annotation that carries a successful decision's record to the apiserver, which
# stores it as a SchedulingDecision and does not copy it onto the pod
BINDING_RECORD_ANNOTATION = "scheduling.controlplane.io/decision"

# where a successful decision's encoded record waits in the CycleState for the binding cycle
CYCLE_STATE_KEY = "_decision_record"
# the Binding annotation that carries the pod's Scheduled Event (core/v1, JSON) to this
# project's apiserver, which creates it once the binding is stored; where it waits in the
# CycleState, and the CycleState flag DefaultBinder sets once a Binding carried it
BINDING_EVENT_ANNOTATION = "scheduling.controlplane.io/scheduled-event"
EVENT_CYCLE_STATE_KEY = "_scheduled_event"
EVENT_CARRIED_KEY = "_scheduled_event_carried"

SCHEDULED = "Scheduled"
UNSCHEDULABLE = "Unschedulable"


def filter_summary(reason_counts: dict) -> list[dict[str, Any]]:
    """``[{plugin, rejected, reasons: [{reason, count}]}]`` from ``(plugin, reason) -> count``,
    in the order the plugins rejected nodes (each node counts once, for the first plugin that
    rejected it; one plugin may give several reasons for one node, e.g. cpu and memory)."""
    by_plugin: dict[str, dict[str, int]] = defaultdict(dict)
    totals: dict[str, int] = {}
    for (plugin, reason), c in reason_counts.items():
        if not c:
            continue
        if reason is None:
            totals[plugin] = int(c)
        else:
            by_plugin[plugin][reason] = by_plugin[plugin].get(reason, 0) + int(c)
    return [{"plugin": plugin, "rejected": totals.get(plugin, max(reasons.values())),
             "reasons": [{"reason": r, "count": c} for r, c in sorted(reasons.items(), key=lambda x: -x[1])]}
            for plugin, reasons in by_plugin.items()]


MIB = 1024 * 1024


def pod_summary(pod: Any) -> dict[str, Any]:
    """The pod as the record names it, with what it asked for: enough to replay the decision
    in the openb simulator (``schedulers.ddqn.retrain`` turns records into pod lists)."""
    md = pod.obj.get("metadata") or {}
    g = pod.gpu
    return {"name": pod.name, "namespace": pod.namespace, "uid": md.get("uid", ""),
            "creationTimestamp": md.get("creationTimestamp", ""),
            "resources": {"cpuMilli": int(pod.requests.get("cpu", 0)), "memoryMiB": int(pod.requests.get("memory", 0)) // MIB,
                          "gpuCount": int(g.count), "gpuMilli": int(g.milli), "gpuModels": list(g.types)}}


def record_name(pod_name: str, nanos: int) -> str:
    """``<pod>.<unix nanos in hex>`` (as client-go names Events), cut to fit 253 characters."""
    suffix = f".{nanos:x}"
    return pod_name[:253 - len(suffix)] + suffix


def build_record(pod: Any, profile: str, res: Any, total_nodes: int, *, nanos: int, attempt: int,
                 duration_s: float, result: str | None = None, message: str = "",
                 nominated: str | None = None) -> dict[str, Any]:
    """The ``SchedulingDecision`` of one cycle. ``pod``: the ``PodInfo``; ``res``: the
    framework's ``ScheduleResult`` (its ``candidates`` are read, so call this before
    Reserve); ``nanos``: the decision's wall-clock time (``time.time_ns()``)."""
    node = res.node or ""
    result = result or (SCHEDULED if node else UNSCHEDULABLE)
    rec: dict[str, Any] = {
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {"name": record_name(pod.name, nanos), "namespace": pod.namespace,
                     "labels": {f"{GROUP}/profile": profile, f"{GROUP}/result": result}},
        "pod": pod_summary(pod),
        "profile": profile,
        "schedulerName": pod.scheduler_name,
        "result": result,
        "node": node,
        "decisionTime": micro_time(nanos / 1e9),
        "attempt": attempt,
        "durationMicroseconds": int(duration_s * 1e6),
        "nodes": {"total": total_nodes, "filtered": res.filtered, "feasible": res.feasible,
                  "scored": res.evaluated},
        "filters": filter_summary(res.reason_counts),
        "candidates": res.candidates if node else [],
    }
    if message:
        rec["message"] = message
    if nominated:
        rec["nominatedNodeName"] = nominated
    return rec
