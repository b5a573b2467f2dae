"""The Job controller's failure and success policies, pure functions on JSON objects (ports of
``pkg/controller/job/pod_failure_policy.go``, ``backoff_limit_per_index`` parts of
``indexed_job_utils.go`` and ``success_policy.go`` of Kubernetes 1.31):

- ``match_pod_failure_policy``: the first ``spec.podFailurePolicy`` rule a failed pod matches
  (``onExitCodes`` against the terminated containers, then init containers; ``onPodConditions``
  against the pod's conditions) and what it means: the FailJob message, whether the failure
  counts against ``backoffLimit``, the action;
- per-index failure accounting for ``backoffLimitPerIndex``: the
  ``batch.kubernetes.io/job-index-failure-count`` / ``-ignored-failure-count`` annotations a
  replacement pod carries, which indexes have failed;
- ``match_success_policy``: the first ``spec.successPolicy`` rule the succeeded indexes meet;
- the pod failure back-off (``backoff_utils.go``): how long to wait before a failed pod is
  replaced, 10 s doubling per failure since the last success up to 6 min, counted from the
  last failure (per index with ``backoffLimitPerIndex``).

Used by ``job.py`` only; the interval strings are ``controlplane.machinery.jobindexes``.
"""

from __future__ import annotations

from typing import Any

from controlplane.controllers import podutil as pu
from controlplane.machinery import jobindexes as ji
from controlplane.machinery.timestamps import parse_time_or_none

INDEX_KEY = "batch.kubernetes.io/job-completion-index"
FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-failure-count"
IGNORED_FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-ignored-failure-count"

FAIL_JOB, IGNORE, COUNT, FAIL_INDEX = "FailJob", "Ignore", "Count", "FailIndex"

# kube-controller-manager's DefaultJobPodFailureBackOff / MaxJobPodFailureBackOff
DEFAULT_POD_FAILURE_BACKOFF_S = 10.0
MAX_POD_FAILURE_BACKOFF_S = 360.0


def pod_index(pod: dict) -> int | None:
    """A pod's completion index (its annotation; None when absent or not a number)."""
    v = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_KEY)
    if v is None or not str(v).isdigit() or (len(str(v)) > 1 and str(v).startswith("0")):
        return None
    return int(v)


def _terminated(cs: dict) -> dict | None:
    t = (cs.get("state") or {}).get("terminated")
    return t if isinstance(t, dict) else None


def _exit_code_matches(code: int, req: dict) -> bool:
    values = req.get("values") or []
    if req.get("operator") == "In":
        return code in values
    if req.get("operator") == "NotIn":
        return code not in values
    return False


def _matching_container(statuses: list[dict], req: dict) -> dict | None:
    """``getMatchingContainerFromList``: a terminated container (the named one, or any) with a
    non-zero exit code the requirement's operator accepts."""
    name = req.get("containerName")
    for cs in statuses or []:
        t = _terminated(cs)
        if t is None or (name is not None and name != cs.get("name")):
            continue
        code = t.get("exitCode") or 0
        if code != 0 and _exit_code_matches(code, req):
            return cs
    return None


def _matching_condition(pod: dict, patterns: list[dict]) -> dict | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        for pat in patterns:
            if cond.get("type") == pat.get("type") and cond.get("status") == (pat.get("status") or "True"):
                return cond
    return None


def match_pod_failure_policy(policy: dict | None, pod: dict) -> tuple[str | None, bool, str | None]:
    """``matchPodFailurePolicy`` for a failed pod: (FailJob message or None, counts against
    the backoff limit, action of the first matching rule or None)."""
    if not policy:
        return None, True, None
    st = pod.get("status") or {}
    md = pod.get("metadata") or {}
    for i, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        if rule.get("onExitCodes") is not None:
            req = rule["onExitCodes"]
            cs = _matching_container(st.get("containerStatuses") or [], req) or \
                _matching_container(st.get("initContainerStatuses") or [], req)
            if cs is None:
                continue
            msg = (f"Container {cs.get('name')} for pod {md.get('namespace')}/{md.get('name')} failed with exit code "
                   f"{(_terminated(cs) or {}).get('exitCode')} matching {action} rule at index {i}")
        elif rule.get("onPodConditions"):
            cond = _matching_condition(pod, rule["onPodConditions"])
            if cond is None:
                continue
            msg = (f"Pod {md.get('namespace')}/{md.get('name')} has condition {cond.get('type')} matching {action} "
                   f"rule at index {i}")
        else:
            continue
        if action == IGNORE:
            return None, False, IGNORE
        if action in (FAIL_INDEX, COUNT):
            return None, True, action
        if action == FAIL_JOB:
            return msg, True, FAIL_JOB
    return None, True, None


def fail_job_message(policy: dict | None, pods: list[dict]) -> str | None:
    """``getFailJobMessage``: the message of the first failed pod matching a FailJob rule."""
    if not policy:
        return None
    for p in pods:
        if pu.phase(p) == "Failed":
            msg, _, _ = match_pod_failure_policy(policy, p)
            if msg is not None:
                return msg
    return None


def _annotation_int(pod: dict, key: str) -> int:
    v = ((pod.get("metadata") or {}).get("annotations") or {}).get(key)
    try:
        n = int(str(v))
    except ValueError:
        return 0
    return max(0, n)


def index_failure_count(pod: dict) -> int:
    return _annotation_int(pod, FAILURE_COUNT_KEY)


def index_ignored_failure_count(pod: dict) -> int:
    return _annotation_int(pod, IGNORED_FAILURE_COUNT_KEY)


def new_index_failure_counts(policy: dict | None, replaced: dict | None) -> tuple[int, int]:
    """``getNewIndexFailureCounts``: (failures, ignored failures) of the index a new pod
    replaces ``replaced`` in: the replaced pod's counts plus its own failure."""
    if replaced is None:
        return 0, 0
    failures, ignored = index_failure_count(replaced), index_ignored_failure_count(replaced)
    _, counts, _ = match_pod_failure_policy(policy, replaced)
    return (failures + 1, ignored) if counts else (failures, ignored + 1)


def only_replace_failed(spec: dict) -> bool:
    """``onlyReplaceFailedPods``: terminating pods are waited for, not replaced."""
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_pod_failed(pod: dict, spec: dict) -> bool:
    """``isPodFailed``: Failed, or (unless the Job only replaces Failed pods, which a
    podFailurePolicy implies) being deleted and not Succeeded: a deleted pod may never reach
    the Failed phase."""
    if pu.phase(pod) == "Failed":
        return True
    if only_replace_failed(spec):
        return False
    return pu.is_terminating(pod) and pu.phase(pod) != "Succeeded"


def on_failure_restarts(spec: dict, pods: list[dict]) -> int:
    """The container restarts ``pastBackoffLimitOnFailure`` sums: under ``restartPolicy:
    OnFailure`` the kubelet restarts a failing container in place instead of failing the pod,
    so the restarts (init and regular containers) of the Pending and Running pods count
    against ``backoffLimit``; 0 with any other restart policy."""
    template_spec = (spec.get("template") or {}).get("spec") or {}
    if template_spec.get("restartPolicy") != "OnFailure":
        return 0
    total = 0
    for p in pods:
        if pu.phase(p) not in ("Pending", "Running"):
            continue
        st = p.get("status") or {}
        for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
            total += int(cs.get("restartCount") or 0)
    return total


def past_backoff_limit_on_failure(backoff_limit: int, restarts: int) -> bool:
    """``pastBackoffLimitOnFailure``: the restarts reach the limit (any restart when it is 0)."""
    return restarts > 0 if backoff_limit == 0 else restarts >= backoff_limit


def is_index_failed(spec: dict, pod: dict) -> bool:
    """``isIndexFailed``: a failed pod (``is_pod_failed``) that fails its index (FailIndex
    rule, or a counted failure with the index's failure count already at
    ``backoffLimitPerIndex``)."""
    if not is_pod_failed(pod, spec):
        return False
    _, counts, action = match_pod_failure_policy(spec.get("podFailurePolicy"), pod)
    if action == FAIL_INDEX:
        return True
    return counts and index_failure_count(pod) >= int(spec.get("backoffLimitPerIndex") or 0)


def failed_indexes(spec: dict, previous: str | None, pods: list[dict]) -> set[int]:
    """``calculateFailedIndexes``: ``status.failedIndexes`` so far plus the indexes the pods
    fail now."""
    completions = int(spec.get("completions") or 0)
    out = ji.to_indexes(ji.parse_indexes(previous, completions))
    for p in pods:
        i = pod_index(p)
        if i is not None and i < completions and is_index_failed(spec, p):
            out.add(i)
    return out


def finished_at(pod: dict) -> float:
    """``getFinishedTime``: the latest container finish time, else when the Ready condition
    turned False, else the deletion timestamp, else creation."""
    st = pod.get("status") or {}
    md = pod.get("metadata") or {}
    times = [parse_time_or_none((_terminated(cs) or {}).get("finishedAt"))
             for cs in (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or [])]
    known = [t for t in times if t is not None]
    if known:
        return max(known)
    for c in st.get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "False":
            t = parse_time_or_none(c.get("lastTransitionTime"))
            if t is not None:
                return t
    return parse_time_or_none(md.get("deletionTimestamp")) or parse_time_or_none(md.get("creationTimestamp")) or 0.0


def last_failed_per_index(pods: list[dict], completions: int) -> dict[int, dict]:
    """For each index, its most recent failed pod (the attempt a new pod replaces): the one
    with the most recorded attempts, then the latest finish."""
    out: dict[int, dict] = {}
    key: dict[int, tuple[int, float]] = {}
    for p in pods:
        i = pod_index(p)
        if i is None or i >= completions or pu.phase(p) != "Failed":
            continue
        k = (index_failure_count(p) + index_ignored_failure_count(p), finished_at(p))
        if i not in key or k > key[i]:
            out[i], key[i] = p, k
    return out


def match_success_policy(policy: dict | None, completions: int, succeeded: set[int]) -> tuple[str, bool]:
    """``matchSuccessPolicy``: ("Matched rules at index N", True) for the first rule whose
    ``succeededIndexes`` all succeeded (or ``succeededCount`` of them), or whose
    ``succeededCount`` alone is reached."""
    if not policy or not succeeded:
        return "", False
    done = ji.from_indexes(succeeded)
    for i, rule in enumerate(policy.get("rules") or []):
        count: Any = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = ji.parse_indexes(rule["succeededIndexes"], completions)
            if not required:
                continue
            contains = ji.count_overlap(required, done)
            if contains == ji.total(required) or (count is not None and contains >= int(count)):
                return f"Matched rules at index {i}", True
        elif count is not None and len(succeeded) >= int(count):
            return f"Matched rules at index {i}", True
    return "", False


# -- pod failure back-off (``backoff_utils.go``) ------------------------------------------------

def backoff_delay(failures: int, base: float = DEFAULT_POD_FAILURE_BACKOFF_S,
                  cap: float = MAX_POD_FAILURE_BACKOFF_S) -> float:
    """The delay after ``failures`` consecutive failures: ``base * 2^(failures-1)``, capped
    at ``cap`` once a doubling reaches it (0 without failures)."""
    if failures <= 0:
        return 0.0
    delay = base
    for _ in range(1, failures):
        delay *= 2
        if delay >= cap:
            return cap
    return delay


def remaining_backoff(failures: int, last_failure: float | None, now: float, *,
                      base: float = DEFAULT_POD_FAILURE_BACKOFF_S, cap: float = MAX_POD_FAILURE_BACKOFF_S) -> float:
    """``getRemainingTimeForFailuresCount``: seconds still to wait before a new pod may be
    created (0: now)."""
    if failures <= 0 or last_failure is None:
        return 0.0
    delay = backoff_delay(failures, base, cap)
    elapsed = now - last_failure
    return 0.0 if delay < elapsed else delay - elapsed


BackoffRecord = tuple[int, float | None]  # (failures after the last success, the last failure's finish time)


def next_backoff_record(prev: BackoffRecord, new_succeeded: list[dict], new_failed: list[dict]) -> BackoffRecord:
    """``backoffStore.newBackoffRecord``: the record after a sync that saw ``new_succeeded`` /
    ``new_failed`` finish (pods not counted before, as ``getNewFinishedPods``; every failed pod,
    an Ignore'd one too). A new success resets it, keeping only the new failures that finished
    after it; new failures alone add to it, the latest finish time theirs."""
    if not new_succeeded:
        if not new_failed:
            return prev
        return prev[0] + len(new_failed), max(finished_at(p) for p in new_failed)
    last_success = max(finished_at(p) for p in new_succeeded)
    after = [t for t in (finished_at(p) for p in new_failed) if t > last_success]
    return (len(after), max(after)) if after else (0, None)


def remaining_backoff_per_index(last_failed: dict | None, now: float, *,
                                base: float = DEFAULT_POD_FAILURE_BACKOFF_S,
                                cap: float = MAX_POD_FAILURE_BACKOFF_S) -> float:
    """``getRemainingTimePerIndex``: from an index's last failed pod, its absolute failure
    count (counted and ignored) plus that failure, from the pod's finish time."""
    if last_failed is None:
        return 0.0
    failures = index_failure_count(last_failed) + index_ignored_failure_count(last_failed) + 1
    return remaining_backoff(failures, finished_at(last_failed), now, base=base, cap=cap)
