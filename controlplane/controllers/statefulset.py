"""StatefulSet controller: pods with stable ordinal names ``<name>-0 … <name>-(N-1)``.

``reconcile(key)`` creates missing ordinals (OrderedReady: one at a time, each waiting for
the previous ones to be Running and Ready; Parallel: all at once), removes ordinals >= N
highest first (OrderedReady: one at a time), replaces Failed pods, and rolls out template
changes with RollingUpdate from the highest ordinal down to ``partition`` (one pod at a time,
waiting for readiness); OnDelete leaves replacement to the user. Each pod carries
``controller-revision-hash`` (``<name>-<hash of the template>``),
``statefulset.kubernetes.io/pod-name`` and ``apps.kubernetes.io/pod-index`` labels and the
hostname/subdomain of its ordinal. Fixed names mean a lagging cache can never create an extra
pod (the second create is an AlreadyExists). Its history is kept as ControllerRevisions
(``<name>-<hash>``, the template as a replacing patch, numbered; a template equal to an older
revision moves that one to the newest number, which is what ``kubectl rollout undo`` relies on;
non-live revisions beyond ``revisionHistoryLimit`` are deleted): ``controllerutil``'s history.
Revisions of its namespace without a controller that its selector matches are adopted, owned
ones it no longer matches released (``claim_revisions``), so a StatefulSet deleted with
``--cascade=orphan`` and created again finds its history.

``volumeClaimTemplates``: before each pod, its claims ``<template>-<set>-<ordinal>`` are created
when missing (labels of the template plus the selector's ``matchLabels``) and the pod mounts them
(a ``persistentVolumeClaim`` volume named after the template replaces a template volume of that
name). ``persistentVolumeClaimRetentionPolicy`` (default Retain/Retain, claims outlive everything):
``whenDeleted: Delete`` makes the set an owner of its claims (the garbage collector removes them
with it), ``whenScaled: Delete`` makes a condemned pod the only owner of its claims before it is
deleted on scale-down.
"""

from __future__ import annotations

import copy
import time
import re

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.controllers import controllerutil as cu
from controlplane.controllers import podutil as pu
from controlplane.log import get_logger
from controlplane.machinery.timestamps import now_rfc3339

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:statefulset-controller (bootstrap_policy)
SERVICE_ACCOUNT = "statefulset-controller"

log = get_logger(__name__)
REVISION_LABEL = "controller-revision-hash"


def ordinal_of(ss_name: str, pod_name: str) -> int | None:
    m = re.fullmatch(re.escape(ss_name) + r"-(\d+)", pod_name)
    return int(m.group(1)) if m else None


def update_revision(ss: dict) -> str:
    template = (ss.get("spec") or {}).get("template") or {}
    return f"{ss['metadata']['name']}-{cu.compute_hash(template)}"


def revision_hash(ss: dict) -> str:
    return cu.compute_hash((ss.get("spec") or {}).get("template") or {})


def at_current_revision(ordinal: int, strategy: dict, current_replicas: int) -> bool:
    """Whether a pod created for ``ordinal`` gets the current revision rather than the update
    revision (``newVersionedStatefulSetPod`` / ``isCurrentRevisionNeeded``): under
    RollingUpdate the ordinals below the partition, or without a ``rollingUpdate`` block (an
    explicit ``type: RollingUpdate`` is not defaulted one) or without its ``partition`` those
    below ``status.currentReplicas``. OnDelete and everything else gets the update revision."""
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return False
    ru = strategy.get("rollingUpdate")
    if not isinstance(ru, dict) or ru.get("partition") is None:
        return ordinal < current_replicas
    return ordinal < int(ru["partition"])


def healthy(pod: dict) -> bool:
    return pu.phase(pod) == "Running" and pu.is_pod_ready(pod) and not pu.is_terminating(pod)


def claim_name(template: dict, ss: dict, ordinal: int) -> str:
    """``getPersistentVolumeClaimName``: ``<template>-<set>-<ordinal>``."""
    return f"{template['metadata']['name']}-{ss['metadata']['name']}-{ordinal}"


def retention(ss: dict) -> tuple[str, str]:
    """(whenDeleted, whenScaled) of ``persistentVolumeClaimRetentionPolicy`` (Retain by default)."""
    p = (ss.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return p.get("whenDeleted") or "Retain", p.get("whenScaled") or "Retain"


def new_claim(template: dict, ss: dict, ordinal: int) -> dict:
    """The claim of ``template`` for ``ordinal`` (``getPersistentVolumeClaims``): the template's
    labels plus the selector's ``matchLabels``, the set as owner when ``whenDeleted: Delete``."""
    tmd = template.get("metadata") or {}
    labels = {**(tmd.get("labels") or {}), **(((ss.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})}
    md: dict = {"name": claim_name(template, ss, ordinal), "namespace": ss["metadata"]["namespace"], "labels": labels}
    if tmd.get("annotations"):
        md["annotations"] = dict(tmd["annotations"])
    if retention(ss)[0] == "Delete":
        md["ownerReferences"] = [{"apiVersion": ss.get("apiVersion", "apps/v1"), "kind": "StatefulSet",
                                  "name": ss["metadata"]["name"], "uid": ss["metadata"]["uid"]}]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md,
            "spec": copy.deepcopy(template.get("spec") or {})}


class StatefulSetController:
    def __init__(self, manager: Manager, *, workers: int = 3) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.ss_inf = manager.informer(R.STATEFULSETS)
        self.pod_inf = manager.informer(R.PODS)
        self.rev_inf = manager.informer(R.CONTROLLERREVISIONS)
        self.recorder = manager.recorder("statefulset-controller", SERVICE_ACCOUNT)
        self.controller = Controller("statefulset", self.reconcile, workers=workers)
        self.ss_inf.add_handler(lambda t, o, old: self.controller.enqueue(object_key(o)))
        self.pod_inf.add_handler(self._on_pod)
        self.rev_inf.add_handler(self._on_revision)
        manager.add(self.controller)

    def _on_revision(self, etype: str, rev: dict, old: dict | None) -> None:
        ns = (rev.get("metadata") or {}).get("namespace")
        for key in cu.revision_owner_keys(rev, "StatefulSet", self.ss_inf.list(namespace=ns)):
            self.controller.enqueue(key)

    def _on_pod(self, etype: str, pod: dict, old: dict | None) -> None:
        ref = cu.controller_ref(pod)
        if ref is not None and ref.get("kind") == "StatefulSet":
            self.controller.enqueue(f"{pod['metadata']['namespace']}/{ref['name']}")

    def _new_pod(self, ss: dict, ordinal: int, rev: str, template: dict | None = None) -> dict:
        name = f"{ss['metadata']['name']}-{ordinal}"
        if template is None:
            template = ss["spec"].get("template") or {}
        pod = cu.pod_from_template(template, ss, name=name, extra_labels={
            REVISION_LABEL: rev, "statefulset.kubernetes.io/pod-name": name, "apps.kubernetes.io/pod-index": str(ordinal)})
        pod["spec"]["hostname"] = name
        templates = (ss.get("spec") or {}).get("volumeClaimTemplates") or []
        if templates:
            claims = {t["metadata"]["name"]: claim_name(t, ss, ordinal) for t in templates}
            vols = [v for v in pod["spec"].get("volumes") or [] if v.get("name") not in claims]
            pod["spec"]["volumes"] = [{"name": t, "persistentVolumeClaim": {"claimName": c}}
                                      for t, c in claims.items()] + vols
        if ss["spec"].get("serviceName"):
            pod["spec"]["subdomain"] = ss["spec"]["serviceName"]
        return pod

    async def reconcile(self, key: str) -> Result | None:
        ss = self.ss_inf.get(key)
        if ss is None:
            return None
        ss = copy.deepcopy(ss)
        name = ss["metadata"]["name"]
        spec = ss.get("spec") or {}
        replicas = 1 if spec.get("replicas") is None else int(spec["replicas"])
        parallel = spec.get("podManagementPolicy") == "Parallel"
        strategy = spec.get("updateStrategy") or {"type": "RollingUpdate"}
        partition = int(((strategy.get("rollingUpdate") or {}).get("partition")) or 0)
        rev = update_revision(ss)
        pods = {}
        # its pods: the ones named as its members it controls, orphans its selector matches
        # adopted, non-matching ones released (getPodsForStatefulSet)
        members = [p for p in self.pod_inf.list(namespace=ss["metadata"]["namespace"])
                   if ordinal_of(name, p["metadata"]["name"]) is not None]
        for p in await cu.claim(self.client, R.PODS, ss, members, cu.selector_matcher(spec.get("selector")),
                                  R.STATEFULSETS):
            o = ordinal_of(name, p["metadata"]["name"])
            if o is not None:
                pods[o] = copy.deepcopy(p)  # (a pass marks the pods it deletes: not the cache's)
        # its history: owned revisions, matching orphans adopted, non-matching ones released
        revisions = await cu.claim_revisions(self.client, ss, self.rev_inf.list(namespace=ss["metadata"]["namespace"]),
                                             cu.selector_matcher(spec.get("selector")),
                                             cu.owner_rechecker(self.client, R.STATEFULSETS, ss))
        if not pu.is_terminating(ss):
            await cu.sync_history(self.client, ss, revisions, rev, revision_hash(ss),
                                  cu.revision_data(spec.get("template") or {}))
            current = self._current_revision(ss, revisions, rev)
            await self._sync_pods(ss, pods, replicas, parallel, strategy, partition, rev, current)
        current = await self._write_status(ss, pods, replicas, rev)
        live = {rev, current} | {cu.labels_of(p).get(REVISION_LABEL, "") for p in pods.values()}
        limit = spec.get("revisionHistoryLimit")
        await cu.prune_history(self.client, revisions, live, 10 if limit is None else int(limit))
        return None

    @staticmethod
    def _current_revision(ss: dict, revisions: list[dict], rev: str) -> tuple[str, dict] | None:
        """(name, pod template) of ``status.currentRevision`` when it differs from the update
        revision and its ControllerRevision is at hand (``getStatefulSetRevisions``)."""
        name = (ss.get("status") or {}).get("currentRevision")
        if not name or name == rev:
            return None
        for r in revisions:
            if r["metadata"]["name"] == name:
                t = cu.revision_template(r)
                return (name, t) if t is not None else None
        return None

    async def _create_claims(self, ss: dict, ordinal: int) -> None:
        """``createPersistentVolumeClaims``: the pod's claims, created when missing."""
        ns = ss["metadata"]["namespace"]
        for t in (ss.get("spec") or {}).get("volumeClaimTemplates") or []:
            claim = new_claim(t, ss, ordinal)
            name = claim["metadata"]["name"]
            try:
                existing = await self.client.get(R.PERSISTENTVOLUMECLAIMS, name, ns)
                if (existing.get("metadata") or {}).get("deletionTimestamp"):
                    raise RuntimeError(f"pvc {name} is being deleted")
                continue
            except ApiStatusError as e:
                if not e.not_found:
                    raise
            pod_name = f"{ss['metadata']['name']}-{ordinal}"
            try:
                await self.client.create(R.PERSISTENTVOLUMECLAIMS, claim, ns)
                self.recorder.event(ss, "Normal", "SuccessfulCreate",
                                    f"create Claim {name} Pod {pod_name} in StatefulSet {ss['metadata']['name']} success")
            except ApiStatusError as e:
                if not e.already_exists:
                    self.recorder.event(ss, "Warning", "FailedCreate",
                                        f"create Claim {name} for Pod {pod_name} in StatefulSet "
                                        f"{ss['metadata']['name']} failed error: {e.message}")
                    raise

    async def _claims_owned_by_pod(self, ss: dict, pod: dict, ordinal: int) -> None:
        """``whenScaled: Delete``: a condemned pod becomes the owner of its claims."""
        ref = {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}
        for t in (ss.get("spec") or {}).get("volumeClaimTemplates") or []:
            name = claim_name(t, ss, ordinal)
            try:
                claim = await self.client.get(R.PERSISTENTVOLUMECLAIMS, name, ss["metadata"]["namespace"])
            except ApiStatusError as e:
                if e.not_found:
                    continue
                raise
            refs = claim["metadata"].get("ownerReferences") or []
            # ``updateClaimOwnerRefForSetAndPod``: a scaled-down pod's claim is owned by the pod
            # alone (the set lets go), so the garbage collector removes it with the pod
            keep = [r for r in refs if r.get("uid") != ss["metadata"]["uid"]]
            if any(r.get("uid") == ref["uid"] for r in keep) and len(keep) == len(refs):
                continue
            claim["metadata"]["ownerReferences"] = [*[r for r in keep if r.get("uid") != ref["uid"]], ref]
            await self.client.update(R.PERSISTENTVOLUMECLAIMS, claim)

    async def _create(self, ss: dict, pods: dict[int, dict], ordinal: int, rev: str,
                      template: dict | None = None) -> None:
        """Creates the pod of ``ordinal`` and counts it in ``pods`` (the status written after
        this pass counts it, as ``updateStatefulSet`` adds its creations to the status)."""
        await self._create_claims(ss, ordinal)
        pod = self._new_pod(ss, ordinal, rev, template)
        try:
            pods[ordinal] = await self.client.create(R.PODS, pod, ss["metadata"]["namespace"])
            self.recorder.event(ss, "Normal", "SuccessfulCreate",
                                f"create Pod {pod['metadata']['name']} in StatefulSet {ss['metadata']['name']} successful")
        except ApiStatusError as e:
            if not e.already_exists:
                self.recorder.event(ss, "Warning", "FailedCreate",
                                    f"create Pod {pod['metadata']['name']} in StatefulSet {ss['metadata']['name']} "
                                    f"failed error: {e.message}")
                raise

    async def _delete(self, ss: dict, pod: dict, why: str) -> None:
        """Deletes a pod (``why`` is logged; the Event reads as Kubernetes' ``recordPodEvent``).
        The pod is marked terminating in place, so the status written after this pass no longer
        counts it (``status.CurrentReplicas--``: a pod re-created below ``currentReplicas``
        without a partition must not come back at the old revision)."""
        try:
            await self.client.delete(R.PODS, pod["metadata"]["name"], pod["metadata"]["namespace"],
                                     preconditions={"uid": pod["metadata"]["uid"]})
            pod["metadata"]["deletionTimestamp"] = pod["metadata"].get("deletionTimestamp") or now_rfc3339()
            log.info("statefulset pod deleted", statefulset=object_key(ss), pod=pod["metadata"]["name"], why=why)
            self.recorder.event(ss, "Normal", "SuccessfulDelete",
                                f"delete Pod {pod['metadata']['name']} in StatefulSet {ss['metadata']['name']} successful")
        except ApiStatusError as e:
            if not (e.not_found or e.code == 409):
                self.recorder.event(ss, "Warning", "FailedDelete",
                                    f"delete Pod {pod['metadata']['name']} in StatefulSet {ss['metadata']['name']} "
                                    f"failed error: {e.message}")
                raise

    async def _sync_pods(self, ss: dict, pods: dict[int, dict], replicas: int, parallel: bool, strategy: dict,
                         partition: int, rev: str, current: tuple[str, dict] | None = None) -> None:
        # create / replace failed, in ordinal order; ordinals below the partition at the
        # current revision (its template from the ControllerRevision), the rest at the update one
        current_replicas = int((ss.get("status") or {}).get("currentReplicas") or 0)
        for i in range(replicas):
            pod = pods.get(i)
            if pod is None:
                if current is not None and at_current_revision(i, strategy, current_replicas):
                    await self._create(ss, pods, i, current[0], current[1])
                else:
                    await self._create(ss, pods, i, rev)
                if not parallel:
                    return
                continue
            if pu.phase(pod) == "Failed" and not pu.is_terminating(pod):
                await self._delete(ss, pod, "failed")
                if not parallel:
                    return
                continue
            if not parallel and not healthy(pod):
                return  # OrderedReady: wait for this ordinal
        # scale down, highest ordinal first
        condemned = sorted((o for o in pods if o >= replicas), reverse=True)
        for o in condemned:
            pod = pods[o]
            if pu.is_terminating(pod):
                if not parallel:
                    return
                continue
            if not parallel and not all(healthy(p) for q, p in pods.items() if q != o and q < o):
                return
            if retention(ss)[1] == "Delete":
                await self._claims_owned_by_pod(ss, pod, o)
            await self._delete(ss, pod, "scale down")
            if not parallel:
                return
        if condemned and not parallel:
            return
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        # rolling update, highest ordinal first, down to the partition
        for i in range(replicas - 1, partition - 1, -1):
            pod = pods.get(i)
            if pod is None:
                return
            if cu.labels_of(pod).get(REVISION_LABEL) != rev:
                if not pu.is_terminating(pod):
                    await self._delete(ss, pod, "update")
                return
            if not healthy(pod):
                return

    async def _write_status(self, ss: dict, pods: dict[int, dict], replicas: int, rev: str) -> str:
        """Writes the status when it changed; returns the current revision."""
        old = ss.get("status") or {}
        live = [p for p in pods.values() if not pu.is_terminating(p)]
        updated = sum(1 for p in live if cu.labels_of(p).get(REVISION_LABEL) == rev)
        current_rev = old.get("currentRevision") or rev
        if updated == replicas and all(healthy(p) for o, p in pods.items() if o < replicas) and len(pods) == replicas:
            current_rev = rev
        status = {
            "observedGeneration": ss["metadata"].get("generation", 1),
            "replicas": len(live),
            "readyReplicas": sum(1 for p in live if pu.is_pod_ready(p)),
            "availableReplicas": sum(1 for p in live if pu.is_pod_available(p, int(ss["spec"].get("minReadySeconds") or 0), time.time())),
            "currentReplicas": sum(1 for p in live if cu.labels_of(p).get(REVISION_LABEL) == current_rev),
            "updatedReplicas": updated,
            "currentRevision": current_rev,
            "updateRevision": rev,
            "collisionCount": int(old.get("collisionCount") or 0),
        }
        if all(old.get(k) == v for k, v in status.items()):
            return current_rev
        ss["status"] = {**old, **status}
        try:
            await self.client.update_status(R.STATEFULSETS, ss)
        except ApiStatusError as e:
            if not e.not_found:
                raise
        return current_rev


def setup(manager: Manager, workers: int = 3) -> StatefulSetController:
    return StatefulSetController(manager, workers=workers)
