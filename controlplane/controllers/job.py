"""Job controller: runs pods to ``completions`` with at most ``parallelism`` at once.

``reconcile(key)`` counts the Job's pods (succeeded / failed / active) from the cache, then:
fails the Job (condition Failed, reason BackoffLimitExceeded or DeadlineExceeded, active pods
deleted) when failures exceed ``backoffLimit`` or ``activeDeadlineSeconds`` has passed since
``status.startTime``; completes it (Complete condition, ``completionTime``) when enough pods
succeeded; otherwise creates or deletes pods so ``active`` equals
min(parallelism, completions − succeeded). Pods carry ``job-name`` and ``controller-uid``
labels (both the legacy and ``batch.kubernetes.io/`` forms). Expectations guard against a
lagging cache. Neighbours: ``controllerutil``, ``podutil``.
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

    async def _create_pods(self, job: dict, key: str, n: int) -> None:
        self.expectations.expect_creations(key, n)
        name, uid = job["metadata"]["name"], job["metadata"]["uid"]
        extra = {"job-name": name, "batch.kubernetes.io/job-name": name, "controller-uid": uid,
                 "batch.kubernetes.io/controller-uid": uid}
        template = job["spec"].get("template") or {}

        async def one() -> None:
            pod = cu.pod_from_template(template, job, generate_name=f"{name}-", extra_labels=extra)
            created = await self.client.create(R.PODS, pod, job["metadata"]["namespace"])
            self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

        results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
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
