"""Garbage collector: deletes objects whose owners are gone, and carries out Foreground and
Orphan deletion of owners (the apiserver adds the ``foregroundDeletion`` / ``orphan``
finalizers on DELETE; this controller does the work and removes them).

Per object (key ``<plural>.<group>|<ns>/<name>``), ``reconcile``:
- as an owner being deleted: ``orphan`` → strip its ownerReference from every dependent,
  then drop the finalizer; ``foregroundDeletion`` → delete the dependents (in foreground
  too) and drop the finalizer once no dependent with ``blockOwnerDeletion`` remains;
- as a dependent: owners are looked up by uid in the caches and, when missing there, with a
  live GET (a lagging cache never makes an owner look absent). If every owner is gone the
  object is deleted (Background); if some are gone or waiting on foreground deletion while
  others live, the stale references are removed.
Neighbours: the apiserver's DELETE (finalizers), ``namespace`` (bulk deletion).
"""

from __future__ import annotations


from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import Informer, object_key
from controlplane.client.manager import Manager
from controlplane.client.resources import Resource
from controlplane.client.rest import ApiStatusError
from controlplane.controllers import controllerutil as cu
from controlplane.log import get_logger

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:generic-garbage-collector (bootstrap_policy)
SERVICE_ACCOUNT = "generic-garbage-collector"

log = get_logger(__name__)

# owners and dependents it follows: the workloads and what they own, plus the Nodes and their
# CSINodes (the kubelet makes each CSINode owned by its Node), PodTemplates and the CSI objects
# a driver's deployment owns (CSIStorageCapacity)
WATCHED: tuple[Resource, ...] = (R.PODS, R.REPLICASETS, R.REPLICATIONCONTROLLERS, R.DEPLOYMENTS, R.STATEFULSETS,
                                 R.DAEMONSETS, R.JOBS, R.CRONJOBS, R.CONFIGMAPS, R.SECRETS, R.SERVICES,
                                 R.CONTROLLERREVISIONS, R.PERSISTENTVOLUMECLAIMS, R.PODTEMPLATES, R.NODES,
                                 R.CSINODES, R.CSIDRIVERS, R.VOLUMEATTACHMENTS, R.CSISTORAGECAPACITIES)
ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"


def res_id(res: Resource) -> str:
    return f"{res.plural}.{res.group}"


class GarbageCollector:
    def __init__(self, manager: Manager, *, workers: int = 5, watched: tuple[Resource, ...] = WATCHED) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.recorder = manager.recorder("garbage-collector-controller", SERVICE_ACCOUNT)
        self.informers: dict[str, tuple[Resource, Informer]] = {}
        self.controller = Controller("garbagecollector", self.reconcile, workers=workers)
        for res in watched:
            inf = manager.informer(res)
            self.informers[res_id(res)] = (res, inf)
            inf.add_handler(self._handler(res))
        manager.add(self.controller)

    def _handler(self, res: Resource):
        rid = res_id(res)

        def on_event(etype: str, obj: dict, old: dict | None) -> None:
            md = obj.get("metadata") or {}
            if etype == "DELETED":
                for dep_key in self._dependent_keys(md.get("uid", "")):
                    self.controller.enqueue(dep_key)
                for ref in md.get("ownerReferences") or []:
                    owner_key = self._owner_key(ref, md.get("namespace"))
                    if owner_key:
                        self.controller.enqueue(owner_key)
                return
            if md.get("ownerReferences") or md.get("deletionTimestamp") or (old and (old.get("metadata") or {}).get("ownerReferences")):
                self.controller.enqueue(f"{rid}|{object_key(obj)}")
        return on_event

    def _dependent_keys(self, uid: str) -> list[str]:
        out = []
        for rid, (_, inf) in self.informers.items():
            out += [f"{rid}|{object_key(o)}" for o in inf.by_owner(uid)]
        return out

    def _dependents(self, uid: str) -> list[tuple[Resource, dict]]:
        return [(res, o) for res, inf in self.informers.values() for o in inf.by_owner(uid)]

    def _owner_key(self, ref: dict, namespace: str | None) -> str | None:
        res = R.for_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if res is None or res_id(res) not in self.informers:
            return None
        return f"{res_id(res)}|{namespace}/{ref['name']}" if res.namespaced and namespace else f"{res_id(res)}|{ref['name']}"

    # -- reconcile ------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        rid, _, okey = key.partition("|")
        res, inf = self.informers[rid]
        obj = inf.get(okey)
        if obj is None:
            return None
        md = obj["metadata"]
        fins = md.get("finalizers") or []
        if md.get("deletionTimestamp"):
            if ORPHAN in fins:
                await self._orphan_dependents(res, obj)
                return None
            if FOREGROUND in fins:
                return await self._foreground(res, obj)
        if md.get("ownerReferences"):
            await self._check_owners(res, obj)
        return None

    async def _remove_finalizer(self, res: Resource, obj: dict, fin: str) -> None:
        await cu.remove_finalizer(self.client, res, obj, fin)

    async def _orphan_dependents(self, res: Resource, owner: dict) -> None:
        uid = owner["metadata"]["uid"]
        for dres, dep in self._dependents(uid):
            refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            try:
                await self.client.patch(dres, dep["metadata"]["name"], {"metadata": {"ownerReferences": refs or None}},
                                        dep["metadata"].get("namespace"))
            except ApiStatusError as e:
                if not e.not_found:
                    raise
        await self._remove_finalizer(res, owner, ORPHAN)
        self.recorder.event(owner, "Normal", "OrphanedDependents", "Dependents orphaned before deletion")

    async def _foreground(self, res: Resource, owner: dict) -> Result | None:
        uid = owner["metadata"]["uid"]
        deps = self._dependents(uid)
        blocking = 0
        for dres, dep in deps:
            ref = next((r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") == uid), {})
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if not dep["metadata"].get("deletionTimestamp"):
                await self._delete(dres, dep, "Foreground")
        if blocking:
            return Result(requeue_after=2.0)  # dependents' DELETED events wake us sooner
        await self._remove_finalizer(res, owner, FOREGROUND)
        return None

    async def _delete(self, res: Resource, obj: dict, policy: str) -> None:
        md = obj["metadata"]
        try:
            await self.client.delete(res, md["name"], md.get("namespace"), propagation_policy=policy,
                                     preconditions={"uid": md["uid"]})
        except ApiStatusError as e:
            if not (e.not_found or e.code == 409):
                raise

    async def _owner_state(self, ref: dict, namespace: str | None) -> str:
        """'solid', 'absent' or 'waiting' (being deleted in foreground)."""
        res = R.for_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if res is None:
            return "solid"  # a kind we cannot look up: never delete on a guess
        owner = None
        if res_id(res) in self.informers:
            owner = self.informers[res_id(res)][1].by_uid(ref.get("uid", ""))
        if owner is None:
            try:
                owner = await self.client.get(res, ref["name"], namespace if res.namespaced else None)
            except ApiStatusError as e:
                if e.not_found:
                    return "absent"
                raise
            if owner["metadata"].get("uid") != ref.get("uid"):
                return "absent"
        if owner["metadata"].get("deletionTimestamp") and FOREGROUND in (owner["metadata"].get("finalizers") or []):
            return "waiting"
        return "solid"

    async def _check_owners(self, res: Resource, obj: dict) -> None:
        md = obj["metadata"]
        refs = md.get("ownerReferences") or []
        states = [(ref, await self._owner_state(ref, md.get("namespace"))) for ref in refs]
        solid = [r for r, s in states if s == "solid"]
        waiting = [r for r, s in states if s == "waiting"]
        stale = [r for r, s in states if s != "solid"]
        if solid:
            if stale and not md.get("deletionTimestamp"):
                keep = [r for r in refs if r in solid]
                try:
                    await self.client.patch(res, md["name"], {"metadata": {"ownerReferences": keep}}, md.get("namespace"))
                except ApiStatusError as e:
                    if not e.not_found:
                        raise
            return
        if md.get("deletionTimestamp"):
            return
        policy = "Foreground" if waiting else "Background"
        log.info("garbage collecting", resource=res.plural, name=md["name"], namespace=md.get("namespace"), policy=policy)
        await self._delete(res, obj, policy)


def setup(manager: Manager, workers: int = 5) -> GarbageCollector:
    return GarbageCollector(manager, workers=workers)
