"""persistentvolume-binder (kube-controller-manager's PV controller, ``pkg/controller/volume/
persistentvolume``): binds PersistentVolumeClaims to PersistentVolumes and drives both phases.

Two kinds of keys share one work queue: ``claim:<ns>/<name>`` and ``volume:<name>``; each
reconcile re-reads the caches (level-based) and writes one step at a time (the next step follows
from the watch event of the write), as Kubernetes' ``syncClaim`` / ``syncVolume`` do.

- **Claims** without ``spec.volumeName``: the smallest Available volume that fits
  (``machinery.volumes.find_matching_volume``: class, access modes, capacity, selector,
  volumeMode) is bound: the volume's ``claimRef`` (annotated ``bound-by-controller``), its phase
  Bound, the claim's ``volumeName`` (annotated ``bind-completed``/``bound-by-controller``), the
  claim's phase Bound with the volume's capacity and access modes. No volume: with a class whose
  ``volumeBindingMode`` is ``WaitForFirstConsumer`` the claim waits for the scheduler's
  ``volume.kubernetes.io/selected-node`` (then only volumes admitting that node fit); otherwise
  the claim is annotated ``volume.kubernetes.io/storage-provisioner`` with the class's
  provisioner, whose controller (here ``localpath.py`` for ``rancher.io/local-path``) creates a
  volume pre-bound to the claim.
- **Volumes**: Available without ``claimRef``; Bound while their claim is bound to them;
  Released once the claim is gone (checked against the API, not only the cache); then the
  reclaim policy: Retain keeps it Released, Delete deletes the PersistentVolume (a volume made by
  an external provisioner is left to that provisioner, which deletes its data first), Recycle is
  not supported (Failed).

Events as Kubernetes': FailedBinding, WaitForFirstConsumer, ExternalProvisioning, ClaimLost,
VolumeFailedRecycle. A failure on one object is logged and retried with backoff; the others carry on.
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
# kube-controller-manager; its ClusterRole is system:controller:persistent-volume-binder (bootstrap_policy)
SERVICE_ACCOUNT = "persistent-volume-binder"

log = get_logger(__name__)

COMPONENT = "persistentvolume-controller"
Obj = dict[str, Any]


def claim_status_for(pv: Obj) -> Obj:
    vs = V.spec(pv)
    return {"phase": "Bound", "accessModes": list(vs.get("accessModes") or []),
            "capacity": dict(vs.get("capacity") or {})}


class PersistentVolumeBinder:
    def __init__(self, manager: Manager, *, workers: int = 2) -> None:
        self.client: RestClient = manager.client_for(SERVICE_ACCOUNT)
        self.claims = manager.informer(R.PERSISTENTVOLUMECLAIMS)
        self.volumes = manager.informer(R.PERSISTENTVOLUMES)
        self.classes = manager.informer(R.STORAGECLASSES)
        self.nodes = manager.informer(R.NODES)
        self.recorder = manager.recorder(COMPONENT, SERVICE_ACCOUNT)
        self.controller = Controller("persistentvolume-binder", self.reconcile, workers=workers)
        self.claims.add_handler(self._on_claim)
        self.volumes.add_handler(self._on_volume)
        self.classes.add_handler(self._on_class)
        manager.add(self.controller)

    # -- event handlers: enqueue only ---------------------------------------------------------
    def _on_claim(self, etype: str, claim: Obj, old: Obj | None) -> None:
        self.controller.enqueue("claim:" + object_key(claim))
        vn = V.spec(claim).get("volumeName")
        if vn:
            self.controller.enqueue("volume:" + vn)
        if etype == "DELETED":  # volumes that named it are released
            for pv in self.volumes.list():
                ref = V.spec(pv).get("claimRef") or {}
                if ref.get("name") == V.meta(claim).get("name") and ref.get("namespace") == V.meta(claim).get("namespace"):
                    self.controller.enqueue("volume:" + V.meta(pv).get("name", ""))
        elif etype == "ADDED":  # a volume pre-bound to it may now bind
            for pv in self.volumes.list():
                ref = V.spec(pv).get("claimRef") or {}
                if ref.get("name") == V.meta(claim).get("name") and ref.get("namespace") == V.meta(claim).get("namespace"):
                    self.controller.enqueue("volume:" + V.meta(pv).get("name", ""))

    def _on_volume(self, etype: str, pv: Obj, old: Obj | None) -> None:
        self.controller.enqueue("volume:" + V.meta(pv).get("name", ""))
        ref = V.spec(pv).get("claimRef") or {}
        if ref.get("name"):
            self.controller.enqueue(f"claim:{ref.get('namespace', '')}/{ref['name']}")
        elif etype in ("ADDED", "MODIFIED"):
            # a newly Available volume may satisfy a pending claim
            for c in self.claims.list():
                if not V.spec(c).get("volumeName") and V.claim_class(c) == V.volume_class(pv):
                    self.controller.enqueue("claim:" + object_key(c))

    def _on_class(self, etype: str, sc: Obj, old: Obj | None) -> None:
        name = V.meta(sc).get("name")
        for c in self.claims.list():
            if not V.spec(c).get("volumeName") and V.claim_class(c) == name:
                self.controller.enqueue("claim:" + object_key(c))

    # -- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> Result | None:
        kind, _, rest = key.partition(":")
        try:
            if kind == "claim":
                return await self.sync_claim(rest)
            if kind == "volume":
                return await self.sync_volume(rest)
        except ApiStatusError as e:
            if e.conflict or e.not_found:  # the newer object is on its way through the watch
                return Result(requeue=True)
            raise
        return None

    async def sync_claim(self, key: str) -> Result | None:
        claim = self.claims.get(key)
        if claim is None:
            return None
        vn = V.spec(claim).get("volumeName")
        if not vn:
            return await self._sync_unbound_claim(claim)
        pv = self.volumes.get(vn)
        if pv is None:
            if (claim.get("status") or {}).get("phase") == "Bound":
                self.recorder.event(claim, "Warning", "ClaimLost",
                                    "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
                await self._claim_status(claim, {**(claim.get("status") or {}), "phase": "Lost"})
            else:
                self.recorder.event(claim, "Normal", "FailedBinding",
                                    f'volume "{vn}" not found')
            return None
        ref = V.spec(pv).get("claimRef") or {}
        if not ref or V.claim_ref_matches(pv, claim):
            await self._bind(claim, pv)
            return None
        if (claim.get("status") or {}).get("phase") == "Bound":
            self.recorder.event(claim, "Warning", "ClaimMisbound",
                                "Two claims are bound to the same volume, this one is bound incorrectly")
            await self._claim_status(claim, {**(claim.get("status") or {}), "phase": "Lost"})
        else:
            self.recorder.event(claim, "Warning", "FailedBinding", "volume already bound to a different claim.")
        return None

    async def _sync_unbound_claim(self, claim: Obj) -> Result | None:
        if V.meta(claim).get("deletionTimestamp"):
            return None
        cls = V.claim_class(claim)
        sc = self.classes.get(cls) if cls else None
        node: Obj | None = None
        selected = V.annotations(claim).get(V.ANN_SELECTED_NODE)
        wait = sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"
        if wait:
            if not selected:
                self.recorder.event(claim, "Normal", "WaitForFirstConsumer",
                                    "waiting for first consumer to be created before binding")
                return None
            node = self.nodes.get(selected) or {"metadata": {"name": selected}}
        pv = V.find_matching_volume(claim, self.volumes.list(), node)
        if pv is not None:
            await self._bind(claim, pv)
            return None
        if not cls:
            self.recorder.event(claim, "Normal", "FailedBinding",
                                "no persistent volumes available for this claim and no storage class is set")
            return None
        if sc is None:
            self.recorder.event(claim, "Warning", "ProvisioningFailed", f'storageclass.storage.k8s.io "{cls}" not found')
            return None
        prov = sc.get("provisioner") or ""
        if prov == "kubernetes.io/no-provisioner":
            self.recorder.event(claim, "Normal", "FailedBinding", "no persistent volumes available for this claim")
            return None
        if V.annotations(claim).get(V.ANN_STORAGE_PROVISIONER) != prov:
            new = {**claim, "metadata": {**V.meta(claim), "annotations": {
                **V.annotations(claim), V.ANN_STORAGE_PROVISIONER: prov, V.ANN_BETA_STORAGE_PROVISIONER: prov}}}
            await self.client.update(R.PERSISTENTVOLUMECLAIMS, new)
        self.recorder.event(claim, "Normal", "ExternalProvisioning",
                            f"Waiting for a volume to be created either by the external provisioner '{prov}' or "
                            "manually by the system administrator. If volume creation is delayed, please verify "
                            "that the provisioner is running and correctly registered.")
        return None

    async def _bind(self, claim: Obj, pv: Obj) -> None:
        """One step of ``bind``: volume claimRef, volume phase, claim volumeName, claim phase."""
        name = V.meta(pv).get("name", "")
        cm = V.meta(claim)
        if not V.claim_ref_matches(pv, claim) or not (V.spec(pv).get("claimRef") or {}).get("uid"):
            ann = dict(V.annotations(pv))
            if not V.spec(pv).get("claimRef"):
                ann[V.ANN_BOUND_BY_CONTROLLER] = "yes"
            new = {**pv, "metadata": {**V.meta(pv), "annotations": ann},
                   "spec": {**V.spec(pv), "claimRef": V.claim_ref(claim)}}
            await self.client.update(R.PERSISTENTVOLUMES, new)
            log.info("volume bound to claim", volume=name, claim=f"{cm.get('namespace')}/{cm.get('name')}")
            return
        if (pv.get("status") or {}).get("phase") != "Bound":
            await self.client.update(R.PERSISTENTVOLUMES, {**pv, "status": {"phase": "Bound"}}, subresource="status")
            return
        ann = dict(V.annotations(claim))
        if V.spec(claim).get("volumeName") != name or ann.get(V.ANN_BIND_COMPLETED) != "yes":
            if V.spec(claim).get("volumeName") != name:
                ann[V.ANN_BOUND_BY_CONTROLLER] = "yes"
            ann[V.ANN_BIND_COMPLETED] = "yes"
            new = {**claim, "metadata": {**cm, "annotations": ann}, "spec": {**V.spec(claim), "volumeName": name}}
            await self.client.update(R.PERSISTENTVOLUMECLAIMS, new)
            return
        want = claim_status_for(pv)
        st = claim.get("status") or {}
        if any(st.get(k) != v for k, v in want.items()):
            await self._claim_status(claim, {**st, **want})

    async def _claim_status(self, claim: Obj, status: Obj) -> None:
        await self.client.update(R.PERSISTENTVOLUMECLAIMS, {**claim, "status": status}, subresource="status")

    async def _claim_gone(self, ref: Obj) -> bool:
        """Whether the claim a ``claimRef`` names is gone (or replaced), asked of the API: the
        cache may not have a claim created a moment ago."""
        try:
            live = await self.client.get(R.PERSISTENTVOLUMECLAIMS, ref.get("name", ""), ref.get("namespace", ""))
        except ApiStatusError as e:
            if e.not_found:
                return True
            raise
        return bool(ref.get("uid")) and V.meta(live).get("uid") != ref.get("uid")

    async def sync_volume(self, name: str) -> Result | None:
        pv = self.volumes.get(name)
        if pv is None:
            return None
        ref = V.spec(pv).get("claimRef") or {}
        phase = (pv.get("status") or {}).get("phase") or "Pending"
        if not ref:
            if phase != "Available" and not V.meta(pv).get("deletionTimestamp"):
                await self._volume_phase(pv, "Available")
            return None
        claim = self.claims.get_by(ref.get("namespace") or "", ref.get("name") or "")
        if claim is None or (ref.get("uid") and V.meta(claim).get("uid") != ref.get("uid")):
            if not await self._claim_gone(ref):
                return Result(requeue_after=1.0)  # the cache is behind the API
            claim = None
        want = V.volume_phase(pv, claim)
        if claim is not None and V.spec(claim).get("volumeName") not in (None, "", name) \
                and V.annotations(pv).get(V.ANN_BOUND_BY_CONTROLLER):
            # the claim went to another volume: undo what this controller did here
            spec = {k: v for k, v in V.spec(pv).items() if k != "claimRef"}
            ann = {k: v for k, v in V.annotations(pv).items() if k != V.ANN_BOUND_BY_CONTROLLER}
            await self.client.update(R.PERSISTENTVOLUMES, {**pv, "metadata": {**V.meta(pv), "annotations": ann},
                                                           "spec": spec})
            return None
        if want != phase:
            await self._volume_phase(pv, want)
            return None
        if want == "Released":
            await self._reclaim(pv)
        return None

    async def _volume_phase(self, pv: Obj, phase: str, message: str = "") -> None:
        st: Obj = {"phase": phase}
        if message:
            st["message"] = message
        await self.client.update(R.PERSISTENTVOLUMES, {**pv, "status": st}, subresource="status")

    async def _reclaim(self, pv: Obj) -> None:
        policy = V.spec(pv).get("persistentVolumeReclaimPolicy") or "Retain"
        name = V.meta(pv).get("name", "")
        if policy == "Retain" or V.meta(pv).get("deletionTimestamp"):
            return
        if policy == "Recycle":
            msg = "Recycle is not supported by this cluster: use Retain or Delete"
            self.recorder.event(pv, "Warning", "VolumeFailedRecycle", msg)
            await self._volume_phase(pv, "Failed", msg)
            return
        provisioner = V.annotations(pv).get(V.ANN_PROVISIONED_BY)
        if provisioner:
            return  # an external provisioner deletes its volume and the data (localpath.py)
        log.info("deleting released volume", volume=name, policy=policy)
        try:
            await self.client.delete(R.PERSISTENTVOLUMES, name)
        except ApiStatusError as e:
            if not e.not_found:
                raise


def setup(manager: Manager, workers: int = 2) -> PersistentVolumeBinder:
    return PersistentVolumeBinder(manager, workers=workers)
