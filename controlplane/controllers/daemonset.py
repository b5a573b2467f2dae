"""DaemonSet controller: one pod per eligible node.

A node is eligible when the pod template's ``nodeSelector`` and required node affinity match
it and every NoSchedule/NoExecute taint is tolerated (the template's tolerations plus the
ones Kubernetes adds to daemon pods: not-ready, unreachable, pressure, unschedulable).
``reconcile(key)`` creates a pod for each eligible node without one — pinned with a required
node affinity ``matchFields metadata.name In [node]`` (as Kubernetes does, so the scheduler
binds it there) — deletes pods on nodes that are gone or no longer eligible and duplicates,
and rolls template changes out with RollingUpdate (``maxUnavailable``, default 1): old pods
are deleted while the number of unavailable daemon pods stays within the budget, and the
next pass creates their replacements; with ``maxSurge`` (then ``maxUnavailable`` is 0) the new
pod starts beside the old one on up to maxSurge nodes and the old one is deleted once the new
one is available (``surge_rollout``, ``excess_pods``). Pods carry ``controller-revision-hash`` and
``pod-template-generation`` labels. Its history is kept as ControllerRevisions
(``<name>-<hash>``, as the StatefulSet's: ``controllerutil``'s history), so ``kubectl rollout
history/undo daemonset`` work; matching orphaned revisions are adopted and owned ones its selector
no longer matches released, as the StatefulSet's. Neighbours: the nodes (node agents), the scheduler.
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
from controlplane.machinery.scheduling import find_untolerated_taint, required_node_affinity_matches

log = get_logger(__name__)
HASH_LABEL = "controller-revision-hash"

DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def node_should_run(template_spec: dict, node: dict) -> bool:
    """Whether a daemon pod with this spec belongs on ``node`` (pure): its node selector and
    required node affinity match, and every NoSchedule/NoExecute taint is tolerated."""
    if not required_node_affinity_matches(template_spec, cu.labels_of(node), node["metadata"]["name"]):
        return False
    tols = list(template_spec.get("tolerations") or []) + DAEMON_TOLERATIONS
    return find_untolerated_taint((node.get("spec") or {}).get("taints"), tols) is None


def pin_to_node(spec: dict, node_name: str) -> dict:
    """The pod spec with its required node affinity replaced by ``metadata.name In [node]``."""
    spec = copy.deepcopy(spec)
    aff = spec.setdefault("affinity", {})
    na = aff.setdefault("nodeAffinity", {})
    na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}
    tols = list(spec.get("tolerations") or [])
    for t in DAEMON_TOLERATIONS:
        if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in tols):
            tols.append(dict(t))
    spec["tolerations"] = tols
    return spec


def pod_node(pod: dict) -> str | None:
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    terms = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    for t in terms:
        for f in t.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and f.get("values"):
                return f["values"][0]
    return None


def by_creation(pods: list[dict]) -> list[dict]:
    """Oldest first (``podByCreationTimestampAndPhase``: creation time, then name)."""
    return sorted(pods, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"].get("name", "")))


def max_surge(ds: dict, desired: int) -> int:
    """``surgeCount``: RollingUpdate's ``maxSurge`` scaled against the desired pods, rounded
    up; 0 (no surge) for OnDelete or when unset."""
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {"type": "RollingUpdate"}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0
    return du.int_or_percent((strategy.get("rollingUpdate") or {}).get("maxSurge"), desired, True, default="0")


def excess_pods(pods: list[dict], h: str, surge: bool, min_ready: int, now: float) -> list[dict]:
    """The daemon pods of one node to delete (``podsShouldBeOnNode``, pods not being deleted).
    Without surge all but the oldest. With surge the oldest pod at the current hash and the
    oldest other one may both stay, while the old one is still ready and the new one not yet
    available; every other pod goes (of the two, the old one when it is not ready or the new
    one is available)."""
    ps = by_creation(pods)
    if len(ps) <= 1:
        return []
    if not surge:
        return ps[1:]
    oldest_new = oldest_old = None
    out: list[dict] = []
    for p in ps:
        if cu.labels_of(p).get(HASH_LABEL) == h:
            if oldest_new is None:
                oldest_new = p
                continue
        elif oldest_old is None:
            oldest_old = p
            continue
        out.append(p)
    if oldest_new is not None and oldest_old is not None and (
            not pu.is_pod_ready(oldest_old) or pu.is_pod_available(oldest_new, min_ready, now)):
        out.append(oldest_old)
    return out


def surge_rollout(by_node: dict[str, list[dict]], eligible: set[str], h: str, surge: int, min_ready: int,
                  now: float) -> tuple[list[dict], list[str]]:
    """(old pods to delete, nodes to create a new pod on): the surge half of Kubernetes'
    ``rollingUpdate``. A node whose old pod is unavailable gets its new pod at once; at most
    ``surge`` nodes with an available old pod get a new one alongside it; an old pod goes once
    the new pod beside it is available. Nodes with more than one old or new pod are left to
    ``excess_pods`` and count as surging."""
    delete: list[dict] = []
    allowed: list[str] = []
    candidates: list[str] = []
    surging = 0
    for node in sorted(eligible):
        new = [p for p in by_node.get(node, []) if cu.labels_of(p).get(HASH_LABEL) == h]
        old = [p for p in by_node.get(node, []) if cu.labels_of(p).get(HASH_LABEL) != h]
        if len(new) > 1 or len(old) > 1:
            surging += 1
            continue
        if not old:
            continue
        if not new:
            (candidates if pu.is_pod_available(old[0], min_ready, now) else allowed).append(node)
        elif not pu.is_pod_available(new[0], min_ready, now):
            surging += 1
        else:
            delete.append(old[0])
    remaining = min(max(surge - surging, 0), len(candidates))
    return delete, allowed + candidates[:remaining]


class DaemonSetController:
    def __init__(self, manager: Manager, *, workers: int = 2) -> None:
        self.client = manager.client
        self.ds_inf = manager.informer(R.DAEMONSETS)
        self.pod_inf = manager.informer(R.PODS)
        self.rev_inf = manager.informer(R.CONTROLLERREVISIONS)
        self.node_inf = manager.informer(R.NODES)
        self.recorder = manager.recorder("daemonset-controller")
        self.expectations = cu.Expectations()
        self.controller = Controller("daemonset", self.reconcile, workers=workers)
        self.ds_inf.add_handler(lambda t, o, old: self.controller.enqueue(object_key(o)))
        self.pod_inf.add_handler(self._on_pod)
        self.node_inf.add_handler(self._on_node)
        self.rev_inf.add_handler(self._on_revision)
        manager.add(self.controller)

    def _on_revision(self, etype: str, rev: dict, old: dict | None) -> None:
        ns = (rev.get("metadata") or {}).get("namespace")
        for key in cu.revision_owner_keys(rev, "DaemonSet", self.ds_inf.list(namespace=ns)):
            self.controller.enqueue(key)

    def _on_pod(self, etype: str, pod: dict, old: dict | None) -> None:
        key = self.expectations.observe_owned_pod(etype, pod, old, "DaemonSet")
        if key is not None:
            self.controller.enqueue(key)

    def _on_node(self, etype: str, node: dict, old: dict | None) -> None:
        if etype == "MODIFIED" and old is not None and cu.labels_of(old) == cu.labels_of(node) and \
                (old.get("spec") or {}).get("taints") == (node.get("spec") or {}).get("taints"):
            return
        for ds in self.ds_inf.list():
            self.controller.enqueue(object_key(ds))

    async def reconcile(self, key: str) -> Result | None:
        ds = self.ds_inf.get(key)
        if ds is None:
            self.expectations.delete(key)
            return None
        ds = copy.deepcopy(ds)
        template = ds["spec"].get("template") or {}
        h = cu.compute_hash(template)
        # its pods, orphans its selector matches adopted, non-matching ones released (getDaemonPods)
        claimed = await cu.claim(self.client, R.PODS, ds, self.pod_inf.list(namespace=ds["metadata"]["namespace"]),
                                 cu.selector_matcher(ds["spec"].get("selector")), R.DAEMONSETS)
        pods = [p for p in claimed if pu.is_pod_active(p)]
        nodes = {n["metadata"]["name"]: n for n in self.node_inf.list()}
        eligible = {name for name, n in nodes.items() if node_should_run(template.get("spec") or {}, n)}
        by_node: dict[str, list[dict]] = {}
        for p in by_creation(pods):
            by_node.setdefault(pod_node(p) or "", []).append(p)
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        now = time.time()
        surge = max_surge(ds, len(eligible))
        to_create: list[str] = []
        to_delete: list[dict] = []
        for node in sorted(eligible):
            have = by_node.get(node, [])
            if not have:
                to_create.append(node)
            else:
                to_delete += excess_pods(have, h, surge > 0, min_ready, now)
        for node, ps in by_node.items():
            if node not in eligible:
                to_delete += ps
        revisions = await cu.claim_revisions(self.client, ds, self.rev_inf.list(namespace=ds["metadata"]["namespace"]),
                                             cu.selector_matcher(ds["spec"].get("selector")),
                                             cu.owner_rechecker(self.client, R.DAEMONSETS, ds))
        if not pu.is_terminating(ds):
            await cu.sync_history(self.client, ds, revisions, f"{ds['metadata']['name']}-{h}", h,
                                  cu.revision_data(template))
        if not pu.is_terminating(ds) and self.expectations.satisfied(key):
            strategy = ds["spec"].get("updateStrategy") or {"type": "RollingUpdate"}
            if strategy.get("type", "RollingUpdate") == "RollingUpdate" and not to_create and surge > 0:
                doomed = {p["metadata"]["uid"] for p in to_delete}
                current = {n: [p for p in ps if p["metadata"]["uid"] not in doomed] for n, ps in by_node.items()}
                old_done, to_create = surge_rollout(current, eligible, h, surge, min_ready, now)
                to_delete += old_done
            elif strategy.get("type", "RollingUpdate") == "RollingUpdate" and not to_create:
                max_unavail = du.int_or_percent((strategy.get("rollingUpdate") or {}).get("maxUnavailable"),
                                                len(eligible), True, default="1") or 1
                unavailable = sum(1 for n in eligible if not any(pu.is_pod_available(p, min_ready, now)
                                                                for p in by_node.get(n, [])))
                old = [p for n in eligible for p in by_node.get(n, [])[:1] if cu.labels_of(p).get(HASH_LABEL) != h]
                old.sort(key=lambda p: pu.is_pod_available(p, min_ready, now))
                budget = max_unavail - unavailable
                for p in old:
                    if not pu.is_pod_available(p, min_ready, now):
                        to_delete.append(p)
                    elif budget > 0:
                        to_delete.append(p)
                        budget -= 1
            await self._apply(ds, key, to_create, to_delete, h)
        await self._write_status(ds, eligible, by_node, h, min_ready, now)
        name = ds["metadata"]["name"]
        live = {f"{name}-{h}"} | {f"{name}-{cu.labels_of(p).get(HASH_LABEL, '')}" for p in pods}
        limit = ds["spec"].get("revisionHistoryLimit")
        await cu.prune_history(self.client, revisions, live, 10 if limit is None else int(limit))
        return None

    async def _apply(self, ds: dict, key: str, create: list[str], delete: list[dict], h: str) -> None:
        ns = ds["metadata"]["namespace"]
        self.expectations.expect_creations(key, len(create))
        self.expectations.expect_deletions(key, {p["metadata"]["uid"] for p in delete})
        template = ds["spec"].get("template") or {}
        gen = str(ds["metadata"].get("generation", 1))
        for node in create:
            pod = cu.pod_from_template(template, ds, extra_labels={HASH_LABEL: h, "pod-template-generation": gen})
            pod["spec"] = pin_to_node(pod["spec"], node)
            try:
                created = await self.client.create(R.PODS, pod, ns)
                self.recorder.event(ds, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
            except ApiStatusError as e:
                self.expectations.creation_observed(key)
                self.recorder.event(ds, "Warning", "FailedCreate", f"Error creating pod on node {node}: {e.message}")
                raise
        for p in delete:
            try:
                await self.client.delete(R.PODS, p["metadata"]["name"], ns, preconditions={"uid": p["metadata"]["uid"]})
                self.recorder.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
            except ApiStatusError as e:
                self.expectations.deletion_observed(key, p["metadata"]["uid"])
                if not (e.not_found or e.code == 409):
                    raise

    async def _write_status(self, ds: dict, eligible: set[str], by_node: dict[str, list[dict]], h: str,
                            min_ready: int, now: float) -> None:
        scheduled = [n for n in eligible if by_node.get(n)]
        first = {n: by_node[n][0] for n in scheduled}
        status = {
            "observedGeneration": ds["metadata"].get("generation", 1),
            "desiredNumberScheduled": len(eligible),
            "currentNumberScheduled": len(scheduled),
            "numberMisscheduled": sum(1 for n in by_node if n not in eligible and by_node[n]),
            "numberReady": sum(1 for p in first.values() if pu.is_pod_ready(p)),
            "numberAvailable": sum(1 for p in first.values() if pu.is_pod_available(p, min_ready, now)),
            "updatedNumberScheduled": sum(1 for p in first.values() if cu.labels_of(p).get(HASH_LABEL) == h),
        }
        status["numberUnavailable"] = max(len(eligible) - status["numberAvailable"], 0)
        old = ds.get("status") or {}
        if all(old.get(k) == v for k, v in status.items()):
            return
        ds["status"] = {**old, **status}
        try:
            await self.client.update_status(R.DAEMONSETS, ds)
        except ApiStatusError as e:
            if not e.not_found:
                raise


def setup(manager: Manager, workers: int = 2) -> DaemonSetController:
    return DaemonSetController(manager, workers=workers)
