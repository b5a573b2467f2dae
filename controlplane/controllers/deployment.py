"""Deployment controller: one ReplicaSet per pod-template hash, rolled out with
RollingUpdate (maxSurge / maxUnavailable) or Recreate.

``reconcile(key)`` reads the Deployment and its ReplicaSets from the caches (claiming
orphans by selector), finds or creates the new ReplicaSet (``<name>-<hash>``, revision =
max old + 1, which is also how ``kubectl rollout undo`` — a client-side template patch —
brings an old ReplicaSet back as the newest revision), then either resizes (paused, or a
``replicas`` change: proportional scaling) or rolls out, cleans up old ReplicaSets beyond
``revisionHistoryLimit``, and writes the status (replica counts, observedGeneration,
Available / Progressing conditions with ``progressDeadlineSeconds``) that
``kubectl rollout status`` watches. ReplicaSet replicas are changed with optimistic PUTs so a
stale cache makes a conflict, never an over-scale. Math lives in ``deploymentutil``.
"""

from __future__ import annotations

import copy
import time

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.controllers import controllerutil as cu
from controlplane.controllers import deploymentutil as du
from controlplane.controllers import podutil as pu
from controlplane.log import get_logger
from controlplane.machinery.timestamps import now_rfc3339, parse_time_or_none

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:deployment-controller (bootstrap_policy)
SERVICE_ACCOUNT = "deployment-controller"

log = get_logger(__name__)


class DeploymentController:
    def __init__(self, manager: Manager, *, workers: int = 5) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.d_inf = manager.informer(R.DEPLOYMENTS)
        self.rs_inf = manager.informer(R.REPLICASETS)
        self.pod_inf = manager.informer(R.PODS)
        self.recorder = manager.recorder("deployment-controller", SERVICE_ACCOUNT)
        self.controller = Controller("deployment", self.reconcile, workers=workers)
        self.d_inf.add_handler(lambda t, o, old: self.controller.enqueue(object_key(o)))
        self.rs_inf.add_handler(self._on_rs)
        self.pod_inf.add_handler(self._on_pod)
        self._created_now: set[str] = set()
        manager.add(self.controller)

    # -- handlers -------------------------------------------------------------------------

    def _owner_key(self, obj: dict, kind: str) -> str | None:
        ref = cu.controller_ref(obj)
        if ref is None or ref.get("kind") != kind:
            return None
        return f"{obj['metadata'].get('namespace')}/{ref['name']}"

    def _on_rs(self, etype: str, rs: dict, old: dict | None) -> None:
        key = self._owner_key(rs, "Deployment")
        if key:
            self.controller.enqueue(key)
        elif cu.controller_ref(rs) is None:
            ns = rs["metadata"].get("namespace")
            for d in self.d_inf.list(ns):
                if cu.selector_matcher((d.get("spec") or {}).get("selector"))(cu.labels_of(rs)):
                    self.controller.enqueue(object_key(d))
        if old is not None:
            okey = self._owner_key(old, "Deployment")
            if okey and okey != key:
                self.controller.enqueue(okey)

    def _on_pod(self, etype: str, pod: dict, old: dict | None) -> None:
        # Recreate waits for old pods to go away: deletions wake the owning Deployment.
        if etype != "DELETED":
            return
        ref = cu.controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rs_inf.get_by(pod["metadata"].get("namespace"), ref["name"])
        if rs is not None:
            key = self._owner_key(rs, "Deployment")
            if key:
                self.controller.enqueue(key)

    # -- reconcile ------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        d = self.d_inf.get(key)
        if d is None:
            return None
        d = copy.deepcopy(d)
        if pu.is_terminating(d):
            return None
        ns = d["metadata"]["namespace"]
        selector = (d.get("spec") or {}).get("selector")
        if not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions")):
            self.recorder.event(d, "Warning", "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
            return None
        rs_list = await cu.claim(self.client, R.REPLICASETS, d, self.rs_inf.list(ns), cu.selector_matcher(selector), R.DEPLOYMENTS)
        rs_list = [copy.deepcopy(rs) for rs in rs_list]
        paused = bool(d["spec"].get("paused"))
        if paused or self._is_scaling_event(d, rs_list):
            new_rs, old_rs = await self._new_and_old(d, rs_list, create=False)
            await self._scale(d, new_rs, old_rs)
            if paused or du.deployment_complete(d, self._calc_status(d, new_rs, old_rs)):
                await self._cleanup(d, old_rs)
            return await self._sync_status(d, new_rs, old_rs)
        if du.is_rolling(d):
            return await self._rollout_rolling(d, rs_list)
        return await self._rollout_recreate(d, rs_list)

    def _is_scaling_event(self, d: dict, rs_list: list[dict]) -> bool:
        want = str(du.replicas(d))
        for rs in rs_list:
            if du.rs_replicas(rs) > 0:
                ann = (rs["metadata"].get("annotations") or {}).get(du.DESIRED_REPLICAS)
                if ann is not None and ann != want:
                    return True
        return False

    async def _new_and_old(self, d: dict, rs_list: list[dict], *, create: bool) -> tuple[dict | None, list[dict]]:
        template = d["spec"].get("template") or {}
        matching = [rs for rs in rs_list if cu.equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template)]
        matching.sort(key=lambda r: (r["metadata"].get("creationTimestamp") or "", r["metadata"]["name"]))
        new_rs = matching[0] if matching else None
        old_rs = [rs for rs in rs_list if rs is not new_rs]
        max_old = du.max_revision(old_rs)
        if new_rs is not None:
            ann = new_rs["metadata"].get("annotations") or {}
            want = du.new_rs_annotations(d["metadata"].get("annotations") or {}, ann, max_old + 1)
            min_ready = int(d["spec"].get("minReadySeconds") or 0)
            # (getNewReplicaSet: annotations and minReadySeconds follow the Deployment)
            if want != ann or int(new_rs["spec"].get("minReadySeconds") or 0) != min_ready:
                new_rs = copy.deepcopy(new_rs)
                new_rs["metadata"]["annotations"] = want
                new_rs["spec"]["minReadySeconds"] = min_ready
                new_rs = await self._update_rs(new_rs)
            await self._set_deployment_revision(d, want[du.REVISION])
            return new_rs, old_rs
        if not create:
            return None, old_rs
        return await self._create_new_rs(d, rs_list, old_rs, max_old), old_rs

    def _copy_annotations(self, d: dict) -> dict:
        return {k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in du.SKIP_ANNOTATIONS}

    async def _set_deployment_revision(self, d: dict, rev: str) -> None:
        if (d["metadata"].get("annotations") or {}).get(du.REVISION) == rev:
            return
        body = {"metadata": {"annotations": {du.REVISION: rev}}}
        updated = await self.client.patch(R.DEPLOYMENTS, d["metadata"]["name"], body, d["metadata"]["namespace"])
        d["metadata"] = updated["metadata"]

    async def _create_new_rs(self, d: dict, rs_list: list[dict], old_rs: list[dict], max_old: int) -> dict:
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        template = copy.deepcopy(d["spec"].get("template") or {})
        h = cu.compute_hash(cu.template_without_hash(template), collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[du.HASH_LABEL] = h
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[du.HASH_LABEL] = h
        n_new = du.new_rs_new_replicas(d, rs_list, None)
        surge, _ = du.resolve_fenceposts(d)
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{name}-{h}", "namespace": ns, "labels": dict(template["metadata"]["labels"]),
                           "annotations": {**self._copy_annotations(d), du.REVISION: str(max_old + 1),
                                           du.DESIRED_REPLICAS: str(du.replicas(d)),
                                           du.MAX_REPLICAS: str(du.replicas(d) + surge)},
                           "ownerReferences": [cu.new_controller_ref(d)]},
              "spec": {"replicas": n_new, "minReadySeconds": int(d["spec"].get("minReadySeconds") or 0),
                       "selector": selector, "template": template}}
        try:
            created = await self.client.create(R.REPLICASETS, rs, ns)
        except ApiStatusError as e:
            if not e.already_exists:
                raise
            existing = await self.client.get(R.REPLICASETS, rs["metadata"]["name"], ns)
            if cu.is_controlled_by(existing, d) and cu.equal_ignore_hash(existing["spec"]["template"], d["spec"]["template"]):
                return existing
            status = dict(d.get("status") or {})
            status["collisionCount"] = collisions + 1
            await self._write_status(d, status)
            raise ApiStatusError(409, "HashCollision", f"hash collision for {rs['metadata']['name']}") from e
        if n_new > 0:  # as getNewReplicaSet: a new set created at 0 is not a scale-up
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled up replica set {created['metadata']['name']} from 0 to {n_new}")
        await self._set_deployment_revision(d, str(max_old + 1))
        self._created_now.add(object_key(d))
        return created

    async def _update_rs(self, rs: dict) -> dict:
        """PUT with the cached resourceVersion. A conflict caused only by a status change
        (the ReplicaSet controller writes status often) is retried on the fresh object when
        the spec we decided from is unchanged; a changed spec means our view was stale."""
        try:
            return await self.client.update(R.REPLICASETS, rs)
        except ApiStatusError as e:
            if not e.conflict:
                raise
            fresh = await self.client.get(R.REPLICASETS, rs["metadata"]["name"], rs["metadata"]["namespace"])
            cached = self.rs_inf.get(f"{rs['metadata']['namespace']}/{rs['metadata']['name']}")
            if cached is None or fresh.get("spec", {}).get("replicas") != cached.get("spec", {}).get("replicas") \
                    or fresh["metadata"].get("uid") != rs["metadata"].get("uid"):
                raise
            fresh["spec"]["replicas"] = rs["spec"]["replicas"]
            fresh["spec"]["minReadySeconds"] = rs["spec"].get("minReadySeconds")
            fresh["metadata"]["annotations"] = rs["metadata"].get("annotations")
            return await self.client.update(R.REPLICASETS, fresh)

    async def _scale_rs(self, d: dict, rs: dict, n: int) -> dict:
        old = du.rs_replicas(rs)
        surge, _ = du.resolve_fenceposts(d)
        ann = rs["metadata"].setdefault("annotations", {}) or {}
        rs["metadata"]["annotations"] = ann
        want_ann = {du.DESIRED_REPLICAS: str(du.replicas(d)), du.MAX_REPLICAS: str(du.replicas(d) + surge)}
        if old == n and all(ann.get(k) == v for k, v in want_ann.items()):
            return rs
        ann.update(want_ann)
        rs["spec"]["replicas"] = n
        updated = await self._update_rs(rs)
        if old != n:
            verb = "up" if n > old else "down"
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled {verb} replica set {rs['metadata']['name']} from {old} to {n}")
        rs.clear()
        rs.update(updated)
        return rs

    async def _scale(self, d: dict, new_rs: dict | None, old_rs: list[dict]) -> None:
        all_rs = ([new_rs] if new_rs else []) + old_rs
        active = [rs for rs in all_rs if du.rs_replicas(rs) > 0]
        want = du.replicas(d)
        if len(active) <= 1:
            target = active[0] if active else (new_rs or (max(all_rs, key=du.revision) if all_rs else None))
            if target is not None:
                await self._scale_rs(d, target, want)
            return
        if new_rs is not None and du.rs_replicas(new_rs) == want and du.rs_status(new_rs, "availableReplicas") == want:
            for rs in old_rs:
                await self._scale_rs(d, rs, 0)
            return
        targets = du.proportional_scale(d, active, new_rs)
        for rs in sorted(active, key=lambda r: targets[r["metadata"]["name"]] - du.rs_replicas(r)):
            await self._scale_rs(d, rs, targets[rs["metadata"]["name"]])

    async def _rollout_rolling(self, d: dict, rs_list: list[dict]) -> Result | None:
        new_rs, old_rs = await self._new_and_old(d, rs_list, create=True)
        all_rs = ([new_rs] if new_rs else []) + old_rs
        if new_rs is not None:
            n = du.new_rs_new_replicas(d, all_rs, new_rs)
            if n != du.rs_replicas(new_rs):
                await self._scale_rs(d, new_rs, n)
                return await self._sync_status(d, new_rs, old_rs)
        budget = du.old_scale_down_budget(d, all_rs, new_rs)
        if budget > 0 and any(du.rs_replicas(rs) > 0 for rs in old_rs):
            cleaned = 0
            for rs, n in du.cleanup_unhealthy(old_rs, budget):
                cleaned += du.rs_replicas(rs) - n
                await self._scale_rs(d, rs, n)
            if cleaned == 0:
                for rs, n in du.scale_down_available(d, all_rs, old_rs):
                    await self._scale_rs(d, rs, n)
        status = self._calc_status(d, new_rs, old_rs)
        if du.deployment_complete(d, status):
            await self._cleanup(d, old_rs)
        return await self._sync_status(d, new_rs, old_rs)

    def _pods_of(self, rs: dict) -> list[dict]:
        return [p for p in self.pod_inf.by_owner(rs["metadata"]["uid"])]

    async def _rollout_recreate(self, d: dict, rs_list: list[dict]) -> Result | None:
        new_rs, old_rs = await self._new_and_old(d, rs_list, create=False)
        active_old = [rs for rs in old_rs if du.rs_replicas(rs) > 0]
        if active_old:
            for rs in active_old:
                await self._scale_rs(d, rs, 0)
            return await self._sync_status(d, new_rs, old_rs)
        if any(p for rs in old_rs for p in self._pods_of(rs) if pu.phase(p) not in ("Succeeded", "Failed")):
            return await self._sync_status(d, new_rs, old_rs)
        if new_rs is None:
            new_rs, old_rs = await self._new_and_old(d, rs_list, create=True)
        if new_rs is not None:
            await self._scale_rs(d, new_rs, du.replicas(d))
            status = self._calc_status(d, new_rs, old_rs)
            if du.deployment_complete(d, status):
                await self._cleanup(d, old_rs)
        return await self._sync_status(d, new_rs, old_rs)

    async def _cleanup(self, d: dict, old_rs: list[dict]) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        dead = [rs for rs in old_rs if du.rs_replicas(rs) == 0 and du.rs_status(rs, "replicas") == 0
                and not pu.is_terminating(rs)]
        if len(dead) <= limit:
            return
        dead.sort(key=du.revision)
        for rs in dead[: len(dead) - limit]:
            try:
                await self.client.delete(R.REPLICASETS, rs["metadata"]["name"], rs["metadata"]["namespace"],
                                         preconditions={"uid": rs["metadata"]["uid"]})
            except ApiStatusError as e:
                if not (e.not_found or e.code == 409):
                    raise

    # -- status ---------------------------------------------------------------------------

    def _calc_status(self, d: dict, new_rs: dict | None, old_rs: list[dict]) -> dict:
        all_rs = ([new_rs] if new_rs else []) + old_rs
        available = sum(du.rs_status(rs, "availableReplicas") for rs in all_rs)
        status = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": sum(du.rs_status(rs, "replicas") for rs in all_rs),
            "updatedReplicas": du.rs_status(new_rs, "replicas") if new_rs else 0,
            "readyReplicas": sum(du.rs_status(rs, "readyReplicas") for rs in all_rs),
            "availableReplicas": available,
            "unavailableReplicas": max(du.replicas(d) - available, 0),
        }
        cc = (d.get("status") or {}).get("collisionCount")
        if cc is not None:
            status["collisionCount"] = cc
        return status

    async def _sync_status(self, d: dict, new_rs: dict | None, old_rs: list[dict]) -> Result | None:
        old_status = d.get("status") or {}
        status = self._calc_status(d, new_rs, old_rs)
        conds = {c["type"]: c for c in old_status.get("conditions") or []}
        now = now_rfc3339()

        def set_cond(ctype: str, st: str, reason: str, msg: str, touch: bool = True) -> None:
            prev = conds.get(ctype)
            c = {"type": ctype, "status": st, "reason": reason, "message": msg,
                 "lastUpdateTime": now if touch or prev is None else prev.get("lastUpdateTime", now),
                 "lastTransitionTime": prev["lastTransitionTime"] if prev and prev.get("status") == st and prev.get("lastTransitionTime") else now}
            if prev and (prev.get("status"), prev.get("reason"), prev.get("message")) == (st, reason, msg) and not touch:
                c["lastUpdateTime"] = prev.get("lastUpdateTime", now)
            conds[ctype] = c

        min_avail = du.replicas(d) - du.max_unavailable(d)
        if status["availableReplicas"] >= min_avail:
            set_cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", touch=False)
        else:
            set_cond("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", touch=False)
        result: Result | None = None
        deadline = d["spec"].get("progressDeadlineSeconds", 600)
        rs_name = new_rs["metadata"]["name"] if new_rs else ""
        prog = conds.get("Progressing")
        if d["spec"].get("paused"):
            if not prog or prog.get("reason") != "DeploymentPaused":
                set_cond("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        elif prog and prog.get("reason") == "DeploymentPaused":
            set_cond("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed")
        elif deadline is not None:
            if du.deployment_complete(d, status) and new_rs is not None:
                set_cond("Progressing", "True", "NewReplicaSetAvailable",
                         f'ReplicaSet "{rs_name}" has successfully progressed.',
                         touch=not (prog and prog.get("reason") == "NewReplicaSetAvailable"))
            elif object_key(d) in self._created_now:
                set_cond("Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{rs_name}"')
            elif du.deployment_progressing(old_status, status) or prog is None:
                set_cond("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
            elif prog.get("reason") != "ProgressDeadlineExceeded":
                last = parse_time_or_none(prog.get("lastUpdateTime")) or time.time()
                left = last + int(deadline) - time.time()
                if prog.get("reason") != "NewReplicaSetAvailable" and left <= 0:
                    # only the condition, no Event: kube-controller-manager's syncRolloutStatus
                    # records none (kubectl rollout status reads the condition)
                    set_cond("Progressing", "False", "ProgressDeadlineExceeded",
                             f'ReplicaSet "{rs_name}" has timed out progressing.')
                elif prog.get("reason") != "NewReplicaSetAvailable":
                    result = Result(requeue_after=max(left, 0.5))
            if result is None and not du.deployment_complete(d, status) and conds.get("Progressing", {}).get("status") == "True":
                result = Result(requeue_after=float(deadline) + 1)
        self._created_now.discard(object_key(d))
        status["conditions"] = [conds[k] for k in ("Available", "Progressing", "ReplicaFailure") if k in conds]
        if _status_changed(old_status, status):
            await self._write_status(d, status)
        return result

    async def _write_status(self, d: dict, status: dict) -> None:
        """Merge-patch the status subresource (status is ours alone; no resourceVersion race)."""
        body = {"status": {**status, "conditions": status.get("conditions")}}
        try:
            updated = await self.client.patch(R.DEPLOYMENTS, d["metadata"]["name"], body, d["metadata"]["namespace"],
                                              subresource="status")
            d["metadata"] = updated["metadata"]
            d["status"] = updated.get("status", status)
        except ApiStatusError as e:
            if not e.not_found:
                raise


def _status_changed(a: dict, b: dict) -> bool:
    keys = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
            "unavailableReplicas", "collisionCount")
    if any(a.get(k) != b.get(k) for k in keys):
        return True
    sig = lambda s: [(c.get("type"), c.get("status"), c.get("reason"), c.get("message"), c.get("lastUpdateTime"))  # noqa: E731
                     for c in s.get("conditions") or []]
    return sig(a) != sig(b)


def setup(manager: Manager, workers: int = 5) -> DeploymentController:
    return DeploymentController(manager, workers=workers)
