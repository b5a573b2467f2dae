"""CronJob controller: creates a Job for each scheduled time of a CronJob (kube-controller-
manager's ``cronjob_controllerv2.go``).

Level-based ``reconcile(key)``: read the CronJob and the Jobs it controls from the caches, then
1. delete finished Jobs beyond ``successfulJobsHistoryLimit``/``failedJobsHistoryLimit``
   (oldest first; SuccessfulDelete);
2. bring ``status.active`` in line with the Jobs (SawCompletedJob for one that finished,
   MissingJob for one that is gone, UnexpectedJob for an unfinished one it does not list) and
   ``status.lastSuccessfulTime`` with the latest completion;
3. unless the CronJob is being deleted, its ``timeZone`` is unknown (UnknownTimeZone), it is
   suspended, or its schedule cannot be parsed (UnparseableSchedule) or never fires
   (InvalidSchedule): find the most recent scheduled time that is due (``cronjobutil``; more
   than 100 missed start times: TooManyMissedTimes). Past ``startingDeadlineSeconds`` it is
   missed (MissSchedule); already started (its Job name is active, or it is
   ``lastScheduleTime``): nothing to do; ``concurrencyPolicy: Forbid`` with an active Job:
   JobAlreadyActive; ``Replace``: the active Jobs are deleted first. Then the Job
   ``<name>-<minutes since epoch>`` is created from the template (SuccessfulCreate; an existing
   one it controls is taken back into ``status.active``), and ``status.active`` and
   ``lastScheduleTime`` record it;
4. write the status when it changed and look again 100 ms after the next scheduled time.

The clock is a parameter (``now``), so tests run the controller on a fake clock.
Neighbours: ``cronjobutil`` (the time logic), ``controllerutil``, ``controlplane.machinery.cron``.
"""

from __future__ import annotations

import copy
import datetime as _dt
from typing import Callable

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.controllers import controllerutil as cu
from controlplane.controllers import cronjobutil as cju
from controlplane.log import get_logger
from controlplane.machinery.cron import UTC, CronError, load_location

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:cronjob-controller (bootstrap_policy)
SERVICE_ACCOUNT = "cronjob-controller"

log = get_logger(__name__)

Clock = Callable[[], _dt.datetime]


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(UTC)


def _status_view(status: dict) -> tuple:
    active = tuple(sorted(str(r.get("uid")) for r in status.get("active") or []))
    return active, status.get("lastScheduleTime"), status.get("lastSuccessfulTime")


class CronJobController:
    def __init__(self, manager: Manager, *, workers: int = 5, now: Clock = utc_now) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.now = now
        self.cj_inf = manager.informer(R.CRONJOBS)
        self.job_inf = manager.informer(R.JOBS)
        self.recorder = manager.recorder("cronjob-controller", SERVICE_ACCOUNT)
        self.controller = Controller("cronjob", self.reconcile, workers=workers)
        self.cj_inf.add_handler(lambda etype, obj, old: self.controller.enqueue(object_key(obj)))
        self.job_inf.add_handler(self._on_job)
        manager.add(self.controller)

    def _on_job(self, etype: str, job: dict, old: dict | None) -> None:
        for obj in (job, old):
            ref = cu.controller_ref(obj) if obj is not None else None
            if ref is not None and ref.get("kind") == "CronJob":
                self.controller.enqueue(f"{job['metadata'].get('namespace')}/{ref['name']}")

    # -- reconcile ------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        cached = self.cj_inf.get(key)
        if cached is None:
            return None
        cj = copy.deepcopy(cached)
        jobs = [j for j in self.job_inf.by_owner(cj["metadata"]["uid"]) if cu.is_controlled_by(j, cj)]
        before = _status_view(cj.get("status") or {})
        cleaned = await self._cleanup_finished(cj, jobs)
        try:
            delay = await self._sync(cj, jobs)
        finally:
            if cleaned or _status_view(cj.get("status") or {}) != before:
                await self._write_status(cj)
        return Result(requeue_after=delay) if delay is not None else None

    async def _sync(self, cj: dict, jobs: list[dict]) -> float | None:
        """``syncCronJob``: status.active/lastSuccessfulTime from the Jobs, then a new Job if one
        is due. Returns the seconds until the controller should look again (None: not before
        the CronJob changes)."""
        status = cj.setdefault("status", {})
        ns = cj["metadata"].get("namespace")
        children = {j["metadata"]["uid"] for j in jobs}
        for job in jobs:
            uid = job["metadata"]["uid"]
            listed = any(r.get("uid") == uid for r in status.get("active") or [])
            finished = cju.finished_condition(job)
            if not listed and finished is None:
                self.recorder.event(cj, "Warning", "UnexpectedJob",
                                    f"Saw a job that the controller did not create or forgot: {job['metadata']['name']}")
            elif listed and finished is not None:
                self._forget_active(cj, uid)
                self.recorder.event(cj, "Normal", "SawCompletedJob",
                                    f"Saw completed job: {job['metadata']['name']}, condition: {finished}")
            elif finished == "Complete":
                done = cju.parse_time((job.get("status") or {}).get("completionTime"))
                last = cju.parse_time(status.get("lastSuccessfulTime"))
                if done is not None and (last is None or done > last):
                    status["lastSuccessfulTime"] = cju.format_time(done)
        for ref in list(status.get("active") or []):
            if ref.get("uid") in children:
                continue
            try:  # the cache may lag: ask the apiserver before forgetting the Job
                await self.client.get(R.JOBS, ref.get("name", ""), ref.get("namespace") or ns)
            except ApiStatusError as e:
                if not e.not_found:
                    raise
                self.recorder.event(cj, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}")
                self._forget_active(cj, ref.get("uid"))

        if cj["metadata"].get("deletionTimestamp"):
            return None
        spec = cj.get("spec") or {}
        if spec.get("timeZone") is not None:
            try:
                load_location(spec["timeZone"])
            except CronError as e:
                self.recorder.event(cj, "Warning", "UnknownTimeZone", f'invalid timeZone: "{spec["timeZone"]}": {e}')
                return None
        if spec.get("suspend"):
            return None
        if "TZ" in str(spec.get("schedule") or ""):
            self.recorder.event(cj, "Warning", "UnsupportedSchedule",
                                f'CRON_TZ or TZ used in schedule "{spec.get("schedule")}" is not officially supported, '
                                "see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details")
        try:
            schedule = cju.schedule_of(cj)
        except CronError as e:
            self.recorder.event(cj, "Warning", "UnparseableSchedule", f'unparseable schedule: "{spec.get("schedule")}" : {e}')
            return None
        now = self.now()
        try:
            scheduled, missed = cju.next_schedule_time(cj, now, schedule)
        except ValueError as e:
            self.recorder.event(cj, "Warning", "InvalidSchedule", f"invalid schedule: {spec.get('schedule')} : {e}")
            return None
        if scheduled is None:
            return cju.next_schedule_delay(cj, now, schedule)
        if missed is cju.Missed.MANY:
            self.recorder.event(cj, "Warning", "TooManyMissedTimes", "too many missed start times. Set or decrease "
                                ".spec.startingDeadlineSeconds or check clock skew")
            log.info("too many missed times", cronjob=object_key(cj))
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + _dt.timedelta(seconds=int(deadline)) < now:
            self.recorder.event(cj, "Warning", "MissSchedule", "Missed scheduled time to start a job: "
                                f"{scheduled.astimezone(UTC).strftime('%a, %d %b %Y %H:%M:%S +0000')}")
            return cju.next_schedule_delay(cj, now, schedule)
        name = cju.job_name(cj, scheduled)
        if any(r.get("name") == name for r in status.get("active") or []) or \
                cju.parse_time(status.get("lastScheduleTime")) == scheduled:
            return cju.next_schedule_delay(cj, now, schedule)
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status.get("active"):
            self.recorder.event(cj, "Normal", "JobAlreadyActive",
                                "Not starting job because prior execution is running and concurrency policy is Forbid")
            return cju.next_schedule_delay(cj, now, schedule)
        if policy == "Replace":
            for ref in list(status.get("active") or []):
                job = await self.client.get(R.JOBS, ref.get("name", ""), ref.get("namespace") or ns)
                if not await self._delete_job(cj, job):
                    raise RuntimeError(f"could not replace job {ref.get('namespace') or ns}/{ref.get('name')}")
        job = await self._create_job(cj, scheduled)
        if job is None:
            return None
        status.setdefault("active", []).append(
            {"kind": "Job", "namespace": job["metadata"].get("namespace"), "name": job["metadata"]["name"],
             "uid": job["metadata"]["uid"], "apiVersion": "batch/v1",
             "resourceVersion": job["metadata"].get("resourceVersion")})
        status["lastScheduleTime"] = cju.format_time(scheduled)
        return cju.next_schedule_delay(cj, now, schedule)

    async def _create_job(self, cj: dict, scheduled: _dt.datetime) -> dict | None:
        """Create the Job for ``scheduled``; an existing one this CronJob controls (created
        before a status write was lost) comes back unless it is already active. None when there
        is nothing to record."""
        want = cju.job_from_template(cj, scheduled)
        ns = cj["metadata"].get("namespace")
        try:
            job = await self.client.create(R.JOBS, want, ns)
        except ApiStatusError as e:
            if e.already_exists:
                job = await self.client.get(R.JOBS, want["metadata"]["name"], ns)
                if not cu.is_controlled_by(job, cj):
                    return None
                if any(r.get("uid") == job["metadata"]["uid"] for r in (cj.get("status") or {}).get("active") or []):
                    return None
                log.info("job already exists", cronjob=object_key(cj), job=want["metadata"]["name"])
                return job
            if not _namespace_terminating(e):
                self.recorder.event(cj, "Warning", "FailedCreate", f"Error creating job: {e.message}")
            raise
        self.recorder.event(cj, "Normal", "SuccessfulCreate", f"Created job {job['metadata']['name']}")
        return job

    async def _delete_job(self, cj: dict, job: dict) -> bool:
        """``deleteJob``: delete it (its pods in the background) and drop it from the active list."""
        try:
            await self.client.delete(R.JOBS, job["metadata"]["name"], job["metadata"].get("namespace"),
                                     propagation_policy="Background")
        except ApiStatusError as e:
            if not e.not_found:
                self.recorder.event(cj, "Warning", "FailedDelete", f"Deleted job: {e.message}")
                log.error("error deleting job from cronjob", cronjob=object_key(cj), job=job["metadata"]["name"],
                          error=e.message)
                return False
        self._forget_active(cj, job["metadata"]["uid"])
        self.recorder.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {job['metadata']['name']}")
        return True

    async def _cleanup_finished(self, cj: dict, jobs: list[dict]) -> bool:
        """Finished Jobs beyond the history limits are deleted, oldest first."""
        spec = cj.get("spec") or {}
        changed = False
        for condition, limit_key in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
            limit = spec.get(limit_key)
            if limit is None:
                continue
            finished = sorted((j for j in jobs if cju.finished_condition(j) == condition), key=cju.start_time_order)
            for job in finished[:max(len(finished) - int(limit), 0)]:
                if await self._delete_job(cj, job):
                    changed = True
        return changed

    def _forget_active(self, cj: dict, uid: str | None) -> None:
        status = cj.setdefault("status", {})
        status["active"] = [r for r in status.get("active") or [] if r.get("uid") != uid]

    async def _write_status(self, cj: dict) -> None:
        """Merge-patch ``status`` (the controller is its only writer); an empty active list is
        removed, as Go's omitempty drops it."""
        status = cj.get("status") or {}
        body = {"active": status.get("active") or None, "lastScheduleTime": status.get("lastScheduleTime"),
                "lastSuccessfulTime": status.get("lastSuccessfulTime")}
        try:
            await self.client.patch(R.CRONJOBS, cj["metadata"]["name"], {"status": body},
                                    cj["metadata"].get("namespace"), subresource="status")
        except ApiStatusError as e:
            if not e.not_found:
                raise


def _namespace_terminating(e: ApiStatusError) -> bool:
    return e.code == 403 and "being terminated" in e.message


def setup(manager: Manager, workers: int = 5) -> CronJobController:
    return CronJobController(manager, workers=workers)
