"""pv-protection (kube-controller-manager's ``pkg/controller/volume/pvprotection``): a deleted
PersistentVolume keeps its ``kubernetes.io/pv-protection`` finalizer (added by the
StorageObjectInUseProtection admission) while it is Bound to a claim; once it is not (the claim
was deleted and the volume Released, or it was never bound) the finalizer is removed and the
volume leaves storage. For a local-path volume that is when its node agent removes the data
directory (``agent/localstorage.py``).
"""

from __future__ import annotations

from typing import Any

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.manager import Manager
from controlplane.client.rest import RestClient
from controlplane.controllers import controllerutil as cu
from controlplane.log import get_logger
from controlplane.machinery import volumes as V

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:pv-protection-controller (bootstrap_policy)
SERVICE_ACCOUNT = "pv-protection-controller"

log = get_logger(__name__)

Obj = dict[str, Any]


def volume_in_use(pv: Obj) -> bool:
    """Kubernetes' ``isBeingUsed``: a volume is in use while its phase is Bound."""
    return (pv.get("status") or {}).get("phase") == "Bound"


class PVProtectionController:
    def __init__(self, manager: Manager, *, workers: int = 1) -> None:
        self.client: RestClient = manager.client_for(SERVICE_ACCOUNT)
        self.volumes = manager.informer(R.PERSISTENTVOLUMES)
        self.controller = Controller("pv-protection", self.reconcile, workers=workers)
        self.volumes.add_handler(self._on_volume)
        manager.add(self.controller)

    def _on_volume(self, etype: str, pv: Obj, old: Obj | None) -> None:
        if V.meta(pv).get("deletionTimestamp") and V.PV_PROTECTION in (V.meta(pv).get("finalizers") or []):
            self.controller.enqueue(V.meta(pv).get("name", ""))

    async def reconcile(self, key: str) -> Result | None:
        pv = self.volumes.get(key)
        if pv is None or not V.meta(pv).get("deletionTimestamp"):
            return None
        finalizers = list(V.meta(pv).get("finalizers") or [])
        if V.PV_PROTECTION not in finalizers or volume_in_use(pv):
            return None
        if not await cu.remove_finalizer(self.client, R.PERSISTENTVOLUMES, pv, V.PV_PROTECTION):
            return None
        log.info("removed pv-protection finalizer", volume=key)
        return None


def setup(manager: Manager, workers: int = 1) -> PVProtectionController:
    return PVProtectionController(manager, workers=workers)
