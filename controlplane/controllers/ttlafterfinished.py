"""ttl-after-finished (kube-controller-manager's ``pkg/controller/ttlafterfinished``): a
finished Job (condition ``Complete`` or ``Failed`` True) with ``spec.ttlSecondsAfterFinished``
is deleted that many seconds after it finished, counted from the condition's
``lastTransitionTime``. Before deleting it the Job is read again from the apiserver (the cache
may be stale: a user may have changed or removed the TTL meanwhile) and the delete is a
Foreground one with the Job's UID as precondition, so its pods go first and a re-created Job
of the same name is never hit. No Events, as upstream. Until the time comes the key is
requeued for the remaining time; reconcile never sleeps.

Neighbours: the Job controller (which writes the finish conditions) and the garbage
collector (which carries out the Foreground deletion of the pods).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger
from controlplane.machinery.timestamps import parse_time_or_none

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:ttl-after-finished-controller (bootstrap_policy)
SERVICE_ACCOUNT = "ttl-after-finished-controller"

log = get_logger(__name__)

Obj = dict[str, Any]


def needs_cleanup(job: Obj) -> bool:
    """``needsCleanup``: a TTL is set, the Job has finished and is not being deleted."""
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if (job.get("spec") or {}).get("ttlSecondsAfterFinished") is None:
        return False
    return _finished(job)


def _finished(job: Obj) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def finish_time(job: Obj) -> float | None:
    """``jobFinishTime``: the ``lastTransitionTime`` of the first true ``Complete`` / ``Failed``
    condition; None when the Job has not finished or that time is missing."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return parse_time_or_none(c.get("lastTransitionTime"))
    return None


def time_left(job: Obj, now: float) -> float | None:
    """Seconds until the Job expires (<= 0: now), or None when it is not to be cleaned up
    (``processTTL``). A finished Job without a finish time cannot be timed: None, logged."""
    if not needs_cleanup(job):
        return None
    finished = finish_time(job)
    if finished is None:
        log.warning("unable to find the time when the Job finished", job=object_key(job))
        return None
    if finished > now:
        log.info("found Job finished in the future; this is likely due to time skew in the cluster, "
                 "Job cleanup will be deferred if time skew persists", job=object_key(job))
    return finished + int(job["spec"]["ttlSecondsAfterFinished"]) - now


class TTLAfterFinishedController:
    def __init__(self, manager: Manager, *, workers: int = 5, clock: Callable[[], float] = time.time) -> None:
        self.client: RestClient = manager.client_for(SERVICE_ACCOUNT)
        self.clock = clock
        self.jobs = manager.informer(R.JOBS)
        self.controller = Controller("ttl-after-finished", self.reconcile, workers=workers)
        self.jobs.add_handler(self._on_job)
        manager.add(self.controller)

    def _on_job(self, etype: str, job: Obj, old: Obj | None) -> None:
        if etype != "DELETED" and needs_cleanup(job):
            self.controller.enqueue(object_key(job))

    async def reconcile(self, key: str) -> Result | None:
        job = self.jobs.get(key)
        if job is None:
            return None
        left = time_left(job, self.clock())
        if left is None:
            return None
        if left > 0:
            return Result(requeue_after=left)
        # the cache may be stale: check the live Job before deleting it
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        try:
            fresh = await self.client.get(R.JOBS, name, ns)
        except ApiStatusError as e:
            if e.not_found:
                return None
            raise
        left = time_left(fresh, self.clock())
        if left is None:
            return None
        if left > 0:
            return Result(requeue_after=left)
        try:
            await self.client.delete(R.JOBS, name, ns, propagation_policy="Foreground",
                                     preconditions={"uid": fresh["metadata"]["uid"]})
        except ApiStatusError as e:
            if e.not_found or e.code == 409:
                return None
            raise
        log.info("cleaned up a finished Job after its TTL", job=key)
        return None


def setup(manager: Manager, workers: int = 5) -> TTLAfterFinishedController:
    return TTLAfterFinishedController(manager, workers=workers)
