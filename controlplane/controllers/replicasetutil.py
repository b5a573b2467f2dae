"""The ReplicaSet logic, shared by the ReplicaSet and the ReplicationController controllers (as
kube-controller-manager's replication manager reuses its ReplicaSet controller).

Level-based ``reconcile(key)``: read the owner and the pods from the informer caches, claim
pods (adopt matching orphans, release owned pods that stopped matching), then — only when the
expectations from the previous round are satisfied, so a lagging cache never causes
over-creation — create the missing pods (slow-start batches 1, 2, 4, … up to ``burst``) or
delete the surplus, least valuable first (``podutil.rank_for_deletion``). Finally the status
(replicas, fullyLabeledReplicas, readyReplicas, availableReplicas, observedGeneration,
ReplicaFailure condition) is written when it changed. Events: SuccessfulCreate,
SuccessfulDelete, FailedCreate, FailedDelete. What differs between the two kinds is a
``ReplicaKind``. Neighbours: ``replicaset``, ``replicationcontroller`` (the controllers),
``controllerutil``, ``podutil``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.resources import Resource
from controlplane.client.rest import ApiStatusError
from controlplane.controllers import controllerutil as cu
from controlplane.controllers import podutil as pu
from controlplane.log import get_logger
from controlplane.machinery.timestamps import now_rfc3339

log = get_logger(__name__)

BURST_REPLICAS = 500


def fully_labeled(pod: dict, template_labels: dict[str, str]) -> bool:
    labels = cu.labels_of(pod)
    return all(labels.get(k) == v for k, v in template_labels.items())


def compute_status(rs: dict, pods: list[dict], now: float, failure: str | None = None) -> dict:
    """The ReplicaSet status for its claimed active pods (pure)."""
    spec = rs.get("spec") or {}
    tlabels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    status: dict = {
        "replicas": len(pods),
        "fullyLabeledReplicas": sum(1 for p in pods if fully_labeled(p, tlabels)),
        "readyReplicas": sum(1 for p in pods if pu.is_pod_ready(p)),
        "availableReplicas": sum(1 for p in pods if pu.is_pod_available(p, min_ready, now)),
        "observedGeneration": (rs.get("metadata") or {}).get("generation", 1),
    }
    old = [c for c in (rs.get("status") or {}).get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    if failure:
        old.append({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": failure,
                    "lastTransitionTime": now_rfc3339()})
    if old:
        status["conditions"] = old
    return status


def status_differs(a: dict, b: dict) -> bool:
    keys = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration")
    if any(int(a.get(k) or 0) != int(b.get(k) or 0) for k in keys):
        return True
    strip = lambda cs: [(c.get("type"), c.get("status"), c.get("reason")) for c in cs or []]  # noqa: E731
    return strip(a.get("conditions")) != strip(b.get("conditions"))


@dataclass(frozen=True)
class ReplicaKind:
    """What differs between the controllers this module runs: the owner resource, its kind
    (owner references), the controller's queue/metrics name, its Events' source, and how
    ``spec.selector`` reads (a LabelSelector, or an RC's equality map)."""

    resource: Resource
    name: str
    component: str
    selector: Callable[[dict | None], Callable[[dict], bool]]
    # the ServiceAccount it writes as with --use-service-account-credentials (kube-system;
    # ClusterRole system:controller:<it>), as kube-controller-manager names it
    service_account: str

    @property
    def kind(self) -> str:
        return self.resource.kind


class ReplicaManager:
    """Keeps ``spec.replicas`` active pods for each owner of ``kind`` (see the module docstring)."""

    def __init__(self, manager: Manager, kind: ReplicaKind, *, workers: int = 5,
                 burst: int = BURST_REPLICAS) -> None:
        self.kind = kind
        self.client = manager.client_for(kind.service_account)
        self.rs_inf = manager.informer(kind.resource)
        self.pod_inf = manager.informer(R.PODS)
        self.recorder = manager.recorder(kind.component, kind.service_account)
        self.expectations = cu.Expectations()
        self.burst = burst
        self.failures: dict[str, str] = {}
        self.controller = Controller(kind.name, self.reconcile, workers=workers)
        self.rs_inf.add_handler(self._on_rs)
        self.pod_inf.add_handler(self._on_pod)
        manager.add(self.controller)

    # -- event handlers (enqueue only) ----------------------------------------------------

    def _on_rs(self, etype: str, obj: dict, old: dict | None) -> None:
        self.controller.enqueue(object_key(obj))

    def _rs_keys_for_orphan(self, pod: dict) -> list[str]:
        ns = pod["metadata"].get("namespace")
        labels = cu.labels_of(pod)
        return [object_key(rs) for rs in self.rs_inf.list(ns)
                if self.kind.selector((rs.get("spec") or {}).get("selector"))(labels)]

    def _owner_key(self, pod: dict) -> str | None:
        ref = cu.controller_ref(pod)
        if ref is None or ref.get("kind") != self.kind.kind:
            return None
        rs = self.rs_inf.get_by(pod["metadata"].get("namespace"), ref["name"])
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return None
        return object_key(rs)

    def _on_pod(self, etype: str, pod: dict, old: dict | None) -> None:
        ref = cu.controller_ref(pod)
        key = self._owner_key(pod)
        uid = pod["metadata"].get("uid", "")
        if etype == "ADDED":
            if key:
                if pu.is_terminating(pod):
                    self.expectations.deletion_observed(key, uid)
                else:
                    self.expectations.creation_observed(key)
                self.controller.enqueue(key)
            elif ref is None:
                for k in self._rs_keys_for_orphan(pod):
                    self.controller.enqueue(k)
        elif etype == "DELETED":
            if key:
                self.expectations.deletion_observed(key, uid)
                self.controller.enqueue(key)
        else:
            if key and pu.is_terminating(pod) and not (old and pu.is_terminating(old)):
                self.expectations.deletion_observed(key, uid)
            if old is not None:
                old_ref = cu.controller_ref(old)
                if old_ref and (ref is None or old_ref.get("uid") != ref.get("uid")):
                    okey = self._owner_key(old)
                    if okey:
                        self.controller.enqueue(okey)
            if key:
                self.controller.enqueue(key)
            elif ref is None and (old is None or cu.labels_of(old) != cu.labels_of(pod) or etype == "SYNC"):
                for k in self._rs_keys_for_orphan(pod):
                    self.controller.enqueue(k)

    # -- reconcile ------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        rs = self.rs_inf.get(key)
        if rs is None:
            self.expectations.delete(key)
            self.failures.pop(key, None)
            return None
        ns = rs["metadata"].get("namespace")
        match = self.kind.selector((rs.get("spec") or {}).get("selector"))
        candidates = [p for p in self.pod_inf.list(ns) if pu.is_pod_active(p)]
        pods = await cu.claim(self.client, R.PODS, rs, candidates, match, self.kind.resource)
        manage_error: Exception | None = None
        if self.expectations.satisfied(key) and not pu.is_terminating(rs):
            try:
                gone = await self._manage(rs, key, pods)
                pods = [p for p in pods if p["metadata"].get("uid") not in gone]
            except ApiStatusError as e:
                manage_error = e
        now = time.time()
        status = compute_status(rs, pods, now, self.failures.get(key))
        if status_differs(rs.get("status") or {}, status):
            await self._write_status(rs, status)
        if manage_error is not None:
            raise manage_error
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and status["readyReplicas"] != status["availableReplicas"]:
            return Result(requeue_after=float(min_ready))
        return None

    async def _write_status(self, rs: dict, status: dict) -> None:
        """Merge-patch the status subresource (status is ours alone; no resourceVersion race)."""
        try:
            await self.client.patch(self.kind.resource, rs["metadata"]["name"], {"status": status},
                                    rs["metadata"].get("namespace"), subresource="status")
        except ApiStatusError as e:
            if not e.not_found:
                raise

    async def _manage(self, rs: dict, key: str, pods: list[dict]) -> set[str]:
        """Create or delete pods; returns the uids of the pods deleted (not in the status)."""
        want = int((rs.get("spec") or {}).get("replicas", 1) or 0)
        diff = len(pods) - want
        if diff < 0:
            await self._create(rs, key, min(-diff, self.burst))
        elif diff > 0:
            victims = pu.rank_for_deletion(pods)[: min(diff, self.burst)]
            await self._delete(rs, key, victims)
            return {p["metadata"]["uid"] for p in victims}
        return set()

    async def _create(self, rs: dict, key: str, n: int) -> None:
        """``manageReplicas``' creates: ``slowStartBatch``; the creations that failed or were
        never tried are not expected (the next sync tries again from a batch of one)."""
        self.expectations.expect_creations(key, n)
        template = (rs.get("spec") or {}).get("template") or {}

        async def one(_: int) -> None:
            try:
                await self._create_one(rs, template)
            except ApiStatusError as e:
                if cu.is_namespace_terminating(e):
                    return  # every later create would fail too; the ReplicaSet is going
                self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {e.message}")
                raise

        out = await cu.slow_start_batch(n, one)
        if out.unobserved:
            self.expectations.lower_expected_creations(key, out.unobserved)
        if out.errors:
            err = out.errors[0]
            msg = cu.error_text(err)
            self.failures[key] = msg
            if not isinstance(err, ApiStatusError):
                self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {msg}")
            raise err if isinstance(err, ApiStatusError) else ApiStatusError(500, "InternalError", msg)
        self.failures.pop(key, None)

    async def _create_one(self, rs: dict, template: dict) -> dict:
        pod = cu.pod_from_template(template, rs)
        created = await self.client.create(R.PODS, pod, rs["metadata"].get("namespace"))
        self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        return created

    async def _delete(self, rs: dict, key: str, victims: list[dict]) -> None:
        self.expectations.expect_deletions(key, {p["metadata"]["uid"] for p in victims})
        ns = rs["metadata"].get("namespace")

        async def one(p: dict) -> None:
            name, uid = p["metadata"]["name"], p["metadata"]["uid"]
            try:
                await self.client.delete(R.PODS, name, ns, preconditions={"uid": uid})
                self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
            except ApiStatusError as e:
                self.expectations.deletion_observed(key, uid)
                if e.not_found or e.code == 409:
                    return
                self.recorder.event(rs, "Warning", "FailedDelete", f"Error deleting pod {name}: {e.message}")
                raise

        results = await asyncio.gather(*(one(p) for p in victims), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

