"""Job controller: runs pods to ``completions`` with at most ``parallelism`` at once.

``reconcile(key)`` counts the Job's pods (succeeded / failed / active / terminating) from the
cache, then decides whether the Job is finished, as kube-controller-manager 1.31 does
(``syncJob``): a ``FailureTarget`` condition first (reason ``PodFailurePolicy`` when a failed
pod matches a FailJob rule of ``spec.podFailurePolicy``, ``BackoffLimitExceeded`` when counted
failures exceed ``backoffLimit``, ``DeadlineExceeded`` past ``activeDeadlineSeconds``,
``MaxFailedIndexesExceeded`` / ``FailedIndexes`` under ``backoffLimitPerIndex``) or a
``SuccessCriteriaMet`` one (reason ``SuccessPolicy`` when a ``spec.successPolicy`` rule is met,
``CompletionsReached`` when enough pods succeeded); the active pods are deleted, and once no
pod is terminating the terminal ``Failed`` / ``Complete`` condition follows with the same
reason and message (``completionTime`` for Complete). Otherwise it creates or deletes pods so
``active`` equals min(parallelism, completions − succeeded); with ``podReplacementPolicy:
Failed`` (implied by a podFailurePolicy) terminating pods are not replaced until they are gone.
Failures an ``Ignore`` rule matches are not counted. A failed pod is replaced only after
the pod failure back-off (``jobutil``: 10 s doubling per failure since the last success, up to
6 min, from the last failure; per index with ``backoffLimitPerIndex``); as Kubernetes'
``podBackoffStore`` the record of failures lives in memory, fed by the pods each sync sees
finish, so deleting failed pods does not shorten it. The Job is requeued for when it expires
(``--job-pod-failure-backoff`` / ``-max`` on the controller-manager).
Without ``completions`` the Job is a
work queue: once a pod succeeded no new one starts, and it completes when none is running.
``suspend`` deletes the running pods (condition ``Suspended``, reason JobSuspended; on
resumption JobResumed and a new ``startTime``). Pods carry ``job-name`` and
``controller-uid`` labels (both the legacy and ``batch.kubernetes.io/`` forms). Expectations
guard against a lagging cache. Pods of the Job's namespace without a controller that its
selector matches are adopted (``ClaimPods``: controller reference and tracking finalizer added,
after a live GET of the Job; an adopted finished pod is then counted), owned pods it no longer
matches released (both removed); pods another controller owns are left alone.

``completionMode: Indexed``: each pod has a completion index in 0..completions-1 (annotation and
label ``batch.kubernetes.io/job-completion-index``, env ``JOB_COMPLETION_INDEX`` from that
annotation in every container, hostname ``<job>-<index>``, generateName ``<job>-<index>-``);
the lowest indexes neither succeeded, failed nor running get the new pods, a second active pod
of an index (or one of an index already succeeded or failed, or with an invalid index) is
deleted, the Job completes when every index has a succeeded pod, and
``status.completedIndexes`` / ``status.failedIndexes`` list them in Kubernetes' compressed form
(``0-2,4``). With ``backoffLimitPerIndex`` each pod carries its index's failure count
(``batch.kubernetes.io/job-index-failure-count``) and an index whose count reaches the limit
(or a FailIndex rule) fails for good.

Pod-tracking finalizers (Kubernetes 1.26+): every pod created carries
``batch.kubernetes.io/job-tracking``; a finished pod is recorded in
``status.uncountedTerminatedPods`` (an Indexed success in ``completedIndexes``), then loses the
finalizer, then moves into ``succeeded`` / ``failed`` (``jobtracking``), so a pod deleted
before or after it was seen finishing counts exactly once, across restarts. A deleted pod not
Succeeded counts as failed unless the Job only replaces Failed pods; pods the Job itself
deletes because it no longer wants them lose the finalizer first and are not counted; a
finishing Job's active pods keep it and are counted (as failed on a failure). The terminal
condition waits until nothing is uncounted. Pods no unfinished Job controls (their Job
deleted, finished, or the reference removed by ``--cascade=orphan``) lose the finalizer
through a second queue (``syncOrphanPod``). Neighbours: ``jobutil`` (the policy logic),
``jobtracking`` (the counting), ``controllerutil``, ``podutil``.
"""

from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import dataclass, field
from typing import Callable

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result, TerminalError
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.controllers import controllerutil as cu
from controlplane.controllers import jobtracking as jt
from controlplane.controllers import jobutil as ju
from controlplane.controllers import podutil as pu
from controlplane.log import get_logger
from controlplane.machinery import jobindexes as ji
from controlplane.machinery.timestamps import now_rfc3339, parse_time_or_none

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:job-controller (bootstrap_policy)
SERVICE_ACCOUNT = "job-controller"
MAX_POD_CREATE_DELETE_PER_SYNC = 500  # Go's MaxPodCreateDeletePerSync: creates or deletes per sync

log = get_logger(__name__)

# interim condition -> the terminal one it becomes once no pod is terminating
TERMINAL_FOR = {"FailureTarget": "Failed", "SuccessCriteriaMet": "Complete"}
MAX_INT32 = 2**31 - 1


def job_finished(job: dict) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"]
    return None


def wanted_active(job: dict, succeeded: int, failed_indexes: int = 0) -> int:
    """How many pods should be running now (pure); failed indexes need none."""
    spec = job.get("spec") or {}
    parallelism = spec.get("parallelism", 1)
    parallelism = 1 if parallelism is None else int(parallelism)
    completions = spec.get("completions")
    if completions is None:
        return 0 if succeeded > 0 else parallelism
    return max(0, min(parallelism, int(completions) - succeeded - failed_indexes))


INDEX_KEY = ju.INDEX_KEY
INDEX_ENV = "JOB_COMPLETION_INDEX"
pod_index = ju.pod_index


def compress_indexes(indexes: set[int]) -> str:
    """Kubernetes' ``completedIndexes`` form (``orderedIntervals.String``): sorted runs of three
    or more as ``a-c``, two consecutive as ``a,b``: ``0-2,4,6,7``."""
    return ji.format_intervals(ji.from_indexes(indexes))


only_replace_failed = ju.only_replace_failed


def indexed_plan(completions: int, pods: list[dict], want_active: int, *,
                 failed: set[int] | frozenset[int] = frozenset(),
                 wait_terminating: bool = False,
                 succeeded: set[int] | None = None) -> tuple[set[int], list[dict], list[int]]:
    """Indexed mode, pure: (succeeded indexes, active pods to delete, indexes to create pods
    for). ``succeeded`` is what the Job has counted (``status.completedIndexes`` and the
    Succeeded pods not yet counted); None: the Succeeded pods' indexes. An active pod with an
    invalid or out-of-range index, or of an index already succeeded or ``failed``, is deleted;
    of several active pods of one index all but the one Kubernetes' deletion ranking keeps
    longest are (``appendDuplicatedIndexPodsForRemoval``). New pods take the lowest indexes
    neither succeeded, failed nor active (nor terminating, with ``wait_terminating``), up to
    ``want_active`` active (less the terminating pods)."""
    if succeeded is None:
        succeeded = {i for p in pods if pu.phase(p) == "Succeeded"
                     for i in [pod_index(p)] if i is not None and i < completions}
    remove: list[dict] = []
    by_index: dict[int, list[dict]] = {}
    for p in pods:
        if not pu.is_pod_active(p):
            continue
        i = pod_index(p)
        if i is None or i >= completions or i in succeeded or i in failed:
            remove.append(p)
        else:
            by_index.setdefault(i, []).append(p)
    for group in by_index.values():
        if len(group) > 1:
            remove.extend(pu.rank_for_deletion(group)[:-1])
    busy = set(by_index) | succeeded | set(failed)
    free = want_active - len(by_index)
    if wait_terminating:
        terminating = [p for p in pods if is_terminating_pod(p)]
        busy |= {i for p in terminating for i in [pod_index(p)] if i is not None}
        free -= len(terminating)
    create: list[int] = []
    if free > 0:
        for i in range(completions):
            if len(create) >= free:
                break
            if i not in busy:
                create.append(i)
    return succeeded, remove, create


def per_index_backoff(create: list[int], last_failed: dict[int, dict], now: float, base: float,
                      cap: float) -> tuple[list[int], float | None]:
    """``getPodCreationInfoForIndependentIndexes``, pure: of the indexes to create, those whose
    own back-off has expired (from the index's last failed pod), else none and the shortest
    wait."""
    now_ok: list[int] = []
    waits: list[float] = []
    for i in create:
        w = ju.remaining_backoff_per_index(last_failed.get(i), now, base=base, cap=cap)
        if w <= 0:
            now_ok.append(i)
        else:
            waits.append(w)
    if now_ok:
        return now_ok, None
    return [], min(waits) if waits else None


def is_terminating_pod(pod: dict) -> bool:
    """Being deleted and not yet finished (``controller.IsPodTerminating``)."""
    return pu.is_terminating(pod) and pu.phase(pod) not in ("Succeeded", "Failed")


def indexed_template(template: dict, job_name: str, index: int,
                     failure_counts: tuple[int, int] | None = None) -> tuple[dict, str]:
    """The pod template for ``index`` (env, hostname, annotation and label added; with
    ``failure_counts`` the index's failure and ignored-failure counts annotated) and its
    generateName."""
    t = copy.deepcopy(template)
    md = t.setdefault("metadata", {})
    annotations = md.setdefault("annotations", {})
    annotations[INDEX_KEY] = str(index)
    if failure_counts is not None:
        annotations[ju.FAILURE_COUNT_KEY] = str(failure_counts[0])
        if failure_counts[1] > 0:
            annotations[ju.IGNORED_FAILURE_COUNT_KEY] = str(failure_counts[1])
    md.setdefault("labels", {})[INDEX_KEY] = str(index)
    spec = t.setdefault("spec", {})
    if not spec.get("hostname"):
        spec["hostname"] = f"{job_name}-{index}"
    env_var = {"name": INDEX_ENV, "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_KEY}']"}}}
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            env = c.setdefault("env", [])
            if not any(e.get("name") == INDEX_ENV for e in env):
                env.append(dict(env_var))
    return t, f"{job_name}-{index}-"


@dataclass
class JobCounts:
    """What a Job has counted plus what its pods add (pure, from ``count_pods``)."""

    indexed: bool
    succeeded: int
    succeeded_indexes: set[int]
    failed: int  # counted failures (an Ignore rule's are not)
    failed_indexes: set[int] | None  # None without backoffLimitPerIndex
    active: list[dict]
    terminating: int
    failed_pods: list[dict] = field(default_factory=list)
    prev_succeeded_indexes: set[int] = field(default_factory=set)  # status.completedIndexes
    delayed: dict[int, dict] = field(default_factory=dict)  # backoffLimitPerIndex: pods kept for their index
    new_succeeded: list[dict] = field(default_factory=list)  # finished pods not counted before
    new_failed: list[dict] = field(default_factory=list)
    restarts: int = 0  # restartPolicy OnFailure: container restarts of the Pending/Running pods


def count_pods(job: dict, pods: list[dict], expected_rm: set[str] | frozenset[str] = frozenset()) -> JobCounts:
    """As ``syncJob`` with pod-tracking finalizers: ``status.succeeded`` / ``failed`` plus the
    UIDs in ``status.uncountedTerminatedPods`` plus the finished pods still carrying the
    finalizer (``expected_rm``: those whose removal the informer has not shown yet, already
    counted); an Indexed Job's successes are ``status.completedIndexes`` plus those pods'."""
    spec = job.get("spec") or {}
    status = job.get("status") or {}
    indexed = jt.is_indexed(job)
    policy = spec.get("podFailurePolicy")
    unc_s, unc_f = jt.uncounted_lists(status)
    new_s, new_f = jt.new_finished_pods(job, pods, expected_rm)
    succeeded = int(status.get("succeeded") or 0) + len(new_s) + len(unc_s)
    failed = int(status.get("failed") or 0) + jt.counted_failures(policy, new_f) + len(unc_f)
    prev: set[int] = set()
    succeeded_indexes: set[int] = set()
    failed_indexes = None
    delayed: dict[int, dict] = {}
    if indexed:
        prev, succeeded_indexes = jt.succeeded_indexes(job, pods)
        succeeded = len(succeeded_indexes)
        if spec.get("backoffLimitPerIndex") is not None:
            failed_indexes = ju.failed_indexes(spec, status.get("failedIndexes"), pods)
            delayed = jt.delayed_deletion_per_index(job, pods, succeeded=succeeded_indexes, failed=failed_indexes,
                                                    expected_rm=expected_rm)
    failed_pods = [p for p in pods if ju.is_pod_failed(p, spec)]
    return JobCounts(indexed, succeeded, succeeded_indexes, failed, failed_indexes,
                     [p for p in pods if pu.is_pod_active(p)], sum(1 for p in pods if is_terminating_pod(p)),
                     failed_pods, prev, delayed, new_s, new_f, ju.on_failure_restarts(spec, pods))


def finish_target(job: dict, counts: JobCounts, now: float) -> tuple[tuple[str, str, str] | None, float | None]:
    """Kubernetes' ``finishedCondition`` before pods are managed, pure: ((condition type,
    reason, message) or None, seconds until the active deadline when one is pending). An
    interim condition already recorded turns into its terminal one."""
    spec = job.get("spec") or {}
    status = job.get("status") or {}
    for c in status.get("conditions") or []:
        if c.get("type") in TERMINAL_FOR and c.get("status") == "True":
            return (TERMINAL_FOR[c["type"]], c.get("reason") or "", c.get("message") or ""), None
    msg = ju.fail_job_message(spec.get("podFailurePolicy"), counts.failed_pods)
    if msg is not None:
        return ("FailureTarget", "PodFailurePolicy", msg), None
    backoff = spec.get("backoffLimit")
    if backoff is None:  # the apiserver defaults it; MaxInt32 with per-index limits
        backoff = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    backoff = int(backoff)
    deadline = spec.get("activeDeadlineSeconds")
    started = parse_time_or_none(status.get("startTime")) or now
    if counts.failed > backoff or ju.past_backoff_limit_on_failure(backoff, counts.restarts):
        return ("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"), None
    suspended = bool(spec.get("suspend"))  # the deadline counts continuous activity only
    if not suspended and any(c.get("type") == "Suspended" and c.get("status") == "True"
                             for c in status.get("conditions") or []):
        started = now  # being resumed now: startTime is reset below
    if deadline is not None and not suspended and now - started >= int(deadline):
        return ("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline"), None
    wait = None if deadline is None or suspended else max(0.5, started + int(deadline) - now)
    if counts.indexed:
        completions = int(spec["completions"])
        failed_ix = counts.failed_indexes
        if failed_ix is not None:
            max_failed = spec.get("maxFailedIndexes")
            if max_failed is not None and len(failed_ix) > int(max_failed):
                return ("FailureTarget", "MaxFailedIndexesExceeded",
                        "Job has exceeded the specified maximal number of failed indexes"), None
            if failed_ix and len(failed_ix) + len(counts.succeeded_indexes) >= completions:
                return ("FailureTarget", "FailedIndexes", "Job has failed indexes"), None
        msg, met = ju.match_success_policy(spec.get("successPolicy"), completions, counts.succeeded_indexes)
        if met:
            return ("SuccessCriteriaMet", "SuccessPolicy", msg), None
    return None, wait


def completions_reached(job: dict, counts: JobCounts, active: int) -> bool:
    completions = (job.get("spec") or {}).get("completions")
    if completions is None:
        return counts.succeeded > 0 and active == 0
    return counts.succeeded >= int(completions) and active == 0


def ensure_condition(conditions: list[dict], ctype: str, status: str, reason: str, message: str) -> bool:
    """``ensureJobConditionStatus``: update the condition of ``ctype`` in place (its
    transition time only when the status changes) or append it, unless it is absent and
    ``status`` is False; whether anything changed."""
    for c in conditions:
        if c.get("type") != ctype:
            continue
        if (c.get("status"), c.get("reason"), c.get("message")) == (status, reason, message):
            return False
        now = now_rfc3339()
        if c.get("status") != status:
            c["lastTransitionTime"] = now
        c.update(status=status, reason=reason, message=message, lastProbeTime=now)
        return True
    if status == "False":
        return False
    conditions.append(new_condition(ctype, reason, message))
    return True


def new_condition(ctype: str, reason: str, message: str) -> dict:
    now = now_rfc3339()
    c = {"type": ctype, "status": "True", "lastProbeTime": now, "lastTransitionTime": now}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


ORPHAN_INDEX = "job-orphan-pods"


def orphan_namespace_index(pod: dict) -> list[str]:
    """Pods without a controller, by namespace: the Job controller's adoption candidates."""
    ns = (pod.get("metadata") or {}).get("namespace")
    return [ns] if ns and cu.controller_ref(pod) is None else []


class JobController:
    def __init__(self, manager: Manager, *, workers: int = 3,
                 pod_failure_backoff: float = ju.DEFAULT_POD_FAILURE_BACKOFF_S,
                 pod_failure_backoff_max: float = ju.MAX_POD_FAILURE_BACKOFF_S) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.backoff = (float(pod_failure_backoff), float(pod_failure_backoff_max))
        self.job_inf = manager.informer(R.JOBS)
        self.pod_inf = manager.informer(R.PODS)
        self.pod_inf.add_index(ORPHAN_INDEX, orphan_namespace_index)
        self.recorder = manager.recorder("job-controller", SERVICE_ACCOUNT)
        self.expectations = cu.Expectations()
        self.finalizer_expectations = jt.FinalizerExpectations()
        # ``podBackoffStore``: per Job, the failures since the last success and the last one's
        # finish time, from the pods seen finishing (kept when they are deleted; lost on restart)
        self.backoff_records: dict[str, ju.BackoffRecord] = {}
        self.controller = Controller("job", self.reconcile, workers=workers)
        # pods whose Job is gone or finished but which still carry the tracking finalizer
        self.orphans = Controller("job-orphan-pod", self.sync_orphan_pod, workers=1)
        self.job_inf.add_handler(self._on_job)
        self.pod_inf.add_handler(self._on_pod)
        manager.add(self.controller)
        manager.add(self.orphans)

    def _on_job(self, etype: str, job: dict, old: dict | None) -> None:
        self.controller.enqueue(object_key(job))
        if etype == "DELETED":  # ``deleteJob``: its pods' finalizers go through the orphan queue
            for p in self.pod_inf.by_owner(job["metadata"]["uid"]):
                if cu.is_controlled_by(p, job) and jt.has_tracking_finalizer(p):
                    self.orphans.enqueue(object_key(p))

    def _resolve(self, pod: dict) -> dict | None:
        """``resolveControllerRef``: the Job (from the cache) the pod's controller reference
        names, with the same uid; None when it is not a Job's or that Job is gone."""
        ref = cu.controller_ref(pod)
        if ref is None or ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
            return None
        job = self.job_inf.get(f"{pod['metadata'].get('namespace')}/{ref.get('name')}")
        return job if job is not None and job["metadata"].get("uid") == ref.get("uid") else None

    def _job_keys_for_orphan(self, pod: dict) -> list[str]:
        """``getPodJobs``: the Jobs of the pod's namespace whose selector matches it (which may
        adopt it)."""
        labels = cu.labels_of(pod)
        out = []
        for j in self.job_inf.list(pod["metadata"].get("namespace")):
            try:
                if cu.selector_matcher((j.get("spec") or {}).get("selector"))(labels):
                    out.append(object_key(j))
            except (TypeError, ValueError, KeyError, AttributeError):
                continue  # its own sync reports the selector
        return out

    def _on_pod(self, etype: str, pod: dict, old: dict | None) -> None:
        key = self.expectations.observe_owned_pod(etype, pod, old, "Job")
        job = self._resolve(pod)
        if job is not None and (etype == "DELETED" or not jt.has_tracking_finalizer(pod)):
            self.finalizer_expectations.observed(object_key(job), jt.uid_of(pod))
        if etype != "DELETED" and jt.has_tracking_finalizer(pod) and (job is None or job_finished(job)):
            self.orphans.enqueue(object_key(pod))
        if key is not None:
            self.controller.enqueue(key)
        if etype == "DELETED":
            return
        # ``updatePod``: a changed controller reference concerns the old controller too, and an
        # orphan (new, relabelled or just released) the Jobs that may adopt it
        ref = cu.controller_ref(pod)
        old_ref = cu.controller_ref(old) if old is not None else None
        ref_changed = old is not None and (old_ref or {}).get("uid") != (ref or {}).get("uid")
        if ref_changed and old_ref is not None and old_ref.get("kind") == "Job":
            self.controller.enqueue(f"{pod['metadata'].get('namespace')}/{old_ref.get('name')}")
        if ref is None and (old is None or etype == "SYNC" or ref_changed or cu.labels_of(old) != cu.labels_of(pod)):
            for k in self._job_keys_for_orphan(pod):
                self.controller.enqueue(k)

    def _is_orphan(self, pod: dict) -> bool:
        """No unfinished Job controls ``pod`` and nothing else does (``syncOrphanPod``'s test)."""
        ref = cu.controller_ref(pod)
        if ref is None:
            return True
        if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
            return False
        job = self._resolve(pod)
        return job is None or job_finished(job) is not None

    async def sync_orphan_pod(self, key: str) -> Result | None:
        """``syncOrphanPod``: strip the tracking finalizer from a pod no unfinished Job
        controls (its Job deleted or finished, its controller reference removed by an orphaning
        delete); a pod controlled by something other than a Job keeps it, and so does one a
        Job adopted meanwhile (re-checked on the fresh pod when the update conflicts)."""
        pod = self.pod_inf.get(key)
        if pod is None or not jt.has_tracking_finalizer(pod) or not self._is_orphan(pod):
            return None
        if await cu.remove_finalizer(self.client, R.PODS, pod, jt.FINALIZER, unless=lambda p: not self._is_orphan(p)):
            log.info("tracking finalizer removed from orphan pod", pod=key)
        return None

    async def _claim_pods(self, job: dict, match: Callable[[dict], bool]) -> list[dict]:
        """``getPodsForJob``: the pods of the Job's namespace it controls and its selector
        matches, after adopting matching orphans (a controller reference and the tracking
        finalizer added, once a live GET showed the Job still there and not being deleted) and
        releasing owned pods the selector no longer matches (reference and finalizer removed);
        pods another controller owns are left alone (``ClaimPods``)."""
        uid = job["metadata"]["uid"]
        owned = self.pod_inf.by_owner(uid)
        seen = {jt.uid_of(p) for p in owned}
        orphans = [p for p in self.pod_inf.by_index(ORPHAN_INDEX, job["metadata"]["namespace"])
                   if jt.uid_of(p) not in seen]
        pods = await cu.claim_objects(self.client, R.PODS, job, owned + orphans, match,
                                      cu.owner_rechecker(self.client, R.JOBS, job),
                                      finalizers=(jt.FINALIZER,), resource_version=True)
        controlled = {jt.uid_of(p) for p in owned if cu.is_controlled_by(p, job)}
        for p in pods:
            if jt.uid_of(p) not in controlled:
                log.info("pod adopted", job=object_key(job), pod=p["metadata"]["name"])
        return pods

    async def reconcile(self, key: str) -> Result | None:
        job = self.job_inf.get(key)
        if job is None:
            self.expectations.delete(key)
            self.finalizer_expectations.delete(key)
            self.backoff_records.pop(key, None)
            return None
        job = copy.deepcopy(job)
        if job_finished(job):
            self.backoff_records.pop(key, None)
            return None
        # before the pods are read: a pod that sneaks in later defers the sync (as syncJob)
        satisfied = self.expectations.satisfied(key)
        try:
            match = cu.selector_matcher((job.get("spec") or {}).get("selector"))
        except (TypeError, ValueError, KeyError, AttributeError) as e:  # a spec validation should have refused
            log.warning("job selector not understood", job=key, error=repr(e))
            self.recorder.event(job, "Warning", "InvalidJobSpec", f"Cannot sync the Job: {e!r}")
            raise TerminalError(f"job {key}: {e!r}") from e
        pods = await self._claim_pods(job, match)
        expected_rm = self.finalizer_expectations.expected(key)
        try:
            counts = count_pods(job, pods, expected_rm)
            target, wait = finish_target(job, counts, time.time())
            record = ju.next_backoff_record(self.backoff_records.get(key, (0, None)), counts.new_succeeded,
                                            counts.new_failed)
        except (TypeError, ValueError, KeyError, AttributeError) as e:  # a spec validation should have refused
            log.warning("job spec not understood", job=key, error=repr(e))
            self.recorder.event(job, "Warning", "InvalidJobSpec", f"Cannot sync the Job: {e!r}")
            raise TerminalError(f"job {key}: {e!r}") from e
        spec = job.get("spec") or {}
        status = copy.deepcopy(job.get("status") or {})
        if not spec.get("suspend") and not status.get("startTime"):
            status["startTime"] = now_rfc3339()
        conditions = [dict(c) for c in status.get("conditions") or []]
        active = counts.active
        terminating = counts.terminating
        backoff_wait = None
        if target is not None:
            # active pods are deleted with their finalizer: counted below (as failed on a failure)
            await self._delete_pods(job, key, active)
            terminating += len(active)
            active = []
            if not satisfied:
                target = None  # pods may be missing from the cache: finish on a later sync
        else:
            managed = satisfied and not pu.is_terminating(job)
            if managed:
                active, backoff_wait = await self._manage(job, key, pods, counts, record)
            if completions_reached(job, counts, len(active)):
                target = ("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods")
            elif managed:
                self._suspend_condition(job, status, conditions)
        waits = [w for w in (wait, backoff_wait) if w is not None]
        result = Result(requeue_after=min(waits)) if waits and target is None else None
        finished = None
        if target is not None:
            interim = next((k for k, v in TERMINAL_FOR.items() if v == target[0]), target[0])
            if not any(c.get("type") == interim and c.get("status") == "True" for c in conditions):
                conditions.append(new_condition(interim, target[1], target[2]))
            finished = jt.SUCCESS if interim == "SuccessCriteriaMet" else jt.FAILURE
        status.update(active=len(active), ready=sum(1 for p in active if pu.is_pod_ready(p)), terminating=terminating)
        if conditions:
            status["conditions"] = conditions
        tracked_all = await self._track(job, key, pods, counts, status, expected_rm, finished, record)
        if target is not None and tracked_all and terminating == 0 and not (job.get("status") or {}).get(
                "uncountedTerminatedPods"):
            status = copy.deepcopy(job.get("status") or {})
            self._finish(job, status, status.setdefault("conditions", []), TERMINAL_FOR[interim], target[1], target[2])
            await self._write_status(job, status)
        return result

    async def _track(self, job: dict, key: str, pods: list[dict], counts: JobCounts, status: dict,
                     expected_rm: frozenset[str], finished: str | None, record: ju.BackoffRecord) -> bool:
        """``trackJobStatusAndRemoveFinalizers``: record the newly finished pods in the status
        (UIDs in ``uncountedTerminatedPods``, an Indexed Job's successes in
        ``completedIndexes``) and write it, remove their finalizers, then move the UIDs whose
        pod lost its finalizer into ``succeeded`` / ``failed`` and write again. ``job`` ends
        up as last written (or read). The failure back-off ``record`` this sync computed is kept
        once the first write succeeded (the pods it saw finish are then recorded, so no later
        sync sees them as new). False when the per-sync cap on recorded pods was reached (the
        rest next sync)."""
        with_finalizer = {jt.uid_of(p) for p in pods if jt.has_tracking_finalizer(p) and jt.uid_of(p) not in expected_rm}
        jt.clean_uncounted(status, with_finalizer)  # recorded before a restart, finalizer gone since
        plan = jt.plan_tracking({**job, "status": status}, pods, finished=finished, expected_rm=expected_rm,
                                prev_succeeded_indexes=counts.prev_succeeded_indexes, delayed=counts.delayed)
        status["uncountedTerminatedPods"] = jt.uncounted_status(plan.uncounted_succeeded, plan.uncounted_failed)
        if counts.indexed:
            done = counts.prev_succeeded_indexes | plan.new_succeeded_indexes
            status["completedIndexes"] = compress_indexes(done)
            status["succeeded"] = len(done)
        if counts.failed_indexes is not None:
            status["failedIndexes"] = compress_indexes(counts.failed_indexes)
        await self._write_status(job, status)
        self.backoff_records[key] = record
        if plan.remove:
            removed, error = await self._remove_finalizers(key, plan.remove)
            with_finalizer -= removed
            status = copy.deepcopy(job.get("status") or {})
            if jt.clean_uncounted(status, with_finalizer):  # also the partial progress of a failed round
                await self._write_status(job, status)
            if error is not None:
                raise error
        return not plan.reached_max

    async def _write_status(self, job: dict, status: dict) -> None:
        """PUT ``status`` when it differs; ``job`` becomes the stored Job (its resourceVersion
        guards the next write: a Job changed meanwhile is a 409 and a requeue). Zero
        ``active`` / ``succeeded`` / ``failed`` are left out, as Kubernetes' omitempty."""
        for k in ("active", "succeeded", "failed"):
            if status.get(k) == 0:
                status.pop(k)
        if status == (job.get("status") or {}):
            return
        job["status"] = status
        try:
            stored = await self.client.update_status(R.JOBS, job)
        except ApiStatusError as e:
            if not e.not_found:
                raise
            return
        job.clear()
        job.update(stored)

    async def _remove_finalizers(self, key: str, pods: list[dict]) -> tuple[set[str], BaseException | None]:
        """``removeTrackingFinalizerFromPods``: (the UIDs whose finalizer is gone: removed now
        or the pod is gone, the first error of the others)."""
        self.finalizer_expectations.expect_removed(key, [jt.uid_of(p) for p in pods])

        async def one(p: dict) -> None:
            if not await cu.remove_finalizer(self.client, R.PODS, p, jt.FINALIZER):
                self.finalizer_expectations.observed(key, jt.uid_of(p))  # gone: no event to wait for

        results = await asyncio.gather(*(one(p) for p in pods), return_exceptions=True)
        done: set[str] = set()
        error: BaseException | None = None
        for p, r in zip(pods, results):
            if isinstance(r, BaseException):
                self.finalizer_expectations.observed(key, jt.uid_of(p))
                error = error or r
            else:
                done.add(jt.uid_of(p))
        if error is not None:
            log.warning("removing tracking finalizers failed", job=key, pods=len(pods) - len(done), error=repr(error))
        return done, error

    def _suspend_condition(self, job: dict, status: dict, conditions: list[dict]) -> None:
        """``Suspended`` True while ``spec.suspend`` (JobSuspended), False once resumed
        (JobResumed, ``startTime`` reset: the deadline counts from the resumption)."""
        suspended = bool(job["spec"].get("suspend"))
        if ensure_condition(conditions, "Suspended", "True" if suspended else "False",
                            "JobSuspended" if suspended else "JobResumed",
                            "Job suspended" if suspended else "Job resumed"):
            if suspended:
                self.recorder.event(job, "Normal", "Suspended", "Job suspended")
            else:
                self.recorder.event(job, "Normal", "Resumed", "Job resumed")
                status["startTime"] = now_rfc3339()

    def _finish(self, job: dict, status: dict, conditions: list[dict], ctype: str, reason: str, message: str) -> None:
        """Add the terminal condition (and ``completionTime`` for Complete), with its Event."""
        conditions.append(new_condition(ctype, reason, message))
        if ctype == "Complete":
            status["completionTime"] = now_rfc3339()
            self.recorder.event(job, "Normal", "Completed", "Job completed")
        else:
            self.recorder.event(job, "Warning", reason, message)
        log.info("job finished", job=object_key(job), condition=ctype, reason=reason)

    async def _manage(self, job: dict, key: str, pods: list[dict], counts: JobCounts,
                      record: ju.BackoffRecord) -> tuple[list[dict], float | None]:
        """Create or delete pods toward the wanted number; returns the active pods left and,
        when new pods wait for the failure back-off (``record``, or per index), the seconds
        until it expires."""
        spec = job["spec"]
        active = counts.active
        wait_terminating = only_replace_failed(spec)
        base, cap = self.backoff
        now = time.time()
        if spec.get("suspend"):
            victims = pu.rank_for_deletion(active)[:MAX_POD_CREATE_DELETE_PER_SYNC]
            await self._delete_pods(job, key, victims, uncounted=True)
            gone = {p["metadata"]["uid"] for p in victims}
            return [p for p in active if p["metadata"]["uid"] not in gone], None
        if counts.indexed:
            completions = int(spec["completions"])
            failed = counts.failed_indexes or set()
            want = wanted_active(job, counts.succeeded, len(failed))
            _, remove, create = indexed_plan(completions, pods, want, failed=failed, wait_terminating=wait_terminating,
                                             succeeded=counts.succeeded_indexes)
            remove = remove[:MAX_POD_CREATE_DELETE_PER_SYNC]
            if remove:
                await self._delete_pods(job, key, remove, uncounted=True)
                gone = {p["metadata"]["uid"] for p in remove}
                active = [p for p in active if p["metadata"]["uid"] not in gone]
            delay = None
            # backoffLimitPerIndex: the failed pod each index's replacement takes its counts from
            replaced = counts.delayed if create and counts.failed_indexes is not None else None
            if create and replaced is not None:  # backoffLimitPerIndex: each index its own back-off
                create, delay = per_index_backoff(create, replaced, now, base, cap)
            elif create:
                delay = ju.remaining_backoff(*record, now, base=base, cap=cap) or None
                if delay is not None:
                    create = []
            if create:
                await self._create_pods(job, key, len(create), indexes=create, replaced=replaced)
            elif delay is not None:
                log.debug("pod creation waits for the failure back-off", job=key, seconds=round(delay, 3))
            return active, delay
        want = wanted_active(job, counts.succeeded)
        if spec.get("completions") is None and counts.succeeded > 0:
            want = len(active)  # a work queue: once one pod succeeded, the others run to their end
        delay = None
        if len(active) < want:
            n = want - len(active) - (counts.terminating if wait_terminating else 0)
            if n > 0:
                delay = ju.remaining_backoff(*record, now, base=base, cap=cap) or None
                if delay is None:
                    await self._create_pods(job, key, n)
                else:
                    log.debug("pod creation waits for the failure back-off", job=key, seconds=round(delay, 3))
        elif len(active) > want:
            victims = pu.rank_for_deletion(active)[: min(len(active) - want, MAX_POD_CREATE_DELETE_PER_SYNC)]
            await self._delete_pods(job, key, victims, uncounted=True)
            gone = {p["metadata"]["uid"] for p in victims}
            active = [p for p in active if p["metadata"]["uid"] not in gone]
        return active, delay

    async def _create_pods(self, job: dict, key: str, n: int, indexes: list[int] | None = None,
                           replaced: dict[int, dict] | None = None) -> None:
        """``n`` pods (or one per completion index in ``indexes``; with ``replaced``, the last
        failed pod of each index, the new pods carry the per-index failure counts). At most
        ``MAX_POD_CREATE_DELETE_PER_SYNC`` (Go's ``manageJob``): the pods' events bring the
        next sync, which creates the rest."""
        n = min(n, MAX_POD_CREATE_DELETE_PER_SYNC)
        if indexes is not None:
            indexes = indexes[:n]
        self.expectations.expect_creations(key, n)
        name, uid = job["metadata"]["name"], job["metadata"]["uid"]
        extra = {"job-name": name, "batch.kubernetes.io/job-name": name, "controller-uid": uid,
                 "batch.kubernetes.io/controller-uid": uid}
        template = job["spec"].get("template") or {}
        policy = job["spec"].get("podFailurePolicy")

        async def one(index: int | None) -> None:
            if index is None:
                t, gen = template, f"{name}-"
            else:
                counts = ju.new_index_failure_counts(policy, replaced.get(index)) if replaced is not None else None
                t, gen = indexed_template(template, name, index, counts)
            pod = cu.pod_from_template(t, job, generate_name=gen, extra_labels=extra)
            fins = pod["metadata"].setdefault("finalizers", [])
            if jt.FINALIZER not in fins:
                fins.append(jt.FINALIZER)
            try:
                created = await self.client.create(R.PODS, pod, job["metadata"]["namespace"])
            except ApiStatusError as e:
                if cu.is_namespace_terminating(e):
                    return  # every later create would fail too; the Job is going
                self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {e.message}")
                raise
            self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

        todo = indexes if indexes is not None else [None] * n
        out = await cu.slow_start_batch(len(todo), lambda i: one(todo[i]))  # syncJob's slow start
        if out.unobserved:
            self.expectations.lower_expected_creations(key, out.unobserved)
        if out.errors:
            if not isinstance(out.errors[0], ApiStatusError):
                self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {cu.error_text(out.errors[0])}")
            raise out.errors[0]

    async def _delete_pods(self, job: dict, key: str, pods: list[dict], *, uncounted: bool = False) -> None:
        """Delete ``pods``. ``uncounted`` (``deleteJobPods``: pods the Job no longer wants,
        scaled down, suspended, duplicate indexes): their tracking finalizer goes first, so they
        are not counted as failed; otherwise (``deleteActivePods``, a finishing Job) it stays
        and the pods are counted."""
        if not pods:
            return
        self.expectations.expect_deletions(key, {p["metadata"]["uid"] for p in pods})
        for p in pods:
            try:
                if uncounted and not await cu.remove_finalizer(self.client, R.PODS, p, jt.FINALIZER):
                    self.expectations.deletion_observed(key, p["metadata"]["uid"])  # already gone
                    continue
                await self.client.delete(R.PODS, p["metadata"]["name"], p["metadata"]["namespace"])
                self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
            except ApiStatusError as e:
                self.expectations.deletion_observed(key, p["metadata"]["uid"])
                if not e.not_found:
                    raise


def setup(manager: Manager, workers: int = 3, pod_failure_backoff: float = ju.DEFAULT_POD_FAILURE_BACKOFF_S,
          pod_failure_backoff_max: float = ju.MAX_POD_FAILURE_BACKOFF_S) -> JobController:
    return JobController(manager, workers=workers, pod_failure_backoff=pod_failure_backoff,
                         pod_failure_backoff_max=pod_failure_backoff_max)
