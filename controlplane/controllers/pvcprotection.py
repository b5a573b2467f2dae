"""pvc-protection (kube-controller-manager's ``pkg/controller/volume/pvcprotection``): a deleted
PersistentVolumeClaim keeps its ``kubernetes.io/pvc-protection`` finalizer (added by the
StorageObjectInUseProtection admission) while a pod that is not terminated (neither Succeeded
nor Failed) names it in a ``persistentVolumeClaim`` volume, so data is not pulled from under a
running pod. When the pod cache says no pod uses it, the API is asked too (the cache may not
have a pod created a moment ago), as Kubernetes does; then the finalizer is removed and the
claim leaves storage (and the persistentvolume-binder releases its volume).
"""

from __future__ import annotations

from typing import Any

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import RestClient
from controlplane.controllers import controllerutil as cu
from controlplane.log import get_logger
from controlplane.machinery import volumes as V

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:pvc-protection-controller (bootstrap_policy)
SERVICE_ACCOUNT = "pvc-protection-controller"

log = get_logger(__name__)

Obj = dict[str, Any]


def pods_using(claim_name: str, pods: list[Obj]) -> list[Obj]:
    """The pods that keep a claim in use: not terminated, naming it in a volume."""
    return [p for p in pods if not V.pod_is_terminal(p) and claim_name in V.pod_claim_names(p)]


class PVCProtectionController:
    def __init__(self, manager: Manager, *, workers: int = 1) -> None:
        self.client: RestClient = manager.client_for(SERVICE_ACCOUNT)
        self.claims = manager.informer(R.PERSISTENTVOLUMECLAIMS)
        self.pods = manager.informer(R.PODS)
        self.controller = Controller("pvc-protection", self.reconcile, workers=workers)
        self.claims.add_handler(self._on_claim)
        self.pods.add_handler(self._on_pod)
        manager.add(self.controller)

    def _on_claim(self, etype: str, claim: Obj, old: Obj | None) -> None:
        if V.meta(claim).get("deletionTimestamp") and V.PVC_PROTECTION in (V.meta(claim).get("finalizers") or []):
            self.controller.enqueue(object_key(claim))

    def _on_pod(self, etype: str, pod: Obj, old: Obj | None) -> None:
        if etype != "DELETED" and not V.pod_is_terminal(pod):
            return
        ns = V.meta(pod).get("namespace") or ""
        for name in V.pod_claim_names(pod):
            self.controller.enqueue(f"{ns}/{name}")

    async def reconcile(self, key: str) -> Result | None:
        claim = self.claims.get(key)
        if claim is None or not V.meta(claim).get("deletionTimestamp"):
            return None
        finalizers = list(V.meta(claim).get("finalizers") or [])
        if V.PVC_PROTECTION not in finalizers:
            return None
        ns, name = V.meta(claim).get("namespace") or "", V.meta(claim).get("name") or ""
        if pods_using(name, self.pods.list(ns)):
            return None  # a pod event enqueues the claim again
        live = (await self.client.list(R.PODS, ns)).get("items") or []
        if pods_using(name, live):
            return Result(requeue_after=1.0)
        if not await cu.remove_finalizer(self.client, R.PERSISTENTVOLUMECLAIMS, claim, V.PVC_PROTECTION):
            return None
        log.info("removed pvc-protection finalizer", claim=key)
        return None


def setup(manager: Manager, workers: int = 1) -> PVCProtectionController:
    return PVCProtectionController(manager, workers=workers)
