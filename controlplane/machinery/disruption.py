"""PodDisruptionBudget rules shared by the Eviction API (``apiserver/endpoints/subresources.py``)
and the disruption controller (``controllers/disruption.py``): which budgets guard a pod, when
a pod may be deleted without consulting them, the check-and-decrement an eviction makes on a
budget's status, and the ``DisruptionAllowed`` condition. Pure functions on JSON objects, as in
Kubernetes' ``pkg/registry/core/pod/storage/eviction.go`` and ``pkg/apis/policy/v1`` helpers.
"""

from __future__ import annotations

from typing import Any

from controlplane.machinery.selectors import LabelSelector
from controlplane.machinery.timestamps import rfc3339

CONDITION = "DisruptionAllowed"
MAX_DISRUPTED_POD_SIZE = 2000  # eviction.go's MaxDisruptedPodSize
TOO_MANY_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."


class EvictionRefused(Exception):
    """An eviction the budget does not allow: ``code`` 429 (retry later) or 403, Kubernetes'
    message and (for 429) a ``DisruptionBudget`` cause."""

    def __init__(self, code: int, reason: str, message: str, cause: str | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.cause = code, reason, message, cause


def set_condition(conditions: list[dict], status: str, reason: str, message: str, generation: int, now: float) -> None:
    """``meta.SetStatusCondition`` for ``DisruptionAllowed`` (a metav1.Condition): the transition
    time moves only when the status changes."""
    for c in conditions:
        if c.get("type") == CONDITION:
            if c.get("status") != status:
                c["status"] = status
                c["lastTransitionTime"] = rfc3339(now)
            c["reason"], c["message"], c["observedGeneration"] = reason, message, generation
            return
    conditions.append({"type": CONDITION, "status": status, "observedGeneration": generation,
                       "lastTransitionTime": rfc3339(now), "reason": reason, "message": message})


def update_allowed_condition(status: dict, now: float) -> None:
    """``UpdateDisruptionAllowedCondition``: SufficientPods while disruptions are allowed."""
    conditions = status.setdefault("conditions", [])
    generation = int(status.get("observedGeneration") or 0)
    if int(status.get("disruptionsAllowed") or 0) > 0:
        set_condition(conditions, "True", "SufficientPods", "", generation, now)
    else:
        set_condition(conditions, "False", "InsufficientPods", "", generation, now)


def guards(pdb: dict, pod: dict) -> bool:
    """Whether ``pdb`` guards ``pod`` for the Eviction API: same namespace, a valid selector
    that is neither nil nor empty and matches the pod's labels (``getPodDisruptionBudgets``:
    "a PDB with a nil or empty selector ... should match nothing")."""
    pmd, md = pod.get("metadata") or {}, pdb.get("metadata") or {}
    if (md.get("namespace") or "") != (pmd.get("namespace") or ""):
        return False
    try:
        sel = LabelSelector.from_dict((pdb.get("spec") or {}).get("selector"))
    except ValueError:
        return False
    if sel.empty or sel.match_nothing:
        return False
    return sel.matches(pmd.get("labels") or {})


def _phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or "Pending"


def can_ignore_budget(pod: dict) -> bool:
    """``canIgnorePDB``: a finished, pending or already terminating pod is deleted without
    consulting any budget."""
    return _phase(pod) in ("Succeeded", "Failed", "Pending") or bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def enforce_resource_version(pod: dict) -> bool:
    """``shouldEnforceResourceVersion``: delete only the pod version that was judged (it must
    not have become Ready meanwhile), except for finished or terminating pods."""
    return _phase(pod) not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def unhealthy_may_go(pdb: dict) -> bool:
    """An unready pod guarded by ``pdb`` may be deleted without spending a disruption:
    ``unhealthyPodEvictionPolicy: AlwaysAllow``, or (``IfHealthyBudget``, the default) while the
    budget is met (currentHealthy >= desiredHealthy > 0)."""
    if (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    st = pdb.get("status") or {}
    desired = int(st.get("desiredHealthy") or 0)
    return int(st.get("currentHealthy") or 0) >= desired and desired > 0


def processing_refusal(name: str) -> EvictionRefused:
    return EvictionRefused(429, "TooManyRequests", TOO_MANY_MESSAGE,
                           f"The disruption budget {name} is still being processed by the server.")


def check_and_decrement(pdb: dict, pod_name: str, now: float, dry: bool) -> dict:
    """``checkAndDecrement`` on the budget's current version: raises ``EvictionRefused`` when
    it allows no disruption now; else returns it with one disruption spent and (unless a dry
    run) ``pod_name`` recorded in ``disruptedPods``, ready to be written as its status."""
    md, st = pdb.get("metadata") or {}, dict(pdb.get("status") or {})
    name = md.get("name", "")
    if int(st.get("observedGeneration") or 0) < int(md.get("generation") or 0):
        raise processing_refusal(name)
    allowed = int(st.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise EvictionRefused(403, "Forbidden", f'poddisruptionbudget.policy "{name}" is forbidden: '
                                                "pdb disruptions allowed is negative")
    if len(st.get("disruptedPods") or {}) > MAX_DISRUPTED_POD_SIZE:
        raise EvictionRefused(403, "Forbidden", f'poddisruptionbudget.policy "{name}" is forbidden: DisruptedPods '
                                                "map too big - too many evictions not confirmed by PDB controller")
    if allowed == 0:
        raise EvictionRefused(429, "TooManyRequests", TOO_MANY_MESSAGE,
                              f"The disruption budget {name} needs {int(st.get('desiredHealthy') or 0)} healthy pods "
                              f"and has {int(st.get('currentHealthy') or 0)} currently")
    st["disruptionsAllowed"] = allowed - 1
    st["conditions"] = [dict(c) for c in st.get("conditions") or []]
    if allowed - 1 == 0:
        update_allowed_condition(st, now)
    if not dry:
        st["disruptedPods"] = {**(st.get("disruptedPods") or {}), pod_name: rfc3339(now)}
    out: dict[str, Any] = dict(pdb)
    out["status"] = st
    return out


def disruption_target(now: float) -> dict:
    """The condition an evicted pod gets before its deletion (``addConditionAndDeletePod``)."""
    return {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting", "lastTransitionTime": rfc3339(now)}
