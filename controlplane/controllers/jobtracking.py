"""Job pod-tracking finalizers, the pure part (Kubernetes 1.26+; ports of the counting half of
``pkg/controller/job/job_controller.go`` 1.32: ``getNewFinishedPods``, ``isPodFailed``,
``canRemoveFinalizer``, ``trackJobStatusAndRemoveFinalizers``,
``cleanUncountedPodsWithoutFinalizers``, ``getPodsWithDelayedDeletionPerIndex``).

Every pod the Job controller creates carries the finalizer ``batch.kubernetes.io/job-tracking``
so it cannot leave storage before it is counted. A finished pod (Succeeded, or failed as
``is_pod_failed`` says: a deleted pod that is not Succeeded counts as Failed unless the Job only
replaces Failed pods) is counted in three steps, each surviving a controller restart:

1. its UID goes into ``status.uncountedTerminatedPods.succeeded`` / ``.failed`` (an Indexed
   Job's success goes straight into ``status.completedIndexes``), written to the Job;
2. the finalizer is removed from the pod (a pod already gone counts as removed);
3. UIDs whose pod no longer carries the finalizer move from ``uncountedTerminatedPods`` into
   ``status.succeeded`` / ``status.failed``.

A pod without the finalizer, or whose UID is already recorded, is never counted again, so a pod
deleted (by a user, podgc or a TTL) right after it finished is counted exactly once. Finalizer
removals the informer has not shown yet are the caller's ``expected_rm`` (finalizer
expectations). Neighbours: ``job`` (the controller, the writes), ``jobutil`` (failure policy
matching), ``podgc`` (strips the finalizer from pods whose Job is gone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controlplane.controllers import jobutil as ju
from controlplane.controllers import podutil as pu
from controlplane.machinery import jobindexes as ji

FINALIZER = "batch.kubernetes.io/job-tracking"
# kube-controller-manager's MaxUncountedPods: UIDs recorded per sync, so the status stays small
MAX_UNCOUNTED_PODS = 500
FAILURE, SUCCESS = "failure", "success"


def has_tracking_finalizer(pod: dict) -> bool:
    return FINALIZER in ((pod.get("metadata") or {}).get("finalizers") or [])


def uid_of(pod: dict) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def uncounted_lists(status: dict) -> tuple[list[str], list[str]]:
    """``status.uncountedTerminatedPods`` as (succeeded UIDs, failed UIDs), copies."""
    u = status.get("uncountedTerminatedPods") or {}
    return [str(x) for x in u.get("succeeded") or []], [str(x) for x in u.get("failed") or []]


def uncounted_status(succeeded: list[str], failed: list[str]) -> dict[str, Any]:
    """The API form: empty lists omitted (``{}`` when nothing is uncounted, as Kubernetes)."""
    out: dict[str, Any] = {}
    if succeeded:
        out["succeeded"] = list(succeeded)
    if failed:
        out["failed"] = list(failed)
    return out


def _valid_index(job: dict, pod: dict) -> int | None:
    completions = int((job.get("spec") or {}).get("completions") or 0)
    i = ju.pod_index(pod)
    return i if i is not None and i < completions else None


def is_indexed(job: dict) -> bool:
    spec = job.get("spec") or {}
    return spec.get("completionMode") == "Indexed" and spec.get("completions") is not None


def valid_pods(job: dict, pods: list[dict], skip: set[str] | frozenset[str]) -> list[dict]:
    """``getValidPodsWithFilter`` without the filter: pods still carrying the finalizer, not in
    ``skip`` (UIDs recorded or whose finalizer removal is pending), with a valid completion
    index for an Indexed Job."""
    indexed = is_indexed(job)
    return [p for p in pods if has_tracking_finalizer(p) and uid_of(p) not in skip
            and (not indexed or _valid_index(job, p) is not None)]


def new_finished_pods(job: dict, pods: list[dict], expected_rm: set[str] | frozenset[str] = frozenset()
                      ) -> tuple[list[dict], list[dict]]:
    """``getNewFinishedPods``: (succeeded, failed) pods not counted yet in any form."""
    succeeded, failed = uncounted_lists(job.get("status") or {})
    spec = job.get("spec") or {}
    new_s = [p for p in valid_pods(job, pods, set(succeeded) | set(expected_rm)) if pu.phase(p) == "Succeeded"]
    new_f = [p for p in valid_pods(job, pods, set(failed) | set(expected_rm)) if ju.is_pod_failed(p, spec)]
    return new_s, new_f


def counted_failures(policy: dict | None, pods: list[dict]) -> int:
    """``nonIgnoredFailedPodsCount``: failed pods less those an Ignore rule matches."""
    return sum(1 for p in pods if ju.match_pod_failure_policy(policy, p)[1])


def succeeded_indexes(job: dict, pods: list[dict]) -> tuple[set[int], set[int]]:
    """``calculateSucceededIndexes``: (the indexes ``status.completedIndexes`` records, those
    plus the valid indexes of Succeeded pods still carrying the finalizer)."""
    completions = int((job.get("spec") or {}).get("completions") or 0)
    prev = ji.to_indexes(ji.parse_indexes((job.get("status") or {}).get("completedIndexes"), completions))
    new = {i for p in pods if pu.phase(p) == "Succeeded" and has_tracking_finalizer(p)
           for i in [_valid_index(job, p)] if i is not None}
    return prev, prev | new


def delayed_deletion_per_index(job: dict, pods: list[dict], *, succeeded: set[int], failed: set[int],
                               expected_rm: set[str] | frozenset[str] = frozenset()) -> dict[int, dict]:
    """``getPodsWithDelayedDeletionPerIndex`` (backoffLimitPerIndex): for each index neither
    succeeded, failed nor running, its latest failed pod still carrying the finalizer. That pod
    keeps it (so it stays) until a replacement exists, which copies its failure counts."""
    spec = job.get("spec") or {}
    active = {i for p in pods if pu.is_pod_active(p) for i in [ju.pod_index(p)] if i is not None}
    out: dict[int, dict] = {}
    for p in valid_pods(job, pods, expected_rm):
        if not ju.is_pod_failed(p, spec):
            continue
        i = _valid_index(job, p)
        if i is None or i in succeeded or i in failed or i in active:
            continue
        last = out.get(i)
        if last is None or (_absolute_failures(last) <= _absolute_failures(p)
                            and ju.finished_at(p) >= ju.finished_at(last)):
            out[i] = p
    return out


def _absolute_failures(pod: dict) -> int:
    return ju.index_failure_count(pod) + ju.index_ignored_failure_count(pod)


def can_remove_finalizer(job: dict, pod: dict, failed: bool, finished: str | None,
                         delayed: dict[int, dict]) -> bool:
    """``canRemoveFinalizer``: the Job is being deleted or is finishing, the pod succeeded, or
    it failed and is not the pod an index's replacement waits for."""
    if pu.is_terminating(job) or finished is not None or pu.phase(pod) == "Succeeded":
        return True
    if not failed:
        return False
    i = ju.pod_index(pod)
    held = delayed.get(i) if i is not None else None
    return held is None or uid_of(held) != uid_of(pod)


@dataclass
class TrackingPlan:
    """What one sync records and which finalizers it removes (``plan_tracking``)."""

    remove: list[dict] = field(default_factory=list)
    uncounted_succeeded: list[str] = field(default_factory=list)
    uncounted_failed: list[str] = field(default_factory=list)
    new_succeeded_indexes: set[int] = field(default_factory=set)
    with_finalizer: set[str] = field(default_factory=set)
    reached_max: bool = False


def plan_tracking(job: dict, pods: list[dict], *, finished: str | None = None,
                  expected_rm: set[str] | frozenset[str] = frozenset(),
                  prev_succeeded_indexes: set[int] | frozenset[int] = frozenset(),
                  delayed: dict[int, dict] | None = None, max_uncounted: int = MAX_UNCOUNTED_PODS) -> TrackingPlan:
    """The loop of ``trackJobStatusAndRemoveFinalizers``, pure. ``finished`` is FAILURE or
    SUCCESS when the Job has met a finish condition (every pod's finalizer may then go; on a
    failure every pod not yet finished counts as failed). The uncounted lists start from the
    Job's status (which ``clean_uncounted`` may already have trimmed)."""
    spec = job.get("spec") or {}
    policy = spec.get("podFailurePolicy")
    indexed = is_indexed(job)
    delayed = delayed or {}
    succeeded, failed = uncounted_lists(job.get("status") or {})
    seen_s, seen_f = set(succeeded), set(failed)
    out = TrackingPlan(uncounted_succeeded=succeeded, uncounted_failed=failed)
    out.with_finalizer = {uid_of(p) for p in pods if has_tracking_finalizer(p) and uid_of(p) not in expected_rm}
    ordered = sorted(pods, key=lambda p: (ju.pod_index(p) if ju.pod_index(p) is not None else -1)) if indexed else pods
    for p in ordered:
        uid = uid_of(p)
        if not has_tracking_finalizer(p) or uid in expected_rm:
            continue  # counted in an earlier sync
        pod_failed = ju.is_pod_failed(p, spec)
        if not can_remove_finalizer(job, p, pod_failed, finished, delayed):
            continue
        out.remove.append(p)
        if pu.phase(p) == "Succeeded" and uid not in seen_f:
            if indexed:
                i = _valid_index(job, p)
                if i is not None and i not in prev_succeeded_indexes:
                    out.new_succeeded_indexes.add(i)
            elif uid not in seen_s:
                out.uncounted_succeeded.append(uid)
                seen_s.add(uid)
        elif pod_failed or finished == FAILURE:
            if uid not in seen_f and (not indexed or _valid_index(job, p) is not None):
                if ju.match_pod_failure_policy(policy, p)[1]:
                    out.uncounted_failed.append(uid)
                    seen_f.add(uid)
        if len(out.new_succeeded_indexes) + len(out.uncounted_succeeded) + len(out.uncounted_failed) >= max_uncounted:
            out.reached_max = True
            break
    return out


def clean_uncounted(status: dict, with_finalizer: set[str]) -> bool:
    """``cleanUncountedPodsWithoutFinalizers``, on ``status`` in place: the recorded UIDs whose
    pod no longer carries the finalizer (removed, or the pod is gone) leave
    ``uncountedTerminatedPods`` and are added to ``succeeded`` / ``failed``; whether anything
    changed."""
    succeeded, failed = uncounted_lists(status)
    keep_s = [u for u in succeeded if u in with_finalizer]
    keep_f = [u for u in failed if u in with_finalizer]
    if len(keep_s) == len(succeeded) and len(keep_f) == len(failed):
        return False
    status["succeeded"] = int(status.get("succeeded") or 0) + len(succeeded) - len(keep_s)
    status["failed"] = int(status.get("failed") or 0) + len(failed) - len(keep_f)
    status["uncountedTerminatedPods"] = uncounted_status(keep_s, keep_f)
    return True


class FinalizerExpectations:
    """``finalizerExpectations``: per Job, the UIDs of pods whose finalizer this controller
    removed and the informer has not yet shown without it (or deleted)."""

    def __init__(self) -> None:
        self._uids: dict[str, set[str]] = {}

    def expect_removed(self, key: str, uids: list[str]) -> None:
        self._uids.setdefault(key, set()).update(uids)

    def observed(self, key: str, uid: str) -> None:
        s = self._uids.get(key)
        if s is not None:
            s.discard(uid)
            if not s:
                del self._uids[key]

    def expected(self, key: str) -> frozenset[str]:
        return frozenset(self._uids.get(key) or ())

    def delete(self, key: str) -> None:
        self._uids.pop(key, None)
