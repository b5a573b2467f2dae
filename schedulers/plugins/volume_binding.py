"""VolumeBinding (kube-scheduler's ``volumebinding`` plugin): pods with PersistentVolumeClaims go
only to nodes their volumes can reach, and a ``WaitForFirstConsumer`` claim learns its node.

- PreFilter: a pod without ``persistentVolumeClaim`` volumes is skipped (one pass over its
  volumes, nothing else: the simulated nodes and the benchmarks never pay more). Otherwise every
  claim must exist (``persistentvolumeclaim "x" not found``, unresolvable, as Kubernetes) and not
  be being deleted; a claim of an ``Immediate`` class that is still unbound rejects the pod
  (``pod has unbound immediate PersistentVolumeClaims``) until the binder binds it.
- Filter: a node must satisfy the ``nodeAffinity`` of every bound claim's volume (``node(s) had
  volume node affinity conflict``); for each unbound ``WaitForFirstConsumer`` claim, a static
  volume admitting the node must fit, or the class's provisioner must be able to make one there
  (local-path: a node whose agent announces its storage dir; ``node(s) didn't find available
  persistent volumes to bind``).
- PreBind: the unbound ``WaitForFirstConsumer`` claims get ``volume.kubernetes.io/selected-node``
  (the persistentvolume-binder then binds a fitting static volume of that node, or the class's
  provisioner creates one there), and the binding of the pod waits until every claim is Bound
  (``bindTimeoutSeconds``, default 600 as kube-scheduler), so the node agent finds bound claims.

The claims, volumes and classes come from the plugin's own informers, started by ``run`` with
the scheduler; their events move pods this plugin rejected back to the active queue. Pure
matching rules: ``controlplane.machinery.volumes``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from controlplane.client import resources
from controlplane.client.informer import Informer
from controlplane.client.rest import ApiStatusError
from controlplane.machinery import volumes as V
from schedulers.framework.interface import FilterResult, Plugin, Status
from schedulers.framework.registry import register

AFFINITY_CONFLICT = "node(s) had volume node affinity conflict"
NO_VOLUME = "node(s) didn't find available persistent volumes to bind"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"


class _State:
    __slots__ = ("bound", "delayed")

    def __init__(self) -> None:
        self.bound: list[dict] = []      # the volumes of bound claims
        self.delayed: list[dict] = []    # unbound WaitForFirstConsumer claims


def _node_obj(info: Any) -> dict:
    obj = getattr(info, "obj", None)
    if isinstance(obj, dict):
        return obj
    return {"metadata": {"name": getattr(info, "name", ""), "labels": getattr(info, "labels", {}) or {},
                         "annotations": getattr(info, "annotations", {}) or {}}}


def can_provision(sc: dict | None, node: dict) -> bool:
    """Whether the class's provisioner can make a volume on ``node``: local-path only where the
    node's agent announces its storage dir (simulated nodes do not); others anywhere."""
    prov = (sc or {}).get("provisioner") or "kubernetes.io/no-provisioner"
    if prov == "kubernetes.io/no-provisioner":
        return False
    if prov == V.LOCAL_PATH_PROVISIONER:
        return bool(V.annotations(node).get(V.ANN_LOCAL_PATH_DIR))
    return True


@register
class VolumeBinding(Plugin):
    name = "VolumeBinding"
    events = ("PersistentVolumeClaim/Add", "PersistentVolumeClaim/Update", "PersistentVolume/Add",
              "PersistentVolume/Update", "StorageClass/Add", "Node/Add", "Node/Update")

    def __init__(self, args: dict[str, Any] | None = None, handle: Any = None) -> None:
        super().__init__(args, handle)
        self.bind_timeout = float(self.args.get("bindTimeoutSeconds", 600))
        self.claims: Informer | None = None
        self.volumes: Informer | None = None
        self.classes: Informer | None = None

    # -- caches -------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        client = getattr(self.handle, "client", None)
        if client is None:
            return
        self.claims = Informer(client, resources.PERSISTENTVOLUMECLAIMS)
        self.volumes = Informer(client, resources.PERSISTENTVOLUMES, indexes=False)
        self.classes = Informer(client, resources.STORAGECLASSES, indexes=False)
        for inf, kind in ((self.claims, "PersistentVolumeClaim"), (self.volumes, "PersistentVolume"),
                          (self.classes, "StorageClass")):
            inf.add_handler(self._mover(kind))
        await asyncio.gather(*(inf.start(stop) for inf in (self.claims, self.volumes, self.classes)))

    def _mover(self, kind: str):  # noqa: ANN202 - an informer handler
        def on(etype: str, obj: dict, old: dict | None) -> None:
            queue = getattr(self.handle, "queue", None)
            if queue is not None and etype in ("ADDED", "MODIFIED"):
                queue.on_event(f"{kind}/{'Add' if etype == 'ADDED' else 'Update'}")
        return on

    def _synced(self) -> bool:
        return all(inf is not None and inf.has_synced() for inf in (self.claims, self.volumes, self.classes))

    # -- extension points ---------------------------------------------------------------------
    def pre_filter(self, cs, pod, snap) -> Status | None:
        names = V.pod_claim_names(pod.obj)
        if not names:
            return Status.skip()
        if not self._synced():
            return Status.unschedulable("waiting for the volume caches to sync")
        assert self.claims is not None and self.volumes is not None and self.classes is not None
        st = _State()
        for name in names:
            claim = self.claims.get_by(pod.namespace, name)
            if claim is None:
                return Status.unschedulable(f'persistentvolumeclaim "{name}" not found', unresolvable=True)
            if V.meta(claim).get("deletionTimestamp"):
                return Status.unschedulable(f'persistentvolumeclaim "{name}" is being deleted', unresolvable=True)
            vn = V.spec(claim).get("volumeName")
            if vn:
                pv = self.volumes.get(vn)
                if pv is None:
                    return Status.unschedulable(f'pvc(s) bound to non-existent pv(s)', unresolvable=True)
                st.bound.append(pv)
                continue
            sc = self.classes.get(V.claim_class(claim)) if V.claim_class(claim) else None
            if sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer":
                st.delayed.append(claim)
            else:
                return Status.unschedulable(UNBOUND_IMMEDIATE, unresolvable=True)
        cs[self.name] = st
        return None

    def filter(self, cs, pod, snap, idx: np.ndarray) -> FilterResult:
        st: _State | None = cs.get(self.name)
        if st is None:
            return FilterResult.all(len(idx))
        ok = np.ones(len(idx), dtype=bool)
        conflict = np.zeros(len(idx), dtype=bool)
        missing = np.zeros(len(idx), dtype=bool)
        volumes = self.volumes.list() if st.delayed and self.volumes is not None else []
        for j, i in enumerate(idx):
            node = _node_obj(snap.nodes[i])
            if any(not V.node_affinity_admits(pv, node) for pv in st.bound):
                conflict[j] = True
                continue
            for claim in st.delayed:
                if V.find_matching_volume(claim, volumes, node) is not None:
                    continue
                sc = self.classes.get(V.claim_class(claim)) if self.classes is not None else None
                if not can_provision(sc, node):
                    missing[j] = True
                    break
        ok &= ~(conflict | missing)
        reasons = {}
        if conflict.any():
            reasons[AFFINITY_CONFLICT] = conflict
        if missing.any():
            reasons[NO_VOLUME] = missing
        return FilterResult(ok, reasons=reasons, unresolvable=True)

    async def pre_bind(self, cs, pod, node_name: str) -> Status | None:
        st: _State | None = cs.get(self.name)
        if st is None:
            return None
        client = self.handle.client
        try:
            for claim in st.delayed:
                if V.annotations(claim).get(V.ANN_SELECTED_NODE) == node_name:
                    continue
                patch = {"metadata": {"annotations": {V.ANN_SELECTED_NODE: node_name}}}
                await client.patch(resources.PERSISTENTVOLUMECLAIMS, V.meta(claim)["name"], patch, pod.namespace)
            return await self._wait_bound(client, pod, [V.meta(c)["name"] for c in st.delayed])
        except (ApiStatusError, asyncio.TimeoutError) as e:
            return Status.error(f"binding volumes: {e}")

    async def _wait_bound(self, client: Any, pod: Any, names: list[str]) -> Status | None:
        """Until every claim is Bound (kube-scheduler's ``BindPodVolumes`` wait)."""
        deadline = time.monotonic() + self.bind_timeout
        pending = list(names)
        while pending:
            still = []
            for name in pending:
                claim = self.claims.get_by(pod.namespace, name) if self.claims is not None else None
                if claim is None or (claim.get("status") or {}).get("phase") != "Bound":
                    still.append(name)
            pending = still
            if not pending:
                return None
            if time.monotonic() > deadline:
                return Status.error(f"binding volumes: timed out waiting for the condition "
                                    f"(claims {', '.join(pending)} not bound)")
            await asyncio.sleep(0.1)
        return None
