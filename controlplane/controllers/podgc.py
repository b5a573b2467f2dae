"""Pod garbage collector (kube-controller-manager's ``podgc``): removes pods nobody else will.

Every ``period`` (20 s, env ``CONTROLPLANE_PODGC_PERIOD``) it reconciles the pod cache:

- **orphaned pods**: bound to a Node that does not exist. A node name missing from the node
  cache is quarantined for ``quarantine`` seconds (40 s, env ``CONTROLPLANE_PODGC_QUARANTINE``:
  the informer may lag a node's creation), then confirmed with a GET; its pods are then marked
  ``Failed`` with the ``DisruptionTarget`` condition (reason ``DeletionByPodGC``, "PodGC: node
  no longer exists") and deleted with grace period 0, as Kubernetes does. This is what frees a
  pod stuck Terminating on a node that was removed.
- **unscheduled terminating pods**: a deletionTimestamp but no node: nobody runs them, so
  they are marked ``Failed`` (unless finished; no condition, as Kubernetes) and deleted with
  grace period 0. The phase matters to a Job that replaces only Failed pods: such a pod,
  kept by the Job's tracking finalizer, is then counted and released.
- **terminated pods over the threshold**: when more than ``threshold`` pods are Succeeded or
  Failed (``--terminated-pod-gc-threshold``, default 12500; env
  ``CONTROLPLANE_TERMINATED_POD_GC_THRESHOLD``) the oldest by creation time are deleted down
  to the threshold.
- **Job-tracking finalizers of orphans**: a pod carrying ``batch.kubernetes.io/job-tracking``
  whose controlling Job is gone (not in the Job cache, then confirmed with a GET: 404 or another
  uid), or with no controller at all, has that finalizer removed, so it can leave storage. The
  Job controller does the same from its orphan-pod queue as soon as it sees such a pod; this
  sweep is the safety net for pods it missed or when it does not run (``--controllers
  '*,-job'``). Pods controlled by something other than a Job keep it.

``plan`` is the pure part (unit-tested); ``reconcile`` acts on it. Neighbours: the node
lifecycle controller (evicts pods of unreachable nodes), the node agent (deletes the pods it
ran with grace 0 once they stopped).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.client.retry import update_with_retry
from controlplane.controllers import controllerutil as cu
from controlplane.controllers import jobtracking as jt
from controlplane.log import get_logger
from controlplane.machinery.timestamps import parse_time_or_none, rfc3339

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:pod-garbage-collector (bootstrap_policy)
SERVICE_ACCOUNT = "pod-garbage-collector"

log = get_logger(__name__)

KEY = "podgc"
DEFAULT_THRESHOLD = 12500


@dataclass
class Plan:
    orphaned: list[dict] = field(default_factory=list)  # confirmed-missing node: mark Failed, force delete
    unscheduled_terminating: list[dict] = field(default_factory=list)
    over_threshold: list[dict] = field(default_factory=list)
    suspect_nodes: set[str] = field(default_factory=set)  # missing but still quarantined
    tracking_orphans: list[dict] = field(default_factory=list)  # job-tracking finalizer, Job gone


def _terminated(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def job_gone(pod: dict, jobs: dict[str, str]) -> bool:
    """The pod carries the Job tracking finalizer and no existing Job controls it: its
    controller is a batch/v1 Job missing from ``jobs`` (``namespace/name`` -> uid) or with
    another uid, or it has no controller."""
    if not jt.has_tracking_finalizer(pod):
        return False
    ref = cu.controller_ref(pod)
    if ref is None:
        return True
    if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
        return False
    return jobs.get(f"{(pod.get('metadata') or {}).get('namespace')}/{ref.get('name')}") != ref.get("uid")


def plan(pods: Iterable[dict], nodes: set[str], missing_since: dict[str, float], now: float,
         quarantine: float, threshold: int, jobs: dict[str, str] | None = None) -> Plan:
    """What to collect. ``missing_since`` (node -> when first seen missing) is updated in
    place: names that exist again are dropped, new ones start their quarantine. ``jobs``
    (``namespace/name`` -> uid; None: not looked at) finds pods whose Job-tracking finalizer
    nobody will remove."""
    out = Plan()
    pods = list(pods)
    if jobs is not None:
        out.tracking_orphans = [p for p in pods if job_gone(p, jobs)]
    for name in [n for n in missing_since if n in nodes]:
        del missing_since[name]
    for p in pods:
        md, spec = p.get("metadata") or {}, p.get("spec") or {}
        node = spec.get("nodeName")
        if not node:
            if md.get("deletionTimestamp"):
                out.unscheduled_terminating.append(p)
            continue
        if node in nodes:
            continue
        since = missing_since.setdefault(node, now)
        if now - since >= quarantine:
            out.orphaned.append(p)
        else:
            out.suspect_nodes.add(node)
    if threshold > 0:
        done = [p for p in pods if _terminated(p) and not (p.get("metadata") or {}).get("deletionTimestamp")]
        excess = len(done) - threshold
        if excess > 0:
            done.sort(key=lambda p: (parse_time_or_none((p.get("metadata") or {}).get("creationTimestamp")) or 0.0,
                                     (p.get("metadata") or {}).get("name") or ""))
            out.over_threshold = done[:excess]
    return out


def disruption_condition(now: float) -> dict:
    return {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists", "lastTransitionTime": rfc3339(now)}


class PodGCController:
    def __init__(self, manager: Manager, *, period: float | None = None, quarantine: float | None = None,
                 threshold: int | None = None, clock: Callable[[], float] = time.time) -> None:
        env = os.environ.get
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.period = period if period is not None else float(env("CONTROLPLANE_PODGC_PERIOD", "20"))
        self.quarantine = quarantine if quarantine is not None else float(env("CONTROLPLANE_PODGC_QUARANTINE", "40"))
        self.threshold = threshold if threshold is not None else int(
            env("CONTROLPLANE_TERMINATED_POD_GC_THRESHOLD", str(DEFAULT_THRESHOLD)))
        self.clock = clock
        self.pod_inf = manager.informer(R.PODS)
        self.node_inf = manager.informer(R.NODES)
        self.job_inf = manager.informer(R.JOBS)
        self.missing_since: dict[str, float] = {}
        self.controller = Controller("podgc", self.reconcile, workers=1)
        self.controller.enqueue(KEY)
        manager.add(self.controller)

    async def reconcile(self, key: str) -> Result | None:
        now = self.clock()
        nodes = set(self.node_inf.keys())
        jobs = {object_key(j): j["metadata"].get("uid", "") for j in self.job_inf.list()}
        p = plan(self.pod_inf.list(), nodes, self.missing_since, now, self.quarantine, self.threshold, jobs)
        for pod in p.tracking_orphans:
            await self._release_tracking(pod)
        gone: set[str] = set()
        for node in {(x.get("spec") or {}).get("nodeName") for x in p.orphaned}:
            if await self._node_exists(node):
                self.missing_since.pop(node, None)  # the cache lagged: not an orphan
            else:
                gone.add(node)
        for pod in p.orphaned:
            if (pod.get("spec") or {}).get("nodeName") in gone:
                await self._mark_failed(pod, now)
                await self._force_delete(pod, "orphaned pod: its node no longer exists")
        for pod in p.unscheduled_terminating:
            await self._mark_failed(pod, now, condition=False)  # as upstream: a Job waiting for Failed sees it
            await self._force_delete(pod, "unscheduled pod being deleted")
        for pod in p.over_threshold:
            await self._force_delete(pod, f"terminated pods above the threshold of {self.threshold}")
        return Result(requeue_after=self.period)

    async def _release_tracking(self, pod: dict) -> None:
        """Remove the Job-tracking finalizer once a live GET confirms the Job is gone (the
        Job cache may lag a new Job)."""
        md = pod["metadata"]
        ref = cu.controller_ref(pod)
        if ref is not None:
            try:
                job = await self.client.get(R.JOBS, ref["name"], md.get("namespace"))
                if job["metadata"].get("uid") == ref.get("uid"):
                    return
            except ApiStatusError as e:
                if not e.not_found:
                    raise
        if await cu.remove_finalizer(self.client, R.PODS, pod, jt.FINALIZER):
            log.info("job-tracking finalizer removed", pod=f"{md.get('namespace')}/{md['name']}",
                     reason="its Job no longer exists")

    async def _node_exists(self, name: str) -> bool:
        try:
            await self.client.get(R.NODES, name)
            return True
        except ApiStatusError as e:
            if e.not_found:
                return False
            raise

    async def _mark_failed(self, pod: dict, now: float, condition: bool = True) -> None:
        """``markFailedAndDeletePodWithCondition``'s status part: phase Failed unless the pod
        finished, with the ``DisruptionTarget`` condition when ``condition``."""
        md = pod["metadata"]
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return

        def mutate(p: dict) -> None:
            if (p.get("metadata") or {}).get("uid") != md.get("uid"):
                raise ApiStatusError(404, "NotFound", "pod was replaced")
            st = p.setdefault("status", {})
            if st.get("phase") not in ("Succeeded", "Failed"):
                st["phase"] = "Failed"
            if condition:
                conds = [c for c in st.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
                st["conditions"] = conds + [disruption_condition(now)]

        try:
            await update_with_retry(self.client, R.PODS, md["name"], md.get("namespace"), mutate, subresource="status")
        except ApiStatusError as e:
            if not e.not_found:
                raise

    async def _force_delete(self, pod: dict, why: str) -> None:
        md = pod["metadata"]
        try:
            await self.client.delete(R.PODS, md["name"], md.get("namespace"), grace_period_seconds=0,
                                     preconditions={"uid": md.get("uid")})
            log.info("pod garbage-collected", pod=f"{md.get('namespace')}/{md['name']}", reason=why)
        except ApiStatusError as e:
            if not (e.not_found or e.code == 409):
                raise


def setup(manager: Manager, workers: int = 1) -> PodGCController:
    return PodGCController(manager)
