"""Job controller: runs pods to ``completions`` with at most ``parallelism`` at once.

``reconcile(key)`` counts the Job's pods (succeeded / failed / active) from the cache, then:
fails the Job (condition Failed, reason BackoffLimitExceeded or DeadlineExceeded, active pods
deleted) when failures exceed ``backoffLimit`` or ``activeDeadlineSeconds`` has passed since
``status.startTime``; completes it (Complete condition, ``completionTime``) when enough pods
succeeded; otherwise creates or deletes pods so ``active`` equals
min(parallelism, completions − succeeded). Pods carry ``job-name`` and ``controller-uid``
labels (both the legacy and ``batch.kubernetes.io/`` forms). Expectations guard against a
lagging cache.

``completionMode: Indexed``: each pod has a completion index in 0..completions-1 (annotation and
label ``batch.kubernetes.io/job-completion-index``, env ``JOB_COMPLETION_INDEX`` from that
annotation in every container, hostname ``<job>-<index>``, generateName ``<job>-<index>-``);
the lowest indexes neither succeeded nor running get the new pods, a second active pod of an
index (or one of an index already succeeded, or with an invalid index) is deleted, the Job
completes when every index has a succeeded pod, and ``status.completedIndexes`` lists them in
Kubernetes' compressed form (``0-2,4``). As in Kubernetes without pod-tracking finalizers,
succeeded indexes are counted from the live pods. Neighbours: ``controllerutil``, ``podutil``.
"""

from __future__ import annotations

import asyncio
import copy
import time

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.controllers import controllerutil as cu
from controlplane.controllers import podutil as pu
from controlplane.log import get_logger
from controlplane.machinery.timestamps import now_rfc3339, parse_time_or_none

log = get_logger(__name__)


def job_finished(job: dict) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"]
    return None


def wanted_active(job: dict, succeeded: int) -> int:
    """How many pods should be running now (pure)."""
    spec = job.get("spec") or {}
    parallelism = spec.get("parallelism", 1)
    parallelism = 1 if parallelism is None else int(parallelism)
    completions = spec.get("completions")
    if completions is None:
        return 0 if succeeded > 0 else parallelism
    return max(0, min(parallelism, int(completions) - succeeded))


INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"


def pod_index(pod: dict) -> int | None:
    """A pod's completion index (its annotation; None when absent or not a number)."""
    v = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_KEY)
    if v is None or not str(v).isdigit() or (len(str(v)) > 1 and str(v).startswith("0")):
        return None
    return int(v)


def compress_indexes(indexes: set[int]) -> str:
    """Kubernetes' ``completedIndexes`` form (``orderedIntervals.String``): sorted runs of three
    or more as ``a-c``, two consecutive as ``a,b``: ``0-2,4,6,7``."""
    out: list[str] = []
    run: list[int] = []

    def flush() -> None:
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]},{run[-1]}" if len(run) == 2
                       else f"{run[0]}-{run[-1]}")
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        flush()
        run = [i]
    flush()
    return ",".join(out)


def indexed_plan(completions: int, pods: list[dict], want_active: int) -> tuple[set[int], list[dict], list[int]]:
    """Indexed mode, pure: (succeeded indexes, active pods to delete, indexes to create pods
    for). An active pod with an invalid or out-of-range index, or of an index already
    succeeded, is deleted; of several active pods of one index all but the one Kubernetes'
    deletion ranking keeps longest are (``appendDuplicatedIndexPodsForRemoval``). New pods take
    the lowest indexes neither succeeded nor active, up to ``want_active`` active."""
    succeeded = {i for p in pods if pu.phase(p) == "Succeeded"
                 for i in [pod_index(p)] if i is not None and i < completions}
    remove: list[dict] = []
    by_index: dict[int, list[dict]] = {}
    for p in pods:
        if not pu.is_pod_active(p):
            continue
        i = pod_index(p)
        if i is None or i >= completions or i in succeeded:
            remove.append(p)
        else:
            by_index.setdefault(i, []).append(p)
    for group in by_index.values():
        if len(group) > 1:
            remove.extend(pu.rank_for_deletion(group)[:-1])
    free = want_active - len(by_index)
    create: list[int] = []
    if free > 0:
        for i in range(completions):
            if len(create) >= free:
                break
            if i not in succeeded and i not in by_index:
                create.append(i)
    return succeeded, remove, create


def indexed_template(template: dict, job_name: str, index: int) -> tuple[dict, str]:
    """The pod template for ``index`` (env, hostname, annotation and label added) and its
    generateName."""
    t = copy.deepcopy(template)
    md = t.setdefault("metadata", {})
    md.setdefault("annotations", {})[INDEX_KEY] = str(index)
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


class JobController:
    def __init__(self, manager: Manager, *, workers: int = 3) -> None:
        self.client = manager.client
        self.job_inf = manager.informer(R.JOBS)
        self.pod_inf = manager.informer(R.PODS)
        self.recorder = manager.recorder("job-controller")
        self.expectations = cu.Expectations()
        self.controller = Controller("job", self.reconcile, workers=workers)
        self.job_inf.add_handler(lambda t, o, old: self.controller.enqueue(object_key(o)))
        self.pod_inf.add_handler(self._on_pod)
        manager.add(self.controller)

    def _on_pod(self, etype: str, pod: dict, old: dict | None) -> None:
        key = self.expectations.observe_owned_pod(etype, pod, old, "Job")
        if key is not None:
            self.controller.enqueue(key)

    async def reconcile(self, key: str) -> Result | None:
        job = self.job_inf.get(key)
        if job is None:
            self.expectations.delete(key)
            return None
        job = copy.deepcopy(job)
        if job_finished(job) or pu.is_terminating(job):
            return None
        uid = job["metadata"]["uid"]
        pods = [p for p in self.pod_inf.by_owner(uid) if cu.is_controlled_by(p, job)]
        indexed = (job.get("spec") or {}).get("completionMode") == "Indexed" and \
            (job.get("spec") or {}).get("completions") is not None
        succeeded_indexes: set[int] = set()
        if indexed:
            succeeded_indexes, _, _ = indexed_plan(int(job["spec"]["completions"]), pods, 0)
            succeeded = len(succeeded_indexes)
        else:
            succeeded = sum(1 for p in pods if pu.phase(p) == "Succeeded")
        failed = sum(1 for p in pods if pu.phase(p) == "Failed")
        active = [p for p in pods if pu.is_pod_active(p)]
        spec = job.get("spec") or {}
        status = dict(job.get("status") or {})
        status.setdefault("startTime", now_rfc3339())
        now = time.time()
        result: Result | None = None
        conditions = list(status.get("conditions") or [])
        completions = spec.get("completions")
        backoff = int(spec.get("backoffLimit", 6) if spec.get("backoffLimit") is not None else 6)
        deadline = spec.get("activeDeadlineSeconds")
        started = parse_time_or_none(status["startTime"]) or now
        fail_reason = None
        if failed > backoff:
            fail_reason = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif deadline is not None and now - started >= int(deadline):
            fail_reason = ("DeadlineExceeded", "Job was active longer than specified deadline")
        elif deadline is not None:
            result = Result(requeue_after=max(0.5, started + int(deadline) - now))
        done = (completions is not None and succeeded >= int(completions)) or (
            completions is None and succeeded > 0 and not active)
        if fail_reason:
            await self._delete_pods(job, key, active)
            active = []
            conditions.append({"type": "Failed", "status": "True", "reason": fail_reason[0], "message": fail_reason[1],
                               "lastProbeTime": now_rfc3339(), "lastTransitionTime": now_rfc3339()})
            self.recorder.event(job, "Warning", fail_reason[0], fail_reason[1])
            result = None
        elif done:
            await self._delete_pods(job, key, active)
            active = []
            conditions.append({"type": "Complete", "status": "True", "lastProbeTime": now_rfc3339(),
                               "lastTransitionTime": now_rfc3339()})
            status["completionTime"] = now_rfc3339()
            self.recorder.event(job, "Normal", "Completed", "Job completed")
            result = None
        elif self.expectations.satisfied(key) and not spec.get("suspend") and indexed:
            want = wanted_active(job, succeeded)
            _, remove, create = indexed_plan(int(completions), pods, want)
            if remove:
                await self._delete_pods(job, key, remove)
                gone = {p["metadata"]["uid"] for p in remove}
                active = [p for p in active if p["metadata"]["uid"] not in gone]
            if create:
                await self._create_pods(job, key, len(create), indexes=create)
        elif self.expectations.satisfied(key) and not spec.get("suspend"):
            want = wanted_active(job, succeeded)
            if len(active) < want:
                await self._create_pods(job, key, want - len(active))
            elif len(active) > want:
                victims = pu.rank_for_deletion(active)[: len(active) - want]
                await self._delete_pods(job, key, victims)
        new_status = {**status, "active": len(active), "succeeded": succeeded, "failed": failed,
                      "ready": sum(1 for p in active if pu.is_pod_ready(p))}
        if conditions:
            new_status["conditions"] = conditions
        if indexed:
            new_status["completedIndexes"] = compress_indexes(succeeded_indexes)
        for k in ("active", "succeeded", "failed"):
            if new_status[k] == 0 and k not in status:
                new_status.pop(k)
        if new_status != (job.get("status") or {}):
            job["status"] = new_status
            try:
                await self.client.update_status(R.JOBS, job)
            except ApiStatusError as e:
                if not e.not_found:
                    raise
        return result

    async def _create_pods(self, job: dict, key: str, n: int, indexes: list[int] | None = None) -> None:
        """``n`` pods (or one per completion index in ``indexes``)."""
        self.expectations.expect_creations(key, n)
        name, uid = job["metadata"]["name"], job["metadata"]["uid"]
        extra = {"job-name": name, "batch.kubernetes.io/job-name": name, "controller-uid": uid,
                 "batch.kubernetes.io/controller-uid": uid}
        template = job["spec"].get("template") or {}

        async def one(index: int | None) -> None:
            t, gen = (template, f"{name}-") if index is None else indexed_template(template, name, index)
            pod = cu.pod_from_template(t, job, generate_name=gen, extra_labels=extra)
            created = await self.client.create(R.PODS, pod, job["metadata"]["namespace"])
            self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

        results = await asyncio.gather(*(one(i) for i in (indexes if indexes is not None else [None] * n)),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            self.expectations.lower_expected_creations(key, len(errors))
            self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {errors[0]}")
            raise errors[0]

    async def _delete_pods(self, job: dict, key: str, pods: list[dict]) -> None:
        if not pods:
            return
        self.expectations.expect_deletions(key, {p["metadata"]["uid"] for p in pods})
        for p in pods:
            try:
                await self.client.delete(R.PODS, p["metadata"]["name"], p["metadata"]["namespace"])
                self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
            except ApiStatusError as e:
                self.expectations.deletion_observed(key, p["metadata"]["uid"])
                if not e.not_found:
                    raise


def setup(manager: Manager, workers: int = 3) -> JobController:
    return JobController(manager, workers=workers)
