"""local-path-provisioner (k3s's ``rancher/local-path-provisioner``, provisioner name
``rancher.io/local-path``): dynamic volumes on the node a pod was scheduled to.

A claim the persistentvolume-binder annotated ``volume.kubernetes.io/storage-provisioner:
rancher.io/local-path`` and the scheduler annotated ``volume.kubernetes.io/selected-node``
(the ``local-path`` class is ``WaitForFirstConsumer``) gets a PersistentVolume ``pvc-<uid>``:
a ``hostPath`` directory ``<storage dir>/pvc-<uid>_<ns>_<name>`` (``DirectoryOrCreate``),
pinned to the node by ``nodeAffinity``, pre-bound to the claim, with the class's reclaim policy;
the binder then binds the two. The storage dir is the one the node's agent announces on its
Node (annotation ``storage.controlplane.io/local-path-dir``: ``<agent root>/storage``).

**Who touches the disk**: never this controller (it may run on another machine than the node).
The node agent creates the directory when a pod mounting the volume starts (``DirectoryOrCreate``)
and removes the directories of its local-path volumes whose PersistentVolume is gone
(``agent/localstorage.py``). A Released volume with reclaim policy Delete is deleted here, so its
directory goes with it; with Retain it stays, data included, until an administrator deletes it.
"""

from __future__ import annotations

from typing import Any

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger
from controlplane.machinery import volumes as V

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:local-path-provisioner (bootstrap_policy)
SERVICE_ACCOUNT = "local-path-provisioner"

log = get_logger(__name__)

COMPONENT = "rancher.io/local-path_controlplane"
Obj = dict[str, Any]


class LocalPathProvisioner:
    def __init__(self, manager: Manager, *, workers: int = 1) -> None:
        self.client: RestClient = manager.client_for(SERVICE_ACCOUNT)
        self.claims = manager.informer(R.PERSISTENTVOLUMECLAIMS)
        self.volumes = manager.informer(R.PERSISTENTVOLUMES)
        self.classes = manager.informer(R.STORAGECLASSES)
        self.nodes = manager.informer(R.NODES)
        self.recorder = manager.recorder(COMPONENT, SERVICE_ACCOUNT)
        self.controller = Controller("local-path-provisioner", self.reconcile, workers=workers)
        self.claims.add_handler(lambda t, o, old: self.controller.enqueue("claim:" + object_key(o)))
        self.volumes.add_handler(self._on_volume)
        manager.add(self.controller)

    def _on_volume(self, etype: str, pv: Obj, old: Obj | None) -> None:
        if V.annotations(pv).get(V.ANN_PROVISIONED_BY) == V.LOCAL_PATH_PROVISIONER:
            self.controller.enqueue("volume:" + V.meta(pv).get("name", ""))

    async def reconcile(self, key: str) -> Result | None:
        kind, _, rest = key.partition(":")
        try:
            if kind == "claim":
                return await self.provision(rest)
            if kind == "volume":
                return await self.delete_released(rest)
        except ApiStatusError as e:
            if e.conflict:
                return Result(requeue=True)
            raise
        return None

    async def provision(self, key: str) -> Result | None:
        claim = self.claims.get(key)
        if claim is None or V.meta(claim).get("deletionTimestamp") or V.spec(claim).get("volumeName"):
            return None
        if V.annotations(claim).get(V.ANN_STORAGE_PROVISIONER) != V.LOCAL_PATH_PROVISIONER:
            return None
        sc = self.classes.get(V.claim_class(claim))
        if sc is None or sc.get("provisioner") != V.LOCAL_PATH_PROVISIONER:
            return None
        name = V.local_path_volume_name(claim)
        if self.volumes.get(name) is not None:
            return None
        node_name = V.annotations(claim).get(V.ANN_SELECTED_NODE)
        if not node_name:
            self.recorder.event(claim, "Warning", "ProvisioningFailed", "configuration error, no node was specified")
            return None
        node = self.nodes.get(node_name)
        base = V.annotations(node).get(V.ANN_LOCAL_PATH_DIR) if node else None
        if not base:
            self.recorder.event(claim, "Warning", "ProvisioningFailed",
                                f'failed to provision volume: node "{node_name}" reports no local-path storage '
                                f"directory (annotation {V.ANN_LOCAL_PATH_DIR})")
            return Result(requeue_after=5.0)
        modes = V.spec(claim).get("accessModes") or []
        if any(m not in ("ReadWriteOnce", "ReadWriteOncePod") for m in modes):
            self.recorder.event(claim, "Warning", "ProvisioningFailed",
                                "failed to provision volume: Only support ReadWriteOnce, ReadWriteOncePod access mode")
            return None
        self.recorder.event(claim, "Normal", "Provisioning",
                            f'External provisioner is provisioning volume for claim "{key}"')
        pv = V.local_path_volume(claim, sc, node_name, base)
        try:
            await self.client.create(R.PERSISTENTVOLUMES, pv)
        except ApiStatusError as e:
            if not e.already_exists:
                self.recorder.event(claim, "Warning", "ProvisioningFailed", f"failed to provision volume: {e}")
                raise
            return None
        log.info("local-path volume provisioned", claim=key, volume=name, node=node_name,
                 path=pv["spec"]["hostPath"]["path"])
        self.recorder.event(claim, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {name}")
        return None

    async def delete_released(self, name: str) -> Result | None:
        pv = self.volumes.get(name)
        if pv is None or V.meta(pv).get("deletionTimestamp"):
            return None
        if (pv.get("status") or {}).get("phase") != "Released" or \
                V.spec(pv).get("persistentVolumeReclaimPolicy") != "Delete":
            return None
        log.info("deleting released local-path volume", volume=name)
        try:
            await self.client.delete(R.PERSISTENTVOLUMES, name)
        except ApiStatusError as e:
            if not e.not_found:
                raise
        return None


def setup(manager: Manager, workers: int = 1) -> LocalPathProvisioner:
    return LocalPathProvisioner(manager, workers=workers)
