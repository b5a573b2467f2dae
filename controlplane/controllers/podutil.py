"""Pure pod helpers shared by the controllers: active/ready/available tests, and the
ranking Kubernetes uses to pick which pods to delete first when scaling down
(``controller.ActivePodsWithRanks``): unscheduled < scheduled, Pending < Unknown < Running,
not ready < ready, lower ``controller.kubernetes.io/pod-deletion-cost`` first, more colocated
siblings first, ready for less time < longer, more restarts < fewer, newer < older.
Neighbours: ``replicaset`` (deletion ranking, status), ``deployment``, ``statefulset``,
``daemonset``, ``job``, ``endpoints``."""

from __future__ import annotations

from typing import Any

from controlplane.machinery.timestamps import parse_time_or_none


def phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or "Pending"


def is_terminating(obj: dict) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_pod_active(pod: dict) -> bool:
    """Not finished and not being deleted (``controller.IsPodActive``)."""
    return phase(pod) not in ("Succeeded", "Failed") and not is_terminating(pod)


def get_condition(obj: dict, ctype: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def is_pod_ready(pod: dict) -> bool:
    c = get_condition(pod, "Ready")
    return bool(c) and c.get("status") == "True"


def ready_since(pod: dict) -> float | None:
    c = get_condition(pod, "Ready")
    if not c or c.get("status") != "True":
        return None
    return parse_time_or_none(c.get("lastTransitionTime"))


def is_pod_available(pod: dict, min_ready_seconds: int, now: float) -> bool:
    """Ready, and ready for at least ``min_ready_seconds``."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and since + min_ready_seconds <= now


def restart_count(pod: dict) -> int:
    return sum(int(cs.get("restartCount") or 0) for cs in (pod.get("status") or {}).get("containerStatuses") or [])


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def deletion_cost(pod: dict) -> int:
    try:
        return int(((pod.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST, "0"))
    except ValueError:
        return 0


def deletion_rank(pod: dict, colocated: int = 0) -> tuple[Any, ...]:
    """Sort key: pods that sort first are deleted first (``ActivePodsWithRanks.Less``).

    ``colocated`` is the number of sibling pods on the same node (more colocated pods are
    deleted first)."""
    md = pod.get("metadata") or {}
    scheduled = 1 if (pod.get("spec") or {}).get("nodeName") else 0
    ready = 1 if is_pod_ready(pod) else 0
    since = ready_since(pod) if ready else None
    created = parse_time_or_none(md.get("creationTimestamp")) or 0.0
    return (
        scheduled,
        _PHASE_RANK.get(phase(pod), 3),
        ready,
        deletion_cost(pod),
        -colocated,
        -(since or 0.0),  # ready more recently first
        -restart_count(pod),
        -created,  # newer first
        md.get("name", ""),
    )


def rank_for_deletion(pods: list[dict]) -> list[dict]:
    """Pods ordered least valuable first, counting colocated siblings per node."""
    per_node: dict[str, int] = {}
    for p in pods:
        n = (p.get("spec") or {}).get("nodeName")
        if n:
            per_node[n] = per_node.get(n, 0) + 1
    return sorted(pods, key=lambda p: deletion_rank(p, per_node.get((p.get("spec") or {}).get("nodeName") or "", 0)))
